"""What every simulated Pipedrive endpoint shares: the API-token check, the rate limits and their headers,
token charging, the success and error envelopes, query parameter parsing and both kinds of pagination.

A handler is a plain function `(PipedriveState, ApiRequest) -> (status, body)` that runs while the
sandbox lock is held; it raises `ApiError` for an error answer. The request body is read before the lock
is taken, so the lock is never held across an await.
"""

from __future__ import annotations

import base64
import binascii
import json
import re
import secrets
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any

from starlette.datastructures import QueryParams
from starlette.requests import ClientDisconnect, Request
from starlette.responses import HTMLResponse, JSONResponse, Response

from rf_desktop.core.token_costs import SEARCH_PATHS, cost_of

if TYPE_CHECKING:
    from rf_desktop.sandbox.pipedrive import PipedriveState
    from rf_desktop.sandbox.state import SandboxState

Reply = tuple[int, dict[str, Any]]
Handler = Callable[["PipedriveState", "ApiRequest"], Reply]

MAX_LIMIT = 500
DEFAULT_LIMIT = 100
ERROR_INFO = "Please check developers.pipedrive.com for more information about Pipedrive API."
SCHEMA_ERROR_CODE = "ERR_SCHEMA_VALIDATION_FAILED"
# v2 wants whole-second RFC 3339; a fractional second is "not a valid datetime"
_RFC3339_WHOLE_SECONDS = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(Z|[+-]\d{2}:\d{2})$")

BLOCKED_PAGE = """<!DOCTYPE html>
<html lang="en-US"><head><meta charset="UTF-8"><title>Attention Required! | Cloudflare</title></head>
<body><div id="cf-wrapper"><div id="cf-error-details">
<h1>Sorry, you have been blocked</h1>
<h2>You are unable to access api.pipedrive.com</h2>
<p>This website is using a security service to protect itself from online attacks. The action you just
performed triggered the security solution: too many requests were sent after being rate limited.</p>
<p>Cloudflare Ray ID: <strong>{ray}</strong></p>
</div></div></body></html>
"""


class ApiError(Exception):
    """An error answer: `status` and the JSON `body` Pipedrive sends with it."""

    def __init__(self, status: int, body: dict[str, Any]) -> None:
        super().__init__(body.get("error", ""))
        self.status = status
        self.body = body


def ok(data: Any, additional_data: Any = None, status: int = 200) -> Reply:
    return status, {"success": True, "data": data, "additional_data": additional_data}


def error_body(error: str, error_info: str = ERROR_INFO, **extra: Any) -> dict[str, Any]:
    return {
        "success": False,
        "error": error,
        "error_info": error_info,
        "data": None,
        "additional_data": None,
        **extra,
    }


def schema_error(*problems: str) -> ApiError:
    """v2's 400 for a request that does not fit the endpoint's schema."""
    message = "Validation failed: " + "; ".join(problems)
    return ApiError(400, error_body(message, code=SCHEMA_ERROR_CODE))


def not_allowed(key: str) -> str:
    return f"{key}: Parameter '{key}' is not allowed for this request"


def not_found(error: str = "Entity was not found") -> ApiError:
    return ApiError(404, error_body(error, "Object was not found."))


def bad_request(error: str) -> ApiError:
    """v1's 400."""
    return ApiError(400, error_body(error))


@dataclass
class ApiRequest:
    method: str
    path_params: dict[str, str]
    query: QueryParams
    body: Any

    def json_object(self) -> dict[str, Any]:
        """The body as a JSON object (a missing body is an empty object)."""
        if self.body is None:
            return {}
        if not isinstance(self.body, dict):
            raise schema_error("body: Expected object")
        return self.body

    # --- v2 query parameters: strict, like the real v2 API ------------------------------------

    def int_param(self, name: str, default: int | None = None) -> int | None:
        raw = self.query.get(name)
        if raw is None or raw == "":
            return default
        if not re.fullmatch(r"-?\d+", raw):
            raise schema_error(f"{name}: Expected number, received string")
        return int(raw)

    def bool_param(self, name: str) -> bool:
        raw = self.query.get(name)
        if raw is None:
            return False
        if raw not in ("true", "false"):
            raise schema_error(f"{name}: Expected boolean, received string")
        return raw == "true"

    def choice_param(self, name: str, choices: Sequence[str], default: str) -> str:
        raw = self.query.get(name, default)
        if raw not in choices:
            raise schema_error(
                f"{name}: Invalid enum value. Expected {' | '.join(choices)}, received '{raw}'"
            )
        return raw

    def list_param(
        self, name: str, choices: Sequence[str] | None = None, max_items: int | None = None
    ) -> list[str]:
        raw = self.query.get(name)
        if not raw:
            return []
        items = [item.strip() for item in raw.split(",") if item.strip()]
        if choices is not None:
            for item in items:
                if item not in choices:
                    raise schema_error(f"{name}: Invalid enum value '{item}'")
        if max_items is not None and len(items) > max_items:
            raise schema_error(f"{name}: A maximum of {max_items} keys is allowed")
        return items

    def datetime_param(self, name: str) -> datetime | None:
        raw = self.query.get(name)
        if raw is None:
            return None
        if not _RFC3339_WHOLE_SECONDS.match(raw):
            raise schema_error(f"{name}: '{raw}' is not a valid datetime")
        return parse_time(raw)

    def limit_param(self) -> int:
        limit = self.int_param("limit", DEFAULT_LIMIT)
        assert limit is not None
        if not 1 <= limit <= MAX_LIMIT:
            raise schema_error(f"limit: Number must be between 1 and {MAX_LIMIT}")
        return limit


def parse_time(text: str) -> datetime:
    """A timestamp the sandbox wrote (v2 whole seconds or v1 leads' milliseconds) or a client sent."""
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


# --- pagination ----------------------------------------------------------------------------------

SortKey = tuple[Any, Any]


def _encode_cursor(field: str, direction: str, key: SortKey) -> str:
    payload = {"field": field, "fieldValue": key[0], "sortDirection": direction, "id": key[1]}
    return base64.urlsafe_b64encode(json.dumps(payload, separators=(",", ":")).encode()).decode().rstrip("=")


def _decode_cursor(cursor: str, field: str, direction: str) -> SortKey:
    try:
        payload = json.loads(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)))
        if payload["field"] != field or payload["sortDirection"] != direction:
            raise ValueError("the cursor belongs to another sort order")
        return payload["fieldValue"], payload["id"]
    except (ValueError, KeyError, TypeError, binascii.Error) as exc:
        raise schema_error("cursor: Invalid cursor") from exc


def cursor_page(
    items: list[dict[str, Any]],
    req: ApiRequest,
    sort_key: Callable[[dict[str, Any]], SortKey],
    *,
    field: str = "id",
    direction: str = "asc",
) -> tuple[list[dict[str, Any]], str | None]:
    """One page of a v2 list: items after the `cursor` in (sort value, id) order, and the next cursor
    (None on the last page, as the documentation says). Keyset cursors stay right while items change."""
    limit = req.limit_param()
    descending = direction == "desc"
    ordered = sorted(items, key=sort_key, reverse=descending)
    cursor = req.query.get("cursor")
    if cursor:
        after = _decode_cursor(cursor, field, direction)
        try:
            ordered = [
                item for item in ordered if (sort_key(item) < after if descending else sort_key(item) > after)
            ]
        except TypeError as exc:  # a cursor made up by hand
            raise schema_error("cursor: Invalid cursor") from exc
    page = ordered[:limit]
    next_cursor = _encode_cursor(field, direction, sort_key(page[-1])) if len(ordered) > limit else None
    return page, next_cursor


def offset_page(items: list[Any], req: ApiRequest) -> tuple[list[Any], dict[str, Any]]:
    """One page of a v1 list (`start`/`limit`, lenient like v1) and its `additional_data.pagination`."""
    try:
        start = max(0, int(req.query.get("start", 0)))
        limit = min(MAX_LIMIT, max(1, int(req.query.get("limit", DEFAULT_LIMIT))))
    except ValueError as exc:
        raise bad_request("start and limit must be integers") from exc
    page = items[start : start + limit]
    more = start + limit < len(items)
    pagination: dict[str, Any] = {"start": start, "limit": limit, "more_items_in_collection": more}
    if more:
        pagination["next_start"] = start + limit
    return page, {"pagination": pagination}


# --- the endpoint wrapper ------------------------------------------------------------------------

UNAUTHORIZED = {"success": False, "error": "unauthorized access", "errorCode": 401}
BURST_BODY = {"success": False, "error": "Request over limit", "errorCode": 429}
DAILY_BODY = {"success": False, "error": "daily request budget exceeded", "errorCode": 429}


def _token_of(request: Request) -> str:
    # the header is the documented way; `?api_token=` is the legacy v1 one, still accepted
    return request.headers.get("x-api-token") or request.query_params.get("api_token") or ""


async def _read_json(request: Request) -> tuple[Any, bool]:
    raw = await request.body()
    if not raw.strip():
        return None, True
    try:
        return json.loads(raw), True
    except ValueError:
        return None, False


def endpoint(state: SandboxState, method: str, template: str, handler: Handler) -> Callable[[Request], Any]:
    """A Starlette endpoint serving `handler` as Pipedrive would: auth, limits, charging, headers."""
    search = template in SEARCH_PATHS
    cost = cost_of(method, template)
    v1 = template.startswith("/api/v1/")

    async def serve(request: Request) -> Response:
        token = _token_of(request)
        try:
            body, parsed = await _read_json(request)
        except ClientDisconnect:
            # the client went away while sending its body: nothing happened, and no one hears the answer
            return Response(status_code=400)
        with state.lock:
            pd = state.pd
            if not token or not secrets.compare_digest(token.encode(), pd.token.encode()):
                return JSONResponse(UNAUTHORIZED, 401)
            admission = pd.limiter.admit(token, search=search)
            if admission.reason == "blocked":
                page = BLOCKED_PAGE.format(ray=secrets.token_hex(8))
                return HTMLResponse(page, 403, headers={"server": "cloudflare"})
            if not admission.allowed:
                headers = pd.limiter.headers(token, search=search) | pd.limiter.retry_after(admission)
                return JSONResponse(DAILY_BODY if admission.reason == "daily" else BURST_BODY, 429, headers)
            req = ApiRequest(method, dict(request.path_params), request.query_params, body)
            try:
                if not parsed:
                    raise bad_request("Invalid JSON body") if v1 else schema_error("body: Invalid JSON")
                status, payload = handler(pd, req)
            except ApiError as exc:
                status, payload = exc.status, exc.body
            pd.limiter.charge(cost)
            headers = pd.limiter.headers(token, search=search)
        return JSONResponse(payload, status, headers)

    return serve

"""Pipedrive client: users/me, fields, pipelines and stages, persons, leads (v1), deals (v2), conversion.

The token goes only in the `x-api-token` header, never in a URL. Every call is paced by the optional
`BurstLimiter`, refused up front when the `BudgetTracker` knows the day's budget is gone, and charged to
it afterwards. v2 lists page by cursor (`additional_data.next_cursor`), v1 lists by offset
(`additional_data.pagination`). Payloads are built by `mapping.py` and sent as given.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx

from rf_desktop.core.http import (
    PIPEDRIVE,
    AmbiguousWriteError,
    ApiClient,
    BudgetExhaustedError,
    EventHooks,
    NotFoundError,
    OnResponse,
    RateLimitedError,
    RetryPolicy,
    TransientError,
    header_int,
    is_html,
    parse_retry_after,
)
from rf_desktop.core.ratelimit import BURST_PAUSE_CEILING, CHECK_EVERY, BudgetTracker, BurstLimiter

DEFAULT_BASE_URL = "https://api.pipedrive.com"
PAGE_LIMIT = 500
SEARCH_PAGE_LIMIT = 100


def refused_at_the_door(response: httpx.Response) -> bool:
    """Turned away before any work (a rejected token, a rate limit, an edge's HTML block): not charged to
    the day's token budget."""
    status = response.status_code
    return status in (401, 429) or (status == 403 and is_html(response))


@dataclass(frozen=True)
class DealsPage:
    items: list[dict[str, Any]]
    next_cursor: str | None


def rfc3339_seconds(moment: datetime) -> str:
    """Whole-second RFC 3339 in UTC ("2026-01-02T03:04:05Z"): Pipedrive v2 rejects fractional seconds.
    Fractions are dropped (rounded down), which is safe for an inclusive `updated_since`."""
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _emails(person: Mapping[str, Any]) -> list[str]:
    """A person's addresses, whether listed as strings (search results) or as `{value}` objects."""
    found = []
    for entry in person.get("emails") or []:
        value = entry.get("value") if isinstance(entry, dict) else entry
        if isinstance(value, str):
            found.append(value.strip().casefold())
    return found


# How Pipedrive names the field it refuses: v2 "Parameter 'KEY' is not allowed", v2 value problems under
# "custom_fields.KEY: ...", v1 "Custom field 'KEY' does not exist".
_REFUSED_FIELD = re.compile(r"(?:parameter|field) '([^']+)'|custom_fields\.(\w+)", re.IGNORECASE)


class PipedriveClient(ApiClient):
    service = PIPEDRIVE
    auth_hint = (
        "Copy your personal API token from Pipedrive (Settings → Personal preferences → API) into "
        "Connections. Regenerating it in Pipedrive disables the old one."
    )
    blocked_hint = (
        "Pipedrive blocks integrations that keep calling after being told to slow down. "
        "rf-desktop pauses; sync again in a while."
    )

    def _refused_field(self, message: str) -> str | None:
        found = _REFUSED_FIELD.search(message)
        return (found.group(1) or found.group(2)) if found else None

    def __init__(
        self,
        base_url: str,
        token: str,
        *,
        timeout: float = 20.0,
        connect_timeout: float | None = None,
        transport: httpx.AsyncBaseTransport | None = None,
        retry: RetryPolicy | None = None,
        burst: BurstLimiter | None = None,
        budget: BudgetTracker | None = None,
        event_hooks: EventHooks | None = None,
        on_response: OnResponse | None = None,
    ) -> None:
        super().__init__(
            base_url,
            token,
            {"x-api-token": token},
            timeout=timeout,
            connect_timeout=connect_timeout,
            transport=transport,
            retry=retry,
            event_hooks=event_hooks,
            on_response=on_response,
        )
        self.burst = burst
        self.budget = budget

    # --- pacing and accounting ------------------------------------------------------------------------

    async def _before_send(self, method: str, path: str) -> None:
        if self.budget is not None:
            self.budget.check(method, path)
        if self.burst is not None:
            await self.burst.acquire(method, path)

    def _after_response(self, method: str, path: str, response: httpx.Response) -> None:
        if self.burst is not None:
            self.burst.observe(method, path, response.status_code, response.headers)
        if self.budget is None:
            return
        if refused_at_the_door(response):
            # the headers may still say what is left
            self.budget.correct(response.headers)
        else:
            self.budget.record(method, path, response.headers)

    def _rate_limited(self, method: str, path: str, response: httpx.Response, body: Any) -> RateLimitedError:
        retry_after = self._retry_after(response)
        error = str(body.get("error") or "") if isinstance(body, dict) else ""
        says_daily = "daily" in error.casefold()
        no_tokens = header_int(response.headers, "x-daily-ratelimit-token-remaining") == 0
        if not (says_daily or (no_tokens and (retry_after is None or retry_after > BURST_PAUSE_CEILING))):
            return super()._rate_limited(method, path, response, body)
        now = datetime.now(UTC)
        # only `retry-after` speaks of the day: `x-ratelimit-reset` is the 2-second window's
        daily_wait = parse_retry_after(response.headers.get("retry-after"))
        if daily_wait is not None:
            resets_at = now + timedelta(seconds=daily_wait)
            message = "Pipedrive's daily API budget for this company is used up (HTTP 429)."
            hint = f"rf-desktop continues after {resets_at:%H:%M} UTC; an admin can buy more in Pipedrive."
        else:
            # the budget resets at midnight in a time zone Pipedrive does not name: not a time to wait for
            resets_at = now + CHECK_EVERY
            message = (
                "Pipedrive's daily API budget for this company is used up (HTTP 429), and Pipedrive did not "
                "say when it resets (at midnight in the company's time zone)."
            )
            hint = (
                f"rf-desktop checks with one call every hour, next at {resets_at:%H:%M} UTC; an admin can buy "
                "more in Pipedrive."
            )
        if self.budget is not None:
            self.budget.exhausted(resets_at, check_only=daily_wait is None)
        return BudgetExhaustedError(
            self.service,
            message,
            hint=hint,
            status=429,
            retry_after=(resets_at - now).total_seconds(),
            resets_at=resets_at,
        )

    # --- envelopes and pagination ---------------------------------------------------------------------

    def _data(self, body: Any) -> Any:
        if not isinstance(body, dict) or "data" not in body:
            raise TransientError(
                self.service,
                "Pipedrive sent an answer rf-desktop does not understand.",
                hint="Try again later.",
            )
        return body["data"]

    def _record(self, body: Any) -> dict[str, Any]:
        data = self._data(body)
        return data if isinstance(data, dict) else {}

    async def _create(self, path: str, payload: Mapping[str, Any]) -> dict[str, Any]:
        """POST a new record and return it. A success without it (`data: null`, no `id`) says nothing
        about whether the record was saved, so it is treated like a lost answer: look before creating."""
        body = await self._call("POST", path, json=payload)
        data = body.get("data") if isinstance(body, dict) else None
        if isinstance(data, dict) and isinstance(data.get("id"), int | str) and data["id"] != "":
            return data
        raise AmbiguousWriteError(
            self.service,
            f"Pipedrive answered POST {path} without the new record; it may or may not have been saved.",
            hint="rf-desktop checks for it before trying again, so nothing is created twice.",
        )

    @staticmethod
    def _items(data: Any) -> list[dict[str, Any]]:
        return [item for item in data or [] if isinstance(item, dict)]

    async def _cursor_page(
        self, path: str, params: Mapping[str, Any], cursor: str | None, limit: int = PAGE_LIMIT
    ) -> tuple[Any, str | None]:
        query = {**params, "limit": limit}
        if cursor:
            query["cursor"] = cursor
        body = await self._call("GET", path, params=query)
        data = self._data(body)
        extra = body.get("additional_data")
        next_cursor = extra.get("next_cursor") if isinstance(extra, dict) else None
        return data, next_cursor if isinstance(next_cursor, str) and next_cursor else None

    async def _all_cursor_pages(
        self, path: str, params: Mapping[str, Any] | None = None
    ) -> list[dict[str, Any]]:
        items: list[dict[str, Any]] = []
        cursor: str | None = None
        while True:
            data, next_cursor = await self._cursor_page(path, params or {}, cursor)
            items.extend(self._items(data))
            if next_cursor is None or next_cursor == cursor:
                return items
            cursor = next_cursor

    async def _all_offset_pages(
        self, path: str, params: Mapping[str, Any] | None = None
    ) -> list[dict[str, Any]]:
        items: list[dict[str, Any]] = []
        start = 0
        while True:
            body = await self._call(
                "GET", path, params={**(params or {}), "start": start, "limit": PAGE_LIMIT}
            )
            items.extend(self._items(self._data(body)))
            extra = body.get("additional_data") if isinstance(body, dict) else None
            pagination = extra.get("pagination") if isinstance(extra, dict) else None
            if not isinstance(pagination, dict) or not pagination.get("more_items_in_collection"):
                return items
            next_start = pagination.get("next_start")
            if not isinstance(next_start, int) or next_start <= start:
                return items
            start = next_start

    # --- account and schema ---------------------------------------------------------------------------

    async def me(self) -> dict[str, Any]:
        return self._record(await self._call("GET", "/api/v1/users/me"))

    async def users(self) -> list[dict[str, Any]]:
        """Everyone in the company (GET /api/v1/users, not paginated): the owners a lead or deal can have."""
        return self._items(self._data(await self._call("GET", "/api/v1/users")))

    async def person_fields(self) -> list[dict[str, Any]]:
        return await self._all_cursor_pages("/api/v2/personFields")

    async def deal_fields(self) -> list[dict[str, Any]]:
        return await self._all_cursor_pages("/api/v2/dealFields")

    async def lead_fields(self) -> list[dict[str, Any]]:
        return await self._all_offset_pages("/api/v1/leadFields")

    async def lead_labels(self) -> list[dict[str, Any]]:
        return self._items(self._data(await self._call("GET", "/api/v1/leadLabels")))

    async def pipelines(self) -> list[dict[str, Any]]:
        return await self._all_cursor_pages("/api/v2/pipelines")

    async def stages(self, pipeline_id: int | None = None) -> list[dict[str, Any]]:
        params = {"pipeline_id": pipeline_id} if pipeline_id is not None else {}
        return await self._all_cursor_pages("/api/v2/stages", params)

    async def create_deal_field(
        self, name: str, field_type: str = "varchar", options: list[str] | None = None
    ) -> dict[str, Any]:
        return await self._create_field("/api/v2/dealFields", name, field_type, options)

    async def create_person_field(
        self, name: str, field_type: str = "varchar", options: list[str] | None = None
    ) -> dict[str, Any]:
        return await self._create_field("/api/v2/personFields", name, field_type, options)

    async def _create_field(
        self, path: str, name: str, field_type: str, options: list[str] | None
    ) -> dict[str, Any]:
        payload: dict[str, Any] = {"field_name": name, "field_type": field_type}
        if options:
            payload["options"] = [{"label": label} for label in options]
        return self._record(await self._call("POST", path, json=payload))

    # --- persons --------------------------------------------------------------------------------------

    async def search_persons_by_email(self, email: str) -> list[dict[str, Any]]:
        """Persons whose emails include `email` (case-insensitive). The search's own "exact match" has
        returned partial matches in the past, so each result is checked here too."""
        wanted = email.strip().casefold()
        if not wanted:
            return []
        params = {"term": email.strip(), "fields": "email", "exact_match": "true"}
        found: list[dict[str, Any]] = []
        cursor: str | None = None
        while True:
            data, next_cursor = await self._cursor_page(
                "/api/v2/persons/search", params, cursor, SEARCH_PAGE_LIMIT
            )
            results = data.get("items") if isinstance(data, dict) else None
            for result in self._items(results):
                person = result.get("item")
                if isinstance(person, dict) and wanted in _emails(person):
                    found.append(person)
            if next_cursor is None or next_cursor == cursor:
                return found
            cursor = next_cursor

    async def create_person(self, payload: Mapping[str, Any]) -> dict[str, Any]:
        return await self._create("/api/v2/persons", payload)

    async def update_person(self, person_id: int, payload: Mapping[str, Any]) -> dict[str, Any]:
        return self._record(await self._call("PATCH", f"/api/v2/persons/{person_id}", json=payload))

    async def get_person(self, person_id: int) -> dict[str, Any]:
        person = self._record(await self._call("GET", f"/api/v2/persons/{person_id}"))
        if not person.get("id"):
            # not "gone" (that is a 404): taking it for gone would create the person a second time
            raise TransientError(
                self.service, "Pipedrive answered without the person it was asked for.", hint="Try again later."
            )
        return person

    async def delete_person(self, person_id: int) -> None:
        await self._call("DELETE", f"/api/v2/persons/{person_id}")

    # --- leads (v1: custom fields as flat keys) -------------------------------------------------------

    async def create_lead(self, payload: Mapping[str, Any]) -> dict[str, Any]:
        return await self._create("/api/v1/leads", payload)

    async def get_lead(self, lead_id: str) -> dict[str, Any] | None:
        """The lead, or None when it is gone (deleted, or converted into a deal)."""
        try:
            return self._record(await self._call("GET", f"/api/v1/leads/{lead_id}"))
        except NotFoundError:
            return None

    async def update_lead(self, lead_id: str, payload: Mapping[str, Any]) -> dict[str, Any]:
        return self._record(await self._call("PATCH", f"/api/v1/leads/{lead_id}", json=payload))

    async def delete_lead(self, lead_id: str) -> None:
        await self._call("DELETE", f"/api/v1/leads/{lead_id}")

    async def leads_for_person(self, person_id: int) -> list[dict[str, Any]]:
        return await self._all_offset_pages("/api/v1/leads", {"person_id": person_id})

    # --- deals (v2: custom fields inside `custom_fields`) ---------------------------------------------

    async def create_deal(self, payload: Mapping[str, Any]) -> dict[str, Any]:
        return await self._create("/api/v2/deals", payload)

    async def get_deal(self, deal_id: int, *, include_source_lead: bool = True) -> dict[str, Any] | None:
        """The deal, or None when Pipedrive no longer has it."""
        params = {"include_fields": "source_lead_id"} if include_source_lead else None
        try:
            return self._record(await self._call("GET", f"/api/v2/deals/{deal_id}", params=params))
        except NotFoundError:
            return None

    async def update_deal(self, deal_id: int, payload: Mapping[str, Any]) -> dict[str, Any]:
        return self._record(await self._call("PATCH", f"/api/v2/deals/{deal_id}", json=payload))

    async def delete_deal(self, deal_id: int) -> None:
        await self._call("DELETE", f"/api/v2/deals/{deal_id}")

    async def deals_for_person(self, person_id: int) -> list[dict[str, Any]]:
        return await self._all_cursor_pages(
            "/api/v2/deals", {"person_id": person_id, "include_fields": "source_lead_id"}
        )

    async def deals_page(
        self,
        *,
        updated_since: datetime | None = None,
        cursor: str | None = None,
        limit: int = PAGE_LIMIT,
        include_source_lead: bool = True,
        sort_by: str = "update_time",
        sort_direction: str = "asc",
    ) -> DealsPage:
        """One page of deals, oldest change first: the watch loop's single call per poll."""
        params: dict[str, Any] = {"sort_by": sort_by, "sort_direction": sort_direction}
        if updated_since is not None:
            params["updated_since"] = rfc3339_seconds(updated_since)
        if include_source_lead:
            params["include_fields"] = "source_lead_id"
        data, next_cursor = await self._cursor_page("/api/v2/deals", params, cursor, min(limit, PAGE_LIMIT))
        return DealsPage(self._items(data), next_cursor)

    async def persons_page(
        self, *, updated_since: datetime | None = None, cursor: str | None = None, limit: int = PAGE_LIMIT
    ) -> DealsPage:
        """One page of persons, oldest change first (10 tokens per 500): the engine's email index reads
        these instead of paying 20 tokens per search."""
        params: dict[str, Any] = {"sort_by": "update_time", "sort_direction": "asc"}
        if updated_since is not None:
            params["updated_since"] = rfc3339_seconds(updated_since)
        data, next_cursor = await self._cursor_page("/api/v2/persons", params, cursor, min(limit, PAGE_LIMIT))
        return DealsPage(self._items(data), next_cursor)

    # --- lead -> deal conversion ----------------------------------------------------------------------

    async def convert_lead(self, lead_id: str, stage_id: int | None = None) -> str:
        """Start converting a lead into a deal; returns the conversion id to poll."""
        payload = {"stage_id": stage_id} if stage_id is not None else {}
        data = self._record(await self._call("POST", f"/api/v2/leads/{lead_id}/convert/deal", json=payload))
        conversion_id = data.get("conversion_id")
        if not isinstance(conversion_id, str):
            raise TransientError(
                self.service, "Pipedrive did not say which conversion it started.", hint="Try again later."
            )
        return conversion_id

    async def conversion_status(self, lead_id: str, conversion_id: str) -> dict[str, Any]:
        """`{status: not_started|running|completed|failed|rejected, deal_id (when completed), ...}`."""
        return self._record(
            await self._call("GET", f"/api/v2/leads/{lead_id}/convert/status/{conversion_id}")
        )

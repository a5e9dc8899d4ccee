"""Referral Factory API v2 client: campaigns, users, qualification.

Bearer token in the `Authorization` header. Lists come as `{data, links, meta}` pages; only `data`,
`links.next` and `meta.current_page` are documented, so everything else is treated as optional.

Referral Factory's documentation names two API hosts. When the one in use cannot be reached at all (its
name does not resolve, nothing accepts the connection), the client tries the other, and keeps using (and,
given somewhere to remember it, remembers) the one that answered.
"""

from __future__ import annotations

import dataclasses
import logging
import time
from collections import deque
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

import httpx

from rf_desktop.core.http import (
    REFERRAL_FACTORY,
    ApiClient,
    ApiError,
    AuthError,
    BlockedError,
    ConnectionFailedError,
    EventHooks,
    OnResponse,
    RateLimitedError,
    RetryPolicy,
    TransientError,
    name_not_found,
)

log = logging.getLogger(__name__)

DEFAULT_BASE_URL = "https://api.referral-factory.com/api/v2"
# the two hosts Referral Factory's documentation gives for API v2, the default first
DOCUMENTED_BASE_URLS = (DEFAULT_BASE_URL, "https://referral-factory.com/api/v2")
# where the base URL that last answered is remembered
BASE_URL_KEY = "rf_base_url"
MAX_PER_PAGE = 250
RATE_LIMIT_WINDOW_SECONDS = 60.0  # 600 calls per minute per token
# what rf-desktop allows itself of those 600: a computer that keeps going over the limit gets blocked
CALLS_PER_MINUTE = 570


class KeyValues(Protocol):
    """Somewhere small to remember things between runs (the store's kv table)."""

    def get_kv(self, key: str, default: Any = None) -> Any: ...

    def set_kv(self, key: str, value: Any) -> None: ...


class HostUnreachableError(ConnectionFailedError):
    """No answer at all from a host: its name did not resolve or nothing accepted the connection."""


def other_documented_base_urls(base_url: str) -> list[str]:
    """The documented API hosts to try when `base_url` (one of them) cannot be reached; none for others."""
    url = base_url.rstrip("/")
    return [u for u in DOCUMENTED_BASE_URLS if u != url] if url in DOCUMENTED_BASE_URLS else []


@dataclass(frozen=True)
class Page:
    """One page of a Referral Factory list (users, campaigns)."""

    items: list[dict[str, Any]]
    current_page: int
    last_page: int | None
    total: int | None
    has_next: bool


class ReferralFactoryClient(ApiClient):
    service = REFERRAL_FACTORY
    auth_hint = (
        "Copy the API key from Referral Factory (Campaign Settings → Integrations and API → API & Webhooks) "
        "into Connections. Generating a new key there disables the old one."
    )
    blocked_hint = (
        "Referral Factory blocks computers that keep calling after being told to slow down. "
        "Wait before syncing again; if it lasts, contact Referral Factory support."
    )

    def __init__(
        self,
        base_url: str,
        token: str,
        *,
        timeout: float = 20.0,
        connect_timeout: float | None = None,
        transport: httpx.AsyncBaseTransport | None = None,
        retry: RetryPolicy | None = None,
        event_hooks: EventHooks | None = None,
        on_response: OnResponse | None = None,
        fallback_base_urls: Sequence[str] | None = None,
        calls_per_minute: int = CALLS_PER_MINUTE,
    ) -> None:
        """`fallback_base_urls`: where else to try when `base_url` cannot be reached; by default the other
        documented host when `base_url` is one of them. `calls_per_minute`: the pace rf-desktop keeps."""
        self._calls_per_minute = calls_per_minute
        self._sends: deque[float] = deque()
        self._base_urls = [
            base_url.rstrip("/"),
            *(fallback_base_urls if fallback_base_urls is not None else other_documented_base_urls(base_url)),
        ]
        self._memory: KeyValues | None = None
        super().__init__(
            base_url,
            token,
            {"Authorization": f"Bearer {token}"},
            timeout=timeout,
            connect_timeout=connect_timeout,
            transport=transport,
            retry=retry,
            event_hooks=event_hooks,
            on_response=on_response,
        )
        # answers received; each one counts against the rate limit, which the sync keeps a share of
        self.calls = 0

    def _after_response(self, method: str, path: str, response: httpx.Response) -> None:
        self.calls += 1

    @property
    def base_url(self) -> str:
        """The base URL in use: the configured one, or the other documented host after a fallback."""
        return str(self._http.base_url).rstrip("/")

    async def _before_send(self, method: str, path: str) -> None:
        # stay under the per-minute limit instead of meeting its 429: a long backfill (many pages, many
        # referrers) would otherwise go over it minute after minute, and that gets the computer blocked
        now = time.monotonic()
        while self._sends and self._sends[0] <= now - RATE_LIMIT_WINDOW_SECONDS:
            self._sends.popleft()
        if len(self._sends) >= self._calls_per_minute:
            await self._retry.sleep(self._sends[0] + RATE_LIMIT_WINDOW_SECONDS - now)
            self._sends.popleft()
        self._sends.append(time.monotonic())

    def remember_host_in(self, memory: KeyValues) -> None:
        """Start with the host that answered last time, and remember the next switch in `memory`."""
        self._memory = memory
        saved = memory.get_kv(BASE_URL_KEY)
        if saved in self._base_urls:
            self._http.base_url = httpx.URL(saved)

    async def _call(
        self, method: str, path: str, *, params: Mapping[str, Any] | None = None, json: Any = None
    ) -> Any:
        try:
            return await super()._call(method, path, params=params, json=json)
        except HostUnreachableError as unreachable:
            first_failure = unreachable
        tried = self.base_url
        for url in self._base_urls:
            if url == tried:
                continue
            self._http.base_url = httpx.URL(url)
            try:
                body = await super()._call(method, path, params=params, json=json)
            except HostUnreachableError:
                continue
            if self._memory is not None:
                self._memory.set_kv(BASE_URL_KEY, url)
            return body
        self._http.base_url = httpx.URL(tried)
        if len(self._base_urls) == 1:
            raise first_failure
        hosts = " or ".join(httpx.URL(u).host for u in [tried, *(u for u in self._base_urls if u != tried)])
        raise HostUnreachableError(
            self.service,
            f"Could not reach Referral Factory at {hosts}. Is this computer online?",
            hint="Check the internet connection. If other websites open, Referral Factory may be down: "
            "rf-desktop tries again later.",
        ) from first_failure

    def _transport_error(self, method: str, path: str, exc: httpx.TransportError) -> TransientError:
        if isinstance(exc, httpx.ConnectError) and name_not_found(exc):
            return HostUnreachableError(
                self.service,
                f"Could not find {self._http.base_url.host}. Is this computer online?",
                hint=f"Check the internet connection, and the {self.service} address under Advanced.",
            )
        error = super()._transport_error(method, path, exc)
        if isinstance(exc, httpx.ConnectError | httpx.ConnectTimeout):
            # no answer at all from this host: the other documented host may still answer
            return HostUnreachableError(self.service, error.message, hint=error.hint)
        return error

    def _rate_limited(self, method: str, path: str, response: httpx.Response, body: Any) -> RateLimitedError:
        error = super()._rate_limited(method, path, response, body)
        if error.retry_after is None:
            # Referral Factory sends no Retry-After and blocks clients that keep hitting its per-minute
            # limit: wait for the whole window to pass before asking again
            error.retry_after = RATE_LIMIT_WINDOW_SECONDS
        return error

    def _forbidden(self, method: str, path: str, status: int, body: Any) -> ApiError:
        if _says_blocked(body):
            # the documented penalty for abusing the rate limit: this computer's address is blocked
            return BlockedError(
                self.service,
                self._sentence(f"Referral Factory has blocked API calls from this computer (HTTP {status})", body),
                hint=self.blocked_hint,
                status=status,
            )
        # otherwise Referral Factory's 403 means "for administrators only": the key belongs to the wrong user
        return AuthError(
            self.service,
            self._sentence(
                f"Referral Factory allows {method} {path} only for administrators (HTTP {status})", body
            ),
            hint="Use an API key generated by an administrator of the Referral Factory account.",
            status=status,
        )

    # --- campaigns ------------------------------------------------------------------------------------

    async def list_campaigns(self) -> list[dict[str, Any]]:
        campaigns: list[dict[str, Any]] = []
        page = 1
        while True:
            body = await self._call("GET", "/campaigns", params={"page": page, "per_page": MAX_PER_PAGE})
            parsed = self._page(body, page)
            campaigns.extend(parsed.items)
            if not parsed.has_next:
                return campaigns
            page = parsed.current_page + 1

    async def get_campaign(self, campaign_id: int) -> dict[str, Any]:
        return self._record(await self._call("GET", f"/campaigns/{campaign_id}"))

    # --- users ----------------------------------------------------------------------------------------

    async def users_page(self, page: int, per_page: int = MAX_PER_PAGE) -> Page:
        body = await self._call(
            "GET", "/users", params={"page": page, "per_page": min(per_page, MAX_PER_PAGE)}
        )
        parsed = self._page(body, page)
        # a user without a numeric id cannot be tracked or told apart from the others: it is left out (and
        # said in the log) rather than stopping intake for everyone
        users = [u for u in parsed.items if _int_or_none(u.get("id")) is not None]
        left_out = len(parsed.items) - len(users)
        if left_out:
            log.warning("Referral Factory listed %d users without an id on page %d.", left_out, page)
        return dataclasses.replace(parsed, items=users)

    async def get_user(self, user_id: int) -> dict[str, Any]:
        return self._record(await self._call("GET", f"/users/{user_id}"))

    async def create_user(
        self,
        campaign_id: int,
        first_name: str,
        email: str,
        *,
        referrer: tuple[str, str | int] | None = None,
        meta: Mapping[str, str] | None = None,
        notify: bool = False,
    ) -> dict[str, Any]:
        """Create a user; with `referrer` (("code", "ABC"), ("id", 5) or ("email", ...)) a Person Invited."""
        payload: dict[str, Any] = {
            "campaign_id": campaign_id,
            "first_name": first_name,
            "email": email,
            "notify": notify,
        }
        if referrer is not None:
            field, value = referrer
            if field not in ("code", "id", "email"):
                raise ValueError(f"a referrer is identified by code, id or email, not {field!r}")
            payload["referrer"] = {"field": field, "value": value}
        if meta:
            payload["meta"] = [{"field": label, "value": value} for label, value in meta.items()]
        return self._record(await self._call("POST", "/users", json=payload))

    async def qualify(self, user_id: int, qualified: bool = True) -> dict[str, Any]:
        """Mark a Person Invited as qualified (or back to pending with `qualified=False`)."""
        body = await self._call("PUT", "/users/qualification", json={"id": user_id, "qualified": qualified})
        return self._record(body) if isinstance(body, dict) else {}

    async def delete_user(self, user_id: int) -> None:
        await self._call("DELETE", f"/users/{user_id}")

    # --- envelopes ------------------------------------------------------------------------------------

    def _record(self, body: Any) -> dict[str, Any]:
        """One record: `{data: {...}}`, or the bare object when the envelope is missing."""
        if isinstance(body, dict):
            data = body.get("data", body)
            if isinstance(data, dict):
                return data
        raise self._unexpected()

    def _page(self, body: Any, requested: int) -> Page:
        if not isinstance(body, dict) or not isinstance(body.get("data"), list):
            raise self._unexpected()
        links = _mapping(body.get("links"))
        meta = _mapping(body.get("meta"))
        current = _int_or_none(meta.get("current_page")) or requested
        last = _int_or_none(meta.get("last_page"))
        # the next page is asked for by number, never by following `links.next`, which could point the
        # bearer token at another host
        has_next = bool(links.get("next")) if "next" in links else (last is not None and current < last)
        return Page(
            items=[item for item in body["data"] if isinstance(item, dict)],
            current_page=current,
            last_page=last,
            total=_int_or_none(meta.get("total")),
            has_next=has_next and bool(body["data"]),
        )

    def _unexpected(self) -> TransientError:
        return TransientError(
            self.service,
            "Referral Factory sent an answer rf-desktop does not understand.",
            hint="Try again later.",
        )


def _says_blocked(body: Any) -> bool:
    """Whether an error body tells of an address block rather than an administrators-only resource."""
    message = body.get("message") if isinstance(body, dict) else None
    return isinstance(message, str) and "blocked" in message.lower()


def _int_or_none(value: Any) -> int | None:
    try:
        return int(value)
    except (TypeError, ValueError):
        return None


def _mapping(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}

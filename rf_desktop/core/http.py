"""Shared HTTP plumbing for the Referral Factory and Pipedrive clients.

- `ApiError` and its subclasses say what went wrong in plain words (`message`) and what the owner can do
  about it (`hint`); their text never contains a token.
- `RetryPolicy` decides what is retried and how long to wait. Reads and other idempotent calls retry on
  429, 5xx, timeouts and dropped connections. A POST retries only when it surely never reached the server
  (429, connection refused); any other failure raises `AmbiguousWriteError`, because sending it again
  could create a second person, lead or deal.
- `ApiClient` is the base both clients share: JSON in and out, timeouts, the User-Agent, the mapping of
  statuses and bodies to errors, the retry loop, and an `on_response` callback to observe every response.
"""

from __future__ import annotations

import asyncio
import email.utils
import functools
import logging
import random
import socket
import ssl
import time
from collections.abc import Awaitable, Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from types import TracebackType
from typing import Any, ClassVar, Self
from urllib.parse import quote

import httpx

from rf_desktop import __version__

log = logging.getLogger(__name__)

REFERRAL_FACTORY = "Referral Factory"
PIPEDRIVE = "Pipedrive"
USER_AGENT = f"rf-desktop/{__version__}"
IDEMPOTENT_METHODS = frozenset({"GET", "HEAD", "OPTIONS", "PUT", "PATCH", "DELETE"})
REDACTED = "[redacted]"

EventHooks = Mapping[str, list[Callable[..., Any]]]


def redact(text: str, secrets: Iterable[str]) -> str:
    """`text` with every secret (also in its URL-encoded form) replaced by a placeholder."""
    for secret in secrets:
        if not secret:
            continue
        for form in {secret, quote(secret, safe="")}:
            text = text.replace(form, REDACTED)
    return text


# --- errors ----------------------------------------------------------------------------------------------


class ApiError(Exception):
    """A call to Referral Factory or Pipedrive failed. `str(e)` is the message followed by the hint."""

    def __init__(
        self,
        service: str,
        message: str,
        *,
        hint: str = "",
        status: int | None = None,
        retry_after: float | None = None,
        code: str | None = None,
    ) -> None:
        self.service = service
        self.message = message
        self.hint = hint
        self.status = status
        self.retry_after = retry_after
        # the service's machine-readable reason when it gives one (Pipedrive's `code`)
        self.code = code
        super().__init__(self.__str__())

    def __str__(self) -> str:
        return f"{self.message} {self.hint}".strip()


class AuthError(ApiError):
    """The token was refused (401), or Referral Factory says the resource is for administrators only."""


class PermissionDeniedError(ApiError):
    """The service understood but will not do it: an entity limit, a feature not enabled (403 JSON, 402)."""


class BlockedError(ApiError):
    """The service's edge answered with an HTML block page: stop calling for a while."""


class NotFoundError(ApiError):
    """The record does not exist (404) or no longer does (410)."""


class ValidationError(ApiError):
    """The request was refused as invalid (400/422). Permanent: sending it again gives the same answer.

    `field` is the key of the field the refusal is about, when the service named one (a custom field that
    no longer exists, a value that does not fit its field): the schema may have changed under us."""

    def __init__(
        self,
        service: str,
        message: str,
        *,
        details: Mapping[str, list[str]] | None = None,
        field: str | None = None,
        **kw: Any,
    ):
        self.details: dict[str, list[str]] = dict(details or {})
        self.field = field
        super().__init__(service, message, **kw)


class RateLimitedError(ApiError):
    """Too many requests in a short window (429): wait `retry_after` seconds when it is known."""


class BudgetExhaustedError(RateLimitedError):
    """The daily allowance of API usage is spent (the service's budget, or the owner's cap)."""

    def __init__(self, service: str, message: str, *, resets_at: datetime, **kw: Any) -> None:
        self.resets_at = resets_at
        super().__init__(service, message, **kw)


class TransientError(ApiError):
    """A server error, a timeout or a dropped connection: trying again later is expected to work."""


class AmbiguousWriteError(TransientError):
    """A create whose outcome is unknown: it may exist. Look it up before creating it again."""


class ConnectionFailedError(TransientError):
    """The host could not be reached at all: a wrong address, or no network."""


# --- retry policy and observation ------------------------------------------------------------------------


@dataclass(frozen=True)
class RetryPolicy:
    """How often and how long to retry. Tests pass tiny delays and a recording `sleep`."""

    max_attempts: int = 4
    base_delay: float = 0.5
    max_backoff: float = 20.0
    # a wait the server asks for beyond this is not slept: the error is raised so the caller can schedule
    max_wait: float = 30.0
    sleep: Callable[[float], Awaitable[Any]] = asyncio.sleep
    jitter: Callable[[], float] = field(default=random.random)

    def backoff(self, attempt: int) -> float:
        """Exponential backoff with full jitter: spreads retries of many clients over the whole interval."""
        return self.jitter() * min(self.max_backoff, self.base_delay * 2.0 ** (attempt - 1))


@dataclass(frozen=True)
class CallInfo:
    """One response as seen by `on_response`: enough to count calls, tokens and rate-limit headers."""

    service: str
    method: str
    path: str
    status: int
    elapsed: float
    attempt: int
    headers: Mapping[str, str]


OnResponse = Callable[[CallInfo], None]


def parse_retry_after(value: str | None, now: float | None = None) -> float | None:
    """Seconds to wait from a `retry-after` (or `x-ratelimit-reset`) header: delta-seconds or an HTTP date."""
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    current = datetime.now(UTC).timestamp() if now is None else now
    return max(0.0, when.timestamp() - current)


def header_int(headers: Mapping[str, str], name: str) -> int | None:
    """An integer header, or None when it is missing or malformed (every rate-limit header is optional)."""
    try:
        return int(float(headers[name]))
    except (KeyError, ValueError):
        return None


# --- response bodies -------------------------------------------------------------------------------------


def is_html(response: httpx.Response) -> bool:
    """An HTML page (a gateway's or an edge's), not an API answer."""
    if "html" in response.headers.get("content-type", "").lower():
        return True
    return response.text.lstrip()[:1] == "<"


def _decode(response: httpx.Response) -> Any:
    """The JSON body, or None when there is none or it is not JSON."""
    if not response.content:
        return None
    try:
        return response.json()
    except ValueError:
        return None


def _server_message(body: Any) -> str | None:
    """The human sentence in an error body: Referral Factory's `message` or Pipedrive's `error`."""
    if isinstance(body, dict):
        for key in ("message", "error"):
            value = body.get(key)
            if isinstance(value, str) and value.strip():
                return value.strip()
    return None


def _field_errors(body: Any) -> dict[str, list[str]]:
    """`errors` as field -> messages, from `{field: [{field, message}]}` or `{field: ["message"]}`."""
    errors = body.get("errors") if isinstance(body, dict) else None
    if not isinstance(errors, dict):
        return {}
    details: dict[str, list[str]] = {}
    for name, items in errors.items():
        entries = items if isinstance(items, list) else [items]
        messages = []
        for entry in entries:
            text = entry.get("message") if isinstance(entry, dict) else entry
            if text is not None:
                messages.append(str(text))
        details[str(name)] = messages
    return details


def _envelope_failed(body: Any) -> bool:
    """Pipedrive may answer 2xx with `success: false`: that is an error all the same."""
    return isinstance(body, dict) and body.get("success") is False


# --- transport failures ----------------------------------------------------------------------------------

# Failures where the request certainly never reached the server, so even a POST can be sent again.
_NOT_SENT = (
    httpx.ConnectError,
    httpx.ConnectTimeout,
    httpx.PoolTimeout,
    httpx.UnsupportedProtocol,
    httpx.ProxyError,
)
# Of those, the ones that mean "this address cannot be reached" rather than "this computer is busy".
_UNREACHABLE = (httpx.ConnectError, httpx.ConnectTimeout, httpx.UnsupportedProtocol, httpx.ProxyError)


# What the operating system's words for an unreachable address mean, for someone who is not a programmer
# (never "[Errno -2] Name or service not known").
_UNREACHABLE_REASONS = (
    (
        ("name or service not known", "nodename nor servname", "getaddrinfo failed", "name resolution",
         "no address associated", "errno -2", "errno -3", "errno 8", "11001"),
        "no computer by that name was found (a mistyped address, or no internet connection)",
    ),
    (
        ("connection refused", "all connection attempts failed", "errno 111", "errno 61", "10061"),
        "nothing is answering at that address",
    ),
    (("certificate", "ssl"), "its security certificate could not be checked"),
    (("network is unreachable", "errno 101", "errno 51", "no route to host"), "this computer is offline"),
)


def name_not_found(exc: BaseException) -> bool:
    """Whether a connect failure was the host name not resolving (socket.gaierror somewhere in the chain)."""
    seen: BaseException | None = exc
    while seen is not None:
        if isinstance(seen, socket.gaierror):
            return True
        seen = seen.__cause__ or seen.__context__
    return False


def unreachable_reason(exc: httpx.TransportError) -> str:
    """Why an address could not be reached, in plain words."""
    if name_not_found(exc):
        return _UNREACHABLE_REASONS[0][1]
    if isinstance(exc, httpx.ConnectTimeout):
        return "it did not answer in time"
    if isinstance(exc, httpx.UnsupportedProtocol):
        return "the address must start with https://"
    if isinstance(exc, httpx.ProxyError):
        return "the proxy refused the connection"
    text = str(exc).casefold()
    for markers, words in _UNREACHABLE_REASONS:
        if any(marker in text for marker in markers):
            return words
    return "the connection failed"


# --- the shared client -----------------------------------------------------------------------------------


@functools.cache
def shared_tls_context() -> ssl.SSLContext:
    """One TLS context (httpx's defaults: certifi's CAs, SSL_CERT_FILE honoured) for every client. Building
    one reads the CA bundle, 25-40 ms, and the clients are built again whenever a token or an address
    changes, on the loop a window may share."""
    return httpx.create_ssl_context()


class ApiClient:
    """Base of both API clients. Subclasses set `service`, `auth_hint` and build their calls on `_call`."""

    service: ClassVar[str]
    auth_hint: ClassVar[str]
    blocked_hint: ClassVar[str]

    def __init__(
        self,
        base_url: str,
        token: str,
        auth_headers: Mapping[str, str],
        *,
        timeout: float,
        connect_timeout: float | None = None,
        transport: httpx.AsyncBaseTransport | None = None,
        retry: RetryPolicy | None = None,
        event_hooks: EventHooks | None = None,
        on_response: OnResponse | None = None,
    ) -> None:
        self._secrets = (token,)
        self._retry = retry or RetryPolicy()
        self._timeout = timeout
        self._on_response = on_response
        self._http = httpx.AsyncClient(
            base_url=base_url.rstrip("/"),
            headers={"User-Agent": USER_AGENT, "Accept": "application/json", **auth_headers},
            timeout=httpx.Timeout(
                timeout, connect=connect_timeout if connect_timeout is not None else timeout
            ),
            transport=transport,
            event_hooks=dict(event_hooks) if event_hooks else None,
            # a redirect could carry the token header to another host: never follow one
            follow_redirects=False,
            verify=shared_tls_context(),
        )

    async def aclose(self) -> None:
        await self._http.aclose()

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.aclose()

    # Hooks for subclasses -------------------------------------------------------------------------------

    async def _before_send(self, method: str, path: str) -> None:
        """Called before every attempt (Pipedrive: budget check and burst pacing)."""

    def _after_response(self, method: str, path: str, response: httpx.Response) -> None:
        """Called after every response, before it is judged (Pipedrive: token accounting, rate headers)."""

    def _forbidden(self, method: str, path: str, status: int, body: Any) -> ApiError:
        """A JSON 403: the service refuses this particular action."""
        return PermissionDeniedError(
            self.service,
            self._sentence(f"{self.service} does not allow {method} {path} (HTTP {status})", body),
            hint=f"Check the permissions and plan limits of the {self.service} account.",
            status=status,
            code=self._code(body),
        )

    def _rate_limited(self, method: str, path: str, response: httpx.Response, body: Any) -> RateLimitedError:
        """A 429. The Pipedrive client tells a spent daily budget apart from a burst."""
        return RateLimitedError(
            self.service,
            f"{self.service} asked rf-desktop to slow down (HTTP 429).",
            hint="rf-desktop waits and tries again on its own.",
            status=429,
            retry_after=self._retry_after(response),
        )

    # The request loop -----------------------------------------------------------------------------------

    async def _call(
        self, method: str, path: str, *, params: Mapping[str, Any] | None = None, json: Any = None
    ) -> Any:
        """Send a request with retries; return the decoded JSON body (None when empty) or raise ApiError."""
        policy = self._retry
        attempt = 0
        while True:
            attempt += 1
            await self._before_send(method, path)
            started = time.monotonic()
            try:
                response = await self._http.request(method, path, params=params, json=json)
            except httpx.TransportError as exc:
                error = self._transport_error(method, path, exc)
                may_retry = method in IDEMPOTENT_METHODS or isinstance(exc, _NOT_SENT)
                if not may_retry or attempt >= policy.max_attempts:
                    raise error from exc
                delay = policy.backoff(attempt)
                log.warning("%s Retrying in %.1f s (attempt %d).", error.message, delay, attempt)
                await policy.sleep(delay)
                continue
            self._observe(method, path, response, attempt, time.monotonic() - started)
            body = _decode(response)
            failure = self._error_from_response(method, path, response, body)
            if failure is None:
                return body
            wait = self._retry_delay(failure, method, attempt)
            if wait is None:
                raise failure
            log.warning("%s Retrying in %.1f s (attempt %d).", failure.message, wait, attempt)
            await policy.sleep(wait)

    def _retry_delay(self, error: ApiError, method: str, attempt: int) -> float | None:
        """How long to wait before the next attempt, or None to give up and raise."""
        policy = self._retry
        if attempt >= policy.max_attempts or isinstance(error, BudgetExhaustedError):
            return None
        if isinstance(error, RateLimitedError):
            # a 429 is refused before any processing, so it is safe to resend even a POST
            delay = error.retry_after if error.retry_after is not None else policy.backoff(attempt)
        elif isinstance(error, ConnectionFailedError):
            # something answered, but not the API: a wrong address does not fix itself within seconds
            return None
        elif isinstance(error, TransientError) and method in IDEMPOTENT_METHODS:
            delay = policy.backoff(attempt)
        else:
            return None
        return None if delay > policy.max_wait else delay

    def _observe(
        self, method: str, path: str, response: httpx.Response, attempt: int, elapsed: float
    ) -> None:
        log.debug(
            "%s %s %s -> %d in %.0f ms", self.service, method, path, response.status_code, elapsed * 1000
        )
        self._after_response(method, path, response)
        if self._on_response is not None:
            self._on_response(
                CallInfo(self.service, method, path, response.status_code, elapsed, attempt, response.headers)
            )

    # Error mapping --------------------------------------------------------------------------------------

    def _refused_field(self, message: str) -> str | None:
        """The field a validation refusal names, read from the service's own wording (subclasses know it)."""
        return None

    def _error_from_response(
        self, method: str, path: str, response: httpx.Response, body: Any
    ) -> ApiError | None:
        status = response.status_code
        if 200 <= status < 300:
            if _envelope_failed(body):
                code = body.get("errorCode")
                status = code if isinstance(code, int) and 400 <= code < 600 else 400
            elif body is None and response.content:
                return self._not_the_api(status)
            else:
                return None
        if 300 <= status < 400:
            return self._not_the_api(status)
        if status == 401:
            return AuthError(
                self.service,
                self._sentence(f"{self.service} did not accept the API token (HTTP 401)", body),
                hint=self.auth_hint,
                status=status,
            )
        if status == 403 and is_html(response):
            return BlockedError(
                self.service,
                f"{self.service} has temporarily blocked requests from this computer (HTTP 403).",
                hint=self.blocked_hint,
                status=status,
            )
        if status in (402, 403):
            return self._forbidden(method, path, status, body)
        if status in (404, 410):
            if body is None:
                # both APIs explain a missing record in JSON; a bare 404 page means a wrong address, and
                # must not pass for "the lead is gone"
                return self._not_the_api(status)
            return NotFoundError(
                self.service,
                self._sentence(f"{self.service} has no such record ({method} {path}, HTTP {status})", body),
                hint=f"It may have been deleted in {self.service}.",
                status=status,
            )
        if status in (400, 422):
            details = {k: [self._redact(m) for m in v] for k, v in _field_errors(body).items()}
            what = f"{self.service} refused {method} {path} as invalid (HTTP {status})"
            # the field errors say more than a generic "Validation errors in your request"
            reasons = "; ".join(m.rstrip(".") for messages in details.values() for m in messages)
            message = f"{what}: {reasons}." if reasons else self._sentence(what, body)
            return ValidationError(
                self.service,
                message,
                details=details,
                field=self._refused_field(message),
                hint="Correct the data or the mapping in rf-desktop; sending it unchanged would fail again.",
                status=status,
                code=self._code(body),
            )
        if status == 429:
            return self._rate_limited(method, path, response, body)
        if status >= 500:
            return self._transient(
                method, path, f"{self.service} had an internal error (HTTP {status})", status
            )
        return ApiError(
            self.service,
            self._sentence(f"{self.service} refused {method} {path} (HTTP {status})", body),
            hint="This is unexpected; please report it with the sync log.",
            status=status,
            code=self._code(body),
        )

    def _transient(self, method: str, path: str, what: str, status: int | None = None) -> TransientError:
        if method in IDEMPOTENT_METHODS:
            return TransientError(
                self.service,
                f"{what} during {method} {path}.",
                hint="rf-desktop tries again later.",
                status=status,
            )
        return AmbiguousWriteError(
            self.service,
            f"{what} during {method} {path}; it may or may not have been saved.",
            hint="rf-desktop checks for it before trying again, so nothing is created twice.",
            status=status,
        )

    def _transport_error(self, method: str, path: str, exc: httpx.TransportError) -> TransientError:
        reason = self._redact(str(exc)) or type(exc).__name__
        if isinstance(exc, _UNREACHABLE):
            return ConnectionFailedError(
                self.service,
                f"Could not connect to {self.service} at {self._host()}: {unreachable_reason(exc)}.",
                hint=f"Check the internet connection, and the {self.service} address under Advanced.",
            )
        if isinstance(exc, httpx.PoolTimeout):
            # never left this computer: too many calls at once here, not a problem at the server
            return TransientError(
                self.service,
                f"Too many {self.service} calls were waiting for a connection.",
                hint="Try again.",
            )
        if isinstance(exc, httpx.TimeoutException):
            return self._transient(method, path, f"{self.service} did not answer within {self._timeout:g} s")
        return self._transient(method, path, f"The connection to {self.service} was lost ({reason})")

    def _not_the_api(self, status: int) -> ConnectionFailedError:
        return ConnectionFailedError(
            self.service,
            f"The address {self._host()} answered (HTTP {status}), but not like the {self.service} API.",
            hint=f"Check the {self.service} address under Advanced.",
            status=status,
        )

    # Small helpers --------------------------------------------------------------------------------------

    def _host(self) -> str:
        url = self._http.base_url
        return f"{url.host}:{url.port}" if url.port else url.host

    def _redact(self, text: str) -> str:
        return redact(text, self._secrets)

    def _sentence(self, what: str, body: Any) -> str:
        """`what`, followed by the service's own explanation when the body has one (redacted)."""
        detail = _server_message(body)
        if detail:
            return f"{what}: {self._redact(detail).rstrip('.')}."
        return f"{what}."

    @staticmethod
    def _code(body: Any) -> str | None:
        code = body.get("code") if isinstance(body, dict) else None
        return code if isinstance(code, str) else None

    @staticmethod
    def _retry_after(response: httpx.Response) -> float | None:
        """`retry-after`, else `x-ratelimit-reset` (seconds until the burst window resets), else unknown."""
        for name in ("retry-after", "x-ratelimit-reset"):
            seconds = parse_retry_after(response.headers.get(name))
            if seconds is not None:
                return seconds
        return None

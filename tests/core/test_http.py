"""The shared HTTP plumbing in isolation: error mapping, retry decisions, redaction.

These run against httpx.MockTransport because they pin down pure decisions (which status becomes which
error, which failure is retried). The same behaviour over real sockets is covered against the sandbox in
test_http_sandbox.py and the two client test modules.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from typing import Any, ClassVar

import httpx
import pytest

from rf_desktop.core import http as http_module
from rf_desktop.core.http import (
    USER_AGENT,
    AmbiguousWriteError,
    ApiClient,
    ApiError,
    AuthError,
    BlockedError,
    CallInfo,
    ConnectionFailedError,
    NotFoundError,
    PermissionDeniedError,
    RateLimitedError,
    RetryPolicy,
    TransientError,
    ValidationError,
    parse_retry_after,
    redact,
)

pytestmark = pytest.mark.anyio

TOKEN = "tok-SECRET-1234567890"


class Sleeps:
    """A `sleep` that records the waits instead of waiting."""

    def __init__(self) -> None:
        self.waits: list[float] = []

    async def __call__(self, seconds: float) -> None:
        self.waits.append(seconds)


class DemoClient(ApiClient):
    service = "Demo"
    auth_hint: ClassVar[str] = "Paste a new token."
    blocked_hint: ClassVar[str] = "Wait a while."

    async def get(self, path: str = "/things") -> Any:
        return await self._call("GET", path)

    async def post(self, path: str = "/things") -> Any:
        return await self._call("POST", path, json={"name": "x"})


Handler = Callable[[httpx.Request], httpx.Response]


def scripted(*answers: httpx.Response | Exception) -> tuple[Handler, list[httpx.Request]]:
    """A handler that gives `answers` in turn (raising the exceptions) and records the requests."""
    seen: list[httpx.Request] = []
    queue = list(answers)

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        answer = queue.pop(0) if len(queue) > 1 else queue[0]
        if isinstance(answer, Exception):
            raise answer
        return answer

    return handler, seen


def make_client(
    handler: Handler,
    sleeps: Sleeps | None = None,
    on_response: Callable[[CallInfo], None] | None = None,
    **policy: Any,
) -> DemoClient:
    retry = RetryPolicy(
        **{"max_attempts": 4, "base_delay": 0.01, "max_backoff": 0.04, "max_wait": 5.0, "jitter": lambda: 1.0}
        | policy,
        sleep=sleeps or Sleeps(),
    )
    return DemoClient(
        "https://demo.invalid/api",
        TOKEN,
        {"Authorization": f"Bearer {TOKEN}"},
        timeout=1.0,
        transport=httpx.MockTransport(handler),
        retry=retry,
        on_response=on_response,
    )


def json_response(status: int, body: Any, **headers: str) -> httpx.Response:
    return httpx.Response(status, json=body, headers=headers)


def html_response(status: int) -> httpx.Response:
    return httpx.Response(
        status, text="<html><body>Access denied</body></html>", headers={"content-type": "text/html"}
    )


# --- redaction and header parsing ---------------------------------------------------------------------


def test_redact_removes_plain_and_url_encoded_secrets() -> None:
    secret = "a/b+c=="
    text = f"token={secret} again {secret} and encoded a%2Fb%2Bc%3D%3D"
    cleaned = redact(text, [secret, ""])
    assert secret not in cleaned and "a%2Fb%2Bc%3D%3D" not in cleaned
    assert cleaned.count("[redacted]") == 3


def test_parse_retry_after_accepts_seconds_and_http_dates() -> None:
    assert parse_retry_after("3939") == 3939.0
    assert parse_retry_after("1.5") == 1.5
    assert parse_retry_after(None) is None
    assert parse_retry_after("soon") is None
    now = datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)
    later = format_datetime(now + timedelta(seconds=120), usegmt=True)
    assert parse_retry_after(later, now=now.timestamp()) == pytest.approx(120)


def test_backoff_is_full_jitter_exponential_and_capped() -> None:
    top = RetryPolicy(base_delay=0.5, max_backoff=3.0, jitter=lambda: 1.0)
    assert [top.backoff(n) for n in range(1, 6)] == [0.5, 1.0, 2.0, 3.0, 3.0]
    half = RetryPolicy(base_delay=0.5, max_backoff=3.0, jitter=lambda: 0.5)
    assert half.backoff(3) == 1.0


# --- status -> error -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("response", "expected"),
    [
        (json_response(401, {"success": False, "error": "unauthorized access", "errorCode": 401}), AuthError),
        (json_response(403, {"success": False, "error": "Open deals limit reached."}), PermissionDeniedError),
        (
            json_response(402, {"success": False, "error": "Company account is not open"}),
            PermissionDeniedError,
        ),
        (html_response(403), BlockedError),
        (json_response(404, {"success": False, "error": "requested lead not found"}), NotFoundError),
        (json_response(410, {"message": "Gone"}), NotFoundError),
        (httpx.Response(404, text="Not Found"), ConnectionFailedError),
        (
            json_response(400, {"success": False, "error": "Validation failed", "code": "ERR_SCHEMA"}),
            ValidationError,
        ),
        (json_response(422, {"code": 422, "message": "Validation errors in your request"}), ValidationError),
        (json_response(405, {"message": "Method Not Allowed"}), ApiError),
        (json_response(200, {"success": False, "error": "Bad request"}), ValidationError),
        (httpx.Response(200, text="<html>Welcome to our website</html>"), ConnectionFailedError),
        (httpx.Response(301, headers={"location": "https://elsewhere.invalid/"}), ConnectionFailedError),
    ],
)
async def test_permanent_answers_map_to_their_error_and_are_never_retried(
    response: httpx.Response, expected: type[ApiError]
) -> None:
    handler, seen = scripted(response)
    async with make_client(handler) as client:
        with pytest.raises(ApiError) as caught:
            await client.get()
    assert type(caught.value) is expected
    assert len(seen) == 1
    assert caught.value.service == "Demo"
    assert caught.value.message and str(caught.value).startswith(caught.value.message)


async def test_validation_error_keeps_field_errors_from_either_shape() -> None:
    body = {
        "code": 422,
        "message": "Validation errors in your request",
        "errors": {
            "email": [{"field": "email", "message": "The email has already been taken."}],
            "name": ["Too long"],
        },
    }
    handler, _ = scripted(json_response(422, body))
    async with make_client(handler) as client:
        with pytest.raises(ValidationError) as caught:
            await client.post()
    assert caught.value.status == 422
    assert caught.value.details == {"email": ["The email has already been taken."], "name": ["Too long"]}
    assert "The email has already been taken; Too long." in str(caught.value)


async def test_error_text_never_contains_the_token_even_when_the_server_echoes_it() -> None:
    handler, _ = scripted(json_response(401, {"error": f"token {TOKEN} is not valid"}))
    async with make_client(handler) as client:
        with pytest.raises(AuthError) as caught:
            await client.get()
    assert TOKEN not in str(caught.value) and TOKEN not in repr(caught.value.args)
    assert caught.value.hint == "Paste a new token."


# --- retries ------------------------------------------------------------------------------------------


async def test_get_is_retried_through_5xx_429_and_timeouts_then_succeeds() -> None:
    sleeps = Sleeps()
    handler, seen = scripted(
        json_response(503, {"error": "maintenance"}),
        json_response(429, {"error": "slow down"}, **{"retry-after": "2"}),
        httpx.ReadTimeout("timed out"),
        json_response(200, {"ok": True}),
    )
    async with make_client(handler, sleeps) as client:
        assert await client.get() == {"ok": True}
    assert len(seen) == 4
    # 5xx: backoff 0.01; 429: the server's retry-after; timeout: backoff 0.04 (third attempt)
    assert sleeps.waits == [0.01, 2.0, 0.04]


async def test_429_without_retry_after_uses_the_ratelimit_reset_header_then_backoff() -> None:
    sleeps = Sleeps()
    handler, _ = scripted(
        json_response(429, {}, **{"x-ratelimit-reset": "1"}),
        json_response(429, {}),
        json_response(200, {}),
    )
    async with make_client(handler, sleeps) as client:
        await client.get()
    assert sleeps.waits == [1.0, 0.02]


async def test_a_wait_longer_than_max_wait_is_raised_not_slept() -> None:
    sleeps = Sleeps()
    handler, seen = scripted(json_response(429, {"error": "slow down"}, **{"retry-after": "3939"}))
    async with make_client(handler, sleeps) as client:
        with pytest.raises(RateLimitedError) as caught:
            await client.get()
    assert caught.value.retry_after == 3939
    assert sleeps.waits == [] and len(seen) == 1


async def test_exhausted_attempts_raise_the_last_transient_error() -> None:
    sleeps = Sleeps()
    handler, seen = scripted(json_response(502, {}))
    async with make_client(handler, sleeps, max_attempts=3) as client:
        with pytest.raises(TransientError) as caught:
            await client.get()
    assert type(caught.value) is TransientError and caught.value.status == 502
    assert len(seen) == 3 and len(sleeps.waits) == 2


@pytest.mark.parametrize(
    "failure",
    [
        json_response(500, {"error": "oops"}),
        httpx.ReadTimeout("timed out"),
        httpx.RemoteProtocolError("Server disconnected without sending a response."),
        httpx.ReadError("connection reset"),
    ],
)
async def test_a_post_that_may_have_arrived_is_never_resent(failure: httpx.Response | Exception) -> None:
    handler, seen = scripted(failure, json_response(201, {"id": 1}))
    async with make_client(handler) as client:
        with pytest.raises(AmbiguousWriteError) as caught:
            await client.post()
    assert len(seen) == 1
    assert "may or may not have been saved" in caught.value.message


@pytest.mark.parametrize(
    "refusal",
    [json_response(429, {"error": "slow down"}), httpx.ConnectError("refused"), httpx.ConnectTimeout("slow")],
)
async def test_a_post_that_surely_did_not_arrive_is_retried_once_more(
    refusal: httpx.Response | Exception,
) -> None:
    handler, seen = scripted(refusal, json_response(201, {"id": 7}))
    async with make_client(handler) as client:
        assert await client.post() == {"id": 7}
    assert len(seen) == 2


async def test_unreachable_host_raises_connection_failed_with_a_hint() -> None:
    handler, seen = scripted(httpx.ConnectError("[Errno 111] Connection refused"))
    async with make_client(handler, max_attempts=2) as client:
        with pytest.raises(ConnectionFailedError) as caught:
            await client.post()
    assert len(seen) == 2
    assert "demo.invalid" in caught.value.message and "the Demo address under Advanced" in caught.value.hint
    assert caught.value.message.endswith(": nothing is answering at that address.")


@pytest.mark.parametrize(
    ("error", "words"),
    [
        (httpx.ConnectError("[Errno -2] Name or service not known"), "no computer by that name was found"),
        (httpx.ConnectError("[Errno 8] nodename nor servname provided"), "no computer by that name was found"),
        (httpx.ConnectError("[Errno 101] Network is unreachable"), "this computer is offline"),
        (httpx.ConnectTimeout("timed out"), "it did not answer in time"),
        (httpx.UnsupportedProtocol("Request URL is missing an 'http://' or 'https://' protocol."),
         "the address must start with https://"),
        (httpx.ConnectError("something new"), "the connection failed"),
    ],
)
async def test_an_unreachable_address_is_explained_in_plain_words(error: httpx.TransportError, words: str) -> None:
    handler, _seen = scripted(error)
    async with make_client(handler, max_attempts=1) as client:
        with pytest.raises(ConnectionFailedError) as caught:
            await client.post()
    assert f": {words}" in caught.value.message
    assert "Errno" not in str(caught.value)


# --- what is sent, and observing answers --------------------------------------------------------------


async def test_requests_carry_user_agent_and_json_headers_and_are_reported() -> None:
    handler, seen = scripted(json_response(200, {"ok": True}, **{"x-ratelimit-remaining": "7"}))
    calls: list[CallInfo] = []
    async with make_client(handler, on_response=calls.append) as client:
        await client.post("/things")
    request = seen[0]
    assert request.headers["user-agent"] == USER_AGENT
    assert request.headers["accept"] == "application/json"
    assert request.headers["content-type"] == "application/json"
    assert str(request.url) == "https://demo.invalid/api/things"
    assert [(c.method, c.path, c.status, c.attempt, c.headers["x-ratelimit-remaining"]) for c in calls] == [
        ("POST", "/things", 200, 1, "7")
    ]


async def test_clients_share_one_tls_context(monkeypatch: pytest.MonkeyPatch) -> None:
    """Building a TLS context reads the CA bundle (25-40 ms); clients are rebuilt on every token change."""
    built: list[object] = []
    original = httpx.create_ssl_context
    monkeypatch.setattr(httpx, "create_ssl_context", lambda: built.append(original()) or built[-1])
    http_module.shared_tls_context.cache_clear()
    try:
        clients = [DemoClient(f"https://{n}.example.com", TOKEN, {"x-token": TOKEN}, timeout=5) for n in range(3)]
        assert len(built) == 1
        for client in clients:
            await client.aclose()
    finally:
        http_module.shared_tls_context.cache_clear()

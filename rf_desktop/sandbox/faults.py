"""Fault injection on the simulated APIs: latency, 429, 5xx, timeouts and dropped connections.

Faults are what make duplicates possible, so the dangerous variant is simulated too: a share of the 5xx
answers, timeouts and dropped connections happen *after* the request was processed (`after_commit_share`),
when the client cannot tell whether its write happened.
"""

from __future__ import annotations

import asyncio
import contextvars
import json
import logging
import random
import threading
from collections import Counter
from dataclasses import dataclass, field, fields
from typing import TYPE_CHECKING, Any

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from rf_desktop.sandbox.pipedrive_http import BURST_BODY

if TYPE_CHECKING:
    from rf_desktop.sandbox.state import SandboxState

APIS = {"/rf/": "rf", "/pd/": "pd"}
FAULT_KINDS = ("429", "5xx", "timeout", "drop")


@dataclass
class FaultConfig:
    """Fault rates of one API. Each `rate_*` is a probability per request; at most one fault per request."""

    latency_ms: int = 0
    rate_429: float = 0.0
    rate_5xx: float = 0.0
    rate_timeout: float = 0.0
    rate_drop: float = 0.0
    timeout_seconds: float = 30.0  # how long a "timeout" stalls before answering 504 (clients give up first)
    after_commit_share: float = 0.5  # share of 5xx/timeouts/drops that happen after the request was processed
    seed: int | None = None  # makes the sequence of faults reproducible
    only_paths: list[str] | None = None  # substrings of the URL path; None means every path
    _rng: random.Random = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        self._check()
        self._rng = random.Random(self.seed)

    @classmethod
    def from_json(cls, data: Any) -> FaultConfig:
        """A config from JSON; raises ValueError saying what is wrong."""
        if not isinstance(data, dict):
            raise ValueError("a fault config is a JSON object")
        known = {f.name for f in fields(cls) if f.init}
        unknown = sorted(set(data) - known)
        if unknown:
            raise ValueError(
                f"unknown fault settings: {', '.join(unknown)} (known: {', '.join(sorted(known))})"
            )
        try:
            return cls(**data)
        except TypeError as exc:
            raise ValueError(str(exc)) from None

    def to_json(self) -> dict[str, Any]:
        return {f.name: getattr(self, f.name) for f in fields(self) if f.init}

    def _check(self) -> None:
        rates = {"rate_429": self.rate_429, "rate_5xx": self.rate_5xx}
        rates |= {"rate_timeout": self.rate_timeout, "rate_drop": self.rate_drop}
        for name, value in (rates | {"after_commit_share": self.after_commit_share}).items():
            if not isinstance(value, int | float) or isinstance(value, bool) or not 0 <= value <= 1:
                raise ValueError(f"{name} must be a number between 0 and 1")
        if sum(rates.values()) > 1:
            raise ValueError("the rates add up to more than 1")
        for name in ("latency_ms", "timeout_seconds"):
            value = getattr(self, name)
            if not isinstance(value, int | float) or isinstance(value, bool) or value < 0:
                raise ValueError(f"{name} must be a number of at least 0")
        if self.seed is not None and (not isinstance(self.seed, int) or isinstance(self.seed, bool)):
            raise ValueError("seed must be an integer or null")
        if self.only_paths is not None and (
            not isinstance(self.only_paths, list) or not all(isinstance(p, str) for p in self.only_paths)
        ):
            raise ValueError("only_paths must be a list of strings or null")

    def applies_to(self, path: str) -> bool:
        return self.only_paths is None or any(p in path for p in self.only_paths)

    def draw(self) -> tuple[str | None, bool]:
        """The fault for the next request (or None) and whether it strikes after the request is processed."""
        roll = self._rng.random()
        threshold = 0.0
        rates = (self.rate_429, self.rate_5xx, self.rate_timeout, self.rate_drop)
        for kind, rate in zip(FAULT_KINDS, rates, strict=True):
            threshold += rate
            if roll < threshold:
                after = kind != "429" and self._rng.random() < self.after_commit_share
                return kind, after
        return None, False

    def pick(self, choices: tuple[Any, ...]) -> Any:
        return self._rng.choice(choices)


class TrafficStats:
    """Requests, response statuses and injected faults per API, for the admin surface's /stats."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._requests: Counter[str] = Counter()
        self._statuses: dict[str, Counter[int]] = {api: Counter() for api in APIS.values()}
        self._faults: dict[str, Counter[str]] = {api: Counter() for api in APIS.values()}

    def reset(self) -> None:
        with self._lock:
            self._requests.clear()
            for statuses in self._statuses.values():
                statuses.clear()
            for faults in self._faults.values():
                faults.clear()

    def request(self, api: str) -> None:
        with self._lock:
            self._requests[api] += 1

    def response(self, api: str, status: int) -> None:
        with self._lock:
            self._statuses[api][status] += 1

    def fault(self, api: str, kind: str) -> None:
        with self._lock:
            self._faults[api][kind] += 1

    def to_json(self) -> dict[str, Any]:
        with self._lock:
            return {
                api: {
                    "requests": self._requests[api],
                    "responses": {str(s): n for s, n in sorted(self._statuses[api].items())},
                    "rejects": {
                        str(s): n for s, n in sorted(self._statuses[api].items()) if s in (401, 403, 429)
                    },
                    "faults": dict(self._faults[api]),
                }
                for api in APIS.values()
            }


# A connection is dropped by starting a response and returning before its body is complete; uvicorn then
# closes the connection and logs an error about the incomplete response. That record is expected here, so
# it is filtered out for the request that chose to drop (the flag lives in the request task's context).
_dropping: contextvars.ContextVar[bool] = contextvars.ContextVar("rf_sandbox_dropping", default=False)


class _IntentionalDropFilter(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        return not (_dropping.get() and str(record.msg).startswith("ASGI callable returned without"))


def _install_drop_filter() -> None:
    server_log = logging.getLogger("uvicorn.error")
    if not any(isinstance(f, _IntentionalDropFilter) for f in server_log.filters):
        server_log.addFilter(_IntentionalDropFilter())


def _json_message(status: int, body: dict[str, Any], headers: dict[str, str] | None = None) -> list[Message]:
    payload = json.dumps(body).encode()
    raw = [(b"content-type", b"application/json"), (b"content-length", str(len(payload)).encode())]
    raw += [(k.encode(), v.encode()) for k, v in (headers or {}).items()]
    return [
        {"type": "http.response.start", "status": status, "headers": raw},
        {"type": "http.response.body", "body": payload},
    ]


def _too_many_requests(api: str, config: FaultConfig) -> list[Message]:
    if api == "pd":
        # a burst-window 429, as Pipedrive sends it: with retry-after and the rate-limit headers
        wait = str(config.pick((1, 2)))
        headers = {"retry-after": wait, "x-ratelimit-remaining": "0", "x-ratelimit-reset": wait}
        return _json_message(429, BURST_BODY, headers)
    # Referral Factory documents no Retry-After header
    return _json_message(429, {"code": 429, "message": "Too Many Attempts."})


def _server_error(api: str, config: FaultConfig) -> list[Message]:
    status = config.pick((500, 502, 503))
    if status == 502:
        # a gateway in front of the API answers in HTML: clients must cope with non-JSON error bodies
        page = (
            b"<html><head><title>502 Bad Gateway</title></head><body><h1>502 Bad Gateway</h1></body></html>"
        )
        return [
            {
                "type": "http.response.start",
                "status": 502,
                "headers": [(b"content-type", b"text/html"), (b"content-length", str(len(page)).encode())],
            },
            {"type": "http.response.body", "body": page},
        ]
    message = "Internal Server Error" if status == 500 else "Service Unavailable"
    if api == "pd":
        return _json_message(status, {"success": False, "error": message, "errorCode": status})
    return _json_message(status, {"code": status, "message": message})


class FaultMiddleware:
    """Pure ASGI middleware (so a stalled or dropped response really stalls or drops) that injects the
    configured faults into /rf and /pd requests. The admin surface is never touched."""

    def __init__(self, app: ASGIApp, state: SandboxState) -> None:
        self.app = app
        self.state = state
        _install_drop_filter()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        path = scope.get("path", "")
        api = next((name for prefix, name in APIS.items() if path.startswith(prefix)), None)
        if scope["type"] != "http" or api is None:
            await self.app(scope, receive, send)
            return
        stats = self.state.stats
        stats.request(api)

        async def counted_send(message: Message) -> None:
            if message["type"] == "http.response.start":
                stats.response(api, message["status"])
            await send(message)

        config = self.state.faults[api]
        if not config.applies_to(path):
            await self.app(scope, receive, counted_send)
            return
        if config.latency_ms:
            stats.fault(api, "latency")
            await asyncio.sleep(config.latency_ms / 1000)
        kind, after_commit = config.draw()
        if kind is None:
            await self.app(scope, receive, counted_send)
            return
        stats.fault(api, kind)
        if after_commit:
            stats.fault(api, "after_commit")
        processed = await self._process(scope, receive) if after_commit else None
        if kind == "429":
            await _replay(_too_many_requests(api, config), counted_send)
        elif kind == "5xx":
            await _replay(_server_error(api, config), counted_send)
        elif kind == "timeout":
            await _stall(receive, config.timeout_seconds)
            await _replay(_json_message(504, {"message": "Gateway Timeout"}), counted_send)
        else:
            await _drop(processed, counted_send)

    async def _process(self, scope: Scope, receive: Receive) -> list[Message]:
        """Run the request to completion and keep the response the client will not get."""
        messages: list[Message] = []

        async def keep(message: Message) -> None:
            messages.append(message)

        await self.app(scope, receive, keep)
        return messages


async def _replay(messages: list[Message], send: Send) -> None:
    for message in messages:
        await send(message)


async def _stall(receive: Receive, seconds: float) -> None:
    """Wait `seconds`, or until the client gives up and disconnects."""

    async def until_disconnect() -> None:
        while (await receive())["type"] != "http.disconnect":
            pass

    try:
        await asyncio.wait_for(until_disconnect(), timeout=seconds)
    except TimeoutError:
        return


async def _drop(processed: list[Message] | None, send: Send) -> None:
    """Cut the connection mid-response: the headers promise a body that never fully arrives."""
    if processed:
        start = processed[0]
        body = b"".join(m.get("body", b"") for m in processed[1:])
    else:
        start = {
            "type": "http.response.start",
            "status": 200,
            "headers": [(b"content-type", b"application/json")],
        }
        body = b'{"success": true, "data": {"id": 0}}'
    declared = max(len(body), 2)
    headers = [(k, v) for k, v in start.get("headers", []) if k.lower() != b"content-length"]
    headers.append((b"content-length", str(declared).encode()))
    _dropping.set(True)
    await send({"type": "http.response.start", "status": start["status"], "headers": headers})
    await send({"type": "http.response.body", "body": body[: declared // 2], "more_body": True})

"""ReferralFactoryClient against the sandbox's Referral Factory, over real HTTP."""

from __future__ import annotations

import asyncio
import copy
import socket
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest

from rf_desktop.core.http import (
    AmbiguousWriteError,
    AuthError,
    BlockedError,
    ConnectionFailedError,
    NotFoundError,
    RateLimitedError,
    RetryPolicy,
    ValidationError,
)
from rf_desktop.core.referral_factory import BASE_URL_KEY, DEFAULT_BASE_URL, ReferralFactoryClient
from rf_desktop.sandbox.limits import PerMinuteLimiter
from rf_desktop.sandbox.referral_factory import SEED_REFERRER_CODE
from rf_desktop.sandbox.server import SandboxServer

pytestmark = pytest.mark.anyio

FAST = RetryPolicy(max_attempts=4, base_delay=0.01, max_backoff=0.05, max_wait=2.0)


@pytest.fixture
async def rf(sandbox: SandboxServer) -> AsyncIterator[ReferralFactoryClient]:
    async with ReferralFactoryClient(
        sandbox.rf_base_url, sandbox.state.rf.token, timeout=2.0, retry=FAST
    ) as client:
        yield client


def set_faults(sandbox: SandboxServer, **faults: Any) -> None:
    httpx.put(f"{sandbox.admin_url}/faults/rf", json=faults).raise_for_status()


def rf_stats(sandbox: SandboxServer) -> dict[str, Any]:
    return httpx.get(f"{sandbox.admin_url}/stats").json()["rf"]


def sign_up(sandbox: SandboxServer, count: int, campaign_id: int = 1) -> list[int]:
    with sandbox.state.lock:
        return [
            sandbox.state.rf.sign_up(campaign_id, f"Guest{i}", f"guest{i}@example.com")["id"]
            for i in range(count)
        ]


async def brief_sleep(seconds: float) -> None:
    await asyncio.sleep(min(seconds, 0.02))


def alice(sandbox: SandboxServer) -> dict[str, Any]:
    with sandbox.state.lock:
        return copy.deepcopy(sandbox.state.rf.user(SEED_REFERRER_CODE))


# --- campaigns ----------------------------------------------------------------------------------------


async def test_list_campaigns_follows_every_page(sandbox: SandboxServer, rf: ReferralFactoryClient) -> None:
    with sandbox.state.lock:
        template = sandbox.state.rf.campaigns[1]
        for cid in range(10, 270):  # more than one page of 250
            sandbox.state.rf.campaigns[cid] = {**copy.deepcopy(template), "id": cid, "code": f"extra-{cid}"}
        expected = sorted(sandbox.state.rf.campaigns)
    campaigns = await rf.list_campaigns()
    assert [c["id"] for c in campaigns] == expected
    assert rf_stats(sandbox)["requests"] == 2


async def test_get_campaign_returns_its_custom_form_fields(rf: ReferralFactoryClient) -> None:
    campaign = await rf.get_campaign(1)
    assert campaign["name"] == "Spring Referral Campaign"
    assert "Last Name" in [f["label"] for f in campaign["fields"]["person_invited"]]
    with pytest.raises(NotFoundError):
        await rf.get_campaign(999)


# --- users --------------------------------------------------------------------------------------------


async def test_users_pages_cover_every_user_exactly_once(
    sandbox: SandboxServer, rf: ReferralFactoryClient
) -> None:
    sign_up(sandbox, 23)
    seen: list[int] = []
    page_number = 1
    while True:
        page = await rf.users_page(page_number, per_page=10)
        assert page.current_page == page_number
        assert (page.last_page, page.total) == (3, 25)  # the two seeded referrers plus 23 guests
        seen += [u["id"] for u in page.items]
        if not page.has_next:
            break
        page_number += 1
    assert page_number == 3
    with sandbox.state.lock:
        assert seen == sorted(sandbox.state.rf.users)


async def test_per_page_is_capped_at_the_api_maximum(
    sandbox: SandboxServer, rf: ReferralFactoryClient
) -> None:
    sign_up(sandbox, 3)
    page = await rf.users_page(1, per_page=10_000)
    assert len(page.items) == 5 and not page.has_next


async def test_create_a_person_invited_with_referrer_and_form_fields(
    sandbox: SandboxServer, rf: ReferralFactoryClient
) -> None:
    referrer = alice(sandbox)
    created = await rf.create_user(
        1, "Zoë", "zoe@example.com", referrer=("code", SEED_REFERRER_CODE), meta={"Last Name": "Zola"}
    )
    assert created["type"] == "person_invited"
    assert created["referrer_id"] == referrer["id"]
    assert created["meta"] == [{"field": "Last Name", "value": "Zola"}]
    fetched = await rf.get_user(created["id"])
    assert fetched["code"] == created["code"] and fetched["email"] == "zoe@example.com"


@pytest.mark.parametrize("field", ["id", "email"])
async def test_the_referrer_can_be_named_by_id_or_email(
    sandbox: SandboxServer, rf: ReferralFactoryClient, field: str
) -> None:
    referrer = alice(sandbox)
    created = await rf.create_user(1, "Yan", "yan@example.com", referrer=(field, referrer[field]))
    assert created["referrer_id"] == referrer["id"]


async def test_without_referrer_the_user_is_a_person_referring(rf: ReferralFactoryClient) -> None:
    created = await rf.create_user(2, "Rita", "rita@example.com")
    assert created["type"] == "person_referring" and created["referrer_id"] is None


async def test_an_unknown_referrer_kind_is_refused_before_sending(
    sandbox: SandboxServer, rf: ReferralFactoryClient
) -> None:
    with pytest.raises(ValueError, match="code, id or email"):
        await rf.create_user(1, "Yan", "yan@example.com", referrer=("name", "Alice"))
    assert rf_stats(sandbox)["requests"] == 0


async def test_a_duplicate_email_is_a_permanent_validation_error(
    sandbox: SandboxServer, rf: ReferralFactoryClient
) -> None:
    await rf.create_user(1, "Zoë", "zoe@example.com", referrer=("code", SEED_REFERRER_CODE))
    with pytest.raises(ValidationError) as caught:
        await rf.create_user(1, "Zoë", "ZOE@example.com", referrer=("code", SEED_REFERRER_CODE))
    error = caught.value
    assert error.status == 422 and error.service == "Referral Factory"
    assert error.details == {"email": ["The email has already been taken."]}
    assert rf_stats(sandbox)["requests"] == 2  # not retried


async def test_qualify_once_and_revert(sandbox: SandboxServer, rf: ReferralFactoryClient) -> None:
    [user_id] = sign_up(sandbox, 1)
    qualified = await rf.qualify(user_id)
    assert qualified["id"] == user_id and qualified["qualified_at"] is not None
    # asking again changes nothing: a referral never qualifies twice
    await rf.qualify(user_id)
    with sandbox.state.lock:
        assert sandbox.state.rf.qualification_count(user_id) == 1
    reverted = await rf.qualify(user_id, qualified=False)
    assert reverted["qualified_at"] is None


async def test_qualifying_a_referrer_is_refused(sandbox: SandboxServer, rf: ReferralFactoryClient) -> None:
    with pytest.raises(ValidationError, match="only qualify referred users"):
        await rf.qualify(alice(sandbox)["id"])


async def test_delete_user_then_it_is_not_found(sandbox: SandboxServer, rf: ReferralFactoryClient) -> None:
    [user_id] = sign_up(sandbox, 1)
    await rf.delete_user(user_id)
    with pytest.raises(NotFoundError) as caught:
        await rf.get_user(user_id)
    assert caught.value.status == 404


# --- errors and retries -------------------------------------------------------------------------------


async def test_a_wrong_token_is_an_auth_error_that_never_shows_the_token(sandbox: SandboxServer) -> None:
    token = "rf-wrong-token-0123456789"
    async with ReferralFactoryClient(sandbox.rf_base_url, token, retry=FAST) as client:
        with pytest.raises(AuthError) as caught:
            await client.list_campaigns()
    error = caught.value
    assert error.status == 401
    assert "Referral Factory" in error.message and "API key" in error.hint
    assert token not in str(error) and token not in repr(error)
    assert rf_stats(sandbox)["requests"] == 1


async def test_an_unreachable_address_is_a_connection_failure_after_quick_retries() -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]  # closed again when the block ends: nothing listens there
    waits: list[float] = []

    async def record(seconds: float) -> None:
        waits.append(seconds)

    retry = RetryPolicy(max_attempts=3, base_delay=0.01, sleep=record, jitter=lambda: 1.0)
    async with ReferralFactoryClient(f"http://127.0.0.1:{port}/rf/api/v2", "rf-token-xyz", retry=retry) as rf:
        with pytest.raises(ConnectionFailedError) as caught:
            await rf.create_user(1, "Zoë", "zoe@example.com")
    # nothing reached a server, so even the create was tried again
    assert waits == [0.01, 0.02]
    assert f"127.0.0.1:{port}" in caught.value.message and "address" in caught.value.hint
    assert "rf-token-xyz" not in str(caught.value)


async def test_reads_are_retried_through_injected_faults(sandbox: SandboxServer) -> None:
    set_faults(
        sandbox, rate_429=0.2, rate_5xx=0.2, rate_timeout=0.1, rate_drop=0.1, timeout_seconds=5, seed=7
    )
    # the injected 429s make the client wait a minute: these tests only pretend to
    retry = RetryPolicy(max_attempts=12, base_delay=0.005, max_backoff=0.02, max_wait=60, sleep=brief_sleep)
    async with ReferralFactoryClient(
        sandbox.rf_base_url, sandbox.state.rf.token, timeout=0.25, retry=retry
    ) as rf:
        for _ in range(8):
            assert len(await rf.list_campaigns()) == 3
    faults = rf_stats(sandbox)["faults"]
    assert {"429", "5xx", "timeout", "drop"} <= set(faults)


@pytest.mark.parametrize("kind", ["rate_5xx", "rate_timeout", "rate_drop"])
async def test_a_create_whose_answer_is_lost_is_ambiguous_and_not_resent(
    sandbox: SandboxServer, kind: str
) -> None:
    set_faults(sandbox, **{kind: 1.0}, after_commit_share=1.0, timeout_seconds=5, only_paths=["/users"])
    token = sandbox.state.rf.token
    async with ReferralFactoryClient(sandbox.rf_base_url, token, timeout=0.25, retry=FAST) as rf:
        with pytest.raises(AmbiguousWriteError) as caught:
            await rf.create_user(1, "Zoë", "zoe@example.com", referrer=("code", SEED_REFERRER_CODE))
    assert "may or may not have been saved" in str(caught.value)
    assert rf_stats(sandbox)["requests"] == 1
    with sandbox.state.lock:
        # the user does exist: the caller must look it up rather than create it again
        assert [u["email"] for u in sandbox.state.rf.users.values()].count("zoe@example.com") == 1


async def test_a_rate_limited_create_waits_out_the_minute_then_is_created_once(
    sandbox: SandboxServer,
) -> None:
    with sandbox.state.lock:
        sandbox.state.rf.limiter = PerMinuteLimiter(sandbox.state.clock, limit=1)
    waits: list[float] = []

    async def let_time_pass(seconds: float) -> None:
        waits.append(seconds)
        sandbox.state.clock.advance(seconds)

    retry = RetryPolicy(max_attempts=3, max_wait=120, sleep=let_time_pass)
    async with ReferralFactoryClient(sandbox.rf_base_url, sandbox.state.rf.token, retry=retry) as rf:
        await rf.get_campaign(1)  # uses the minute's only call
        created = await rf.create_user(1, "Zoë", "zoe@example.com", referrer=("code", SEED_REFERRER_CODE))
    # no Retry-After from Referral Factory: the whole one-minute window is waited out, not a short backoff
    assert waits == [60.0]
    assert rf_stats(sandbox)["responses"] == {"200": 1, "201": 1, "429": 1}
    with sandbox.state.lock:
        assert [u["id"] for u in sandbox.state.rf.users.values() if u["email"] == "zoe@example.com"] == [
            created["id"]
        ]


async def test_by_default_a_429_is_raised_for_the_caller_to_schedule(sandbox: SandboxServer) -> None:
    with sandbox.state.lock:
        sandbox.state.rf.limiter = PerMinuteLimiter(sandbox.state.clock, limit=1)
    async with ReferralFactoryClient(sandbox.rf_base_url, sandbox.state.rf.token) as rf:
        await rf.get_campaign(1)
        with pytest.raises(RateLimitedError) as caught:
            await rf.get_campaign(1)
    assert (caught.value.status, caught.value.retry_after) == (429, 60.0)
    # hitting the limit again and again gets the computer blocked: one 429, no quick retries
    assert rf_stats(sandbox)["responses"]["429"] == 1


async def test_an_admin_only_403_is_an_auth_error() -> None:
    body = {"code": 403, "message": "This resource is for administrators only."}
    transport = httpx.MockTransport(lambda request: httpx.Response(403, json=body))
    async with ReferralFactoryClient(
        "https://api.referral-factory.com/api/v2", "t", transport=transport
    ) as rf:
        with pytest.raises(AuthError) as caught:
            await rf.list_campaigns()
    assert "administrators" in caught.value.message and "administrator" in caught.value.hint


# --- the two documented hosts ----------------------------------------------------------------------------


class Memory(dict[str, Any]):
    """The store's kv table, as far as the client needs it."""

    def get_kv(self, key: str, default: Any = None) -> Any:
        return self.get(key, default)

    def set_kv(self, key: str, value: Any) -> None:
        self[key] = value


class DocumentedHosts(httpx.AsyncBaseTransport):
    """Referral Factory's two documented hosts, played on loopback: a name in `unresolvable` does not
    resolve (as on a computer that is offline), the others are answered by the sandbox. Nothing leaves
    127.0.0.1."""

    def __init__(self, sandbox: SandboxServer, unresolvable: set[str]) -> None:
        self._sandbox = httpx.URL(sandbox.rf_base_url)
        self._unresolvable = unresolvable
        self._inner = httpx.AsyncHTTPTransport()
        self.hosts: list[str] = []

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        self.hosts.append(request.url.host)
        if request.url.host in self._unresolvable:
            try:
                raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")
            except socket.gaierror as exc:
                raise httpx.ConnectError(f"[Errno {exc.errno}] {exc.strerror}", request=request) from exc
        request.url = request.url.copy_with(
            scheme=self._sandbox.scheme,
            host=self._sandbox.host,
            port=self._sandbox.port,
            path=self._sandbox.path + request.url.path.removeprefix("/api/v2"),
        )
        return await self._inner.handle_async_request(request)

    async def aclose(self) -> None:
        await self._inner.aclose()


def unused_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])  # closed again on return: nothing listens there


async def test_when_the_default_host_is_not_found_the_other_documented_one_is_used_and_remembered(
    sandbox: SandboxServer,
) -> None:
    memory = Memory()
    transport = DocumentedHosts(sandbox, {"api.referral-factory.com"})
    async with ReferralFactoryClient(
        DEFAULT_BASE_URL, sandbox.state.rf.token, transport=transport, retry=FAST
    ) as rf:
        rf.remember_host_in(memory)
        assert len(await rf.list_campaigns()) == 3
        assert rf.base_url == "https://referral-factory.com/api/v2"
        transport.hosts.clear()
        await rf.get_campaign(1)
    assert transport.hosts == ["referral-factory.com"]
    assert memory[BASE_URL_KEY] == "https://referral-factory.com/api/v2"

    # the next session starts with the host that answered
    transport = DocumentedHosts(sandbox, {"api.referral-factory.com"})
    async with ReferralFactoryClient(
        DEFAULT_BASE_URL, sandbox.state.rf.token, transport=transport, retry=FAST
    ) as rf:
        rf.remember_host_in(memory)
        await rf.get_campaign(1)
    assert transport.hosts == ["referral-factory.com"]


async def test_when_neither_documented_host_answers_both_are_named_in_plain_words(
    sandbox: SandboxServer,
) -> None:
    transport = DocumentedHosts(sandbox, {"api.referral-factory.com", "referral-factory.com"})
    async with ReferralFactoryClient(DEFAULT_BASE_URL, "t", transport=transport, retry=FAST) as rf:
        with pytest.raises(ConnectionFailedError) as caught:
            await rf.list_campaigns()
        assert rf.base_url == DEFAULT_BASE_URL
    assert caught.value.message == (
        "Could not reach Referral Factory at api.referral-factory.com or referral-factory.com. "
        "Is this computer online?"
    )


async def test_a_host_name_that_does_not_resolve_is_said_in_plain_words(sandbox: SandboxServer) -> None:
    transport = DocumentedHosts(sandbox, {"api.referral-factory.com"})
    async with ReferralFactoryClient(
        DEFAULT_BASE_URL, "t", transport=transport, retry=FAST, fallback_base_urls=[]
    ) as rf:
        with pytest.raises(ConnectionFailedError) as caught:
            await rf.list_campaigns()
    assert caught.value.message == "Could not find api.referral-factory.com. Is this computer online?"
    assert "Errno" not in str(caught.value)


async def test_a_refused_connection_falls_back_to_the_next_address(sandbox: SandboxServer) -> None:
    dead = f"http://127.0.0.1:{unused_port()}/rf/api/v2"
    async with ReferralFactoryClient(
        dead, sandbox.state.rf.token, retry=FAST, fallback_base_urls=[sandbox.rf_base_url]
    ) as rf:
        assert len(await rf.list_campaigns()) == 3
        assert rf.base_url == sandbox.rf_base_url.rstrip("/")


async def test_an_address_block_is_told_apart_from_an_admin_only_resource() -> None:
    body = {"code": 403, "message": "Your IP address has been blocked from accessing the API."}
    transport = httpx.MockTransport(lambda request: httpx.Response(403, json=body))
    async with ReferralFactoryClient(DEFAULT_BASE_URL, "t", transport=transport) as rf:
        with pytest.raises(BlockedError) as caught:
            await rf.list_campaigns()
    assert "blocked" in caught.value.message
    assert "administrator" not in str(caught.value)


async def test_abusing_the_rate_limit_gets_the_computer_blocked(sandbox: SandboxServer) -> None:
    with sandbox.state.lock:
        sandbox.state.rf.limiter = PerMinuteLimiter(sandbox.state.clock, limit=1)
    async with ReferralFactoryClient(sandbox.rf_base_url, sandbox.state.rf.token) as rf:
        for _ in range(3):  # over the limit three times, each in a new minute: 429s
            sandbox.state.clock.advance(60)
            await rf.get_campaign(1)
            with pytest.raises(RateLimitedError):
                await rf.get_campaign(1)
        sandbox.state.clock.advance(60)
        await rf.get_campaign(1)
        with pytest.raises(BlockedError):  # the fourth time
            await rf.get_campaign(1)
        sandbox.state.clock.advance(3600)
        with pytest.raises(BlockedError):
            await rf.get_campaign(1)


async def test_a_listed_user_without_an_id_is_left_out(caplog: pytest.LogCaptureFixture) -> None:
    body = {"data": [{"id": 7, "email": "a@example.com"}, {"email": "b@example.com"}, {"id": None}, "x"]}
    transport = httpx.MockTransport(lambda request: httpx.Response(200, json=body))
    async with ReferralFactoryClient(DEFAULT_BASE_URL, "t", transport=transport) as rf:
        page = await rf.users_page(1)
    assert [u["id"] for u in page.items] == [7]
    assert "2 users without an id" in caplog.text


async def test_calls_are_paced_under_the_per_minute_limit(sandbox: SandboxServer) -> None:
    waits: list[float] = []

    async def record(seconds: float) -> None:
        waits.append(seconds)

    retry = RetryPolicy(sleep=record)
    async with ReferralFactoryClient(
        sandbox.rf_base_url, sandbox.state.rf.token, retry=retry, calls_per_minute=3
    ) as rf:
        for _ in range(4):
            await rf.get_campaign(1)
    [wait] = waits  # the fourth call waits for the first to leave the minute
    assert 59.0 < wait <= 60.0
    assert rf_stats(sandbox)["responses"] == {"200": 4}

"""Intake never misses and never records twice, whatever shape Referral Factory's user list takes: either
order, with or without a page count, `per_page` honoured or not, users deleted between polls, a campaign
picked later. Each test runs against every shape the sandbox plays (tests/e2e/conftest.py)."""

from __future__ import annotations

import asyncio
from dataclasses import replace
from typing import Any

import pytest

from rf_desktop.core.config import Settings
from rf_desktop.core.http import CallInfo
from rf_desktop.core.intake import ReferrerCache, collect_new_users
from rf_desktop.core.referral_factory import ReferralFactoryClient
from rf_desktop.core.store import Store
from rf_desktop.sandbox.server import SandboxServer
from tests.e2e.helpers import FAST_RETRY, admin, leads, persons, run_once, sandbox_settings, sign_up

pytestmark = pytest.mark.rf_shapes


def crowd(sandbox: SandboxServer, campaign_id: int, count: int, prefix: str = "other") -> list[int]:
    """`count` sign-ups at once (straight into the sandbox's state: hundreds over HTTP would be slow)."""
    with sandbox.state.lock:
        return [
            sandbox.state.rf.sign_up(campaign_id, f"{prefix} {n}", f"{prefix}{n}@example.org")["id"]
            for n in range(count)
        ]


def recorded(store: Store) -> list[int]:
    return sorted(r.rf_user_id for r in store.query())


def with_rf(settings: Settings, **changes: Any) -> Settings:
    settings.referral_factory = replace(settings.referral_factory, **changes)
    return settings


class Intake:
    """Intake alone, counting the Referral Factory requests each poll makes."""

    def __init__(self, sandbox: SandboxServer, store: Store) -> None:
        self.sandbox, self.store = sandbox, store
        self.requests = 0

    def _count(self, call: CallInfo) -> None:
        self.requests += 1

    def poll(self) -> list[int]:
        async def go() -> list[int]:
            settings = self.store.get_settings()
            assert settings is not None
            async with ReferralFactoryClient(
                settings.referral_factory.base_url,
                self.sandbox.state.rf.token,
                retry=FAST_RETRY,
                on_response=self._count,
            ) as rf:
                result = await collect_new_users(
                    rf, self.store, settings, {1: "Spring", 2: "Partner"}, ReferrerCache(rf), "2026-01-01T00:00:00Z"
                )
            return result.recorded

        self.requests = 0
        return asyncio.run(go())


def test_every_sign_up_is_recorded_once_with_others_ahead_and_a_late_one(
    sandbox: SandboxServer, store: Store
) -> None:
    store.save_settings(sandbox_settings(sandbox))
    early = crowd(sandbox, 1, 2, "early")
    crowd(sandbox, 2, 300)  # another campaign's people: whichever the order, some of ours land on page 2
    later = crowd(sandbox, 1, 2, "later")

    run_once(store, sandbox)
    late = sign_up(sandbox, "Late", "late@example.com")["id"]
    run_once(store, sandbox)
    run_once(store, sandbox)

    assert recorded(store) == sorted([*early, *later, late])
    assert len(persons(sandbox)) == 5
    assert len(leads(sandbox)) == 5


def test_backfill_none_starts_from_the_newest_user(sandbox: SandboxServer, store: Store) -> None:
    store.save_settings(with_rf(sandbox_settings(sandbox), backfill="none"))
    crowd(sandbox, 1, 30, "before")
    crowd(sandbox, 2, 2000)  # 81 pages of 25
    intake = Intake(sandbox, store)
    assert intake.poll() == []
    assert intake.requests <= 16  # found without reading every page, even when the list has no page count

    first = sign_up(sandbox, "First", "first@example.com")["id"]
    assert intake.poll() == [first]
    assert intake.poll() == []


def test_a_poll_with_nothing_new_costs_two_requests_at_most(sandbox: SandboxServer, store: Store) -> None:
    store.save_settings(sandbox_settings(sandbox))
    crowd(sandbox, 2, 620)
    ours = crowd(sandbox, 1, 3)
    intake = Intake(sandbox, store)
    assert intake.poll() == ours

    assert intake.poll() == []
    assert intake.requests <= 2

    newcomer = sign_up(sandbox, "New", "new@example.com")["id"]
    assert intake.poll() == [newcomer]
    assert intake.poll() == []
    assert intake.requests <= 2


def test_users_deleted_between_polls_and_several_pages_of_newcomers(sandbox: SandboxServer, store: Store) -> None:
    store.save_settings(sandbox_settings(sandbox))
    others = crowd(sandbox, 2, 560)
    intake = Intake(sandbox, store)
    intake.poll()
    with sandbox.state.lock:  # most of the list goes, so the newest user moves pages forward
        for user_id in others[:520]:
            del sandbox.state.rf.users[user_id]
    newcomers = crowd(sandbox, 1, 60, "new")  # more than a page of 25

    assert intake.poll() == newcomers
    assert intake.poll() == []


def test_a_campaign_picked_later_gets_its_own_backfill(sandbox: SandboxServer, store: Store) -> None:
    partners = crowd(sandbox, 2, 40, "partner")
    store.save_settings(sandbox_settings(sandbox))
    ours = crowd(sandbox, 1, 3)
    intake = Intake(sandbox, store)
    assert intake.poll() == ours

    store.save_settings(with_rf(sandbox_settings(sandbox), campaign_ids=[1, 2]))
    assert intake.poll() == partners
    assert intake.poll() == []


def test_a_referrer_that_was_deleted_does_not_hold_up_intake(sandbox: SandboxServer, store: Store) -> None:
    store.save_settings(sandbox_settings(sandbox))
    with sandbox.state.lock:
        referrer = sandbox.state.rf.create_user(1, "Gone", "gone@example.com", source="Direct")
    user = sign_up(sandbox, "Orphan", "orphan@example.com", referrer_code=referrer["code"])
    with sandbox.state.lock:
        sandbox.state.rf.delete_user(sandbox.state.rf.users[referrer["id"]])

    assert Intake(sandbox, store).poll() == [user["id"]]
    referral = store.get(user["id"])
    assert referral is not None and referral.referrer_email is None


def test_a_user_already_qualified_in_referral_factory_is_never_asked_for(
    sandbox: SandboxServer, store: Store
) -> None:
    store.save_settings(sandbox_settings(sandbox))
    user = sign_up(sandbox, "Quick", "quick@example.com")
    admin(sandbox, "POST", f"/rf/users/{user['id']}/qualify")

    run_once(store, sandbox)
    [lead] = leads(sandbox)
    admin(sandbox, "POST", f"/pd/leads/{lead['id']}/convert", {})
    run_once(store, sandbox)

    referral = store.get(user["id"])
    assert referral is not None and referral.status == "qualified"
    assert sandbox.state.rf.qualification_calls == 0
    assert store.log_count(text="already qualified in Referral Factory") == 1

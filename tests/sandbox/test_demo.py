"""The demo: simulated sign-ups and a simulated sales team."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator

import httpx
import pytest

from rf_desktop.sandbox import demo
from rf_desktop.sandbox.demo import DemoSimulation, fake_person
from rf_desktop.sandbox.server import SandboxServer
from rf_desktop.sandbox.state import SandboxState


def wait_until(condition: Callable[[], bool], timeout: float = 30.0) -> None:
    # generous: the demo runs on a thread of the test process, which a busy machine starves for seconds
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "the demo made no progress in time"
        time.sleep(0.02)


def demo_state(seed: int = 1) -> SandboxState:
    state = SandboxState()
    state.demo_enabled = True
    state.demo_seed = seed
    return state


def add_referrals(state: SandboxState, leads: int, deals: int) -> None:
    """Persons with a lead or a deal, as rf-desktop would have created them."""
    with state.lock:
        for n in range(leads + deals):
            person = state.pd.insert_person({"name": f"Guest {n}"})
            if n < leads:
                state.pd.insert_lead({"title": f"Guest {n} (referral)", "person_id": person["id"]})
            else:
                state.pd.insert_deal({"title": f"Guest {n} (referral)", "person_id": person["id"]})


def invited(state: SandboxState) -> list[dict[str, object]]:
    with state.lock:
        return [u for u in state.rf.users.values() if u["type"] == "person_invited"]


# --- sign-ups -------------------------------------------------------------------------------------------


def test_sign_ups_are_plausible_people_credited_to_referrers_of_launched_campaigns() -> None:
    state = demo_state()
    simulation = DemoSimulation(state, seed=1)
    users = [simulation.sign_up() for _ in range(40)]
    assert all(u is not None for u in users)
    with state.lock:
        referrers = {u["id"]: u for u in state.rf.users.values() if u["type"] == "person_referring"}
        launched = {c["id"] for c in state.rf.campaigns.values() if c["status"] == "launched"}
    for user in users:
        assert user is not None
        assert user["source"] == "Referred" and user["campaign_id"] in launched
        assert referrers[user["referrer_id"]]["campaign_id"] == user["campaign_id"]
        local, _, domain = user["email"].partition("@")
        assert "+" in local and local.isascii() and domain.startswith("example.")
    assert any(not u["first_name"].isascii() for u in users if u)  # José, Zoë, Łukasz, 李雷...
    assert len({u["email"] for u in users if u}) == 40
    # a few new referrers join over time, never more than a handful per campaign
    assert 2 < len(referrers) <= demo.MAX_REFERRERS_PER_CAMPAIGN * len(launched)


def test_sign_ups_fill_the_campaign_form_fields() -> None:
    state = demo_state()
    with state.lock:
        person = fake_person(state.rf, 1)
    values = {m["field"]: m["value"] for m in person.meta}
    assert set(values) == {"Last Name", "Company", "Phone", "Plan"}
    assert values["Plan"] in ("Starter", "Growth", "Enterprise")


def test_the_same_seed_gives_the_same_demo() -> None:
    def run(seed: int) -> list[str]:
        state = demo_state()
        add_referrals(state, leads=3, deals=3)
        simulation = DemoSimulation(state, seed=seed)
        steps = []
        for _ in range(10):
            user = simulation.sign_up()
            steps.append(user["email"] if user else "-")
            action = simulation.sales_step() or "-"
            # lead ids are random UUIDs: name the lead by its title instead
            words = action.split()
            steps.append(" ".join(state.pd.leads[w]["title"] if w in state.pd.leads else w for w in words))
        return steps

    assert run(7) == run(7)
    assert run(7) != run(8)


def test_a_disabled_demo_does_nothing() -> None:
    state = SandboxState()
    add_referrals(state, leads=2, deals=2)
    simulation = DemoSimulation(state, seed=1)
    assert simulation.sign_up() is None
    assert simulation.sales_step() is None
    assert invited(state) == []


# --- the sales team -------------------------------------------------------------------------------------


def test_the_sales_team_converts_leads_and_moves_deals_to_won_or_lost() -> None:
    state = demo_state()
    add_referrals(state, leads=8, deals=4)
    simulation = DemoSimulation(state, seed=3)
    actions = [simulation.sales_step() for _ in range(200)]
    assert {a.split()[0] for a in actions if a} == {"convert", "move", "win", "lose"}
    with state.lock:
        leads = list(state.pd.leads.values())
        deals = list(state.pd.deals.values())
    converted = [lead for lead in leads if lead["is_deleted"]]
    assert 0 < len(converted) < len(leads)  # some leads never convert
    assert all(d["status"] in ("won", "lost") for d in deals)
    assert sum(d["status"] == "won" for d in deals) > sum(d["status"] == "lost" for d in deals)
    assert {d["source_lead_id"] for d in deals} >= {lead["id"] for lead in converted}


def test_the_sales_team_ignores_records_without_a_person() -> None:
    state = demo_state()
    with state.lock:
        state.pd.insert_deal({"title": "No one"})
    assert DemoSimulation(state, seed=1).sales_step() is None


# --- on the running server ------------------------------------------------------------------------------


@pytest.fixture
def admin(sandbox: SandboxServer) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=sandbox.admin_url, timeout=5, verify=False) as client:  # plain HTTP
        yield client
    sandbox.state.reset()  # never leave the demo running for the next test


def test_the_demo_makes_progress_on_the_server(sandbox: SandboxServer, admin: httpx.Client) -> None:
    state = sandbox.state
    add_referrals(state, leads=4, deals=4)
    assert admin.put("/demo", json={"enabled": True, "speed": 500}).status_code == 200

    def progressed() -> bool:
        with state.lock:
            converted = any(lead["is_deleted"] for lead in state.pd.leads.values())
            won = any(deal["status"] == "won" for deal in state.pd.deals.values())
            moved = any(deal["stage_change_time"] for deal in state.pd.deals.values())
        return len(invited(state)) >= 3 and converted and won and moved

    wait_until(progressed)
    admin.put("/demo", json={"enabled": False})
    signed_up = len(invited(state))  # each step checks the switch, so nothing happens after this
    time.sleep(0.2)
    assert len(invited(state)) == signed_up


def test_a_reset_stops_the_demo_at_once(sandbox: SandboxServer, admin: httpx.Client) -> None:
    admin.put("/demo", json={"enabled": True, "speed": 500})
    wait_until(lambda: len(invited(sandbox.state)) > 0)
    sandbox.state.reset()
    time.sleep(0.2)
    assert invited(sandbox.state) == []


def test_a_server_started_with_the_demo_on_runs_it() -> None:
    state = demo_state()
    state.demo_speed = 500
    with SandboxServer(state):
        wait_until(lambda: len(invited(state)) >= 2)


@pytest.mark.allow_logged_errors
def test_a_crashing_demo_is_logged_and_switched_off(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    def broken(self: DemoSimulation) -> None:
        raise RuntimeError("demo bug")

    monkeypatch.setattr(DemoSimulation, "sign_up", broken)
    state = demo_state()
    state.demo_speed = 500
    with SandboxServer(state):
        wait_until(lambda: not state.demo_enabled)
    assert any("demo stopped" in r.getMessage() for r in caplog.records)

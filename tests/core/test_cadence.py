"""The two clocks of the sync: sign-ups often and cheaply, conversions at the budget's pace."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from rf_desktop.core.cadence import SECONDS_PER_RF_CALL, Cadence

T0 = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)


def test_a_new_cadence_looks_for_both_at_once() -> None:
    cadence = Cadence()
    assert cadence.signups_due(T0) and cadence.conversions_due(T0)
    assert cadence.next_look(T0) == T0


def test_sign_ups_are_looked_for_every_poll_interval_counted_from_the_start_of_a_look() -> None:
    cadence = Cadence()
    cadence.looked_for_signups(T0, poll_seconds=2, rf_calls=1)
    assert cadence.signups_at == T0 + timedelta(seconds=2)
    assert not cadence.signups_due(T0 + timedelta(seconds=1.9))
    assert cadence.signups_due(T0 + timedelta(seconds=2))


def test_a_look_that_needed_many_calls_waits_for_its_share_of_the_rate_limit() -> None:
    assert SECONDS_PER_RF_CALL == 1.0  # a tenth of 600 calls a minute
    cadence = Cadence()
    cadence.looked_for_signups(T0, poll_seconds=2, rf_calls=7)
    assert cadence.signups_at == T0 + timedelta(seconds=7)


def test_conversions_have_their_own_clock_and_none_while_nothing_waits() -> None:
    cadence = Cadence()
    cadence.looked_for_signups(T0, poll_seconds=2, rf_calls=1)
    cadence.looked_for_conversions(T0, interval=240, anything_waiting=True)
    assert cadence.next_conversions_at == T0 + timedelta(seconds=240)
    assert cadence.next_look(T0) == T0 + timedelta(seconds=2)
    assert not cadence.conversions_due(T0 + timedelta(seconds=239))

    cadence.looked_for_conversions(T0, interval=240, anything_waiting=False)
    assert cadence.next_conversions_at is None
    assert not cadence.conversions_due(T0 + timedelta(days=1)), "nothing to watch: no look at Pipedrive"
    cadence.something_to_watch()
    assert cadence.conversions_due(T0)


def test_look_now_makes_both_due() -> None:
    cadence = Cadence()
    cadence.looked_for_signups(T0, poll_seconds=60, rf_calls=1)
    cadence.looked_for_conversions(T0, interval=240, anything_waiting=False)
    cadence.look_now()
    assert cadence.signups_due(T0) and cadence.conversions_due(T0)

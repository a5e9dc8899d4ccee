"""The owner's few words for where a referral stands, and what to do next."""

from __future__ import annotations

from pathlib import Path

from rf_desktop.core import vocabulary
from rf_desktop.core.store import FAILED, PENDING, QUALIFIED, SENT, SKIPPED, STATUSES, WAITING, Reason, Referral, Store
from rf_desktop.core.trial.steps import TEST_REMOVED


def referral(**fields: object) -> Referral:
    return Referral(rf_user_id=1, campaign_id=1, first_name="Ann", **fields)  # type: ignore[arg-type]


def test_every_status_has_one_word_a_reason_and_a_next_step() -> None:
    words = {status: vocabulary.describe(referral(status=status)) for status in STATUSES}
    assert {status: d.word for status, d in words.items()} == {
        "pending": "To send",
        "sending": "To send",
        "sent": "In Pipedrive",
        "waiting": "In Pipedrive",
        "qualified": "Qualified",
        "failed": "Needs attention",
        "skipped": "Not sent",
    }
    assert all(d.reason and d.next_step and d.records_exist for d in words.values())


def test_the_reason_is_the_syncs_own_and_a_failure_says_whether_to_act() -> None:
    waiting = vocabulary.describe(referral(status=WAITING, status_reason="A referral qualifies when won."))
    assert waiting.reason == "A referral qualifies when won."
    passing = vocabulary.describe(referral(status=FAILED, status_reason="Timed out."))
    assert "tries again by itself" in passing.next_step
    stuck = vocabulary.describe(referral(status=FAILED, status_reason="Refused.", permanent=True))
    assert "Retry" in stuck.next_step and "by itself" not in stuck.next_step


def test_a_test_referral_says_test_and_after_its_clean_up_has_no_records() -> None:
    live = vocabulary.describe(referral(status=WAITING, is_test=True, person_id=3))
    assert live.word == "Test" and live.reason.startswith("Test referral.") and live.records_exist
    removed = vocabulary.describe(
        referral(
            status=SKIPPED,
            status_reason=TEST_REMOVED,
            reason_kind=Reason.TEST_REMOVED,
            is_test=True,
            person_id=3,
            lead_id="ab-cd",
        )
    )
    assert removed.word == "Test"
    assert "removed" in removed.reason and "Skipped" not in removed.reason
    assert not removed.records_exist


def test_counts_per_state_keep_test_referrals_apart(tmp_path: Path) -> None:
    with Store(tmp_path / "rf.sqlite3") as store:
        for number, (status, is_test) in enumerate(
            [(SENT, False), (WAITING, False), (WAITING, True), (QUALIFIED, False), (FAILED, False), (PENDING, True)],
            start=1,
        ):
            store.record_referral(Referral(rf_user_id=number, campaign_id=1, is_test=is_test))
            store.update(number, status=status)
        counts = vocabulary.standing_counts(store)
        assert counts == {
            "to_send": 0, "in_pipedrive": 2, "qualified": 1, "not_sent": 0, "attention": 1, "test": 2,
        }  # fmt: skip
        assert vocabulary.counts_sentence(counts) == "2 in Pipedrive · 1 qualified · 1 needs attention · 2 tests"
        group = vocabulary.IN_PIPEDRIVE
        assert store.count(status=group.statuses, is_test=False) == 2

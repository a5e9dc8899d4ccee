"""The owner's words for where a referral stands: one table, read by the window, the tray and the CSV.

The store keeps seven working statuses (`pending` … `skipped`), which say what the sync must do next. An
owner needs fewer and plainer ones, each explained: is it in Pipedrive, did it qualify, must I do
something? Referrals made by "Send test referral" stand apart as "Test", whatever the sync did with them.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from rf_desktop.core.store import FAILED, PENDING, QUALIFIED, SENDING, SENT, SKIPPED, WAITING, Reason, Referral, Store


@dataclass(frozen=True)
class Standing:
    """One of the few states the owner sees. `statuses` are the store's statuses it covers (for every
    referral but the tests; `test` covers the test referrals, whatever their status). `counted` is how
    a count reads: "1 needs attention", "3 need attention"."""

    key: str
    word: str
    meaning: str
    statuses: frozenset[str]
    counted: tuple[str, str]
    test: bool = False


TO_SEND = Standing(
    "to_send",
    "To send",
    "Recorded from Referral Factory; rf-desktop is sending it to Pipedrive.",
    frozenset({PENDING, SENDING}),
    ("to send", "to send"),
)
IN_PIPEDRIVE = Standing(
    "in_pipedrive",
    "In Pipedrive",
    "The person and their lead or deal are in Pipedrive.",
    frozenset({SENT, WAITING}),
    ("in Pipedrive", "in Pipedrive"),
)
QUALIFIED_NOW = Standing(
    "qualified",
    "Qualified",
    "It converted in Pipedrive, and Referral Factory accepted it as qualified.",
    frozenset({QUALIFIED}),
    ("qualified", "qualified"),
)
NOT_SENT = Standing(
    "not_sent",
    "Not sent",
    "rf-desktop did not send it, on purpose (the reason says why).",
    frozenset({SKIPPED}),
    ("not sent", "not sent"),
)
NEEDS_ATTENTION = Standing(
    "attention",
    "Needs attention",
    "Sending it or qualifying it failed (the reason says why).",
    frozenset({FAILED}),
    ("needs attention", "need attention"),
)
TEST = Standing(
    "test",
    "Test",
    "A test referral made by Send test referral; it is not counted with your real referrals.",
    frozenset({PENDING, SENDING, SENT, WAITING, QUALIFIED, FAILED, SKIPPED}),
    ("test", "tests"),
    test=True,
)
STANDINGS = (TO_SEND, IN_PIPEDRIVE, QUALIFIED_NOW, NOT_SENT, NEEDS_ATTENTION, TEST)
STANDING_BY_KEY = {standing.key: standing for standing in STANDINGS}

# What each status means when the sync left no reason of its own, and what the owner can do about it.
DEFAULT_REASONS: dict[str, str] = {
    PENDING: "Waiting to be sent to Pipedrive at the next look.",
    SENDING: "Being sent to Pipedrive now.",
    SENT: "Person and lead or deal created. No qualification rule is set, so nothing is watched.",
    WAITING: "Person and lead or deal created; watching Pipedrive for the conversion.",
    QUALIFIED: "Referral Factory accepted the qualification: the referrer's reward is due.",
    FAILED: "The last attempt failed.",
    SKIPPED: "Not sent.",
}
NEXT_STEPS: dict[str, str] = {
    PENDING: "Nothing: it goes to Pipedrive at the next look (F5 looks now).",
    SENDING: "Nothing: it is on its way.",
    SENT: "Nothing. To qualify referrals automatically, choose a rule on the Rules page.",
    WAITING: "Nothing: when it converts in Pipedrive, rf-desktop qualifies it in Referral Factory.",
    QUALIFIED: "Nothing: this referral is done.",
    SKIPPED: "Press Retry to send it after all (change the duplicate rule on the Mapping page first "
    "if that is why it was not sent).",
}
RETRY_BY_ITSELF = "Nothing: rf-desktop tries again by itself. Press Retry to try now."
FIX_THEN_RETRY = "Fix what the reason says (in Pipedrive, or on the Mapping or Rules page), then press Retry."
TEST_NEXT_STEP = "Remove it with Clean up at the end of Send test referral."
TEST_REMOVED_REASON = "Test referral: its records were removed from Pipedrive and Referral Factory."
TEST_REMOVED_NEXT_STEP = "Nothing: the test is over and cleaned up."


@dataclass(frozen=True)
class Description:
    """One referral in the owner's words: the state's word, why it is there, and what to do next."""

    standing: Standing
    reason: str
    next_step: str
    records_exist: bool  # False once a test's clean-up removed its Pipedrive records

    @property
    def word(self) -> str:
        return self.standing.word


def standing_of(referral: Referral) -> Standing:
    if referral.is_test:
        return TEST
    return next((s for s in STANDINGS if not s.test and referral.status in s.statuses), NEEDS_ATTENTION)


def is_removed_test(referral: Referral) -> bool:
    return referral.is_test and referral.reason_kind == Reason.TEST_REMOVED


def describe(referral: Referral) -> Description:
    standing = standing_of(referral)
    if is_removed_test(referral):
        return Description(standing, TEST_REMOVED_REASON, TEST_REMOVED_NEXT_STEP, records_exist=False)
    reason = referral.status_reason or DEFAULT_REASONS.get(referral.status, "")
    if referral.status == FAILED:
        next_step = FIX_THEN_RETRY if referral.permanent else RETRY_BY_ITSELF
    else:
        next_step = NEXT_STEPS.get(referral.status, "")
    if referral.is_test:
        reason = f"Test referral. {reason}"
        next_step = TEST_NEXT_STEP
    return Description(standing, reason, next_step, records_exist=True)


def count_standings(all_counts: Mapping[str, int], test_counts: Mapping[str, int]) -> dict[str, int]:
    """Referrals per standing key, from the store's counts per status for all referrals and for the
    test referrals alone."""
    counts = {standing.key: 0 for standing in STANDINGS}
    for status, number in all_counts.items():
        tests = test_counts.get(status, 0)
        counts[TEST.key] += tests
        real = next((s for s in STANDINGS if not s.test and status in s.statuses), NEEDS_ATTENTION)
        counts[real.key] += number - tests
    return counts


def standing_counts(store: Store) -> dict[str, int]:
    return count_standings(store.counts(), store.counts(is_test=True))


def counts_sentence(counts: Mapping[str, int]) -> str:
    """"8 in Pipedrive · 2 qualified · 1 needs attention": the two states every owner watches, then any
    other that is not empty."""
    always = (IN_PIPEDRIVE.key, QUALIFIED_NOW.key)
    parts = []
    for standing in STANDINGS:
        number = counts.get(standing.key, 0)
        if number or standing.key in always:
            parts.append(f"{number:,} {standing.counted[0] if number == 1 else standing.counted[1]}")
    return " · ".join(parts)

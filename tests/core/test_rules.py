"""The qualification options: which deal states qualify, which rules suit which mode, the sentences."""

from __future__ import annotations

import pytest

from rf_desktop.core.config import QualificationRule
from rf_desktop.core.rules import (
    DEAL_RULE_KINDS,
    LEAD_RULE_KINDS,
    RULE_KINDS,
    RULE_TITLES,
    DealState,
    allowed_kinds,
    describe,
    mode_error,
    needs_stage,
    needs_watch,
    qualifies,
)
from rf_desktop.core.schema import PipedriveSchema, Pipeline, Stage

# Sales: Qualified(1) -> Demo(2) -> Proposal(3); Partners: Intro(1) -> Signed(2)
STAGES = (
    Stage(11, "Qualified", 1, 1),
    Stage(12, "Demo Scheduled", 1, 2),
    Stage(13, "Proposal", 1, 3),
    Stage(21, "Intro", 2, 1),
    Stage(22, "Signed", 2, 2),
)
SCHEMA = PipedriveSchema(
    company_domain=None,
    user_name="Olivia",
    default_currency="EUR",
    pipelines=(Pipeline(1, "Sales pipeline"), Pipeline(2, "Partners")),
    stages=STAGES,
)


def deal(stage_id: int | None = 11, pipeline_id: int | None = 1, status: str = "open") -> DealState:
    return DealState(
        deal_id=500, stage_id=stage_id, pipeline_id=pipeline_id, status=status, source_lead_id="lead-1"
    )


def rule(kind: str, pipeline_id: int | None = None, stage_id: int | None = None) -> QualificationRule:
    return QualificationRule(kind, pipeline_id, stage_id)  # type: ignore[arg-type]


def test_every_kind_has_a_title() -> None:
    assert set(RULE_TITLES) == set(RULE_KINDS)


@pytest.mark.parametrize("state", [None, deal(), deal(status="won"), deal(13)])
def test_none_never_qualifies(state: DealState | None) -> None:
    assert not qualifies(rule("none"), state, SCHEMA)
    assert not needs_watch(rule("none"))


def test_lead_converted_needs_a_linked_deal_that_is_not_lost_or_deleted() -> None:
    r = rule("lead_converted")
    assert needs_watch(r)
    assert not qualifies(r, None, SCHEMA)
    assert qualifies(r, deal(), SCHEMA)
    assert qualifies(r, deal(status="won"), SCHEMA)
    assert not qualifies(r, deal(status="lost"), SCHEMA)
    assert not qualifies(r, deal(status="deleted"), SCHEMA)


@pytest.mark.parametrize("kind", ["lead_converted_stage", "deal_stage"])
@pytest.mark.parametrize(
    ("state", "expected"),
    [
        (deal(11), False),  # before the chosen stage
        (deal(12), True),  # at it
        (deal(13), True),  # past it: the poll may have missed the deal passing through
        (deal(11, status="won"), True),  # won in the pipeline counts as reached
        (deal(13, status="lost"), False),  # lost never qualifies
        (deal(13, status="deleted"), False),
        (deal(22, 2), False),  # a later order number, but another pipeline
        (deal(22, 2, status="won"), False),  # won in another pipeline
        (deal(77), False),  # a stage the schema does not know
        (deal(13, pipeline_id=None), True),  # pipeline taken from the stage
        (None, False),
    ],
)
def test_stage_rules_qualify_once_the_stage_is_reached(
    kind: str, state: DealState | None, expected: bool
) -> None:
    assert qualifies(rule(kind, 1, 12), state, SCHEMA) is expected


def test_stage_rules_accept_a_plain_stage_list() -> None:
    assert qualifies(rule("deal_stage", 1, 12), deal(13), STAGES)
    assert not qualifies(rule("deal_stage", 1, 12), deal(13), [])


def test_stage_rules_without_a_usable_target_never_qualify() -> None:
    assert not qualifies(rule("deal_stage"), deal(13), SCHEMA)
    assert not qualifies(rule("deal_stage", 1, None), deal(13), SCHEMA)
    assert not qualifies(rule("deal_stage", 2, 12), deal(13), SCHEMA)  # the stage is not in that pipeline
    assert not qualifies(rule("deal_stage", 1, 999), deal(13), SCHEMA)


@pytest.mark.parametrize(
    ("status", "expected"), [("open", False), ("won", True), ("lost", False), ("deleted", False)]
)
def test_deal_won_qualifies_only_won_deals(status: str, expected: bool) -> None:
    assert qualifies(rule("deal_won"), deal(22, 2, status), SCHEMA) is expected
    assert not qualifies(rule("deal_won"), None, SCHEMA)


def test_allowed_kinds_per_mode() -> None:
    assert allowed_kinds("lead") == ["none", *LEAD_RULE_KINDS]
    assert allowed_kinds("deal") == ["none", *DEAL_RULE_KINDS]


@pytest.mark.parametrize("kind", RULE_KINDS)
@pytest.mark.parametrize("mode", ["lead", "deal"])
def test_mode_error_matches_allowed_kinds(kind: str, mode: str) -> None:
    problem = mode_error(rule(kind), mode)
    assert (problem is None) == (kind in allowed_kinds(mode))  # type: ignore[arg-type]


def test_mode_error_says_what_to_choose() -> None:
    assert "Lead rules need 'Create a Lead'" in (mode_error(rule("lead_converted"), "deal") or "")
    assert "Deal rules need 'Create a Deal'" in (mode_error(rule("deal_won"), "lead") or "")


def test_needs_stage() -> None:
    assert [k for k in RULE_KINDS if needs_stage(k)] == ["lead_converted_stage", "deal_stage"]


def test_describe_each_option() -> None:
    assert describe(rule("none")).startswith("Referrals are not qualified automatically")
    assert describe(rule("lead_converted")) == (
        "A referral qualifies when its lead is converted into a deal (not lost or deleted)."
    )
    assert describe(rule("deal_won")) == "A referral qualifies when its deal is marked as won."
    assert describe(rule("deal_stage", 1, 12), SCHEMA) == (
        "A referral qualifies when its deal reaches 'Demo Scheduled' (or a later stage) in 'Sales pipeline'."
    )
    assert describe(rule("lead_converted_stage", 1, 12), SCHEMA) == (
        "A referral qualifies when its lead is converted into a deal and the deal reaches 'Demo Scheduled' "
        "(or a later stage) in 'Sales pipeline'."
    )


def test_describe_without_names() -> None:
    assert describe(rule("deal_stage", 1, 12)) == (
        "A referral qualifies when its deal reaches stage 12 (or a later stage) in pipeline 1."
    )
    assert "no stage chosen yet" in describe(rule("deal_stage"), SCHEMA)

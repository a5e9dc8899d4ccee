"""The four ways a referral can qualify (plus "do not qualify"), as pure functions.

- `lead_converted`: the referral's lead was converted into a deal. The engine only ever passes a deal
  linked to the referral (by the deal's `source_lead_id` or by the Referral Code it carries), so a deal
  that exists and is not lost or deleted qualifies.
- `lead_converted_stage`: the lead was converted AND the deal has reached the chosen stage: that stage or
  a later one (by board order) of the same pipeline, or won in that pipeline. "Reached" rather than "is
  at", because a poll can miss a deal that passes through a stage between two looks.
- `deal_stage`: a deal rf-desktop created has reached the chosen stage, in the same sense.
- `deal_won`: the deal is marked as won.

Lost and deleted deals never qualify. Lead rules need "Create a Lead"; deal rules need "Create a Deal".
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Literal, Protocol

from rf_desktop.core.schema import Mode, PipedriveSchema, Stage

RuleKind = Literal["none", "lead_converted", "lead_converted_stage", "deal_stage", "deal_won"]
RULE_KINDS: tuple[RuleKind, ...] = (
    "none",
    "lead_converted",
    "lead_converted_stage",
    "deal_stage",
    "deal_won",
)
LEAD_RULE_KINDS: tuple[RuleKind, ...] = ("lead_converted", "lead_converted_stage")
DEAL_RULE_KINDS: tuple[RuleKind, ...] = ("deal_stage", "deal_won")
STAGE_RULE_KINDS: tuple[RuleKind, ...] = ("lead_converted_stage", "deal_stage")

# The option names the window shows, in the words of Referral Factory's own integration.
RULE_TITLES: dict[str, str] = {
    "none": "Do not qualify referrals automatically",
    "lead_converted": "When a lead converts into a deal",
    "lead_converted_stage": "When a lead converts into a deal and moves to a specific stage",
    "deal_stage": "When a deal reaches a specific stage",
    "deal_won": 'When a deal is marked as "Won"',
}

WON = "won"
NEVER_QUALIFY = frozenset({"lost", "deleted"})


class Rule(Protocol):
    """What the rules read from `config.QualificationRule`."""

    @property
    def kind(self) -> str: ...
    @property
    def pipeline_id(self) -> int | None: ...
    @property
    def stage_id(self) -> int | None: ...


@dataclass(frozen=True)
class DealState:
    """The last seen state of a deal linked to a referral."""

    deal_id: int
    stage_id: int | None
    pipeline_id: int | None
    status: str  # "open" | "won" | "lost" | "deleted"
    source_lead_id: str | None = None


def allowed_kinds(mode: Mode) -> list[RuleKind]:
    """The options that make sense for this mode, "none" first."""
    return ["none", *(LEAD_RULE_KINDS if mode == "lead" else DEAL_RULE_KINDS)]


def mode_error(rule: Rule, mode: str) -> str | None:
    """Why this rule cannot work with this mode, in plain words; None when it can."""
    if rule.kind in LEAD_RULE_KINDS and mode != "lead":
        return (
            "Lead rules need 'Create a Lead': rf-desktop creates deals, so there is no lead to convert. "
            "Choose 'Create a Lead', or a deal rule."
        )
    if rule.kind in DEAL_RULE_KINDS and mode != "deal":
        return (
            "Deal rules need 'Create a Deal': rf-desktop creates leads. Choose 'Create a Deal', or a rule "
            "about the lead converting."
        )
    return None


def needs_stage(kind: str) -> bool:
    return kind in STAGE_RULE_KINDS


def needs_watch(rule: Rule) -> bool:
    """True when referrals must be watched in Pipedrive after they are sent (any rule but "none")."""
    return rule.kind != "none"


def qualifies(rule: Rule, deal: DealState | None, stages: PipedriveSchema | Iterable[Stage]) -> bool:
    """Does this deal (linked to the referral; None when there is none yet) qualify the referral?
    `stages` gives the board order: the Pipedrive schema, or the stages themselves."""
    if rule.kind == "none" or deal is None or deal.status in NEVER_QUALIFY:
        return False
    if rule.kind == "lead_converted":
        return True
    if rule.kind == "deal_won":
        return deal.status == WON
    if rule.kind in STAGE_RULE_KINDS:
        return _reached(rule, deal, stages)
    return False


def _reached(rule: Rule, deal: DealState, stages: PipedriveSchema | Iterable[Stage]) -> bool:
    """The deal is at the rule's stage or later in the rule's pipeline, or won in that pipeline."""
    by_id = {s.id: s for s in (stages.stages if isinstance(stages, PipedriveSchema) else stages)}
    target = by_id.get(rule.stage_id) if rule.stage_id is not None else None
    if target is None or rule.pipeline_id is None or target.pipeline_id != rule.pipeline_id:
        return False
    current = by_id.get(deal.stage_id) if deal.stage_id is not None else None
    pipeline_id = (
        deal.pipeline_id if deal.pipeline_id is not None else (current.pipeline_id if current else None)
    )
    if pipeline_id != rule.pipeline_id:
        return False
    if deal.status == WON:
        return True
    # an unknown stage (created after the schema was fetched) is not taken as reached
    return (
        current is not None
        and current.pipeline_id == rule.pipeline_id
        and current.order_nr >= target.order_nr
    )


def describe(rule: Rule, schema: PipedriveSchema | None = None) -> str:
    """One plain sentence saying when a referral qualifies under this rule."""
    if rule.kind == "none":
        return "Referrals are not qualified automatically: qualify them yourself in Referral Factory."
    if rule.kind == "lead_converted":
        return "A referral qualifies when its lead is converted into a deal (not lost or deleted)."
    if rule.kind == "deal_won":
        return "A referral qualifies when its deal is marked as won."
    where = _stage_phrase(rule, schema)
    if rule.kind == "lead_converted_stage":
        return f"A referral qualifies when its lead is converted into a deal and the deal reaches {where}."
    return f"A referral qualifies when its deal reaches {where}."


def _stage_phrase(rule: Rule, schema: PipedriveSchema | None) -> str:
    if rule.stage_id is None or rule.pipeline_id is None:
        return "the stage you choose (no stage chosen yet)"
    stage = schema.stage(rule.stage_id) if schema else None
    pipeline = schema.pipeline(rule.pipeline_id) if schema else None
    stage_name = f"'{stage.name}'" if stage else f"stage {rule.stage_id}"
    pipeline_name = f"'{pipeline.name}'" if pipeline else f"pipeline {rule.pipeline_id}"
    return f"{stage_name} (or a later stage) in {pipeline_name}"

"""Settings that point rf-desktop at a running sandbox, mapped to its seeded fields.

The demo, the benchmarks and the tests all start from these, so "nothing to configure" means the same
thing everywhere.
"""

from __future__ import annotations

from typing import Any

from rf_desktop.core.config import (
    FieldMap,
    PipedriveSettings,
    QualificationRule,
    ReferralFactorySettings,
    Settings,
)
from rf_desktop.core.mapping_setup import REFERRAL_FIELDS
from rf_desktop.sandbox.state import SandboxState


def field_code(state: SandboxState, entity: str, name: str) -> str:
    """The 40-character key of a sandbox field (`entity` "person" or "deal"), found by its name."""
    with state.lock:
        fields = state.pd.fields[entity].values()
        return next(str(f["field_code"]) for f in fields if f["field_name"] == name)


def stage_id(state: SandboxState, name: str, pipeline_id: int = 1) -> int:
    with state.lock:
        return next(
            int(s["id"])
            for s in state.pd.stages.values()
            if s["name"] == name and s["pipeline_id"] == pipeline_id
        )


def demo_settings(rf_base_url: str, pd_base_url: str, state: SandboxState, **changes: Any) -> Settings:
    """Lead mode, the first campaign, everyone invited so far, the referral fields mapped, and the rule
    "a lead converts into a deal". Keyword arguments replace top-level settings."""
    mappings = [FieldMap("first_name", "person:name"), FieldMap("email", "person:email")]
    mappings += [
        FieldMap(source, f"item:{field_code(state, 'deal', name)}", label=name)
        for name, source in REFERRAL_FIELDS.items()
    ]
    settings = Settings(
        referral_factory=ReferralFactorySettings(base_url=rf_base_url, campaign_ids=[1], backfill="all"),
        pipedrive=PipedriveSettings(base_url=pd_base_url),
        mode="lead",
        title="{campaign_name}: {first_name}",
        mappings=mappings,
        qualification=QualificationRule(kind="lead_converted"),
    )
    for key, value in changes.items():
        if not hasattr(settings, key):
            raise AttributeError(f"Settings has no {key!r}")
        setattr(settings, key, value)
    return settings

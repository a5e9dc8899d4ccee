"""The test referral as text the owner can copy into an email to support."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime

from rf_desktop.core.trial.cleanup import CleanupItem, CleanupReport
from rf_desktop.core.trial.fields import FieldCheck
from rf_desktop.core.trial.plan import Plan
from rf_desktop.core.trial.steps import (
    CLEANED,
    DONE,
    FAILED_STEP,
    QUALIFIED_STEP,
    RUN_STEPS,
    RUNNING,
    SKIPPED_STEP,
    Created,
    StepUpdate,
    seconds_text,
    step_title,
)


def summary(
    plan: Plan,
    created: Created,
    steps: Mapping[str, StepUpdate],
    fields: Sequence[FieldCheck],
    started_at: datetime | None,
    seconds: float | None,
    records: Sequence[str],
) -> str:
    """Everything the run did; `records` says what is still in the accounts, or what was removed."""
    mode = plan.mode
    started = f"{started_at:%Y-%m-%d %H:%M:%S}" if started_at else "not started"
    lines = [
        f"rf-desktop test referral ({started})",
        f"Referral Factory campaign: {created.campaign_name or plan.campaign_name}",
        f"Pipedrive account: {created.company or plan.pipedrive_account}",
        f"Person Referring: {plan.referrer_email}",
        f"Person Invited: {plan.invited_email}",
        "",
        "Steps:",
    ]
    marks = {DONE: "✓", FAILED_STEP: "✗", SKIPPED_STEP: "-", RUNNING: "…"}
    for step in (*RUN_STEPS, QUALIFIED_STEP, CLEANED):
        update = steps.get(step)
        if update is None:
            if step in RUN_STEPS:
                lines.append(f"  · {step_title(step, mode)}: not run")
            continue
        took = seconds_text(update.seconds)
        lines.append(f"  {marks[update.state]} {step_title(step, mode)} ({took}): {update.detail}")
        if update.state == FAILED_STEP and update.hint:
            lines.append(f"      What to do: {update.hint}")
        url = update.data.get("url")
        if url and url not in update.detail:
            lines.append(f"      {url}")
    if fields:
        lines += ["", "Fields in Pipedrive (field = value, from):"]
        lines += [_field_line(check) for check in fields]
    lines.append("")
    if seconds is not None:
        outcome = "finished" if all(u.state == DONE for u in steps.values()) else "ended with a problem"
        lines.append(f"The test referral {outcome} in {seconds_text(seconds)}.")
    lines += records
    return "\n".join(lines)


def _field_line(check: FieldCheck) -> str:
    mark = {True: "✓", False: "✗", None: "·"}[check.arrived]
    text = f"  {mark} {check.record}: {check.field} = {check.value or '(empty)'} (from {check.source})"
    if check.arrived is False:
        text += f"; expected {check.expected or '(a value)'}"
    if check.note:
        text += f". {check.note}"
    return text


def records(report: CleanupReport | None, items: Sequence[CleanupItem], kept: Sequence[str]) -> list[str]:
    """What the cleanup removed and kept, or (before one) what is still in the accounts."""
    if report is not None:
        lines = [f"Removed: {', '.join(report.removed) or 'nothing'}."]
        if report.failed:
            lines.append(f"Not removed: {'; '.join(report.failed)}.")
        return lines + [f"Kept: {k}" for k in report.kept]
    if not items:
        return ["Nothing was created."]
    lines = ["Still in your accounts (Clean up removes them):"]
    lines += [f"  - {item.label}" for item in items]
    lines += [f"  - {k}" for k in kept]
    return lines

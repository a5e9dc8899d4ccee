"""The Rules page: Lead or Deal, when a referral qualifies, and how hard rf-desktop works at it.

Combinations that cannot work are not offered: lead rules are greyed out while rf-desktop creates deals
(and deal rules while it creates leads), with a tooltip saying why, and stage pickers list only the chosen
pipeline's stages. Switching between Lead and Deal carries the settings across (see `switch_mode`). The
first-run dialog reuses `ModeChooser` and `QualificationChooser` with its own draft.
"""

from __future__ import annotations

import dataclasses
from typing import Any

from PySide6.QtWidgets import (
    QButtonGroup,
    QCheckBox,
    QComboBox,
    QFormLayout,
    QGroupBox,
    QHBoxLayout,
    QRadioButton,
    QSpinBox,
    QVBoxLayout,
    QWidget,
)

from rf_desktop.core import rules
from rf_desktop.core.config import QualificationRule, Settings
from rf_desktop.core.schema import PipedriveSchema
from rf_desktop.gui.controller import AppController
from rf_desktop.gui.widgets.form_helpers import (
    INFO,
    IssueLabel,
    MessagePanel,
    buddy_label,
    hint_label,
    select_data,
    set_combo_items,
)
from rf_desktop.gui.widgets.settings_draft import DraftPage, SettingsDraft

# The closest rule in the other mode, when the chosen one cannot work there.
_COUNTERPART = {"lead_converted_stage": "deal_stage", "deal_stage": "lead_converted_stage"}


def switch_mode(settings: Settings, mode: str, schema: PipedriveSchema | None) -> tuple[Settings, list[str]]:
    """`settings` in the other mode, and what had to change to keep them working, in plain words:
    a rule that needs the other mode becomes its counterpart (or "none"), deals get a pipeline and stage,
    and labels are cleared (lead labels and deal labels are different things in Pipedrive)."""
    if mode == settings.mode:
        return settings, []
    notes: list[str] = []
    rule = settings.qualification
    if rule.kind not in rules.allowed_kinds(mode):
        kind = _COUNTERPART.get(rule.kind, "none")
        rule = dataclasses.replace(rule, kind=kind)
        needed = "leads" if mode == "deal" else "deals"
        notes.append(
            f"The qualification rule is now “{rules.RULE_TITLES[kind]}”: the previous one needs {needed}."
        )
    pipeline_id, stage_id = settings.pipeline_id, settings.stage_id
    if mode == "deal" and schema is not None and schema.pipelines:
        if schema.pipeline(pipeline_id) is None:
            pipeline_id = schema.pipelines[0].id
        stages = schema.stages_of(pipeline_id)
        if stages and all(s.id != stage_id for s in stages):
            stage_id = stages[0].id
    defaults = settings.defaults
    if defaults.label_ids:
        defaults = dataclasses.replace(defaults, label_ids=[])
        notes.append("The default labels were cleared: leads and deals have different labels in Pipedrive.")
    updated = dataclasses.replace(
        settings, mode=mode, qualification=rule, pipeline_id=pipeline_id, stage_id=stage_id, defaults=defaults
    )
    return updated, notes


class StagePicker(QWidget):
    """A pipeline and one of its stages, bound to two settings paths."""

    def __init__(
        self,
        draft: SettingsDraft,
        paths: tuple[str, str],
        labels: tuple[str, str],
        parent: QWidget | None = None,
    ) -> None:
        super().__init__(parent)
        pipeline_path, stage_path = paths
        pipeline_label, stage_label = labels
        self.draft = draft
        self.pipeline_path = pipeline_path
        self.stage_path = stage_path
        self.pipeline = QComboBox()
        self.stage = QComboBox()
        self.pipeline.currentIndexChanged.connect(self._pipeline_chosen)
        self.stage.currentIndexChanged.connect(
            lambda _i: self.draft.set(stage_path, self.stage.currentData())
        )
        self.pipeline_issue = IssueLabel(pipeline_path)
        self.stage_issue = IssueLabel(stage_path)
        form = QFormLayout(self)
        form.setRowWrapPolicy(QFormLayout.RowWrapPolicy.WrapLongRows)
        form.setContentsMargins(0, 0, 0, 0)
        form.addRow(buddy_label(pipeline_label, self.pipeline), _stacked(self.pipeline, self.pipeline_issue))
        form.addRow(buddy_label(stage_label, self.stage), _stacked(self.stage, self.stage_issue))
        # bound methods, not lambdas: Qt disconnects them when this widget goes, the draft may live on
        draft.changed.connect(self.load)
        draft.issuesChanged.connect(self._show_issues)
        draft.controller.schemaChanged.connect(self.load)
        self.load()
        self._show_issues(draft.issues)

    def load(self) -> None:
        schema = self.draft.schema()
        pipeline_id = self.draft.get(self.pipeline_path)
        stage_id = self.draft.get(self.stage_path)
        pipelines = [(p.name, p.id) for p in schema.pipelines] if schema else []
        stages = [(s.name, s.id) for s in schema.stages_of(pipeline_id)] if schema else []
        _fill(self.pipeline, [("Choose a pipeline…", None), *pipelines], pipeline_id)
        _fill(self.stage, [("Choose a stage…", None), *stages], stage_id)
        self.stage.setEnabled(pipeline_id is not None and bool(stages))

    def _pipeline_chosen(self) -> None:
        pipeline_id = self.pipeline.currentData()
        if pipeline_id == self.draft.get(self.pipeline_path):
            return
        schema = self.draft.schema()
        stages = schema.stages_of(pipeline_id) if schema else []
        # a stage of the old pipeline cannot stay chosen; the first stage is the likely intent
        self.draft.set_many(
            {self.pipeline_path: pipeline_id, self.stage_path: stages[0].id if stages else None}
        )

    def _show_issues(self, issues: list[Any]) -> None:
        self.pipeline_issue.show_issues(issues)
        self.stage_issue.show_issues(issues)


class ModeChooser(QGroupBox):
    """ "When someone is invited": create a Lead, or a Deal in a pipeline and stage."""

    def __init__(self, draft: SettingsDraft, parent: QWidget | None = None) -> None:
        super().__init__("When someone is invited", parent)
        self.draft = draft
        self.lead = QRadioButton("Create a &Lead (in the Leads Inbox)")
        self.deal = QRadioButton("Create a &Deal (in a pipeline)")
        self.group = QButtonGroup(self)
        self.group.addButton(self.lead)
        self.group.addButton(self.deal)
        self.group.buttonToggled.connect(self._toggled)
        self.placement = StagePicker(draft, ("pipeline_id", "stage_id"), ("&Pipeline:", "&Initial stage:"))
        self.notes = MessagePanel()
        column = QVBoxLayout(self)
        column.addWidget(self.lead)
        column.addWidget(self.deal)
        column.addWidget(self.placement)
        column.addWidget(self.notes)
        draft.changed.connect(self._load)
        self._load()

    def _toggled(self, button: QRadioButton, on: bool) -> None:
        if on:
            self.choose("lead" if button is self.lead else "deal")

    def choose(self, mode: str) -> None:
        if mode == self.draft.settings.mode:
            return
        updated, notes = switch_mode(self.draft.settings, mode, self.draft.schema())
        self.draft.edit(lambda _s: updated)
        if notes:
            self.notes.show_message(INFO, "Adjusted for the new choice:", "\n".join(notes))
        else:
            self.notes.clear()

    def _load(self) -> None:
        button = self.lead if self.draft.settings.mode == "lead" else self.deal
        if not button.isChecked():
            button.setChecked(True)
        self.placement.setVisible(self.draft.settings.mode == "deal")


class QualificationChooser(QGroupBox):
    """The four ways a referral can qualify, and "don't qualify automatically"; each with a plain
    sentence, the ones the mode rules out disabled with the reason."""

    def __init__(self, draft: SettingsDraft, parent: QWidget | None = None) -> None:
        super().__init__("When does a referral count as successful?", parent)
        self.draft = draft
        self.group = QButtonGroup(self)
        self.buttons: dict[str, QRadioButton] = {}
        self.descriptions: dict[str, Any] = {}
        column = QVBoxLayout(self)
        column.addWidget(
            hint_label(
                "When it does, rf-desktop qualifies the referral in Referral Factory (once), which makes the "
                "reward due to the person who referred."
            )
        )
        for number, kind in enumerate(rules.RULE_KINDS):
            # options numbered as in Referral Factory's own integration; the digit is the shortcut
            title = (
                f"&{number}  {rules.RULE_TITLES[kind]}" if kind != "none" else "Do&n't qualify automatically"
            )
            button = QRadioButton(title)
            button.toggled.connect(lambda on, k=kind: self._toggled(k, on))
            self.group.addButton(button)
            self.buttons[kind] = button
            self.descriptions[kind] = hint_label("")
            column.addWidget(button)
            column.addWidget(self.descriptions[kind])
        self.target = StagePicker(
            draft,
            ("qualification.pipeline_id", "qualification.stage_id"),
            ("Pipeline of that sta&ge:", "&Stage it must reach:"),
        )
        self.issue = IssueLabel("qualification.kind")
        column.addWidget(self.target)
        column.addWidget(self.issue)
        draft.changed.connect(self._load)
        draft.issuesChanged.connect(self.issue.show_issues)
        draft.controller.schemaChanged.connect(self._load)
        self._load()
        self.issue.show_issues(draft.issues)

    def _toggled(self, kind: str, on: bool) -> None:
        rule = self.draft.settings.qualification
        if not on or kind == rule.kind:
            return
        pipeline_id, stage_id = rule.pipeline_id, rule.stage_id
        if rules.needs_stage(kind) and pipeline_id is None:
            # start from the pipeline new deals go into: that is where the owner will look
            pipeline_id = self.draft.settings.pipeline_id
        self.draft.set("qualification", QualificationRule(kind, pipeline_id, stage_id))

    def _load(self) -> None:
        settings = self.draft.settings
        schema = self.draft.schema()
        allowed = rules.allowed_kinds(settings.mode)
        for kind, button in self.buttons.items():
            permitted = kind in allowed
            button.setEnabled(permitted)
            reason = rules.mode_error(QualificationRule(kind), settings.mode) or ""
            button.setToolTip(reason)
            self.descriptions[kind].setToolTip(reason)
            self.descriptions[kind].setEnabled(permitted)
            rule = settings.qualification if kind == settings.qualification.kind else QualificationRule(kind)
            self.descriptions[kind].setText(rules.describe(rule, schema))
        chosen = self.buttons[settings.qualification.kind]
        if not chosen.isChecked():
            chosen.setChecked(True)
        self.target.setVisible(rules.needs_stage(settings.qualification.kind))


class PaceEditor(QGroupBox):
    """How often rf-desktop looks for sign-ups, how much of the Pipedrive budget it may use, the log,
    and notifications."""

    def __init__(self, draft: SettingsDraft, parent: QWidget | None = None) -> None:
        super().__init__("Sync pace and budget", parent)
        self.draft = draft
        self.poll = _spin(1, 86_400, " seconds")
        self.poll.valueChanged.connect(lambda v: self.draft.set("sync.poll_seconds", v))
        self.share = _spin(0, 100, " %")
        self.share.valueChanged.connect(lambda v: self.draft.set("sync.watch_token_share", v / 100))
        self.capped = QCheckBox("&Cap rf-desktop's own Pipedrive use at")
        self.cap = _spin(0, 100_000_000, " tokens a day")
        self.cap.setSingleStep(1000)
        self.capped.toggled.connect(self._cap_edited)
        self.cap.valueChanged.connect(lambda _v: self._cap_edited(self.capped.isChecked()))
        self.retention = _spin(0, 3650, " days")
        self.retention.valueChanged.connect(lambda v: self.draft.set("sync.log_retention_days", v))
        self.notify_qualified = QCheckBox("Notify me when a referral &qualifies")
        self.notify_failed = QCheckBox("Notify me when a referral cannot be sen&t")
        self.notify_qualified.toggled.connect(lambda on: self.draft.set("sync.notify_qualified", on))
        self.notify_failed.toggled.connect(lambda on: self.draft.set("sync.notify_failed", on))
        cap_row = QHBoxLayout()
        cap_row.addWidget(self.capped)
        cap_row.addWidget(self.cap, 1)
        form = QFormLayout(self)
        form.setRowWrapPolicy(QFormLayout.RowWrapPolicy.WrapLongRows)
        form.setFieldGrowthPolicy(QFormLayout.FieldGrowthPolicy.FieldsStayAtSizeHint)
        rows = (
            ("Look for new sign-&ups every:", self.poll, "sync.poll_seconds", None),
            (
                "Conversion &watch may use:",
                self.share,
                "sync.watch_token_share",
                "Of Pipedrive's daily API budget, which your other tools share. The rest is kept for "
                "sending referrals.",
            ),
            (
                "",
                cap_row,
                "sync.daily_token_cap",
                "Optional: a hard limit for rf-desktop, whatever the plan allows.",
            ),
            ("&Keep the sync log for:", self.retention, "sync.log_retention_days", None),
        )
        self.issues: list[IssueLabel] = []
        for text, widget, path, hint in rows:
            if text:
                form.addRow(buddy_label(text, widget), widget)
            else:
                form.addRow(widget)
            # explanations and messages span the whole width, so they wrap instead of being cut off
            if hint:
                form.addRow(hint_label(hint))
            issue = IssueLabel(path)
            self.issues.append(issue)
            form.addRow(issue)
        form.addRow(self.notify_qualified)
        form.addRow(self.notify_failed)
        draft.changed.connect(self._load)
        draft.issuesChanged.connect(self._show_issues)
        self._load()
        self._show_issues(draft.issues)

    def _show_issues(self, issues: list[Any]) -> None:
        for label in self.issues:
            label.show_issues(issues)

    def _cap_edited(self, capped: bool) -> None:
        self.cap.setEnabled(capped)
        self.draft.set("sync.daily_token_cap", self.cap.value() if capped else None)

    def _load(self) -> None:
        sync = self.draft.settings.sync
        _set_value(self.poll, sync.poll_seconds)
        _set_value(self.share, round(sync.watch_token_share * 100))
        _set_checked(self.capped, sync.daily_token_cap is not None)
        if sync.daily_token_cap is not None:
            _set_value(self.cap, sync.daily_token_cap)
        elif self.cap.value() == 0:
            _set_value(self.cap, 10_000)
        self.cap.setEnabled(sync.daily_token_cap is not None)
        _set_value(self.retention, sync.log_retention_days)
        _set_checked(self.notify_qualified, sync.notify_qualified)
        _set_checked(self.notify_failed, sync.notify_failed)


class RulesPage(DraftPage):
    title = "Rules"
    icon_name = "rules"

    def __init__(self, controller: AppController, parent: QWidget | None = None) -> None:
        super().__init__(controller, parent)
        self.mode = ModeChooser(self.draft)
        self.qualification = QualificationChooser(self.draft)
        self.pace = PaceEditor(self.draft)
        for widget in (self.mode, self.qualification, self.pace):
            self.body.addWidget(widget)
        self.body.addStretch(1)


def _stacked(widget: QWidget, issue: IssueLabel) -> QWidget:
    cell = QWidget()
    column = QVBoxLayout(cell)
    column.setContentsMargins(0, 0, 0, 0)
    column.addWidget(widget)
    column.addWidget(issue)
    return cell


def _fill(combo: QComboBox, items: list[tuple[str, Any]], selected: Any) -> None:
    if [combo.itemData(i) for i in range(combo.count())] != [data for _text, data in items]:
        set_combo_items(combo, items, selected)
    else:
        select_data(combo, selected)


def _spin(low: int, high: int, suffix: str) -> QSpinBox:
    spin = QSpinBox()
    spin.setRange(low, high)
    spin.setSuffix(suffix)
    spin.setKeyboardTracking(True)
    return spin


def _set_value(spin: QSpinBox, value: int) -> None:
    if spin.value() != value:
        spin.blockSignals(True)
        spin.setValue(value)
        spin.blockSignals(False)


def _set_checked(box: QCheckBox, checked: bool) -> None:
    if box.isChecked() != checked:
        box.blockSignals(True)
        box.setChecked(checked)
        box.blockSignals(False)

"""The Rules page: Lead or Deal, the qualification options each mode allows, stage pickers limited to the
chosen pipeline, and the sync pace; every choice checked against what is saved."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from PySide6.QtWidgets import QComboBox
from pytestqt.qtbot import QtBot

from rf_desktop.core import rules
from rf_desktop.core.config import Settings
from rf_desktop.gui.controller import AppController
from rf_desktop.gui.pages.rules import RulesPage
from rf_desktop.gui.widgets.form_helpers import INFO
from tests.gui.test_connections_page import (
    WAIT_MS,
    click,
    collect_qt_garbage,  # noqa: F401 (autouse fixture)
)
from tests.gui.test_mapping_page import choose


@pytest.fixture
def page(sandbox_controller: AppController, qtbot: QtBot) -> Iterator[RulesPage]:
    opened = RulesPage(sandbox_controller)
    qtbot.addWidget(opened)
    opened.resize(800, 900)
    opened.show()
    qtbot.waitExposed(opened)
    yield opened
    opened.close()


def items(combo: QComboBox) -> list[str]:
    return [combo.itemText(i) for i in range(combo.count())]


def saved(page: RulesPage) -> Settings:
    return page.controller.settings()


def wait_saved(page: RulesPage, qtbot: QtBot) -> Settings:
    """Leaving the page saves at once (the same as waiting for the autosave)."""
    page.draft.flush()
    qtbot.waitUntil(lambda: page.draft.save_state == "saved", timeout=WAIT_MS)
    return saved(page)


def set_mode(page: RulesPage, qtbot: QtBot, mode: str) -> None:
    click(qtbot, page.mode.lead if mode == "lead" else page.mode.deal)
    assert page.draft.settings.mode == mode


@pytest.mark.parametrize("mode", ["lead", "deal"])
def test_each_mode_offers_only_the_rules_that_can_work_and_saves_each(
    page: RulesPage, qtbot: QtBot, mode: str
) -> None:
    set_mode(page, qtbot, mode)
    allowed = set(rules.allowed_kinds(mode))
    for kind, button in page.qualification.buttons.items():
        assert button.isEnabled() == (kind in allowed), kind
        if kind not in allowed:
            needed = "Create a Deal" if mode == "lead" else "Create a Lead"
            assert needed in button.toolTip()
    schema = page.controller.schema()
    for kind in rules.allowed_kinds(mode):
        click(qtbot, page.qualification.buttons[kind])
        picker = page.qualification.target
        assert picker.isVisible() == rules.needs_stage(kind)
        if rules.needs_stage(kind):
            choose(picker.pipeline, "Partnerships")
            partnerships = next(p for p in schema.pipelines if p.name == "Partnerships")
            assert items(picker.stage)[1:] == [s.name for s in schema.stages_of(partnerships.id)]
            choose(picker.stage, "Meeting Held")
        rule = wait_saved(page, qtbot).qualification
        assert rule.kind == kind
        if rules.needs_stage(kind):
            stage = schema.stage(rule.stage_id)
            assert stage is not None and stage.name == "Meeting Held"
            assert rule.pipeline_id == stage.pipeline_id
        # the one-line explanation under the chosen option names the stage
        assert page.qualification.descriptions[kind].text() == rules.describe(rule, schema)
    assert saved(page).mode == mode


def test_deals_need_a_pipeline_and_a_stage_of_that_pipeline(page: RulesPage, qtbot: QtBot) -> None:
    placement = page.mode.placement
    assert not placement.isVisible()
    set_mode(page, qtbot, "deal")
    assert placement.isVisible()
    # the first pipeline and its first stage are chosen for a start
    assert placement.pipeline.currentText() == "Sales pipeline"
    assert placement.stage.currentText() == "Qualified"
    choose(placement.pipeline, "Partnerships")
    assert items(placement.stage) == ["Choose a stage…", "Introduced", "Meeting Held", "Agreement Signed"]
    assert placement.stage.currentText() == "Introduced"
    choose(placement.stage, "Agreement Signed")
    settings = wait_saved(page, qtbot)
    schema = page.controller.schema()
    assert schema.pipeline(settings.pipeline_id).name == "Partnerships"
    assert schema.stage(settings.stage_id).name == "Agreement Signed"

    choose(placement.stage, "Choose a stage…")
    assert placement.stage_issue.isVisible()
    assert placement.stage_issue.text() == "Choose the stage new deals start in."
    assert page.save_status.text().startswith("Not saved yet.")


def test_switching_modes_carries_the_rule_across(page: RulesPage, qtbot: QtBot) -> None:
    click(qtbot, page.qualification.buttons["lead_converted_stage"])
    choose(page.qualification.target.pipeline, "Sales pipeline")
    choose(page.qualification.target.stage, "Proposal Made")
    set_mode(page, qtbot, "deal")
    rule = page.draft.settings.qualification
    assert rule.kind == "deal_stage"
    assert page.controller.schema().stage(rule.stage_id).name == "Proposal Made"
    assert page.qualification.buttons["deal_stage"].isChecked()
    assert page.mode.notes.kind == INFO
    assert "When a deal reaches a specific stage" in page.mode.notes.detail

    click(qtbot, page.qualification.buttons["deal_won"])
    set_mode(page, qtbot, "lead")
    assert page.draft.settings.qualification.kind == "none"
    assert page.qualification.buttons["none"].isChecked()
    assert wait_saved(page, qtbot).qualification.kind == "none"


def test_pace_budget_and_notifications(page: RulesPage, qtbot: QtBot) -> None:
    pace = page.pace
    pace.poll.selectAll()
    qtbot.keyClicks(pace.poll, "1")
    assert pace.issues[0].isVisible() and "2 seconds" in pace.issues[0].text()
    pace.poll.selectAll()
    qtbot.keyClicks(pace.poll, "120")
    assert not pace.issues[0].isVisible()
    pace.share.setValue(25)
    click(qtbot, pace.capped)
    assert pace.cap.isEnabled()
    pace.cap.setValue(20_000)
    click(qtbot, pace.notify_failed)
    sync = wait_saved(page, qtbot).sync
    assert (sync.poll_seconds, sync.watch_token_share, sync.daily_token_cap) == (120, 0.25, 20_000)
    assert (sync.notify_qualified, sync.notify_failed) == (True, False)

    click(qtbot, pace.capped)
    assert not pace.cap.isEnabled()
    assert wait_saved(page, qtbot).sync.daily_token_cap is None

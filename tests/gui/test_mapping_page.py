"""The Mapping page against the sandbox's Pipedrive schema: dropdowns, required fields, a field deleted in
Pipedrive, creating the Referral Code field, default values and the dry-run preview."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from PySide6.QtWidgets import QComboBox
from pytestqt.qtbot import QtBot

from rf_desktop.core.config import FieldMap, PipedriveSettings, ReferralFactorySettings, Settings
from rf_desktop.core.mapping_setup import NOT_SENT, referral_code_field
from rf_desktop.core.secrets import PD_TOKEN, RF_TOKEN
from rf_desktop.gui.controller import AppController
from rf_desktop.gui.pages.mapping import MappingPage
from rf_desktop.gui.widgets.form_helpers import ERROR, SUCCESS
from rf_desktop.sandbox.server import SandboxServer
from tests.gui.conftest import referral
from tests.gui.test_connections_page import (
    WAIT_MS,
    click,
    collect_qt_garbage,  # noqa: F401 (autouse fixture)
)

Runner = Any


def open_mapping(controller: AppController, qtbot: QtBot) -> MappingPage:
    page = MappingPage(controller)
    qtbot.addWidget(page)
    page.resize(900, 1000)
    page.show()
    qtbot.waitExposed(page)
    return page


@pytest.fixture
def connected(controller: AppController, sandbox: SandboxServer, run: Runner) -> AppController:
    """Tokens stored and the sandbox's addresses saved, nothing mapped yet (a set-up in progress). The
    addresses go straight into the store: incomplete settings cannot be saved through the controller."""
    run(controller.account.set_token(RF_TOKEN, sandbox.state.rf.token))
    run(controller.account.set_token(PD_TOKEN, sandbox.state.pd.token))
    controller.store.save_settings(
        Settings(
            referral_factory=ReferralFactorySettings(base_url=sandbox.rf_base_url, campaign_ids=[1]),
            pipedrive=PipedriveSettings(base_url=sandbox.pd_base_url),
        )
    )
    return controller


@pytest.fixture
def fresh_page(connected: AppController, qtbot: QtBot) -> Iterator[MappingPage]:
    page = open_mapping(connected, qtbot)
    yield page
    page.close()


@pytest.fixture
def configured_page(sandbox_controller: AppController, qtbot: QtBot) -> Iterator[MappingPage]:
    page = open_mapping(sandbox_controller, qtbot)
    yield page
    page.close()


def choose(combo: QComboBox, text: str) -> None:
    """Pick the item with this text, as a click in the open dropdown would."""
    index = combo.findText(text)
    assert index >= 0, f"{text!r} not in {[combo.itemText(i) for i in range(combo.count())]}"
    combo.setCurrentIndex(index)


def wait_for_fields(page: MappingPage, qtbot: QtBot) -> None:
    qtbot.waitUntil(
        lambda: page.controller.schema() is not None and page.grid.rows["code"].combo.isEnabled(),
        timeout=WAIT_MS,
    )


def test_dropdowns_fill_from_the_pipedrive_schema_and_required_mappings_are_checked(
    fresh_page: MappingPage, qtbot: QtBot
) -> None:
    page = fresh_page
    # nothing cached: opening the page fetches the fields, with the dropdowns disabled meanwhile
    assert not page.grid.rows["code"].combo.isEnabled()
    wait_for_fields(page, qtbot)
    code = page.grid.rows["code"].combo
    items = [code.itemText(i) for i in range(code.count())]
    assert items[0] == NOT_SENT
    assert {"Person: Name", "Person: Email", "Lead: Referral Code", "Lead: Plan Interest"} <= set(items)
    # the campaign's own form fields are offered on the left, the person referring grouped after them
    qtbot.waitUntil(lambda: "meta:Company" in page.grid.rows, timeout=WAIT_MS)
    sources = list(page.grid.rows)
    assert "meta:Company" in sources
    assert sources.index("meta:Company") < sources.index("referrer.first_name")

    required = page.grid.required_issue
    # the account's own Referral Code field is chosen by itself; unmapped, the page asks for it again
    assert code.currentText() == "Lead: Referral Code" and not required.isVisible()
    choose(code, NOT_SENT)
    assert required.isVisible() and "Referral Code" in required.text()
    choose(code, "Lead: Referral Code")
    assert "Referral Code" not in required.text()
    choose(page.grid.rows["email"].combo, NOT_SENT)
    assert "Map 'Email'" in required.text()
    choose(page.grid.rows["email"].combo, "Person: Email")
    assert not required.isVisible()
    mapped = {(m.source, m.target) for m in page.draft.settings.mappings}
    code_field = referral_code_field(page.controller.schema())
    assert code_field is not None
    assert {
        ("first_name", "person:name"),
        ("email", "person:email"),
        ("code", f"item:{code_field.code}"),
    } <= mapped


def test_a_field_deleted_in_pipedrive_is_flagged_after_refresh(
    configured_page: MappingPage, sandbox: SandboxServer, qtbot: QtBot
) -> None:
    page = configured_page
    code_target = page.draft.settings.referral_code_target()
    assert code_target is not None
    row = page.grid.rows["code"]
    assert not row.issue.isVisible()

    code = code_target.partition(":")[2]
    httpx.delete(f"{sandbox.admin_url}/pd/fields/deal/{code}").raise_for_status()
    click(qtbot, page.refresh_button)
    qtbot.waitUntil(lambda: row.issue.isVisible(), timeout=WAIT_MS)
    assert "The Pipedrive field 'Referral Code' was deleted" in row.issue.text()
    assert row.combo.currentText() == "Lead: Referral Code (deleted in Pipedrive)"
    # nothing is saved while the mapping points at a field that no longer exists
    assert page.controller.settings().referral_code_target() == code_target


def test_creating_the_referral_code_field_maps_it(
    connected: AppController, sandbox: SandboxServer, qtbot: QtBot
) -> None:
    httpx.post(f"{sandbox.admin_url}/seed", json={"with_referral_fields": False}).raise_for_status()
    page = open_mapping(connected, qtbot)
    try:
        wait_for_fields(page, qtbot)
        box = page.create_fields
        assert box.isVisible()
        click(qtbot, box.also_optional)
        click(qtbot, box.button)
        qtbot.waitUntil(lambda: box.panel.kind == SUCCESS, timeout=WAIT_MS)

        schema = connected.schema()
        created = {f.name: f.code for f in schema.deal_fields if f.is_custom}
        assert "Referral Code" in created and "Referral Link" in created
        mapped = {m.source: m.target for m in page.draft.settings.mappings}
        assert mapped["code"] == f"item:{created['Referral Code']}"
        assert mapped["referrer.first_name"] == f"item:{created['Referrer First Name']}"
        assert mapped["referrer.email"] == f"item:{created['Referrer Email Address']}"
        assert mapped["campaign_name"] == f"item:{created['Referral Campaign']}"
        assert mapped["url"] == f"item:{created['Referral Link']}"
        assert page.grid.rows["code"].combo.currentText() == "Lead: Referral Code"
        assert not page.grid.required_issue.isVisible()
        assert not box.isVisible()
    finally:
        page.close()


def test_a_failed_fetch_shows_what_went_wrong(
    connected: AppController, sandbox: SandboxServer, run: Runner, qtbot: QtBot
) -> None:
    run(connected.account.set_token(PD_TOKEN, "a-token-pipedrive-refuses"))
    page = open_mapping(connected, qtbot)
    try:
        qtbot.waitUntil(lambda: page.error_panel.isVisible(), timeout=WAIT_MS)
        assert page.error_panel.kind == ERROR
        assert "Personal preferences" in page.error_panel.detail
        assert page.refresh_button.isEnabled()
        assert not page.busy.isVisible()
    finally:
        page.close()


def test_the_title_is_a_template_with_a_live_example(configured_page: MappingPage, qtbot: QtBot) -> None:
    editor = configured_page.title_editor
    editor.combo.setCurrentIndex(editor.combo.findText("{source}"))
    assert configured_page.draft.settings.title == "{source}"
    assert editor.example.text() == "Example: Referred"
    editor.combo.setEditText("")
    qtbot.keyClicks(editor.combo.lineEdit(), "Referral: {first_name} {nope}")
    assert editor.issue.isVisible()
    assert "{nope}" in editor.issue.text()
    editor.combo.setEditText("Referral: {first_name}")
    assert editor.example.text() == "Example: Referral: Alex"
    assert not editor.issue.isVisible()


def test_referrer_rows_follow_the_attach_checkbox(configured_page: MappingPage, qtbot: QtBot) -> None:
    grid = configured_page.grid
    referrer = grid.rows["referrer.email"]
    assert grid.attach_referrer.isChecked() and referrer.combo.isEnabled()
    click(qtbot, grid.attach_referrer)
    assert configured_page.draft.settings.attach_referrer is False
    assert not referrer.combo.isEnabled()
    assert grid.rows["email"].combo.isEnabled()


def test_defaults_duplicates_and_a_fixed_enum_value_are_saved(
    configured_page: MappingPage, qtbot: QtBot
) -> None:
    page = configured_page
    defaults = page.defaults
    owners = [defaults.owner.itemText(i) for i in range(defaults.owner.count())]
    assert "Sam Owner" in owners
    choose(defaults.owner, "Sam Owner")
    labels = [defaults.labels.item(i).text() for i in range(defaults.labels.count())]
    assert labels == ["Hot", "Warm", "Cold"]
    qtbot.keyClicks(defaults.value, "250")
    defaults.currency.setEditText("usd")
    choose(defaults.visible_to, "Entire company")

    click(qtbot, defaults.add_button)
    row = defaults.fixed_rows[-1]
    choose(row.field_combo, "Lead: Plan Interest")
    assert row.value_stack.currentWidget() is row.option
    assert [row.option.itemText(i) for i in range(row.option.count())] == ["Starter", "Team", "Enterprise"]
    choose(row.option, "Team")
    click(qtbot, page.duplicates.buttons["keep"])

    qtbot.waitUntil(lambda: page.controller.settings().duplicates == "keep", timeout=WAIT_MS)
    saved = page.controller.settings().defaults
    assert saved.owner_id == 1
    assert (saved.value, saved.currency, saved.visible_to) == (250.0, "USD", 7)
    plan = next(f for f in page.controller.schema().deal_fields if f.name == "Plan Interest")
    assert saved.fields == {f"item:{plan.code}": "Team"}
    assert page.save_status.text() == "All changes saved. Nothing is sent until you press Start syncing."


def test_the_preview_shows_what_one_referral_would_create(configured_page: MappingPage, qtbot: QtBot) -> None:
    page = configured_page
    page.controller.store.record_referral(
        referral(
            7, first_name="Nina", email="nina@example.com", code="NINA7", meta={"Team size": "about ten"}
        )
    )
    preview = page.preview
    preview.reload_referrals()
    choose(preview.referral, "Nina <nina@example.com> (Spring Referral Campaign)")
    rows = {
        preview.table.item(r, 0).text(): (preview.table.item(r, 1).text(), preview.table.item(r, 2).text())
        for r in range(preview.table.rowCount())
    }
    assert rows["Person: Name"] == ("Nina", "First Name")
    assert rows["Person: Email"] == ("nina@example.com", "Email")
    assert rows["Lead: Title"][1] == "Title"
    assert rows["Lead: Referral Code"] == ("NINA7", "Referral Code")
    assert preview.panel.kind == SUCCESS

    # a form field sent to a number field: the preview shows the conversion error on that field
    team_size = next(f for f in page.controller.schema().deal_fields if f.name == "Team Size")
    page.draft.set(
        "mappings", [*page.draft.settings.mappings, FieldMap("meta:Team size", f"item:{team_size.code}")]
    )
    assert preview.panel.kind == ERROR
    bad = next(
        r for r in range(preview.table.rowCount()) if preview.table.item(r, 0).text() == "Lead: Team Size"
    )
    assert preview.table.item(bad, 1).text() == "about ten"
    assert "Team Size" in preview.table.item(bad, 0).toolTip()


def test_while_fetching_the_dropdowns_wait_and_a_busy_indicator_shows(
    configured_page: MappingPage, sandbox: SandboxServer, qtbot: QtBot
) -> None:
    page = configured_page
    httpx.put(f"{sandbox.admin_url}/faults/pd", json={"latency_ms": 300}).raise_for_status()
    click(qtbot, page.refresh_button)
    qtbot.waitUntil(page.busy.isVisible, timeout=WAIT_MS)
    assert not page.refresh_button.isEnabled()
    assert not page.grid.rows["email"].combo.isEnabled()
    qtbot.waitUntil(lambda: not page.busy.isVisible(), timeout=WAIT_MS)
    assert page.refresh_button.isEnabled()
    assert page.grid.rows["email"].combo.isEnabled()
    assert not page.error_panel.isVisible()


def test_attaching_the_referrer_waits_until_something_about_them_is_mapped(
    configured_page: MappingPage, qtbot: QtBot
) -> None:
    grid = configured_page.grid
    referrer_rows = [row for source, row in grid.rows.items() if source.startswith("referrer.")]
    assert referrer_rows and grid.attach_referrer.isEnabled()
    for row in referrer_rows:
        choose(row.combo, NOT_SENT)

    assert not grid.attach_referrer.isEnabled() and not grid.attach_referrer.isChecked()
    assert grid.attach_hint.isVisible() and "Nothing about the person referring is mapped" in grid.attach_hint.text()
    assert all(row.combo.isEnabled() for row in referrer_rows)  # free to map one

    email = grid.rows["referrer.email"].combo
    choose(email, "Lead: Referrer Email Address")
    assert grid.attach_referrer.isEnabled() and grid.attach_referrer.isChecked()
    assert not grid.attach_hint.isVisible()
    assert configured_page.draft.settings.attach_referrer


def test_the_default_owner_is_named_in_plain_words(configured_page: MappingPage) -> None:
    owner = configured_page.defaults.owner
    assert owner.itemText(0) == "You (the Pipedrive user you connected)"
    assert all("token" not in owner.itemText(i) for i in range(owner.count()))

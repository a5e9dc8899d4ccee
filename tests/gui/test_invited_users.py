"""The Invited users page, driven as a person would: search, filter, sort, retry, copy, open in Pipedrive."""

from __future__ import annotations

import pytest
from PySide6.QtCore import QModelIndex, QPoint, Qt, QUrl
from PySide6.QtGui import QDesktopServices, QGuiApplication
from PySide6.QtWidgets import QApplication
from pytestqt.qtbot import QtBot

from rf_desktop.core.store import Reason
from rf_desktop.core.trial.steps import TEST_REMOVED
from rf_desktop.gui import theme
from rf_desktop.gui.controller import AppController
from rf_desktop.gui.models.referrals import COLUMN_INDEX, LINK_ROLE
from rf_desktop.gui.pages.invited_users import InvitedUsersPage
from tests.gui.conftest import Runner, bulk_referrals, referral, tooltip_at


@pytest.fixture
def page(controller: AppController, qtbot: QtBot) -> InvitedUsersPage:
    made = InvitedUsersPage(controller)
    qtbot.addWidget(made)
    made.resize(1100, 600)
    made.show()
    qtbot.waitExposed(made)
    return made


@pytest.fixture
def opened_urls(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    urls: list[str] = []

    def record(url: QUrl) -> bool:
        urls.append(url.toString())
        return True

    monkeypatch.setattr(QDesktopServices, "openUrl", record)
    return urls


def shown_cell(page: InvitedUsersPage, row: int, key: str) -> QModelIndex:
    """The cell as the table paints it (the table copies in the rows in view as it paints them)."""
    page.table.fill_rows_in_view()
    return page.shown.index(row, COLUMN_INDEX[key])


def cell(page: InvitedUsersPage, row: int, key: str) -> str:
    return str(shown_cell(page, row, key).data())


def click_cell(qtbot: QtBot, page: InvitedUsersPage, row: int, key: str, double: bool = False) -> None:
    rect = page.table.visualRect(page.shown.index(row, COLUMN_INDEX[key]))
    # QTest's double click sends no press of its own, and the view only counts a double click on the cell
    # it saw pressed: click once first, as a hand would
    qtbot.mouseClick(page.table.viewport(), Qt.MouseButton.LeftButton, pos=rect.center())
    if double:
        qtbot.mouseDClick(page.table.viewport(), Qt.MouseButton.LeftButton, pos=rect.center())


def test_typing_in_the_search_box_filters_the_table(controller: AppController, qtbot: QtBot) -> None:
    bulk_referrals(controller.store, 40)
    controller.store.record_referral(referral(41, first_name="Zoë", email="zoe.mueller@example.org"))
    page = InvitedUsersPage(controller)
    qtbot.addWidget(page)
    page.resize(1100, 400)
    page.show()
    qtbot.waitExposed(page)
    assert page.model.rowCount() == 41

    qtbot.keyClicks(page.search, "mueller")
    qtbot.waitUntil(lambda: page.model.rowCount() == 1)
    assert cell(page, 0, "name") == "Zoë"

    page.search.clear()
    qtbot.waitUntil(lambda: page.model.rowCount() == 41)


def test_the_status_filter_shows_counts_and_filters(controller: AppController, qtbot: QtBot) -> None:
    bulk_referrals(controller.store, 12)
    for rf_user_id in (2, 3, 5):
        controller.store.update(rf_user_id, status="failed", status_reason="Pipedrive refused it")
    controller.store.update(4, status="qualified")
    page = InvitedUsersPage(controller)
    qtbot.addWidget(page)
    page.resize(1100, 400)
    page.show()
    qtbot.waitExposed(page)

    labels = [page.status_filter.itemText(i) for i in range(page.status_filter.count())]
    assert labels == [
        "All (12)", "To send (8)", "In Pipedrive (0)", "Qualified (1)", "Not sent (0)", "Needs attention (3)",
        "Test (0)",
    ]  # fmt: skip
    page.status_filter.setCurrentIndex(labels.index("Needs attention (3)"))
    assert page.model.rowCount() == 3
    assert {cell(page, r, "status") for r in range(3)} == {"Needs attention"}
    # the reason is in the table itself, not only in a tooltip
    assert {cell(page, r, "reason") for r in range(3)} == {"Pipedrive refused it"}
    tooltip = tooltip_at(page.table, shown_cell(page, 0, "status"))
    assert tooltip.startswith("Needs attention: Sending it or qualifying it failed")
    assert "Pipedrive refused it" in tooltip and "Next: " in tooltip


def test_clicking_a_column_header_sorts_by_it(controller: AppController, page: InvitedUsersPage, qtbot: QtBot) -> None:
    emails = ("bea@example.com", "adam@example.com", "cy@example.com")
    controller.store.record_referrals(referral(n, email=email) for n, email in enumerate(emails, 1))
    page.model.refresh()
    header = page.table.horizontalHeader()
    x = header.sectionViewportPosition(COLUMN_INDEX["email"]) + 10
    qtbot.mouseClick(header.viewport(), Qt.MouseButton.LeftButton, pos=QPoint(x, header.height() // 2))
    first = cell(page, 0, "email")
    qtbot.mouseClick(header.viewport(), Qt.MouseButton.LeftButton, pos=QPoint(x, header.height() // 2))
    second = cell(page, 0, "email")
    assert {first, second} == {"adam@example.com", "cy@example.com"}
    assert page.model.sort_column == COLUMN_INDEX["email"]


def test_retry_a_failed_referral(
    sandbox_controller: AppController, qtbot: QtBot, run: Runner
) -> None:
    controller = sandbox_controller
    controller.store.record_referral(referral(900, email=""))
    controller.store.update(900, status="failed", status_reason="No email address", permanent=True)
    controller.store.record_referral(referral(901))
    controller.start_engine()
    controller.pause()  # the retry is recorded at once; the sync itself is not what this test is about
    page = InvitedUsersPage(controller)
    qtbot.addWidget(page)
    page.status_filter.setCurrentIndex(5)  # Needs attention
    assert page.model.rowCount() == 1
    page.table.selectRow(0)
    assert page.retry_button.isEnabled()

    qtbot.mouseClick(page.retry_button, Qt.MouseButton.LeftButton)

    assert controller.store.get(900).status == "pending"  # type: ignore[union-attr]
    qtbot.waitUntil(lambda: page.model.rowCount() == 0)  # no longer failed: the view follows
    qtbot.waitUntil(lambda: page.status_filter.itemText(5) == "Needs attention (0)")


def test_retry_is_offered_only_for_failed_or_skipped_rows(controller: AppController, qtbot: QtBot) -> None:
    bulk_referrals(controller.store, 2)
    page = InvitedUsersPage(controller)
    qtbot.addWidget(page)
    page.table.selectRow(0)
    assert not page.retry_button.isEnabled()
    assert page.retry_selection() == 0


def test_copy_rows_as_tab_separated_text(controller: AppController, page: InvitedUsersPage, qtbot: QtBot) -> None:
    controller.store.record_referral(referral(7, first_name="Łukasz", email="lukasz@example.com"))
    controller.store.update(7, status="waiting", person_id=31, lead_id="0b9f6a52-8d7e-4c1a-9f3e-2a1b3c4d5e6f")
    page.model.refresh()
    page.table.setFocus()
    page.table.selectRow(0)

    qtbot.keyClick(page.table, Qt.Key.Key_C, Qt.KeyboardModifier.ControlModifier)

    copied = QGuiApplication.clipboard().text()
    fields = copied.split("\t")
    assert fields[:4] == ["Łukasz", "lukasz@example.com", "Alice", "Spring Referral Campaign"]
    assert fields[5:8] == ["31", "0b9f6a52-8d7e-4c1a-9f3e-2a1b3c4d5e6f", ""]
    assert fields[8] == "In Pipedrive: Person and lead or deal created; watching Pipedrive for the conversion."


def test_person_lead_and_deal_open_in_pipedrive(
    sandbox_controller: AppController, qtbot: QtBot, opened_urls: list[str]
) -> None:
    controller = sandbox_controller
    controller.store.record_referral(referral(5))
    controller.store.update(5, status="waiting", person_id=12, lead_id="abc-123", deal_id=None)
    page = InvitedUsersPage(controller)
    qtbot.addWidget(page)
    page.resize(1100, 400)
    page.show()
    qtbot.waitExposed(page)
    base = controller.settings().pipedrive.base_url.rstrip("/")

    click_cell(qtbot, page, 0, "person")  # the id cell is a link
    assert opened_urls == [f"{base}/person/12"]

    click_cell(qtbot, page, 0, "name", double=True)  # a double click opens the lead (no deal yet)
    assert opened_urls[-1] == f"{base}/leads/inbox/abc-123"

    page.table.selectRow(0)
    assert not page.open_actions["deal"].isEnabled()
    page.open_actions["person"].trigger()
    assert opened_urls[-1] == f"{base}/person/12"


def test_live_changes_reach_the_table(controller: AppController, page: InvitedUsersPage, qtbot: QtBot) -> None:
    assert page.empty.isVisible()
    assert "No referrals yet" in page.empty.text()
    controller.store.record_referral(referral(1, first_name="Emma"))
    controller.referralChanged.emit(1)
    qtbot.waitUntil(lambda: page.model.rowCount() == 1)
    assert not page.empty.isVisible()

    controller.store.update(1, status="qualified")
    controller.referralChanged.emit(1)
    qtbot.waitUntil(lambda: cell(page, 0, "status") == "Qualified")
    qtbot.waitUntil(lambda: page.status_filter.itemText(3) == "Qualified (1)")


def test_a_search_with_no_match_says_so(controller: AppController, page: InvitedUsersPage, qtbot: QtBot) -> None:
    bulk_referrals(controller.store, 3)
    page.model.refresh()
    page.focus_search()
    assert page.search.hasFocus()
    qtbot.keyClicks(page.search, "nobody-like-this")
    qtbot.waitUntil(lambda: page.model.rowCount() == 0)
    assert page.empty.isVisible()
    assert page.empty.text() == "No referrals match the search and filter."


def test_context_menu_offers_the_row_actions(controller: AppController, page: InvitedUsersPage) -> None:
    bulk_referrals(controller.store, 2)
    controller.store.update(1, status="failed")
    controller.store.update(2, person_id=8)
    page.model.refresh()

    def enabled_actions(status: str) -> list[str]:
        row = next(r for r in range(2) if cell(page, r, "status") == status)
        menu = page.context_menu_at(page.table.visualRect(page.shown.index(row, 0)).center())
        assert menu is not None
        assert page.table.selectionModel().isRowSelected(row)
        return [a.text() for a in menu.actions() if a.isEnabled() and not a.isSeparator()]

    assert enabled_actions("Needs attention") == ["Retry", "Copy row"]
    assert enabled_actions("To send") == ["Copy row", "Open person"]


def test_the_details_pane_tells_the_selected_referrals_story_and_retries_it(
    sandbox_controller: AppController, qtbot: QtBot, opened_urls: list[str]
) -> None:
    controller = sandbox_controller
    store = controller.store
    store.record_referral(referral(31, first_name="Ana", email="ana@example.com"))
    store.log("info", "recorded", "New sign-up from Referral Factory.", rf_user_id=31)
    store.log("info", "person created", "Created Pipedrive person 77.", rf_user_id=31, person_id=77)
    store.log("error", "failed", "Pipedrive refused the lead: no title.", rf_user_id=31)
    store.log("info", "recorded", "Someone else's row.", rf_user_id=32)
    store.update(31, status="failed", status_reason="Pipedrive refused the lead: no title.", permanent=1, person_id=77)
    controller.start_engine()
    controller.pause()
    page = InvitedUsersPage(controller)
    qtbot.addWidget(page)
    page.resize(1100, 700)
    page.show()
    qtbot.waitExposed(page)
    assert "Select a referral" in page.details.heading.text()

    click_cell(qtbot, page, 0, "email")

    details = page.details
    assert "Ana" in details.heading.text() and "ana@example.com" in details.heading.text()
    assert "Needs attention" in details.state.text()
    assert details.reason.text() == "Why: Pipedrive refused the lead: no title."
    assert "press Retry" in details.next_step.text()
    timeline = [details.timeline.item(i).text() for i in range(details.timeline.count())]
    assert len(timeline) == 3  # this referral's rows only, oldest first
    assert timeline[0].endswith("Recorded: New sign-up from Referral Factory.")
    assert timeline[-1].endswith("Failed: Pipedrive refused the lead: no title.")

    details.links.linkActivated.emit("person:77")  # as a click on the link does
    assert opened_urls == [f"{controller.settings().pipedrive.base_url.rstrip('/')}/person/77"]

    assert details.retry_button.isEnabled()
    qtbot.mouseClick(details.retry_button, Qt.MouseButton.LeftButton)
    assert store.get(31).status == "pending"  # type: ignore[union-attr]
    qtbot.waitUntil(lambda: "To send" in details.state.text())
    last_line = lambda: details.timeline.item(details.timeline.count() - 1).text()  # noqa: E731
    qtbot.waitUntil(lambda: last_line().endswith("Retry requested by the owner."))
    assert not details.retry_button.isEnabled()


def test_a_cleaned_up_test_referral_says_so_and_links_nowhere(
    controller: AppController, page: InvitedUsersPage, qtbot: QtBot, opened_urls: list[str]
) -> None:
    """After the test wizard's clean-up, the test referral's Pipedrive records no longer exist."""
    controller.store.record_referral(referral(50, first_name="Test", is_test=True))
    controller.store.update(
        50,
        status="skipped",
        status_reason=TEST_REMOVED,
        reason_kind=Reason.TEST_REMOVED,
        permanent=1,
        person_id=5,
        lead_id="0b9f6a52-aaaa",
    )
    controller.referralChanged.emit(50)
    qtbot.waitUntil(lambda: page.model.rowCount() == 1)
    assert cell(page, 0, "status") == "Test"
    assert "removed" in cell(page, 0, "reason") and "Skipped" not in cell(page, 0, "reason")
    assert shown_cell(page, 0, "person").data(LINK_ROLE) is None

    click_cell(qtbot, page, 0, "person")
    click_cell(qtbot, page, 0, "name", double=True)
    assert opened_urls == []
    assert not page.open_button.isEnabled()
    assert not page.retry_button.isEnabled()
    assert "removed its records" in page.details.links.text()
    assert "<a " not in page.details.links.text()
    qtbot.waitUntil(lambda: page.status_filter.itemText(page.status_filter.count() - 1) == "Test (1)")
    assert page.status_filter.itemText(4) == "Not sent (0)"


def test_switching_to_dark_recolours_the_rows(controller: AppController, page: InvitedUsersPage, qtbot: QtBot) -> None:
    controller.store.record_referral(referral(1))
    controller.store.update(1, status="failed", status_reason="Pipedrive refused it")
    page.model.refresh()
    status = shown_cell(page, 0, "status")
    before = status.data(Qt.ItemDataRole.ForegroundRole)
    application = QApplication.instance()
    assert isinstance(application, QApplication)
    palette = application.palette()
    try:
        application.setPalette(theme.light_palette() if theme.is_dark() else theme.dark_palette())
        qtbot.waitUntil(lambda: status.data(Qt.ItemDataRole.ForegroundRole) != before)
    finally:
        application.setPalette(palette)

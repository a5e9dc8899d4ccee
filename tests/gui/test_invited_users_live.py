"""New referrals arriving at the top of Invited users while the owner is pointing at, or has selected, a
row: the selection stays on its referral and the row under the pointer stays under it."""

from __future__ import annotations

import pytest
from PySide6.QtCore import QPoint, Qt
from pytestqt.qtbot import QtBot

from rf_desktop.gui.controller import AppController
from rf_desktop.gui.models.referrals import REFERRAL_ROLE
from rf_desktop.gui.pages.invited_users import InvitedUsersPage
from tests.gui.conftest import bulk_referrals


@pytest.fixture
def page(controller: AppController, qtbot: QtBot) -> InvitedUsersPage:
    bulk_referrals(controller.store, 200)
    made = InvitedUsersPage(controller)
    qtbot.addWidget(made)
    made.resize(1100, 600)
    made.show()
    qtbot.waitExposed(made)
    return made


def referral_at(page: InvitedUsersPage, position: QPoint) -> int:
    page.table.fill_rows_in_view()  # as the next paint does
    return int(page.table.indexAt(position).data(REFERRAL_ROLE).rf_user_id)


def arrive(controller: AppController, page: InvitedUsersPage, qtbot: QtBot, count: int) -> None:
    """`count` new sign-ups recorded by the sync, announced as the engine announces them."""
    start = controller.store.count() + 1
    bulk_referrals(controller.store, count, start=start)
    for rf_user_id in range(start, start + count):
        controller.referralChanged.emit(rf_user_id)
    qtbot.waitUntil(lambda: page.model.rowCount() == start + count - 1)


def test_the_row_under_the_pointer_and_the_selection_stay_put(
    controller: AppController, page: InvitedUsersPage, qtbot: QtBot
) -> None:
    viewport = page.table.viewport()
    pointer = page.table.visualRect(page.shown.index(5, 0)).center()
    qtbot.mouseMove(viewport, pointer)
    qtbot.mouseClick(viewport, Qt.MouseButton.LeftButton, pos=pointer)
    pointed = referral_at(page, pointer)
    assert [r.rf_user_id for r in page.selected_referrals()] == [pointed] == [195]

    arrive(controller, page, qtbot, 3)

    assert referral_at(page, pointer) == pointed, "the row under the pointer did not move away"
    assert [r.rf_user_id for r in page.selected_referrals()] == [pointed]
    qtbot.mouseClick(viewport, Qt.MouseButton.LeftButton, pos=pointer)
    assert [r.rf_user_id for r in page.selected_referrals()] == [pointed], "a click selects the same person"
    page.table.scrollToTop()
    assert referral_at(page, QPoint(5, 5)) == 203, "the new rows are there, above"


def test_at_the_top_with_the_pointer_elsewhere_new_rows_come_into_view(
    controller: AppController, page: InvitedUsersPage, qtbot: QtBot
) -> None:
    page.table.selectRow(2)
    selected = [r.rf_user_id for r in page.selected_referrals()]
    qtbot.mouseMove(page.table.viewport())
    qtbot.mouseMove(page.search)  # away from the rows

    arrive(controller, page, qtbot, 2)

    assert referral_at(page, QPoint(5, 5)) == 202, "the newest sign-up shows at the top"
    assert [r.rf_user_id for r in page.selected_referrals()] == selected == [198]


def test_rows_scrolled_to_stay_in_view(controller: AppController, page: InvitedUsersPage, qtbot: QtBot) -> None:
    page.table.scrollTo(page.shown.index(100, 0), page.table.ScrollHint.PositionAtTop)
    qtbot.mouseMove(page.search)
    top = referral_at(page, QPoint(5, 5))
    assert top == 100

    arrive(controller, page, qtbot, 4)

    assert referral_at(page, QPoint(5, 5)) == top


def test_the_first_referrals_show_from_the_top_even_under_the_pointer(
    controller: AppController, qtbot: QtBot
) -> None:
    empty = InvitedUsersPage(controller)
    qtbot.addWidget(empty)
    empty.resize(1100, 600)
    empty.show()
    qtbot.waitExposed(empty)
    qtbot.mouseMove(empty.table.viewport())

    arrive(controller, empty, qtbot, 50)

    assert referral_at(empty, QPoint(5, 5)) == 50

"""The Invited users table paints from `ShownRows`, a copy of the rows in view in Qt's own item storage: it
shows what the referral model holds, follows its inserts, changes, re-sorts and resets, holds only the rows
in view, and a paint calls no Python."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from PySide6.QtCore import Qt
from PySide6.QtGui import QStandardItemModel
from pytestqt.modeltest import ModelTester
from pytestqt.qtbot import QtBot

from rf_desktop.core.store import Store
from rf_desktop.gui.models.referrals import (
    ALL_COLUMNS,
    COLUMN_INDEX,
    LINK_ROLE,
    REFERRAL_ROLE,
    ReferralTableModel,
)
from rf_desktop.gui.models.shown_rows import ShownRows
from rf_desktop.gui.widgets.filling_table import FillingTableView
from tests.gui.conftest import bulk_referrals, referral, tooltip_at

STATUS = COLUMN_INDEX["status"]
ROLES = (
    Qt.ItemDataRole.DisplayRole, Qt.ItemDataRole.ForegroundRole, Qt.ItemDataRole.FontRole,
    Qt.ItemDataRole.DecorationRole, LINK_ROLE, REFERRAL_ROLE,
)  # fmt: skip


class Table:
    """The referral model, its shown rows and a table view over them, as the Invited users page has them."""

    def __init__(self, store: Store, qtbot: QtBot, **model_options: int) -> None:
        self.model = ReferralTableModel(store, **model_options)
        self.shown = ShownRows(self.model)
        self.view = FillingTableView()
        self.view.verticalHeader().setDefaultSectionSize(20)
        self.view.setModel(self.shown)
        qtbot.addWidget(self.view)
        self.view.resize(900, 300)  # about 13 rows in view
        self.view.show()
        qtbot.waitExposed(self.view)
        self.view.fill_rows_in_view()

    def rows_in_view(self) -> range:
        last = self.view.rowAt(self.view.viewport().height() - 1)
        return range(self.view.rowAt(0), (last if last >= 0 else self.shown.rowCount() - 1) + 1)

    def status(self, row: int) -> str:
        return str(self.shown.index(row, STATUS).data())

    def referral_id(self, row: int) -> int:
        return int(self.shown.index(row, 0).data(REFERRAL_ROLE).rf_user_id)

    def refresh(self, store: Store, *rf_user_ids: int) -> None:
        self.model.note_changed(*rf_user_ids)
        self.model.refresh()


@pytest.fixture
def table(store: Store, qtbot: QtBot) -> Iterator[Table]:
    bulk_referrals(store, 300)
    yield Table(store, qtbot)


def test_the_rows_in_view_show_what_the_model_holds(table: Table) -> None:
    for row in table.rows_in_view():
        for column in ALL_COLUMNS:
            for role in ROLES:
                expected = table.model.index(row, column).data(role)
                shown = table.shown.index(row, column).data(role)
                if role == Qt.ItemDataRole.DecorationRole and expected is not None:
                    assert shown.cacheKey() == expected.cacheKey()
                else:
                    assert shown == expected, (row, column, role)
    assert table.shown.headerData(STATUS, Qt.Orientation.Horizontal) == "Status"


def test_a_tooltip_is_asked_for_when_the_pointer_rests_on_its_cell(table: Table, store: Store) -> None:
    store.update(table.referral_id(1), status="failed", status_reason="Pipedrive refused it")
    table.refresh(store, table.referral_id(1))
    status = table.shown.index(1, STATUS)
    assert status.data(Qt.ItemDataRole.ToolTipRole) is None  # not worked out for every copied cell
    assert tooltip_at(table.view, status) == table.model.index(1, STATUS).data(Qt.ItemDataRole.ToolTipRole)
    assert "Pipedrive refused it" in tooltip_at(table.view, status)
    assert table.shown.tooltip(1, COLUMN_INDEX["deal"]) is None  # no deal: no tooltip


def test_a_paint_reads_nothing_from_python(table: Table, monkeypatch: pytest.MonkeyPatch) -> None:
    # Qt answers the view from its item storage: no override of what a paint asks a model
    for name in ("data", "multiData", "rowCount", "columnCount", "index", "parent", "flags", "headerData"):
        assert getattr(ShownRows, name) is getattr(QStandardItemModel, name), name
    copies: list[int] = []
    shown_cells = table.model.shown_cells

    def counted(row: int, columns: range = ALL_COLUMNS) -> dict[int, dict[int, object]]:
        copies.append(row)
        return shown_cells(row, columns)

    monkeypatch.setattr(table.model, "shown_cells", counted)

    table.view.viewport().repaint()
    table.view.viewport().repaint()

    assert copies == [], "the rows in view were copied once, before the first paint"


def test_only_the_rows_in_view_are_held(table: Table, qtbot: QtBot) -> None:
    table.view.scrollToBottom()
    qtbot.waitUntil(lambda: table.view.rowAt(table.view.viewport().height() - 1) == 299)
    table.view.fill_rows_in_view()

    in_view = table.rows_in_view()
    assert table.referral_id(299) == 1  # the oldest sign-up last
    assert table.shown.index(0, 0).data() is None, "the rows scrolled away were let go"
    held = [row for row in range(300) if table.shown.item(row, 0) is not None]
    assert held == list(in_view)


def test_a_change_in_view_is_copied_at_once_and_one_out_of_view_when_scrolled_to(
    table: Table, store: Store, qtbot: QtBot
) -> None:
    in_view, far = table.referral_id(2), 1  # row 2, and the oldest: row 299
    store.update(in_view, status="failed", status_reason="Pipedrive refused it")
    store.update(far, status="failed", status_reason="Pipedrive refused it")
    table.refresh(store, in_view, far)

    assert table.status(2) == "Needs attention"  # before any paint
    table.view.scrollToBottom()
    qtbot.waitUntil(lambda: table.view.rowAt(table.view.viewport().height() - 1) == 299)
    table.view.fill_rows_in_view()
    assert table.status(299) == "Needs attention"


def test_new_sign_ups_arrive_at_the_top_and_the_selection_follows_its_referral(table: Table, store: Store) -> None:
    table.view.selectRow(3)
    selected = table.referral_id(3)

    store.record_referrals([referral(301), referral(302)])
    table.refresh(store, 301, 302)
    table.view.fill_rows_in_view()

    assert table.shown.rowCount() == 302
    assert [table.referral_id(row) for row in range(3)] == [302, 301, 300]
    rows = [index.row() for index in table.view.selectionModel().selectedRows()]
    assert rows == [5] and table.referral_id(5) == selected


def test_a_referral_moved_by_a_re_sort_keeps_its_selection(table: Table, store: Store) -> None:
    table.view.sortByColumn(STATUS, Qt.SortOrder.DescendingOrder)  # the header's click: the store sorts
    assert table.model.sort_column == STATUS
    table.view.fill_rows_in_view()
    table.view.selectRow(4)
    selected = table.referral_id(4)

    store.update(selected, status="waiting")  # sorts before "pending" now: to the top
    table.refresh(store, selected)
    table.view.fill_rows_in_view()

    rows = [index.row() for index in table.view.selectionModel().selectedRows()]
    assert rows == [0] and table.referral_id(0) == selected


def test_the_pages_in_view_stay_fresh_however_many_others_are_read(store: Store, qtbot: QtBot) -> None:
    bulk_referrals(store, 300)
    table = Table(store, qtbot, page_size=20, max_pages=3)
    for row in range(40, 300, 20):  # the details pane, a copy, a long selection: other pages read since
        table.model.referral_at(row)
    changed = table.referral_id(5)
    store.update(changed, status="failed", status_reason="Pipedrive refused it")
    table.refresh(store, changed)

    assert table.status(5) == "Needs attention"


def test_filters_and_sorts_reset_the_shown_rows(table: Table, store: Store) -> None:
    store.update(7, status="failed")
    table.model.set_filter(status="failed")
    table.view.fill_rows_in_view()
    assert table.shown.rowCount() == 1
    assert table.referral_id(0) == 7
    assert table.shown.index(1, 0).data() is None

    table.model.set_filter(status=None)
    table.view.fill_rows_in_view()
    assert table.shown.rowCount() == 300 and table.referral_id(0) == 300


def test_shown_rows_pass_qt_model_checks(table: Table, store: Store, qtmodeltester: ModelTester) -> None:
    qtmodeltester.check(table.shown)
    store.record_referrals([referral(301)])
    table.refresh(store, 301)
    qtmodeltester.check(table.shown)

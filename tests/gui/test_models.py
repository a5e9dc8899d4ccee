"""The two table models over a real store: Qt's model checks, SQL sorting and filtering, live updates that
insert and change rows without a reset, and 100,000 rows."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta

import pytest
from PySide6.QtCore import QLocale, QModelIndex, Qt
from PySide6.QtWidgets import QTableView
from pytestqt.modeltest import ModelTester
from pytestqt.qtbot import QtBot

from rf_desktop.core import vocabulary
from rf_desktop.core.store import Store
from rf_desktop.gui.models import referrals as referrals_model
from rf_desktop.gui.models.formatting import long_time, short_id, short_time, signed_up_text
from rf_desktop.gui.models.log import LEVEL_FILTERS, LogTableModel
from rf_desktop.gui.models.referrals import (
    COLUMN_INDEX,
    LINK_ROLE,
    REFERRAL_ROLE,
    ReferralTableModel,
)
from tests.gui.conftest import bulk_referrals, referral

NAME, EMAIL, STATUS = COLUMN_INDEX["name"], COLUMN_INDEX["email"], COLUMN_INDEX["status"]


def shown(model: ReferralTableModel | LogTableModel, row: int, column: int) -> str:
    return str(model.index(row, column).data())


class Signals:
    """What a model announced, in order."""

    def __init__(self, model: ReferralTableModel | LogTableModel) -> None:
        self.events: list[tuple[str, int, int]] = []
        model.modelReset.connect(lambda: self.events.append(("reset", -1, -1)))
        model.rowsInserted.connect(lambda _p, a, b: self.events.append(("inserted", a, b)))
        model.rowsRemoved.connect(lambda _p, a, b: self.events.append(("removed", a, b)))
        model.dataChanged.connect(lambda a, b, _r: self.events.append(("changed", a.row(), b.row())))

    def kinds(self) -> set[str]:
        return {kind for kind, _a, _b in self.events}


# --- referrals ------------------------------------------------------------------------------------------


def test_referral_model_passes_qt_model_checks(store: Store, qtmodeltester: ModelTester) -> None:
    bulk_referrals(store, 250)
    store.update(7, status="failed", status_reason="Pipedrive refused it", person_id=70, lead_id="a" * 36)
    model = ReferralTableModel(store, page_size=40, max_pages=3)
    qtmodeltester.check(model)
    assert model.rowCount() == 250
    assert model.columnCount() == 11  # the reason has a column of its own


def test_referral_model_reads_only_the_pages_it_shows(store: Store) -> None:
    bulk_referrals(store, 1000)
    model = ReferralTableModel(store, page_size=50, max_pages=4)
    assert model.rowCount() == 1000
    assert model._pages == {}  # nothing read until a row is asked for
    for row in (0, 120, 560, 999, 300):
        assert model.referral_at(row) is not None
    assert len(model._pages) == 4  # the least recently used page was dropped


def test_default_order_is_newest_sign_up_first(store: Store) -> None:
    bulk_referrals(store, 3, signed_up_at="2025-01-01")
    store.record_referral(referral(4, signed_up_at="2025-06-01", first_name="Newest"))
    model = ReferralTableModel(store)
    assert shown(model, 0, NAME) == "Newest"


def test_sorting_and_filtering_are_done_by_the_store(store: Store) -> None:
    bulk_referrals(store, 30)
    store.record_referral(referral(31, first_name="Zoë", email="zoe@example.org"))
    store.record_referral(referral(32, first_name="Adam", email="adam@example.org"))
    store.update(5, status="failed")
    store.update(6, status="failed")
    model = ReferralTableModel(store)

    model.sort(EMAIL, Qt.SortOrder.AscendingOrder)
    assert shown(model, 0, EMAIL) == "adam@example.org"
    model.sort(EMAIL, Qt.SortOrder.DescendingOrder)
    assert shown(model, 0, EMAIL) == "zoe@example.org"

    model.set_filter(text="example.org")
    assert model.rowCount() == 2
    model.set_filter(text="", status="failed")
    assert model.rowCount() == 2
    assert {shown(model, r, STATUS) for r in range(2)} == {"Needs attention"}
    store.update(7, status="sending")
    model.set_filter(status=vocabulary.TO_SEND)  # the owner's state: pending and sending alike
    assert model.rowCount() == 30
    model.set_filter(status=None)
    assert model.rowCount() == 32


def test_every_column_can_sort(store: Store) -> None:
    bulk_referrals(store, 5)
    model = ReferralTableModel(store)
    for column in range(model.columnCount()):
        for order in (Qt.SortOrder.AscendingOrder, Qt.SortOrder.DescendingOrder):
            model.sort(column, order)
            assert model.rowCount() == 5
            assert model.referral_at(4) is not None


def test_a_changed_row_is_announced_alone_without_a_reset(store: Store) -> None:
    bulk_referrals(store, 300)
    model = ReferralTableModel(store, page_size=100)
    row = next(r for r in range(100) if model.referral_at(r).rf_user_id == 250)  # type: ignore[union-attr]
    signals = Signals(model)

    store.update(250, status="qualified", qualified_at=datetime.now(UTC))
    model.note_changed(250)
    model.refresh()

    assert signals.events == [("changed", row, row)]
    assert shown(model, row, STATUS) == "Qualified"


def test_a_shown_row_repaints_only_the_cells_a_new_state_changes(store: Store) -> None:
    bulk_referrals(store, 3)
    model = ReferralTableModel(store)
    for column in range(model.columnCount()):
        model.index(1, column).data()  # painted once
    changed: list[tuple[int, int, int, int]] = []
    model.dataChanged.connect(lambda a, b, _r: changed.append((a.row(), b.row(), a.column(), b.column())))
    refreshed: list[int] = []
    model.refreshed.connect(lambda: refreshed.append(1))

    rf_user_id = model.referral_at(1).rf_user_id  # type: ignore[union-attr]
    store.update(rf_user_id, status="failed", status_reason="Pipedrive refused it")
    model.note_changed(rf_user_id)
    model.refresh()

    assert changed == [(1, 1, COLUMN_INDEX["status"], COLUMN_INDEX["reason"])]
    assert refreshed == [1]  # the details of a selected referral follow


def test_new_rows_are_inserted_at_the_top_and_the_selection_follows_its_referral(store: Store) -> None:
    bulk_referrals(store, 20, signed_up_at="2025-01-01")
    model = ReferralTableModel(store)
    view = QTableView()
    view.setModel(model)
    selected_id = model.referral_at(3).rf_user_id  # type: ignore[union-attr]
    view.selectRow(3)
    signals = Signals(model)

    store.record_referrals([referral(21, signed_up_at="2025-02-01"), referral(22, signed_up_at="2025-02-02")])
    model.note_changed(21)
    model.note_changed(22)
    model.refresh()

    assert ("inserted", 0, 1) in signals.events
    assert "reset" not in signals.kinds()
    assert model.rowCount() == 22
    assert model.referral_at(0).rf_user_id == 22  # type: ignore[union-attr]
    selected = view.selectionModel().selectedRows()
    assert [model.referral_at(i.row()).rf_user_id for i in selected] == [selected_id]  # type: ignore[union-attr]


def test_rows_that_stop_matching_the_filter_are_removed(store: Store) -> None:
    bulk_referrals(store, 10)
    store.update(3, status="failed")
    store.update(4, status="failed")
    model = ReferralTableModel(store)
    model.set_filter(status="failed")
    signals = Signals(model)

    store.update(3, status="pending")
    model.note_changed(3)
    model.refresh()

    assert model.rowCount() == 1
    assert "removed" in signals.kinds() and "reset" not in signals.kinds()
    assert model.referral_at(0).rf_user_id == 4  # type: ignore[union-attr]


def test_bursts_of_changes_become_one_refresh(store: Store, qtbot: QtBot) -> None:
    bulk_referrals(store, 50)
    model = ReferralTableModel(store, coalesce_ms=50)
    model.referral_at(0)
    refreshes: list[int] = []
    original = model.refresh
    model.refresh = lambda: (refreshes.append(1), original())  # type: ignore[method-assign]
    model._timer.timeout.disconnect()
    model._timer.timeout.connect(model.refresh)
    for rf_user_id in range(1, 51):
        store.update(rf_user_id, status="sent")
        model.note_changed(rf_user_id)
    qtbot.waitUntil(lambda: shown(model, 0, STATUS) == "In Pipedrive")
    assert len(refreshes) == 1


def test_cells_show_links_statuses_and_reasons(store: Store) -> None:
    store.record_referral(referral(1, first_name="Zoë"))
    store.update(1, status="failed", status_reason="Pipedrive refused it: bad email", person_id=42)
    store.record_referral(referral(2, is_test=True, first_name="Test"))
    model = ReferralTableModel(store)
    model.sort(COLUMN_INDEX["name"], Qt.SortOrder.DescendingOrder)
    row = 0 if model.referral_at(0).rf_user_id == 1 else 1  # type: ignore[union-attr]
    person = model.index(row, COLUMN_INDEX["person"])
    assert person.data() == "42"
    assert person.data(LINK_ROLE) == ("person", 42)
    assert person.data(Qt.ItemDataRole.FontRole).underline()
    assert model.index(row, COLUMN_INDEX["deal"]).data(LINK_ROLE) is None
    status = model.index(row, STATUS)
    assert status.data() == "Needs attention"
    assert model.index(row, COLUMN_INDEX["reason"]).data() == "Pipedrive refused it: bad email"
    assert status.data(Qt.ItemDataRole.ToolTipRole).splitlines() == [
        "Needs attention: Sending it or qualifying it failed (the reason says why).",
        "Pipedrive refused it: bad email",
        "Next: Nothing: rf-desktop tries again by itself. Press Retry to try now.",
    ]
    assert not status.data(Qt.ItemDataRole.DecorationRole).isNull()
    assert model.index(row, NAME).data(REFERRAL_ROLE).rf_user_id == 1
    assert shown(model, 1 - row, NAME) == "Test (test)"


def test_a_hundred_thousand_rows_open_quickly_and_scroll_to_the_bottom(big_store: Store, qtbot: QtBot) -> None:
    started = time.perf_counter()
    model = ReferralTableModel(big_store)
    view = QTableView()
    view.verticalHeader().setDefaultSectionSize(20)
    view.setModel(model)
    qtbot.addWidget(view)
    view.resize(800, 600)
    view.show()
    qtbot.waitExposed(view)
    opened = time.perf_counter() - started
    assert model.rowCount() == 100_000
    assert opened < 5  # generous for slow CI; typically well under a second

    view.scrollToBottom()
    qtbot.waitUntil(lambda: view.rowAt(view.viewport().height() - 1) == 99_999)
    last = model.referral_at(99_999)
    assert last is not None and last.rf_user_id == 1  # oldest sign-up last (ties: lowest id last)
    assert len(model._pages) <= model.max_pages


def test_a_thousand_updates_reach_the_view(big_store: Store, qtbot: QtBot) -> None:
    store = big_store
    model = ReferralTableModel(store)
    view = QTableView()
    view.setModel(model)
    qtbot.addWidget(view)
    view.show()
    visible = [model.referral_at(r).rf_user_id for r in range(30)]  # type: ignore[union-attr]
    changed_ids = visible + list(range(1, 1000 - len(visible) + 1))
    for rf_user_id in changed_ids:
        store.update(rf_user_id, status="waiting", lead_id=f"lead-{rf_user_id}")
        model.note_changed(rf_user_id)
    qtbot.waitUntil(lambda: all(shown(model, r, STATUS) == "In Pipedrive" for r in range(30)), timeout=5000)
    assert model.rowCount() == 100_000
    assert model.index(0, COLUMN_INDEX["lead"]).data(LINK_ROLE) == ("lead", f"lead-{visible[0]}")
    # a row far below, read when scrolled to, is current too
    assert model.referral_at(99_999).status == "waiting"  # type: ignore[union-attr]


# --- the sync log -----------------------------------------------------------------------------------------


def fill_log(store: Store, count: int) -> None:
    levels = ("info", "info", "warning", "error")
    for n in range(count):
        store.log(levels[n % 4], "pushed", f"message {n}", rf_user_id=n % 7 or None)


def test_log_model_passes_qt_model_checks(store: Store, qtmodeltester: ModelTester) -> None:
    bulk_referrals(store, 5)
    fill_log(store, 120)
    model = LogTableModel(store, chunk=50)
    assert model.rowCount() == 50
    qtmodeltester.check(model)
    assert model.rowCount() == 120  # the checks scrolled through everything


def test_log_is_newest_first_and_fetches_older_rows_on_demand(store: Store) -> None:
    fill_log(store, 130)
    model = LogTableModel(store, chunk=50)
    assert shown(model, 0, 7) == "message 129"
    assert model.canFetchMore(QModelIndex())
    model.fetchMore(QModelIndex())
    model.fetchMore(QModelIndex())
    assert model.rowCount() == 130
    assert shown(model, 129, 7) == "message 0"
    assert not model.canFetchMore(QModelIndex())


def test_log_level_filters(store: Store) -> None:
    fill_log(store, 40)
    model = LogTableModel(store, chunk=100)
    by_label = {f.label: f for f in LEVEL_FILTERS}
    model.set_filter(level=by_label["Errors"])
    assert model.rowCount() == 10
    model.set_filter(level=by_label["Warnings and errors"])
    assert model.rowCount() == 20
    model.set_filter(level=by_label["Info"])
    assert model.rowCount() == 20
    assert {model.row_at(r).level for r in range(20)} == {"info"}  # type: ignore[union-attr]
    model.set_filter(level=by_label["All"], text="message 3")
    assert {shown(model, r, 7) for r in range(model.rowCount())} == {"message 3", "message 30", *(
        f"message {n}" for n in range(31, 40)
    )}


def test_info_only_filter_reads_past_chunks_of_warnings(store: Store) -> None:
    store.log("info", "intake", "the only info row")
    for n in range(30):
        store.log("error", "failed", f"error {n}")
    model = LogTableModel(store, chunk=10)
    model.set_filter(level=next(f for f in LEVEL_FILTERS if f.label == "Info"))
    assert model.rowCount() == 1
    assert shown(model, 0, 7) == "the only info row"


def test_live_log_rows_are_inserted_at_the_top_in_one_go(store: Store, qtbot: QtBot) -> None:
    fill_log(store, 10)
    model = LogTableModel(store, flush_ms=30)
    signals = Signals(model)
    rows = [store.log("info", "intake", f"live {n}") for n in range(5)]
    rows.append(store.log("error", "failed", "live error"))
    for row in rows:
        model.add(row)
    qtbot.waitUntil(lambda: model.rowCount() == 16)
    assert signals.events == [("inserted", 0, 5)]
    assert shown(model, 0, 7) == "live error"
    assert shown(model, 5, 7) == "live 0"

    model.set_filter(level=next(f for f in LEVEL_FILTERS if f.label == "Errors"))
    model.add(store.log("info", "intake", "hidden by the filter"))
    model.flush()
    assert shown(model, 0, 7) == "live error"


def test_log_shows_referral_names(store: Store) -> None:
    store.record_referral(referral(3, first_name="Łukasz"))
    store.log("info", "pushed", "sent", rf_user_id=3, person_id=9)
    store.log("info", "pushed", "sent", rf_user_id=404)
    model = LogTableModel(store)
    assert shown(model, 1, 2) == "Łukasz · person3@example.com"
    assert shown(model, 0, 2) == "Referral 404 (no longer tracked)"
    assert shown(model, 1, 4) == "9"


# --- formatting -------------------------------------------------------------------------------------------


@pytest.fixture
def locale() -> Iterator[Callable[[str], None]]:
    """Run as if the owner's system used this locale."""
    before = QLocale()
    yield lambda name: QLocale.setDefault(QLocale(name))
    QLocale.setDefault(before)


def test_times_and_ids_are_short_in_cells_and_complete_in_tooltips(locale: Callable[[str], None]) -> None:
    locale("en_GB")
    now = datetime(2025, 6, 15, 12, 0, tzinfo=UTC).astimezone()
    today = now.strftime("%Y-%m-%d")
    assert short_time(today, now) == "Today"
    assert short_time((now - timedelta(days=1)).strftime("%Y-%m-%d"), now) == "Yesterday"
    assert short_time("2025-03-01", now) == "01/03/2025"
    assert short_time(now.isoformat(), now) == now.strftime("%H:%M")
    assert short_time(now.isoformat(), now, seconds=True) == now.strftime("%H:%M:%S")
    assert short_time((now - timedelta(days=1)).isoformat(), now) == f"Yesterday {now:%H:%M}"
    assert short_time("not a time", now) == "not a time"
    assert long_time("2025-03-01") == "Saturday, 1 March 2025"


def test_dates_and_times_follow_the_owners_locale(locale: Callable[[str], None]) -> None:
    moment = datetime(2025, 6, 15, 15, 4, 5).astimezone()
    now = moment + timedelta(days=3)
    locale("en_US")
    assert short_time(moment.isoformat(), now) == "6/15/25 3:04\u202fPM"
    assert short_time(moment.isoformat(), moment, seconds=True) == "3:04:05\u202fPM"
    locale("de_DE")
    assert short_time(moment.isoformat(), now) == "15.06.25 15:04"


def test_signed_up_shows_the_time_rf_desktop_saw_the_sign_up(locale: Callable[[str], None]) -> None:
    """Referral Factory gives the date only; the moment rf-desktop recorded the sign-up gives the time."""
    locale("en_GB")
    now = datetime.now().astimezone()
    seen = now.replace(hour=9, minute=41, second=0, microsecond=0)
    recorded = seen.astimezone(UTC).isoformat()
    assert signed_up_text(seen.date().isoformat(), recorded, now) == "Today 09:41"
    # a sign-up read later from the campaign's history has no time to tell
    assert signed_up_text("2024-12-27", recorded, now) == "27/12/2024"


    assert short_id("0b9f6a52-8d7e-4c1a-9f3e-2a1b3c4d5e6f") == "0b9f6a52"
    assert short_id(1234) == "1234"
    assert short_id(None) == ""


def test_each_state_has_one_colour_whatever_the_status_behind_it(store: Store) -> None:
    for rf_user_id, status, is_test in ((1, "pending", False), (2, "sending", False), (3, "skipped", True)):
        store.record_referral(referral(rf_user_id, is_test=is_test))
        store.update(rf_user_id, status=status)
    store.record_referral(referral(4))
    store.update(4, status="skipped")
    model = ReferralTableModel(store)
    colour = {
        model.referral_at(row).rf_user_id: model.index(row, STATUS).data(Qt.ItemDataRole.ForegroundRole).name()  # type: ignore[union-attr]
        for row in range(4)
    }
    assert colour[1] == colour[2]  # both "To send"
    assert colour[3] != colour[4]  # a finished test is no warning, unlike a referral not sent


def test_changes_far_from_the_view_read_only_the_count(store: Store, monkeypatch: pytest.MonkeyPatch) -> None:
    bulk_referrals(store, 1000)
    model = ReferralTableModel(store, page_size=100)
    assert model.referral_at(0).rf_user_id == 1000  # type: ignore[union-attr]
    reads: list[object] = []
    query, get_many = store.query, store.get_many
    monkeypatch.setattr(store, "query", lambda **kw: (reads.append(kw.get("offset")), query(**kw))[1])
    monkeypatch.setattr(store, "get_many", lambda ids: (reads.append(sorted(ids)), get_many(ids))[1])
    signals = Signals(model)

    for rf_user_id in range(1, 400):  # rows 601-999: never shown, never read
        store.update(rf_user_id, status="sent")
        model.note_changed(rf_user_id)
    model.refresh()
    assert reads == [] and signals.events == []

    store.update(998, status="sent")
    model.note_changed(998)
    model.refresh()
    assert reads == [[998]], "only the changed referral in view"
    assert signals.events == [("changed", 2, 2)]
    assert shown(model, 2, STATUS) == "In Pipedrive"


def test_new_sign_ups_read_only_their_own_rows(store: Store, monkeypatch: pytest.MonkeyPatch) -> None:
    bulk_referrals(store, 300)
    model = ReferralTableModel(store, page_size=100)
    assert model.referral_at(0).rf_user_id == 300  # type: ignore[union-attr]
    reads: list[list[int]] = []
    get_many = store.get_many
    monkeypatch.setattr(store, "get_many", lambda ids: (reads.append(sorted(ids)), get_many(ids))[1])
    monkeypatch.setattr(store, "query", lambda **_page: pytest.fail("a whole page was read again"))

    store.record_referrals([referral(301), referral(302)])
    model.note_changed(301)
    model.note_changed(302)
    model.refresh()

    assert reads == [[301, 302]]
    assert [model.referral_at(row).rf_user_id for row in range(3)] == [302, 301, 300]  # type: ignore[union-attr]


def test_a_paint_describes_each_row_once(store: Store, monkeypatch: pytest.MonkeyPatch) -> None:
    bulk_referrals(store, 3)
    model = ReferralTableModel(store)
    described: list[int] = []
    original = referrals_model.describe
    monkeypatch.setattr(referrals_model, "describe", lambda r: (described.append(r.rf_user_id), original(r))[1])
    for _paint in range(2):
        for row in range(3):
            for column in range(model.columnCount()):
                for role in Qt.ItemDataRole:
                    model.data(model.index(row, column), role)
    assert sorted(described) == [1, 2, 3]

    store.update(2, status="failed", status_reason="Pipedrive refused it")
    model.note_changed(2)
    model.refresh()
    assert shown(model, 1, STATUS) == "Needs attention" and sorted(described) == [1, 2, 2, 3]

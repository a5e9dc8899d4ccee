"""Invited users: every referral rf-desktop tracks, where it is in Pipedrive, and what happened to it."""

from __future__ import annotations

from PySide6.QtCore import QEvent, QModelIndex, QObject, QPoint, Qt
from PySide6.QtGui import QAction, QGuiApplication, QKeySequence, QShowEvent
from PySide6.QtWidgets import (
    QAbstractItemView,
    QComboBox,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QMenu,
    QPushButton,
    QSplitter,
    QToolButton,
    QVBoxLayout,
    QWidget,
)

from rf_desktop.core.store import Referral
from rf_desktop.core.vocabulary import STANDINGS, Standing, describe
from rf_desktop.gui import icons
from rf_desktop.gui.controller import AppController
from rf_desktop.gui.models.formatting import exact_time
from rf_desktop.gui.models.referrals import COLUMN_INDEX, LINK_ROLE, ReferralTableModel
from rf_desktop.gui.models.shown_rows import ShownRows
from rf_desktop.gui.widgets.filling_table import FillingTableView
from rf_desktop.gui.widgets.referral_details import RECORD_KINDS, ReferralDetails, can_retry
from rf_desktop.gui.widgets.search_box import SearchBox
from rf_desktop.gui.widgets.sort_header import SortHeader

# "All", then every state in the owner's words
STATUS_FILTERS: tuple[tuple[str, Standing | None], ...] = (
    ("All", None),
    *((standing.word, standing) for standing in STANDINGS),
)
COLUMN_WIDTHS = {
    "name": 110, "email": 190, "referrer": 80, "campaign": 150, "signed_up": 100,
    "person": 60, "lead": 80, "deal": 55, "updated": 80, "status": 115, "reason": 150,
}  # fmt: skip


def copy_line(referral: Referral) -> str:
    """One referral as a tab-separated line: full ids and times, ready to paste into a spreadsheet."""
    described = describe(referral)
    values = (
        referral.first_name,
        referral.email,
        referral.referrer_first_name or referral.referrer_email or "",
        referral.campaign_name,
        exact_time(referral.signed_up_at),
        referral.person_id,
        referral.lead_id,
        referral.deal_id,
        f"{described.word}: {described.reason}",
        exact_time(referral.updated_at),
    )
    return "\t".join("" if v is None else str(v).replace("\t", " ").replace("\n", " ") for v in values)


class InvitedUsersPage(QWidget):
    title = "Invited users"
    icon_name = "invited-users"

    def __init__(self, controller: AppController, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.controller = controller
        self.model = ReferralTableModel(controller.reader, parent=self)
        self.shown = ShownRows(self.model, parent=self)  # what the table paints: the rows in view

        self.search = SearchBox("Search name, email, code or campaign")
        self.search.setMinimumWidth(160)
        self.status_filter = QComboBox()
        self.status_filter.setAccessibleName("Status filter")
        self.status_filter.setToolTip("\n".join(f"{s.word}: {s.meaning}" for s in STANDINGS))
        self.status_filter.setSizeAdjustPolicy(QComboBox.SizeAdjustPolicy.AdjustToContents)
        for label, status in STATUS_FILTERS:
            self.status_filter.addItem(label, status)

        self.retry_button = QPushButton(icons.icon("retry"), "Retry")
        self.retry_button.setToolTip("Send the selected referrals that need attention or were not sent again")
        self.copy_button = QPushButton(icons.icon("copy"), "Copy")
        self.copy_button.setToolTip("Copy the selected rows, tab-separated (Ctrl+C)")
        self.open_button = QToolButton()
        self.open_button.setText("Open in Pipedrive")
        self.open_button.setIcon(icons.icon("open-external"))
        self.open_button.setToolButtonStyle(Qt.ToolButtonStyle.ToolButtonTextBesideIcon)
        self.open_button.setPopupMode(QToolButton.ToolButtonPopupMode.InstantPopup)
        self.open_menu = QMenu(self.open_button)
        self.open_actions: dict[str, QAction] = {}
        for kind, label in RECORD_KINDS:
            action = self.open_menu.addAction(f"Open {label.lower()}")
            action.triggered.connect(lambda _checked=False, k=kind: self.open_current(k))
            self.open_actions[kind] = action
        self.open_button.setMenu(self.open_menu)

        bar = QHBoxLayout()
        bar.addWidget(self.search, 1)
        bar.addWidget(QLabel("Status:"))
        bar.addWidget(self.status_filter)
        bar.addStretch(0)
        bar.addWidget(self.retry_button)
        bar.addWidget(self.copy_button)
        bar.addWidget(self.open_button)

        self.table = FillingTableView()
        self.table.setHorizontalHeader(SortHeader(self.table))
        self.table.setModel(self.shown)
        self.table.setAccessibleName("Invited users")
        self.table.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.table.setSelectionMode(QAbstractItemView.SelectionMode.ExtendedSelection)
        self.table.setAlternatingRowColors(True)
        self.table.setWordWrap(False)
        self.table.setMouseTracking(True)
        self.table.setContextMenuPolicy(Qt.ContextMenuPolicy.CustomContextMenu)
        self.table.verticalHeader().hide()
        # fixed row heights keep a 100,000-row table from measuring every row
        rows = self.table.verticalHeader()
        rows.setSectionResizeMode(QHeaderView.ResizeMode.Fixed)
        rows.setDefaultSectionSize(self.fontMetrics().height() + 10)
        header = self.table.horizontalHeader()
        header.setSectionResizeMode(QHeaderView.ResizeMode.Interactive)
        header.setStretchLastSection(True)
        header.setHighlightSections(False)
        for key, width in COLUMN_WIDTHS.items():
            self.table.setColumnWidth(COLUMN_INDEX[key], width)
        header.setSortIndicator(self.model.sort_column, Qt.SortOrder.DescendingOrder)
        self.table.setSortingEnabled(True)

        self.empty = QLabel(self.table.viewport())
        self.empty.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.empty.setWordWrap(True)
        self.empty.setEnabled(False)  # the palette's disabled text: present but quiet
        self._pointer_over_rows = False  # kept by eventFilter: the rows must not slide from under a click
        self.table.viewport().installEventFilter(self)

        self.details = ReferralDetails(controller)
        self.splitter = QSplitter(Qt.Orientation.Vertical)
        self.splitter.addWidget(self.table)
        self.splitter.addWidget(self.details)
        self.splitter.setStretchFactor(0, 1)  # the table takes the room; the pane keeps its height
        self.splitter.setStretchFactor(1, 0)
        self.splitter.setChildrenCollapsible(False)

        self._pane_sized = False
        column = QVBoxLayout(self)
        column.addLayout(bar)
        column.addWidget(self.splitter, 1)

        self.copy_action = QAction("Copy row", self)
        self.copy_action.setShortcut(QKeySequence.StandardKey.Copy)
        self.copy_action.setShortcutContext(Qt.ShortcutContext.WidgetWithChildrenShortcut)
        self.copy_action.triggered.connect(self.copy_selection)
        self.table.addAction(self.copy_action)
        self.retry_action = QAction(icons.icon("retry"), "Retry", self)
        self.retry_action.triggered.connect(self.retry_selection)

        self.search.searchChanged.connect(lambda text: self.model.set_filter(text=text))
        self.status_filter.currentIndexChanged.connect(self._on_status_filter)
        self.retry_button.clicked.connect(self.retry_selection)
        self.copy_button.clicked.connect(self.copy_selection)
        self.table.clicked.connect(self._on_clicked)
        self.table.doubleClicked.connect(self._on_double_clicked)
        self.table.entered.connect(self._on_hover)
        self.table.customContextMenuRequested.connect(self._context_menu)
        self.table.selectionModel().selectionChanged.connect(lambda *_: self._update_actions())
        self.table.selectionModel().currentChanged.connect(lambda *_: self._update_actions())
        self.model.modelReset.connect(self._after_rows_changed)
        self.shown.rowsInserted.connect(self._keep_rows_in_place)
        self.model.rowsInserted.connect(self._after_rows_changed)
        self.model.rowsRemoved.connect(self._after_rows_changed)
        self.model.refreshed.connect(self._update_actions)
        controller.referralsChanged.connect(lambda ids: self.model.note_changed(*ids))
        controller.countsChanged.connect(self.refresh_counts)
        controller.closing.connect(self._on_closing)

        self.refresh_counts()
        self._after_rows_changed()

    # --- page protocol --------------------------------------------------------------------------------

    def focus_search(self) -> None:
        self.search.setFocus(Qt.FocusReason.ShortcutFocusReason)
        self.search.selectAll()

    def refresh_icons(self) -> None:
        """The palette changed (light/dark): icons follow its text colour."""
        self.search.refresh_icons()
        self.retry_button.setIcon(icons.icon("retry"))
        self.retry_action.setIcon(icons.icon("retry"))
        self.details.retry_button.setIcon(icons.icon("retry"))
        self.copy_button.setIcon(icons.icon("copy"))
        self.open_button.setIcon(icons.icon("open-external"))

    # --- actions ----------------------------------------------------------------------------------------

    def selected_referrals(self) -> list[Referral]:
        rows = sorted({index.row() for index in self.table.selectionModel().selectedRows()})
        found = (self.model.referral_at(row) for row in rows)
        return [r for r in found if r is not None]

    def current_referral(self) -> Referral | None:
        index = self.table.currentIndex()
        return self.model.referral_at(index.row()) if index.isValid() else None

    def retry_selection(self) -> int:
        """Ask the engine to send the selected referrals that need attention or were not sent again; returns
        how many."""
        retried = 0
        for referral in self.selected_referrals():
            if can_retry(referral):
                self.controller.retry(referral.rf_user_id)
                retried += 1
        return retried

    def copy_selection(self) -> str:
        text = "\n".join(copy_line(r) for r in self.selected_referrals())
        if text:
            QGuiApplication.clipboard().setText(text)
        return text

    def open_current(self, kind: str) -> bool:
        referral = self.current_referral()
        record = getattr(referral, f"{kind}_id", None) if referral is not None else None
        if record in (None, ""):
            return False
        return self.controller.open_in_pipedrive(kind, record)

    def refresh_counts(self) -> None:
        if self.controller.closed:
            return
        counts = self.controller.standing_counts()
        total = sum(counts.values())
        for position, (label, standing) in enumerate(STATUS_FILTERS):
            count = total if standing is None else counts.get(standing.key, 0)
            self.status_filter.setItemText(position, f"{label} ({count:,})")

    # --- reactions ----------------------------------------------------------------------------------------

    def _on_status_filter(self, position: int) -> None:
        self.model.set_filter(status=self.status_filter.itemData(position))

    def _link_at(self, index: QModelIndex) -> tuple[str, int | str] | None:
        """The Pipedrive record the table's cell at `index` links to, asked of the model that knows the
        rows (the table holds copies of only the rows it has painted)."""
        return self.model.index(index.row(), index.column()).data(LINK_ROLE) if index.isValid() else None

    def _on_clicked(self, index: QModelIndex) -> None:
        link = self._link_at(index)
        if link is not None:
            self.controller.open_in_pipedrive(*link)

    def _on_double_clicked(self, index: QModelIndex) -> None:
        if self._link_at(index) is not None:
            return  # the click already opened it
        referral = self.model.referral_at(index.row())
        if referral is None or not describe(referral).records_exist:
            return
        for kind in ("deal", "lead", "person"):
            record = getattr(referral, f"{kind}_id")
            if record not in (None, ""):
                self.controller.open_in_pipedrive(kind, record)
                return

    def _on_hover(self, index: QModelIndex) -> None:
        linked = self._link_at(index) is not None
        self.table.viewport().setCursor(
            Qt.CursorShape.PointingHandCursor if linked else Qt.CursorShape.ArrowCursor
        )

    def context_menu_at(self, position: QPoint) -> QMenu | None:
        """The row's menu (Retry, Copy row, Open person/lead/deal), the row under `position` selected."""
        index = self.table.indexAt(position)
        if not index.isValid():
            return None
        if not self.table.selectionModel().isRowSelected(index.row(), QModelIndex()):
            self.table.selectRow(index.row())
        self.table.setCurrentIndex(index)
        self._update_actions()
        menu = QMenu(self)
        menu.addAction(self.retry_action)
        menu.addAction(self.copy_action)
        menu.addSeparator()
        for kind, _label in RECORD_KINDS:
            menu.addAction(self.open_actions[kind])
        return menu

    def _context_menu(self, position: QPoint) -> None:
        menu = self.context_menu_at(position)
        if menu is not None:
            menu.exec(self.table.viewport().mapToGlobal(position))
            menu.deleteLater()

    def _update_actions(self) -> None:
        selected = self.selected_referrals()
        retry = any(can_retry(r) for r in selected)
        self.retry_button.setEnabled(retry)
        self.retry_action.setEnabled(retry)
        self.copy_button.setEnabled(bool(selected))
        self.copy_action.setEnabled(bool(selected))
        current = self.current_referral()
        if current != self.details.referral:
            self.details.show_referral(current)
        records = current is not None and describe(current).records_exist
        any_link = False
        for kind, _label in RECORD_KINDS:
            present = records and getattr(current, f"{kind}_id") not in (None, "")
            self.open_actions[kind].setEnabled(present)
            any_link = any_link or present
        self.open_button.setEnabled(any_link)

    def _keep_rows_in_place(self, _parent: QModelIndex, first: int, last: int) -> None:
        """New referrals arriving above the rows in view would push them down, so a click meant for one
        person would land on another: scroll by as many rows, so the row under the pointer (and the part
        of the table the owner scrolled to) stays where it is. At the top with the pointer elsewhere the
        new rows simply come into view. The selection follows its referral on its own (the model moves
        it)."""
        bar = self.table.verticalScrollBar()
        per_item = self.table.verticalScrollMode() == QAbstractItemView.ScrollMode.ScrollPerItem
        step = 1 if per_item else self.table.verticalHeader().defaultSectionSize()
        top_row = bar.value() // step
        arrived = last - first + 1
        if self.model.rowCount() == arrived or first > top_row:
            return  # no rows were in view, or none of them moved
        if bar.value() == 0 and not self._pointer_over_rows:
            return
        self.table.updateGeometries()  # the scroll range must cover the new rows before moving into it
        bar.setValue(bar.value() + arrived * step)

    def _after_rows_changed(self) -> None:
        empty = self.model.rowCount() == 0
        if empty:
            filtered = self.model.text_filter or self.model.status_filter is not None
            self.empty.setText(
                "No referrals match the search and filter."
                if filtered
                else "No referrals yet.\n"
                "People invited through your referral links appear here as they sign up."
            )
            self._place_empty_label()
        self.empty.setVisible(empty)
        self._update_actions()

    def _place_empty_label(self) -> None:
        area = self.table.viewport().rect().adjusted(24, 24, -24, -24)
        self.empty.setGeometry(area)

    def showEvent(self, event: QShowEvent) -> None:
        super().showEvent(event)
        if not self._pane_sized:
            # the first time the page has its real height: the details pane gets its natural height
            self._pane_sized = True
            pane = self.details.sizeHint().height()
            self.splitter.setSizes([max(self.splitter.height() - pane, pane), pane])

    def changeEvent(self, event: QEvent) -> None:
        if event.type() == QEvent.Type.PaletteChange:
            self.model.restyle()  # the rows' colours were worked out for the palette before
        super().changeEvent(event)

    def eventFilter(self, watched: QObject, event: QEvent) -> bool:
        if watched is self.table.viewport():
            kind = event.type()
            if kind == QEvent.Type.Resize:
                self._place_empty_label()
            elif kind in (QEvent.Type.Enter, QEvent.Type.MouseMove):
                self._pointer_over_rows = True
            elif kind == QEvent.Type.Leave:
                self._pointer_over_rows = False
        return super().eventFilter(watched, event)

    def _on_closing(self) -> None:
        self.model.close()

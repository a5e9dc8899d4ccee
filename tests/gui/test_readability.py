"""Readable everywhere: the sort arrow points the way the rows run, long text is elided with the whole of
it in a tooltip, Chinese, Japanese and Korean names are drawn as letters, not boxes, and hints stay readable
when the palette switches to dark."""

from __future__ import annotations

from collections.abc import Callable

from PySide6.QtCore import QPoint, QRect, Qt
from PySide6.QtGui import QColor, QFont, QImage, QPainter, QPalette
from PySide6.QtWidgets import QApplication
from pytestqt.qtbot import QtBot

from rf_desktop.gui import theme
from rf_desktop.gui.controller import AppController
from rf_desktop.gui.main_window import MainWindow
from rf_desktop.gui.models.referrals import COLUMN_INDEX
from rf_desktop.gui.pages.invited_users import InvitedUsersPage
from rf_desktop.gui.theme import follow_system
from rf_desktop.gui.widgets.form_helpers import HintLabel
from tests.gui.conftest import bulk_referrals, referral, tooltip_at


def open_page(controller: AppController, qtbot: QtBot) -> InvitedUsersPage:
    follow_system(QApplication.instance())  # type: ignore[arg-type]  # the app's own style
    page = InvitedUsersPage(controller)
    qtbot.addWidget(page)
    page.resize(1300, 500)
    page.show()
    qtbot.waitExposed(page)
    return page


def arrow_widths(page: InvitedUsersPage, column: int) -> list[int]:
    """The dark pixels of each line of the header's sort arrow, top to bottom."""
    header = page.table.horizontalHeader()
    image = header.grab().toImage()
    left = header.sectionViewportPosition(column)
    right = left + header.sectionSize(column)
    background = QColor(image.pixel(right - 3, image.height() // 2)).lightness()
    widths = []
    for y in range(2, image.height() - 2):
        dark = [x for x in range(right - 24, right - 2) if abs(QColor(image.pixel(x, y)).lightness() - background) > 60]
        if dark:
            widths.append(len(dark))
    return widths


def test_the_sort_arrow_points_down_for_newest_first_and_up_after_a_click(
    controller: AppController, qtbot: QtBot
) -> None:
    bulk_referrals(controller.store, 3)
    page = open_page(controller, qtbot)
    column = COLUMN_INDEX["signed_up"]
    assert page.table.horizontalHeader().sortIndicatorOrder() == Qt.SortOrder.DescendingOrder
    assert page.model.referral_at(0).rf_user_id == 3  # type: ignore[union-attr]  # newest first
    widths = arrow_widths(page, column)
    assert len(widths) >= 2 and widths[0] > widths[-1]  # ▼: wide at the top

    header = page.table.horizontalHeader()
    x = header.sectionViewportPosition(column) + 10
    qtbot.mouseClick(header.viewport(), Qt.MouseButton.LeftButton, pos=QPoint(x, header.height() // 2))
    assert page.model.referral_at(0).rf_user_id == 1  # type: ignore[union-attr]  # oldest first
    widths = arrow_widths(page, column)
    assert widths[0] < widths[-1]  # ▲


def test_a_long_name_is_elided_and_whole_in_its_tooltip(controller: AppController, qtbot: QtBot) -> None:
    long_name = "Maximiliana Alexandrina von Hohenzollern-Sigmaringen"
    controller.store.record_referral(referral(1, first_name=long_name))
    page = open_page(controller, qtbot)
    page.table.fill_rows_in_view()  # as a paint does
    index = page.shown.index(0, COLUMN_INDEX["name"])
    width = page.table.columnWidth(COLUMN_INDEX["name"])
    assert page.table.fontMetrics().horizontalAdvance(long_name) > width  # too long for its cell: elided
    assert page.table.textElideMode() == Qt.TextElideMode.ElideRight
    assert index.data() == long_name
    assert tooltip_at(page.table, index) == long_name


def drawn(text: str, font: QFont) -> QImage:
    image = QImage(120, 40, QImage.Format.Format_RGB32)
    image.fill(Qt.GlobalColor.white)
    painter = QPainter(image)
    painter.setFont(font)
    painter.setPen(Qt.GlobalColor.black)
    painter.drawText(QRect(0, 0, 120, 40), int(Qt.AlignmentFlag.AlignCenter), text)
    painter.end()
    return image


def test_chinese_japanese_and_korean_names_are_drawn_as_letters(controller: AppController, qtbot: QtBot) -> None:
    """A missing glyph is drawn as the same empty box whatever the letter; real letters differ."""
    page = open_page(controller, qtbot)
    font = page.table.font()
    for first, second in (("王", "芳"), ("さ", "く"), ("김", "민")):
        assert drawn(first, font) != drawn(second, font), f"{first} and {second} are drawn alike (boxes)"
        assert drawn(first, font) != drawn("", font)


def test_hints_take_the_new_palette_s_colour_when_it_switches_to_dark(
    controller: AppController, make_window: Callable[[AppController], MainWindow], qapp: QApplication
) -> None:
    window = make_window(controller)
    window.show_page_named("Rules")
    hints = window.current_page().findChildren(HintLabel)
    assert hints, "the Rules page explains its pace and budget in hints"
    hint = hints[0]
    original = qapp.palette()

    def shown_colour() -> QColor:
        return hint.palette().color(QPalette.ColorGroup.Active, QPalette.ColorRole.WindowText)

    def contrast(colour: QColor) -> int:
        return abs(colour.lightness() - hint.palette().color(QPalette.ColorRole.Window).lightness())

    try:
        qapp.setPalette(theme.light_palette())
        qapp.processEvents()  # widgets hear of the new palette through posted events
        assert shown_colour() == theme.light_palette().color(QPalette.ColorRole.PlaceholderText)
        qapp.setPalette(theme.dark_palette())
        qapp.processEvents()
        assert shown_colour() == theme.dark_palette().color(QPalette.ColorRole.PlaceholderText)
        assert contrast(shown_colour()) > 80, "readable on the dark window"
        hint.setEnabled(False)
        disabled = hint.palette().color(QPalette.ColorGroup.Disabled, QPalette.ColorRole.WindowText)
        assert disabled == theme.dark_palette().color(QPalette.ColorGroup.Disabled, QPalette.ColorRole.WindowText)
    finally:
        qapp.setPalette(original)

"""The mouse wheel over a settings page scrolls it: drop-downs and spin boxes under the pointer keep
their value unless the owner clicked into them first."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from PySide6.QtCore import QPoint, QPointF, Qt
from PySide6.QtGui import QWheelEvent
from PySide6.QtWidgets import QApplication, QLineEdit, QScrollArea, QSlider, QSpinBox, QVBoxLayout, QWidget
from pytestqt.qtbot import QtBot

from rf_desktop.gui.controller import AppController
from rf_desktop.gui.pages.mapping import MappingPage
from rf_desktop.gui.wheel_guard import WheelGuard, install_wheel_guard
from tests.gui.test_connections_page import collect_qt_garbage  # noqa: F401 (autouse fixture)
from tests.gui.test_mapping_page import open_mapping

WHEEL_NOTCH = 120


@pytest.fixture
def guard(qapp: QApplication) -> Iterator[WheelGuard]:
    """The guard as `create_application` installs it (pytest-qt made this application itself)."""
    style = qapp.style().name()
    installed = install_wheel_guard(qapp)
    yield installed
    qapp.setStyle(style)  # widgets polished from now on are not guarded
    installed.setParent(None)  # so the next test's install finds none


def roll_wheel(widget: QWidget, notches: int = -3) -> None:
    """Roll the wheel `notches` clicks (negative: towards the owner, scrolling down) over the widget's
    middle, one event per click as a mouse sends them."""
    centre = widget.rect().center()
    for _ in range(abs(notches)):
        delta = WHEEL_NOTCH if notches > 0 else -WHEEL_NOTCH
        event = QWheelEvent(
            QPointF(centre),
            QPointF(widget.mapToGlobal(centre)),
            QPoint(0, 0),
            QPoint(0, delta),
            Qt.MouseButton.NoButton,
            Qt.KeyboardModifier.NoModifier,
            Qt.ScrollPhase.NoScrollPhase,
            False,
        )
        QApplication.sendEvent(widget, event)


def test_the_wheel_scrolls_the_mapping_page_past_its_dropdowns(
    guard: WheelGuard, sandbox_controller: AppController, qtbot: QtBot
) -> None:
    page: MappingPage = open_mapping(sandbox_controller, qtbot)
    page.resize(900, 420)  # short enough to scroll
    scroll = page.findChild(QScrollArea)
    assert scroll is not None
    bar = scroll.verticalScrollBar()
    qtbot.waitUntil(lambda: bar.maximum() > 0 and page.grid.rows["code"].combo.isEnabled(), timeout=10_000)
    combo = page.grid.rows["code"].combo
    scroll.ensureWidgetVisible(combo)
    before_text, before_scroll = combo.currentText(), bar.value()
    saved = page.controller.settings()
    assert combo.focusPolicy() == Qt.FocusPolicy.StrongFocus  # the wheel does not give it focus

    roll_wheel(combo)

    assert combo.currentText() == before_text
    assert bar.value() > before_scroll
    assert page.draft.settings == saved

    # clicked into, the drop-down is the owner's target and takes the wheel
    combo.setFocus(Qt.FocusReason.MouseFocusReason)
    qtbot.waitUntil(combo.hasFocus)
    scrolled = bar.value()
    roll_wheel(combo, notches=-1)
    assert combo.currentText() != before_text
    assert bar.value() == scrolled
    page.close()


def test_spin_boxes_and_sliders_are_guarded_but_scroll_bars_are_not(guard: WheelGuard, qtbot: QtBot) -> None:
    area = QScrollArea()
    qtbot.addWidget(area)
    content = QWidget()
    column = QVBoxLayout(content)
    typing, spin, slider = QLineEdit(), QSpinBox(), QSlider(Qt.Orientation.Horizontal)
    column.addWidget(typing)
    column.addWidget(spin)
    column.addWidget(slider)
    column.addSpacing(2000)
    area.setWidget(content)
    area.resize(300, 200)
    area.show()
    qtbot.waitExposed(area)
    typing.setFocus()  # the owner is typing elsewhere on the page
    bar = area.verticalScrollBar()
    for widget in (spin, slider):
        roll_wheel(widget, notches=3)
        assert spin.value() == 0 and slider.value() == 0
    assert bar.value() == 0  # rolled up at the top: nothing to scroll, nothing changed
    roll_wheel(slider, notches=-2)
    assert slider.value() == 0 and bar.value() > 0
    at = bar.value()
    roll_wheel(bar, notches=-1)
    assert bar.value() > at

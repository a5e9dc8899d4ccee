"""The mouse wheel scrolls the page; it changes a drop-down, spin box or slider only once that has focus.

Qt's default lets the wheel change any value under the pointer, and even gives the widget focus first
(its focus policy is `WheelFocus`), so rolling down a long settings page silently rewrote its choices,
which then saved themselves. One filter on the application fixes every window and dialog at once:

- a value widget's `WheelFocus` policy becomes `StrongFocus` when it is polished (a click or Tab still
  focuses it; the wheel no longer does);
- a wheel event for a value widget without focus goes to the scroll area around it instead, so the page
  scrolls as if the pointer were over empty space (and nothing happens where nothing scrolls).

Scroll bars are sliders too, and keep the wheel.
"""

from __future__ import annotations

from PySide6.QtCore import QEvent, QObject, Qt
from PySide6.QtGui import QWheelEvent
from PySide6.QtWidgets import (
    QAbstractScrollArea,
    QAbstractSlider,
    QAbstractSpinBox,
    QApplication,
    QComboBox,
    QScrollBar,
    QWidget,
)

VALUE_WIDGETS = (QComboBox, QAbstractSpinBox, QAbstractSlider)


def is_guarded(widget: QObject) -> bool:
    """A widget whose value the wheel would change."""
    return isinstance(widget, VALUE_WIDGETS) and not isinstance(widget, QScrollBar)


class WheelGuard(QObject):
    def eventFilter(self, watched: QObject, event: QEvent) -> bool:
        kind = event.type()
        if kind == QEvent.Type.Polish and is_guarded(watched):
            assert isinstance(watched, QWidget)
            if watched.focusPolicy() == Qt.FocusPolicy.WheelFocus:
                watched.setFocusPolicy(Qt.FocusPolicy.StrongFocus)
        elif kind == QEvent.Type.Wheel and is_guarded(watched):
            assert isinstance(watched, QWidget)
            if not watched.hasFocus():
                assert isinstance(event, QWheelEvent)
                scroll_page(watched, event)
                event.accept()
                return True
        return False


def scroll_area_around(widget: QWidget) -> QAbstractScrollArea | None:
    parent = widget.parentWidget()
    while parent is not None and not isinstance(parent, QAbstractScrollArea):
        parent = parent.parentWidget()
    return parent


def scroll_page(widget: QWidget, event: QWheelEvent) -> None:
    """Hand the wheel to the nearest scroll area holding `widget`. (Qt passes an ignored wheel event on to
    the parents only when it came from the mouse itself; sending it on works for every event alike.)"""
    area = scroll_area_around(widget)
    if area is None:
        return
    viewport = area.viewport()
    moved = QWheelEvent(
        viewport.mapFromGlobal(event.globalPosition()),
        event.globalPosition(),
        event.pixelDelta(),
        event.angleDelta(),
        event.buttons(),
        event.modifiers(),
        event.phase(),
        event.inverted(),
        event.source(),
    )
    QApplication.sendEvent(viewport, moved)


def install_wheel_guard(app: QApplication) -> WheelGuard:
    """Guard every widget of `app` (once; later calls return the same guard)."""
    existing = app.findChild(WheelGuard)
    if isinstance(existing, WheelGuard):
        return existing
    guard = WheelGuard(app)
    app.installEventFilter(guard)
    return guard

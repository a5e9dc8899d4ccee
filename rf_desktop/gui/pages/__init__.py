"""The window's pages, in navigation order.

Each page is a QWidget built as `Page(controller)`, with a `title` and an `icon_name` (a resources/icons
name), and optionally `focus_search()` (Ctrl+F) and `refresh_icons()` (the palette switched between light
and dark).
"""

from __future__ import annotations

from PySide6.QtWidgets import QWidget

from rf_desktop.gui.controller import AppController
from rf_desktop.gui.pages.connections import ConnectionsPage
from rf_desktop.gui.pages.invited_users import InvitedUsersPage
from rf_desktop.gui.pages.mapping import MappingPage
from rf_desktop.gui.pages.rules import RulesPage
from rf_desktop.gui.pages.sync_log import SyncLogPage

PAGES = (ConnectionsPage, MappingPage, RulesPage, InvitedUsersPage, SyncLogPage)


def create_pages(controller: AppController) -> list[QWidget]:
    return [page(controller) for page in PAGES]

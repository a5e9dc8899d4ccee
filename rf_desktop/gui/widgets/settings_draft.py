"""The settings as the owner is editing them: validated as they type, saved without losing an edit.

The three settings pages (Connections, Mapping, Rules) share one draft, because their choices depend on
each other: switching to "Create a Deal" on the Rules page changes which fields the Mapping page offers
and which labels are valid. Edits are validated at once by the account (against the Pipedrive schema;
saving the same settings reuses that check) and saved ~500 ms after the last one, or at once when a page
is left (`flush`).

The account refuses to save a configuration with errors, so the engine never runs on one. The draft
then keeps the edit, says what still needs fixing, and parks a copy in the store (`DRAFT_KEY`), so an
unfinished set-up survives a restart. The first-run dialog uses a draft of its own that saves only when
it finishes.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
from collections.abc import Callable, Coroutine, Mapping
from typing import Any

from PySide6.QtCore import QObject, Qt, QTimer, Signal
from PySide6.QtGui import QHideEvent
from PySide6.QtWidgets import QFrame, QScrollArea, QVBoxLayout, QWidget

from rf_desktop.core.config import ConfigError, Issue, Settings
from rf_desktop.core.http import ApiError
from rf_desktop.core.schema import PipedriveSchema
from rf_desktop.core.secrets import SecretsError
from rf_desktop.gui.controller import AppController, NotConnectedError
from rf_desktop.gui.widgets.form_helpers import SaveStatus

log = logging.getLogger(__name__)

DRAFT_KEY = "settings_draft"
SAVED = "saved"
PENDING = "pending"
UNSAVED = "error"



def replace_path(obj: Any, path: str, value: Any) -> Any:
    """`obj` with the attribute at dotted `path` (e.g. "qualification.stage_id") set to `value`."""
    head, _, rest = path.partition(".")
    if rest:
        value = replace_path(getattr(obj, head), rest, value)
    return dataclasses.replace(obj, **{head: value})


def read_path(obj: Any, path: str) -> Any:
    for part in path.split("."):
        obj = getattr(obj, part)
    return obj


def page_of(issue: Issue) -> str:
    """The settings page where this issue is fixed."""
    return issue.page.title()


def saved_message(controller: AppController) -> str:
    """Saved, and when that takes effect."""
    if getattr(controller, "engine", None) is None:
        return "All changes saved. Nothing is sent until you press Start syncing."
    return "All changes saved. They apply to new referrals; people already in Pipedrive stay as they are."


def unsaved_message(errors: list[Issue]) -> str:
    pages = " and ".join(sorted({page_of(e) for e in errors}))
    return f"Not saved yet. To fix first ({pages}): {errors[0].message}"


class SettingsDraft(QObject):
    """Settings being edited.

    Signals: `changed(Settings)` after every edit or outside change; `issuesChanged(list[Issue])`
    after every validation; `saveStateChanged(state, message)` with state SAVED, PENDING or UNSAVED."""

    changed = Signal(object)
    issuesChanged = Signal(object)
    saveStateChanged = Signal(str, str)

    def __init__(
        self,
        controller: AppController,
        *,
        autosave: bool = True,
        delay_ms: int = 500,
        start: Settings | None = None,
        parent: QObject | None = None,
    ) -> None:
        super().__init__(parent)
        self.controller = controller
        self.autosave = autosave
        self._settings: Settings = start if start is not None else controller.settings()
        self._issues: list[Issue] = []
        self._dirty = start is not None
        self.save_state = SAVED
        self.save_message = ""
        self._timer = QTimer(self)
        self._timer.setSingleShot(True)
        self._timer.setInterval(delay_ms)
        self._timer.timeout.connect(self.flush)
        controller.settingsChanged.connect(self._on_saved)
        controller.schemaChanged.connect(self._on_schema)
        self.validate()
        if self._dirty and self.errors():
            self._set_state(UNSAVED, unsaved_message(self.errors()))
        if self._dirty and autosave:
            self._timer.start()  # a parked set-up may be complete now (the schema came since)

    @classmethod
    def shared(cls, controller: AppController) -> SettingsDraft:
        """The draft the settings pages share (created on first use, with any unfinished set-up
        left from the last session)."""
        found = controller.findChild(cls, "sharedSettingsDraft", Qt.FindChildOption.FindDirectChildrenOnly)
        if found is not None:
            return found
        draft = cls(controller, start=_parked_draft(controller), parent=controller)
        draft.setObjectName("sharedSettingsDraft")
        return draft

    # --- reading ----------------------------------------------------------------------------------------

    @property
    def settings(self) -> Settings:
        return self._settings

    @property
    def issues(self) -> list[Issue]:
        return self._issues

    @property
    def dirty(self) -> bool:
        return self._dirty

    def get(self, path: str) -> Any:
        return read_path(self._settings, path)

    def errors(self) -> list[Issue]:
        return [i for i in self._issues if i.severity == "error"]

    def schema(self) -> Any:
        return self.controller.schema()

    # --- editing ----------------------------------------------------------------------------------------

    def set(self, path: str, value: Any) -> None:
        self.set_many({path: value})

    def set_many(self, changes: Mapping[str, Any]) -> None:
        """Apply several edits as one (one validation, one save)."""
        self.edit(lambda s: _apply(s, changes))

    def edit(self, change: Callable[[Settings], Settings]) -> None:
        updated = change(self._settings)
        if updated == self._settings:
            return
        self._settings = updated
        self._dirty = True
        self.validate()
        self.changed.emit(self._settings)
        if self.autosave:
            errors = self.errors()
            # say at once when the edit cannot be saved yet; the save still runs, to park the draft
            if errors:
                self._set_state(UNSAVED, unsaved_message(errors))
            else:
                self._set_state(PENDING, "Saving…")
            self._timer.start()

    def _on_schema(self) -> None:
        self.validate()

    def validate(self) -> list[Issue]:
        self._issues = self.controller.account.issues(self._settings)
        self.issuesChanged.emit(self._issues)
        return self._issues

    # --- saving -----------------------------------------------------------------------------------------

    def flush(self) -> list[Issue]:
        """Save now if anything is unsaved; return the errors that kept it from being saved. Once the
        app is shutting down the store is closing: the quit has already saved or discarded the draft."""
        self._timer.stop()
        if not self._dirty or getattr(self.controller, "closed", False):
            return []
        issues = self.controller.save_settings(self._settings)
        errors = [i for i in issues if i.severity == "error"]
        if errors:
            if self.autosave:
                self.controller.store.set_kv(DRAFT_KEY, self._settings.to_json())
            self._set_state(UNSAVED, unsaved_message(errors))
            return errors
        self._dirty = False
        # whatever was parked is superseded, also when the first-run dialog saved
        self.controller.store.set_kv(DRAFT_KEY, None)
        self._set_state(SAVED, saved_message(self.controller))
        return []

    def discard(self) -> None:
        """Forget the unsaved edits (and any parked copy): back to the saved settings."""
        self._timer.stop()
        self._dirty = False
        self.controller.store.set_kv(DRAFT_KEY, None)
        self._settings = self.controller.settings()
        self.validate()
        self.changed.emit(self._settings)
        self._set_state(SAVED, "Changes discarded.")

    def _on_saved(self, saved: Settings) -> None:
        """Settings were saved (by this draft, or elsewhere: the first-run dialog, an import)."""
        if saved == self._settings or self._dirty:
            return
        self._settings = saved
        self.validate()
        self.changed.emit(self._settings)

    def _set_state(self, state: str, message: str) -> None:
        self.save_state = state
        self.save_message = message
        self.saveStateChanged.emit(state, message)


def _apply(settings: Settings, changes: Mapping[str, Any]) -> Settings:
    for path, value in changes.items():
        settings = replace_path(settings, path, value)
    return settings


def _parked_draft(controller: AppController) -> Settings | None:
    raw = controller.store.get_kv(DRAFT_KEY)
    if not isinstance(raw, dict):
        return None
    try:
        return Settings.from_json(raw)
    except ConfigError as error:
        log.warning("the unfinished settings from the last session are unreadable: %s", error)
        return None


class UnsavedAddressError(Exception):
    """The Pipedrive address on screen is not the saved one, and the schema is fetched from the saved one."""

    message = "The Pipedrive address you entered is not saved yet, so your fields cannot be fetched from it."
    hint = (
        "Finish the set-up so the settings can be saved (the line at the bottom of the page says what is "
        "missing), or reset the address under Connections → Advanced."
    )

    def __init__(self) -> None:
        super().__init__(f"{self.message} {self.hint}")


# What fetching from the accounts can raise for the owner to read: each has `message` and `hint`.
PROBLEMS = (ApiError, NotConnectedError, SecretsError, UnsavedAddressError)


def problem_text(error: BaseException) -> tuple[str, str]:
    """(message, hint) of one of PROBLEMS."""
    return str(getattr(error, "message", "") or error), str(getattr(error, "hint", "") or "")


async def refresh_schema(controller: AppController, draft: SettingsDraft) -> PipedriveSchema:
    """Fetch the Pipedrive fields, pipelines and stages again through the controller. The settings pages
    fetch from the saved Pipedrive address: while the owner's edited address is unsaved, refuse rather than
    fetch another account's fields. The set-up, whose draft is saved only at the end, fetches from the
    address it shows."""
    if not draft.autosave:
        set_up: PipedriveSchema = await controller.refresh_schema(draft.settings.pipedrive)
        return set_up
    if draft.settings.pipedrive.base_url != controller.settings().pipedrive.base_url:
        raise UnsavedAddressError()
    schema: PipedriveSchema = await controller.refresh_schema()
    return schema


class OwnedTasks:
    """The background tasks one widget started through `controller.spawn`, under keys unique to that
    widget (the same piece may exist in the main window and in the first-run dialog)."""

    def __init__(self, controller: AppController, owner: object) -> None:
        self._controller = controller
        self._prefix = f"{type(owner).__name__}.{id(owner)}."
        self._tasks: dict[str, asyncio.Task[Any]] = {}
        if isinstance(owner, QObject):
            # a task must not outlive its widget: it would touch deleted labels when it finishes
            owner.destroyed.connect(lambda *_: self.cancel())

    def spawn(self, key: str, coro: Coroutine[Any, Any, Any]) -> asyncio.Task[Any]:
        task: asyncio.Task[Any] = self._controller.spawn(self._prefix + key, coro)
        self._tasks[key] = task
        return task

    def running(self, key: str) -> bool:
        task = self._tasks.get(key)
        return task is not None and not task.done()

    def cancel(self, *keys: str) -> None:
        for key in keys or tuple(self._tasks):
            task = self._tasks.pop(key, None)
            if task is not None and not task.done():
                task.cancel()


class DraftPage(QWidget):
    """A settings page: the shared draft, a scrolling body (so nothing is clipped at large text
    scales), and a line at the bottom saying whether the edits are saved.

    Leaving the page saves at once, so an edit made just before switching pages is never lost."""

    title = ""
    icon_name = ""

    def __init__(self, controller: AppController, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.controller = controller
        self.draft = SettingsDraft.shared(controller)
        self.tasks = OwnedTasks(controller, self)
        content = QWidget()
        self.body = QVBoxLayout(content)
        self.body.setSpacing(12)
        scroll = QScrollArea()
        scroll.setWidgetResizable(True)
        scroll.setFrameShape(QFrame.Shape.NoFrame)
        scroll.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        scroll.setWidget(content)
        self.save_status = SaveStatus()
        self.save_status.set_state(self.draft.save_state, self.draft.save_message)
        self.draft.saveStateChanged.connect(self.save_status.set_state)
        column = QVBoxLayout(self)
        column.setContentsMargins(0, 0, 0, 0)
        column.addWidget(scroll, 1)
        footer = QVBoxLayout()
        footer.setContentsMargins(12, 4, 12, 8)
        footer.addWidget(self.save_status)
        column.addLayout(footer)

    def hideEvent(self, event: QHideEvent) -> None:
        self.draft.flush()
        super().hideEvent(event)

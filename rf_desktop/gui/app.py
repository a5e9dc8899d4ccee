"""Starting and stopping the desktop app.

`run_gui` builds the QApplication, runs `main()` on a qasync loop (the sync engine shares it), and
returns when the owner quits. `main()` waits for a quit request and, in `finally`, stops the engine
(which closes its HTTP clients), the demo sandbox and the store, so quitting never abandons a write
halfway. An unexpected error is logged and shown in a dialog instead of ending the app.

The demo (`--demo`, or "Try the demo" on the first run) starts the built-in sandbox with its simulated
sign-ups and sales team, in a separate database, with settings pointing at it and the sandbox's tokens
held in memory only (never written to the keychain).
"""

from __future__ import annotations

import asyncio
import gc
import logging
import logging.handlers
import signal
import socket
import sys
import traceback
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Any

from PySide6.QtCore import QObject, QSettings, QSocketNotifier, Qt, QTimer
from PySide6.QtGui import QGuiApplication
from PySide6.QtWidgets import QApplication, QMessageBox

from rf_desktop import APP_ID, APP_NAME, __version__
from rf_desktop.core.config import (
    PipedriveSettings,
    ReferralFactorySettings,
    Settings,
)
from rf_desktop.core.instance_lock import AlreadySyncingError
from rf_desktop.core.secrets import PD_TOKEN, RF_TOKEN
from rf_desktop.core.store import Store
from rf_desktop.core.store_errors import StoreError
from rf_desktop.gui import icons, theme
from rf_desktop.gui.controller import AppController
from rf_desktop.gui.first_run import CANCELLED, CONFIGURED, DEMO, FirstRunDialog
from rf_desktop.gui.main_window import MainWindow, return_to_demo
from rf_desktop.gui.tasks import run_dialog
from rf_desktop.gui.wheel_guard import install_wheel_guard
from rf_desktop.paths import data_dir, default_db_path, demo_db_path

log = logging.getLogger(__name__)
# the set-up finished and the owner asked for a test referral once the window is open
CONFIGURED_THEN_TEST = "configured, then test"

LOG_FILE = "rf-desktop.log"


# --- the application object -------------------------------------------------------------------------------

class MainThreadGarbageCollector(QObject):
    """Python's cyclic garbage collector runs in whichever thread happens to allocate; if that is an
    executor thread (the CSV export, a keychain call), Qt objects in the garbage are destroyed there, which
    Qt forbids ("Timers cannot be stopped from another thread") and which can crash. So automatic
    collection is switched off and done here, on the GUI thread, as often as Python would have."""

    def __init__(self, interval_ms: int = 500, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self._thresholds = gc.get_threshold()
        gc.disable()
        self._timer = QTimer(self)
        self._timer.setInterval(interval_ms)
        self._timer.timeout.connect(self.check)
        self._timer.start()

    def check(self) -> None:
        counts = gc.get_count()
        for generation in (2, 1, 0):
            if counts[generation] > self._thresholds[generation]:
                gc.collect(generation)
                return

    def stop(self) -> None:
        self._timer.stop()
        gc.enable()


def freeze_what_lasts() -> None:
    """Collect once, then leave what survived start-up out of every later collection: the modules, Qt's
    wrappers, the window and its pages live as long as the app. A full collection then walks only what
    was made since, instead of every object (which took 45-65 ms of the UI thread with a large table open).
    `gc.unfreeze()` undoes it when the session ends."""
    gc.collect()
    gc.freeze()


# Each call into Python from the window's thread takes the interpreter lock; while a worker thread (the
# demo's sandbox, an export, the sync's store calls) runs Python, a call waited up to Python's default switch
# interval of 5 ms for it. At 1 ms a table refresh and repaint beside a busy thread took 14 ms instead of 53
# (shorter gains no more).
GIL_SWITCH_SECONDS = 0.001


def create_application(argv: list[str] | None = None) -> QApplication:
    sys.setswitchinterval(GIL_SWITCH_SECONDS)
    existing = QApplication.instance()
    if isinstance(existing, QApplication):
        app = existing
    else:
        # fractional scale factors (125 %, 150 %) as the OS asks, instead of rounding to 100 % or 200 %
        QGuiApplication.setHighDpiScaleFactorRoundingPolicy(Qt.HighDpiScaleFactorRoundingPolicy.PassThrough)
        app = QApplication(argv if argv is not None else sys.argv)
    app.setApplicationName(APP_NAME)
    app.setOrganizationName(APP_NAME)
    app.setApplicationDisplayName("rf-desktop")
    app.setApplicationVersion(__version__)
    app.setDesktopFileName(APP_ID)
    app.setQuitOnLastWindowClosed(False)  # quitting goes through main(), which stops the sync first
    theme.follow_system(app)
    install_wheel_guard(app)
    app.setWindowIcon(icons.app_icon())
    return app


def setup_logging() -> Path | None:
    """Warnings to the terminal, everything from INFO to a rotating file in the data directory (the log
    file's path; None when the data directory cannot be made, which opening the database then explains)."""
    console = logging.StreamHandler()
    console.setLevel(logging.WARNING)
    root = logging.getLogger()
    root.setLevel(logging.INFO)
    root.addHandler(console)
    try:
        path = data_dir() / LOG_FILE
    except StoreError:
        return None
    handler = logging.handlers.RotatingFileHandler(path, maxBytes=2_000_000, backupCount=3, encoding="utf-8")
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    root.addHandler(handler)
    return path


class TerminationRequest(QObject):
    """SIGTERM (a logout, `kill`, a service manager stopping rf-desktop) quits as Quit does, instead of
    ending the process with a write half done. Python runs a signal handler only when it next runs Python
    code, which an idle Qt loop may not do for a long time: the signal also writes its number to a socket
    Qt watches, and that wakes the loop."""

    def __init__(self, on_request: Callable[[], None], parent: QObject | None = None) -> None:
        super().__init__(parent)
        self._on_request = on_request
        self._reader, self._writer = socket.socketpair()
        self._reader.setblocking(False)
        self._writer.setblocking(False)
        self._previous_fd = signal.set_wakeup_fd(self._writer.fileno())
        self._previous_handler = signal.signal(signal.SIGTERM, lambda _number, _frame: None)
        self._notifier = QSocketNotifier(self._reader.fileno(), QSocketNotifier.Type.Read, self)
        self._notifier.activated.connect(self._woken)

    def _woken(self) -> None:
        try:
            numbers = self._reader.recv(64)
        except OSError:
            return
        if signal.SIGTERM in numbers:  # other signals with Python handlers (Ctrl+C) write here too
            log.info("asked to quit by SIGTERM")
            self._on_request()

    def close(self) -> None:
        """Give SIGTERM back its previous meaning."""
        self._notifier.setEnabled(False)
        signal.signal(signal.SIGTERM, self._previous_handler)
        signal.set_wakeup_fd(self._previous_fd)
        self._reader.close()
        self._writer.close()


# --- unexpected errors: logged and shown, never fatal -----------------------------------------------------


class ErrorReporter:
    """Shows one dialog at a time; errors arriving while it is open are counted into it."""

    def __init__(self, log_path: Path | None = None) -> None:
        self.log_path = log_path
        self.box: QMessageBox | None = None
        self.count = 0

    def excepthook(
        self, kind: type[BaseException], error: BaseException, tb: TracebackType | None
    ) -> None:
        if issubclass(kind, KeyboardInterrupt):
            sys.__excepthook__(kind, error, tb)
            return
        log.error("unexpected error", exc_info=(kind, error, tb))
        self.show(error, "".join(traceback.format_exception(kind, error, tb)))

    def loop_exception(self, _loop: asyncio.AbstractEventLoop, context: dict[str, Any]) -> None:
        error = context.get("exception")
        if isinstance(error, BaseException):
            self.excepthook(type(error), error, error.__traceback__)
        else:
            log.error("unexpected error: %s", context.get("message", context))

    def show(self, error: BaseException, details: str) -> None:
        self.count += 1
        if self.box is not None and self.box.isVisible():
            self.box.setText(f"{self.count} unexpected errors happened. The last one: {error}")
            return
        self.count = 1
        where = f"\n\nDetails are in {self.log_path}." if self.log_path else ""
        self.box = QMessageBox(QMessageBox.Icon.Critical, "rf-desktop: something went wrong", "")
        self.box.setText(f"Something unexpected happened: {error}")
        self.box.setInformativeText(
            "rf-desktop keeps running and your referrals are safe: everything is recorded before it is "
            f"sent.{where}"
        )
        self.box.setDetailedText(details)
        self.box.setWindowModality(Qt.WindowModality.NonModal)
        self.box.open()


# --- dialogs inside coroutines ----------------------------------------------------------------------------


async def first_run(controller: AppController) -> str:
    """Nothing is set up yet: the guided set-up, whose first page also offers the demo. Returns its
    outcome: CONFIGURED (saved, syncing), CONFIGURED_THEN_TEST (and the owner wants a test referral once
    the window is open), DEMO or CANCELLED (the window opens without syncing, or the owner goes back to
    the demo they came from)."""
    dialog = FirstRunDialog(controller)
    dialog.setWindowIcon(icons.app_icon())
    await run_dialog(dialog)
    outcome: str = dialog.outcome
    if outcome == CONFIGURED and dialog.send_test_referral:
        outcome = CONFIGURED_THEN_TEST
    await controller.settle_tasks()  # its pieces may still be reading the keychain
    dialog.deleteLater()
    return outcome


# --- the demo ---------------------------------------------------------------------------------------------


def start_demo_sandbox() -> Any:
    """The sandbox with its simulated sign-ups and sales team running (blocks until it listens)."""
    from rf_desktop.sandbox.server import SandboxServer

    server = SandboxServer()
    server.state.demo_enabled = True
    return server.start()


def fresh_demo_database(db_path: Path | None) -> Path:
    """The demo's database. The default one starts afresh each time, as the simulation does."""
    if db_path is not None:
        return db_path
    path = demo_db_path()
    for leftover in (path, Path(f"{path}-wal"), Path(f"{path}-shm")):
        leftover.unlink(missing_ok=True)
    return path


async def configure_demo(controller: AppController, server: Any) -> Settings:
    """The demo's settings, with the sandbox's tokens for this session only."""
    controller.account.use_session_tokens({RF_TOKEN: server.state.rf.token, PD_TOKEN: server.state.pd.token})
    return await point_at_sandbox(controller, server)


async def point_at_sandbox(controller: AppController, server: Any) -> Settings:
    """Settings pointing at the sandbox (the shared presets: leads, the referral fields mapped, qualified
    when converted) for every launched campaign, checked through the controller as a real account is (its
    tokens must be set)."""
    # the two accounts answer independently: ask both at once (the demo opens that much sooner)
    check, _schema = await asyncio.gather(
        controller.account.check_referral_factory(server.rf_base_url),
        controller.refresh_schema(PipedriveSettings(base_url=server.pd_base_url)),
    )
    launched = [int(c["id"]) for c in check.campaigns if c.get("status", "launched") == "launched"]
    from rf_desktop.sandbox import presets  # the sandbox loads only when the demo runs

    settings = presets.demo_settings(
        server.rf_base_url,
        server.pd_base_url,
        server.state,
        referral_factory=ReferralFactorySettings(
            base_url=server.rf_base_url, campaign_ids=launched or [1], backfill="all"
        ),
    )
    errors = [i for i in controller.save_settings(settings) if i.severity == "error"]
    if errors:
        raise RuntimeError(f"The sandbox settings are not valid: {errors[0].path}: {errors[0].message}")
    return settings


# --- one run of the app ------------------------------------------------------------------------------------


@dataclass
class Session:
    controller: AppController
    window: MainWindow

    async def close(self) -> None:
        """Quit in order: the settings draft (saved, or kept for next time), then the sync (the engine
        stops and the store closes), then the window, for good."""
        self.window.save_draft()
        await self.controller.shutdown()
        self.window.close_for_quit()


async def tell(icon: QMessageBox.Icon, title: str, text: str) -> None:
    await run_dialog(QMessageBox(icon, title, text))


async def open_store(path: Callable[[], Path]) -> Store | None:
    """The store at `path()`, or None after telling the owner why not. The path is found inside, so a data
    folder that cannot be created is explained in a window too."""
    try:
        return Store(path())
    except StoreError as error:
        await tell(QMessageBox.Icon.Critical, "rf-desktop cannot open its database", str(error))
        return None


async def open_controller(demo: bool, db_path: Path | None) -> tuple[AppController, str | None] | int:
    """The controller over the right database (running the set-up on a first run) and the set-up's outcome
    when it just ran (CONFIGURED, CONFIGURED_THEN_TEST or CANCELLED; None when it did not run); or an exit
    status."""
    if not demo:
        store = await open_store(lambda: db_path or default_db_path())
        if store is None:
            return 1
        controller = AppController(store)
        await controller.account.load_tokens()
        if controller.has_accounts():
            return controller, None
        outcome = await first_run(controller)
        if outcome in (CONFIGURED, CONFIGURED_THEN_TEST):
            return controller, outcome
        if outcome != DEMO and not return_to_demo():
            # the set-up was left: the window opens, not syncing, where it can be finished page by page
            return controller, CANCELLED
        await controller.shutdown()
        if outcome != DEMO:
            return 0  # back in the demo the owner came from
        db_path = None
    sandbox = await asyncio.get_running_loop().run_in_executor(None, start_demo_sandbox)
    store = await open_store(lambda: fresh_demo_database(db_path))
    if store is None:
        sandbox.stop()
        return 1
    controller = AppController(store, demo=True, sandbox=sandbox)
    try:
        await configure_demo(controller, sandbox)
    except Exception as error:
        log.exception("the demo could not start")
        await controller.shutdown()
        await tell(QMessageBox.Icon.Critical, "The demo could not start", str(error))
        return 1
    return controller, None


async def open_session(
    demo: bool, db_path: Path | None, ui_settings: QSettings | None = None
) -> Session | int:
    """Open the store, start the sync and show the window; or the exit status when that cannot be."""
    opened = await open_controller(demo, db_path)
    if isinstance(opened, int):
        return opened
    controller, set_up = opened
    try:
        # syncing starts once the owner has started it: a set-up finished, or Start pressed
        if controller.demo or set_up in (CONFIGURED, CONFIGURED_THEN_TEST) or controller.sync_started():
            controller.start_engine()
    except AlreadySyncingError as error:
        await controller.shutdown()
        await tell(QMessageBox.Icon.Warning, "rf-desktop is already running", str(error))
        return 1
    window = MainWindow(controller, ui_settings)
    if controller.demo or set_up in (CONFIGURED, CONFIGURED_THEN_TEST):
        window.show_page_named("Invited users")  # where the referrals arrive
    elif set_up == CANCELLED:
        window.show_page_named("Connections")  # where the set-up carries on
    window.show()
    if set_up == CONFIGURED_THEN_TEST:
        window.open_test_wizard()
    return Session(controller, window)


READY_LINE = "rf-desktop is ready."


async def main(
    app: QApplication, demo: bool, db_path: Path | None, ui_settings: QSettings | None = None
) -> int:
    """Run one session of the app until the owner quits (or the desktop session ends); the exit status."""
    quit_requested = asyncio.Event()
    app.aboutToQuit.connect(quit_requested.set)
    terminated = TerminationRequest(quit_requested.set)
    try:
        session = await open_session(demo, db_path, ui_settings)
        if isinstance(session, int):
            return session
        try:
            session.window.quitRequested.connect(quit_requested.set)
            await asyncio.sleep(0)  # the window's first paint was queued before this
            # for the terminal that started it: the window can be used now
            print(READY_LINE, file=sys.stderr, flush=True)
            freeze_what_lasts()
            await quit_requested.wait()
            return 0
        finally:
            gc.unfreeze()  # a session ended in-process leaves the collector as it found it
            await session.close()
    finally:
        terminated.close()
        app.aboutToQuit.disconnect(quit_requested.set)


def run_gui(demo: bool, db_path: Path | None) -> int:
    """`rf-desktop` and `rf-desktop --demo`: run the window until the owner quits; the exit status."""
    import qasync  # only now: PySide6 is loaded, so qasync binds to it and not to another Qt binding

    log_path = setup_logging()
    app = create_application()
    collector = MainThreadGarbageCollector(parent=app)
    reporter = ErrorReporter(log_path)
    sys.excepthook = reporter.excepthook
    with asyncio.Runner(loop_factory=lambda: qasync.QEventLoop(app)) as runner:
        runner.get_loop().set_exception_handler(reporter.loop_exception)
        try:
            return runner.run(main(app, demo, db_path))
        except RuntimeError as error:
            # Qt's loop was ended from outside (the desktop session closing); Runner's exit cancels
            # main(), whose `finally` still stops the sync
            log.info("the event loop ended early: %s", error)
            return 0
        finally:
            collector.stop()

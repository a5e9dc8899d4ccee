"""Serve the sandbox on 127.0.0.1: in a background thread (tests, the GUI's demo) or in the foreground
(`rf-desktop sandbox`)."""

from __future__ import annotations

import argparse
import logging
import signal
import socket
import sys
import threading
import time
from types import FrameType

import uvicorn

from rf_desktop.sandbox.app import ADMIN_PREFIX, PD_PREFIX, RF_PREFIX, create_app
from rf_desktop.sandbox.state import SandboxState

LOOPBACK = "127.0.0.1"
# in-flight requests get this long to finish on shutdown (a simulated timeout ends when its client leaves)
GRACEFUL_SHUTDOWN_SECONDS = 2


def _bind(port: int) -> socket.socket:
    # proto must say TCP: asyncio only turns Nagle's algorithm off for sockets that do, and with it on
    # every response waits ~40 ms for a delayed ACK between its header and body writes
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((LOOPBACK, port))
    sock.listen(128)
    sock.setblocking(False)
    return sock


def _server(state: SandboxState) -> uvicorn.Server:
    config = uvicorn.Config(
        create_app(state),
        # no logging config of uvicorn's own: its records propagate to the root logger like everyone
        # else's (the test suite fails on any ERROR record, which uvicorn's default config would hide)
        log_config=None,
        log_level="warning",
        access_log=False,
        lifespan="on",
        timeout_graceful_shutdown=GRACEFUL_SHUTDOWN_SECONDS,
    )
    return uvicorn.Server(config)


class SandboxServer:
    """A running sandbox. `start()` returns once it accepts connections; `stop()` waits for it to end."""

    def __init__(self, state: SandboxState | None = None, port: int = 0) -> None:
        self.state = state or SandboxState()
        self._sock = _bind(port)
        self.port: int = self._sock.getsockname()[1]
        self._server = _server(self.state)
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        return f"http://{LOOPBACK}:{self.port}"

    @property
    def rf_base_url(self) -> str:
        return self.url + RF_PREFIX

    @property
    def pd_base_url(self) -> str:
        return self.url + PD_PREFIX

    @property
    def admin_url(self) -> str:
        return self.url + ADMIN_PREFIX

    def start(self, timeout: float = 10.0) -> SandboxServer:
        self._thread = threading.Thread(
            target=self._server.run, kwargs={"sockets": [self._sock]}, name="rf-sandbox", daemon=True
        )
        self._thread.start()
        deadline = time.monotonic() + timeout
        while not self._server.started:
            if not self._thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError("the sandbox did not start")
            time.sleep(0.01)
        return self

    def stop(self) -> None:
        self._server.should_exit = True
        if self._thread is not None:
            self._thread.join(timeout=10)
        self._sock.close()
        self.state.save()

    def __enter__(self) -> SandboxServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


class _Stopped(Exception):
    """Ctrl+C or SIGTERM. Uvicorn shuts down gracefully on either, then raises the signal again for the
    handler it found; ours ends the run normally (no traceback, the state saved, exit status 0)."""


def _stop(signum: int, frame: FrameType | None) -> None:
    raise _Stopped


def run_cli(args: argparse.Namespace) -> int:
    """`rf-desktop sandbox`: serve in the foreground until Ctrl+C or SIGTERM, then save the state."""
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    state = SandboxState(plan=args.plan, seats=args.seats, state_dir=args.state_dir)
    if args.latency_ms:
        for faults in state.faults.values():
            faults.latency_ms = args.latency_ms
    state.demo_enabled = args.demo
    try:
        sock = _bind(args.port)
    except OSError as exc:
        print(f"rf-desktop sandbox: cannot listen on {LOOPBACK}:{args.port}: {exc.strerror}", file=sys.stderr)
        return 2
    base = f"http://{LOOPBACK}:{sock.getsockname()[1]}"
    # the tokens printed here are the sandbox's own fake ones, meant to be pasted into rf-desktop
    print(f"Referral Factory API: {base}{RF_PREFIX}   (token: {state.rf.token})", flush=True)
    print(f"Pipedrive API:        {base}{PD_PREFIX}   (token: {state.pd.token})", flush=True)
    print(f"Sandbox admin:        {base}{ADMIN_PREFIX}", flush=True)
    if state.state_file is not None:
        print(f"State is kept in {state.state_file}", flush=True)
    if args.demo:
        print("Demo: people sign up about every 10 s and a sales team works the leads and deals.", flush=True)
    print("Press Ctrl+C to stop.", flush=True)
    previous = {sig: signal.signal(sig, _stop) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        _server(state).run(sockets=[sock])
    except _Stopped:
        pass
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
        sock.close()
        state.save()
    print("Sandbox stopped.", flush=True)
    return 0

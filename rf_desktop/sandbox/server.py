"""Serve the sandbox on 127.0.0.1: in a background thread (tests, the GUI's demo) or in the foreground
(`rf-desktop sandbox`)."""

from __future__ import annotations

import argparse
import socket
import threading
import time

import uvicorn

from rf_desktop.sandbox.app import ADMIN_PREFIX, PD_PREFIX, RF_PREFIX, create_app
from rf_desktop.sandbox.state import SandboxState

LOOPBACK = "127.0.0.1"


def _bind(port: int) -> socket.socket:
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((LOOPBACK, port))
    sock.listen(128)
    sock.setblocking(False)
    return sock


class SandboxServer:
    """A running sandbox. `start()` returns once it accepts connections; `stop()` waits for it to end."""

    def __init__(self, state: SandboxState | None = None, port: int = 0) -> None:
        self.state = state or SandboxState()
        self._sock = _bind(port)
        self.port: int = self._sock.getsockname()[1]
        config = uvicorn.Config(
            create_app(self.state), log_level="warning", access_log=False, lifespan="on", timeout_graceful_shutdown=2
        )
        self._server = uvicorn.Server(config)
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


def run_cli(args: argparse.Namespace) -> int:
    """`rf-desktop sandbox`: serve in the foreground until Ctrl+C."""
    state = SandboxState(plan=args.plan, seats=args.seats, state_dir=args.state_dir)
    if args.latency_ms:
        for faults in state.faults.values():
            faults.latency_ms = args.latency_ms
    state.demo_enabled = args.demo
    sock = _bind(args.port)
    port = sock.getsockname()[1]
    base = f"http://{LOOPBACK}:{port}"
    print(f"Referral Factory API: {base}{RF_PREFIX}   (token: {state.rf.token})", flush=True)
    print(f"Pipedrive API:        {base}{PD_PREFIX}   (token: {state.pd.token})", flush=True)
    print(f"Sandbox admin:        {base}{ADMIN_PREFIX}", flush=True)
    config = uvicorn.Config(create_app(state), log_level="warning", access_log=False, lifespan="on")
    try:
        uvicorn.Server(config).run(sockets=[sock])
    finally:
        state.save()
    return 0

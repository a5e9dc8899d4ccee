"""Shared fixtures and the suite's strictness.

- Python warnings are errors (pyproject `filterwarnings`), Qt warnings fail the test (`qt_log_level_fail`).
- Any ERROR log record fails the test that did not say it expects one (`@pytest.mark.allow_logged_errors`).
- The sandbox is a real HTTP server on 127.0.0.1, one per session, reset before each test that uses it.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from rf_desktop.sandbox.server import SandboxServer

REPO = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("RF_DESKTOP_SHARED_DIR", REPO.parent / "shared"))
REFERENCE = SHARED / "reference"


@pytest.fixture(scope="session")
def reference_dir() -> Path:
    """`../shared/reference` (the API notes and Pipedrive's official OpenAPI specs), or skip."""
    if not (REFERENCE / "pipedrive-openapi" / "pipedrive-openapi-v2.yaml").exists():
        pytest.skip(f"Pipedrive's OpenAPI specs are not at {REFERENCE} (CI puts ../shared beside the checkout)")
    return REFERENCE


def no_keychain(reason: str) -> None:
    """Skip a real-keychain test where there is none, but fail it in CI, which must test the real one."""
    if os.environ.get("CI"):
        pytest.fail(f"CI must test the real Secret Service keychain: {reason}")
    pytest.skip(reason)


@pytest.fixture(scope="session")
def sandbox_server() -> Iterator[SandboxServer]:
    with SandboxServer() as server:
        yield server


@pytest.fixture
def sandbox(sandbox_server: SandboxServer) -> SandboxServer:
    """The running sandbox, reset to its seeded state: campaigns, a referrer, pipelines, fields."""
    sandbox_server.state.reset()
    return sandbox_server


@pytest.fixture(autouse=True)
def _fail_on_logged_errors(request: pytest.FixtureRequest, caplog: pytest.LogCaptureFixture) -> Iterator[None]:
    yield
    if request.node.get_closest_marker("allow_logged_errors"):
        return
    errors = [r for r in caplog.get_records("call") if r.levelno >= logging.ERROR]
    if errors:
        lines = "\n".join(f"{r.name}: {r.getMessage()}" for r in errors)
        pytest.fail(f"unexpected ERROR log records:\n{lines}", pytrace=False)

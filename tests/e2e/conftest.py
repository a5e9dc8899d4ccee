from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from rf_desktop.core.store import Store
from rf_desktop.sandbox.referral_factory import RfShape
from rf_desktop.sandbox.server import SandboxServer

# Every answer Referral Factory's public material allows, combined so each pair of choices meets once (four
# runs instead of sixteen): list order, paging envelope, per_page honoured or not, a second qualification
# answered 200 or 422.
RF_SHAPES = {
    "oldest-first": RfShape(),
    "oldest-first-minimal-25-per-page-422": RfShape(
        envelope="minimal", per_page="ignored", requalify="refused"
    ),
    "newest-first-25-per-page-422": RfShape(order="newest_first", per_page="ignored", requalify="refused"),
    "newest-first-minimal": RfShape(order="newest_first", envelope="minimal"),
}


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    """Tests marked `rf_shapes` run once against each Referral Factory shape."""
    if metafunc.definition.get_closest_marker("rf_shapes") and "sandbox" in metafunc.fixturenames:
        metafunc.parametrize("sandbox", list(RF_SHAPES.values()), ids=list(RF_SHAPES), indirect=True)


@pytest.fixture
def sandbox(sandbox_server: SandboxServer, request: pytest.FixtureRequest) -> SandboxServer:
    """The running sandbox, reset to its seeded state, answering in the shape the test runs against."""
    sandbox_server.state.reset()
    shape: RfShape | None = getattr(request, "param", None)
    if shape is not None:
        with sandbox_server.state.lock:
            sandbox_server.state.rf.shape = RfShape(**shape.to_json())
    return sandbox_server


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Store]:
    with Store(tmp_path / "rf.sqlite3") as opened:
        yield opened

"""Fixtures validating Pipedrive exchanges against the official specs (see `openapi_check`)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from rf_desktop.sandbox.server import SandboxServer
from tests.contract.openapi_check import PipedriveContract, ValidatingClients, load_contract


@pytest.fixture(scope="session")
def pipedrive_contract(reference_dir: Path) -> PipedriveContract:
    """Both Pipedrive specs, loaded once (about a second), patched only by KNOWN_SPEC_DEVIATIONS."""
    return load_contract(reference_dir)


@pytest.fixture
def validating_clients(
    sandbox: SandboxServer, pipedrive_contract: PipedriveContract
) -> Iterator[ValidatingClients]:
    """Clients for the sandbox's Pipedrive; the test fails if any exchange departs from the specs."""
    clients = ValidatingClients(pipedrive_contract, sandbox.pd_base_url, sandbox.state.pd.token)
    yield clients
    clients.close()
    assert not clients.failures, "exchanges that depart from the Pipedrive specs:\n" + "\n".join(
        clients.failures
    )


@pytest.fixture
def pd(validating_clients: ValidatingClients) -> httpx.Client:
    """A validating client for the sandbox's Pipedrive, with the valid API token."""
    return validating_clients.client()

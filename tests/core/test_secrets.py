"""Tokens in the keychain: an in-memory backend for the logic, the real Secret Service for the rest."""

from __future__ import annotations

import os
import traceback
import uuid
from collections.abc import Iterator

import keyring
import pytest
from keyring.backend import KeyringBackend
from keyring.backends import SecretService, chainer, fail, null
from keyring.errors import InitError, KeyringError, KeyringLocked
from secretstorage.exceptions import (
    LockedException,
    PromptDismissedException,
    SecretServiceNotAvailableException,
)

from rf_desktop.core.secrets import (
    ENV_VARS,
    PD_TOKEN,
    RF_TOKEN,
    SERVICE,
    KeychainLockedError,
    KeychainUnavailableError,
    SecretsError,
    TokenStore,
    choose_backend,
)
from tests.conftest import no_keychain
from tests.keychains import MemoryKeyring, NotYetInstalledKeyring

TOKEN = "pd-token-5c1e0d9b7a"


class FailingKeyring(MemoryKeyring):
    """Raises the given exception from every call."""

    def __init__(self, error: BaseException) -> None:
        super().__init__()
        self.error = error

    def get_password(self, service: str, username: str) -> str | None:
        raise self.error

    def set_password(self, service: str, username: str, password: str) -> None:
        raise self.error

    def delete_password(self, service: str, username: str) -> None:
        raise self.error


def _foreign(module: str, name: str) -> type[Exception]:
    return type(name, (Exception,), {"__module__": module})


@pytest.fixture
def memory() -> MemoryKeyring:
    return MemoryKeyring()


@pytest.fixture(autouse=True)
def _no_token_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for variable in ENV_VARS.values():
        monkeypatch.delenv(variable, raising=False)


# --- the keychain through an in-memory backend ---


def test_without_a_keychain_tokens_can_be_kept_for_this_session_then_moved_into_a_new_keychain() -> None:
    absent = NotYetInstalledKeyring()
    tokens = TokenStore(absent, environ={})
    with pytest.raises(KeychainUnavailableError):
        tokens.set(PD_TOKEN, TOKEN)
    tokens.keep_for_session()
    tokens.set(PD_TOKEN, f" {TOKEN} ")
    assert tokens.get(PD_TOKEN) == TOKEN
    assert tokens.source(PD_TOKEN) == "session" and tokens.source(RF_TOKEN) is None
    assert tokens.backend_description() == "Memory, for this session only"
    assert absent.passwords == {}  # nothing was written anywhere
    with pytest.raises(KeychainUnavailableError):
        tokens.recheck()  # still none: the tokens stay in memory
    assert tokens.session_only and tokens.get(PD_TOKEN) == TOKEN

    absent.installed = True
    tokens.recheck()
    assert not tokens.session_only
    assert absent.passwords == {(SERVICE, PD_TOKEN): TOKEN}
    assert tokens.source(PD_TOKEN) == "keychain"
    tokens.delete(PD_TOKEN)
    assert tokens.get(PD_TOKEN) is None


def test_a_session_only_token_can_be_removed() -> None:
    tokens = TokenStore(NotYetInstalledKeyring(), environ={})
    tokens.keep_for_session()
    tokens.set(RF_TOKEN, TOKEN)
    tokens.delete(RF_TOKEN)
    assert tokens.get(RF_TOKEN) is None and tokens.source(RF_TOKEN) is None


def test_set_get_delete_round_trip(memory: MemoryKeyring) -> None:
    tokens = TokenStore(memory)
    assert tokens.get(PD_TOKEN) is None
    tokens.set(PD_TOKEN, f"  {TOKEN}\n")
    assert memory.passwords == {(SERVICE, PD_TOKEN): TOKEN}  # pasted whitespace removed
    assert tokens.get(PD_TOKEN) == TOKEN
    assert tokens.get(RF_TOKEN) is None
    tokens.delete(PD_TOKEN)
    assert tokens.get(PD_TOKEN) is None
    tokens.delete(PD_TOKEN)  # deleting what is not there is fine


def test_names_and_empty_tokens_are_checked(memory: MemoryKeyring) -> None:
    tokens = TokenStore(memory)
    with pytest.raises(ValueError, match="Unknown token name 'hubspot'"):
        tokens.get("hubspot")
    with pytest.raises(ValueError, match="The token is empty"):
        tokens.set(PD_TOKEN, "   ")


def test_a_custom_service_name_keeps_entries_apart(memory: MemoryKeyring) -> None:
    TokenStore(memory, service="rf-desktop-demo").set(PD_TOKEN, TOKEN)
    assert TokenStore(memory).get(PD_TOKEN) is None


def test_environment_wins_over_the_keychain(memory: MemoryKeyring, monkeypatch: pytest.MonkeyPatch) -> None:
    tokens = TokenStore(memory)
    tokens.set(PD_TOKEN, "from-keychain")
    assert tokens.source(PD_TOKEN) == "keychain"
    monkeypatch.setenv("RF_DESKTOP_PIPEDRIVE_TOKEN", " from-env ")
    assert tokens.get(PD_TOKEN) == "from-env"
    assert tokens.source(PD_TOKEN) == "environment"
    assert tokens.source(RF_TOKEN) is None
    monkeypatch.setenv("RF_DESKTOP_PIPEDRIVE_TOKEN", "")
    assert tokens.get(PD_TOKEN) == "from-keychain"  # an empty variable does not count


def test_an_explicit_environment_mapping(memory: MemoryKeyring) -> None:
    tokens = TokenStore(memory, environ={"RF_DESKTOP_REFERRAL_FACTORY_TOKEN": "rf-env"})
    assert tokens.get(RF_TOKEN) == "rf-env"
    assert tokens.source(RF_TOKEN) == "environment"


def test_headless_use_needs_no_keychain(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(keyring, "get_keyring", lambda: fail.Keyring())
    tokens = TokenStore(environ={"RF_DESKTOP_PIPEDRIVE_TOKEN": TOKEN})
    assert tokens.get(PD_TOKEN) == TOKEN
    with pytest.raises(KeychainUnavailableError) as caught:
        tokens.get(RF_TOKEN)
    assert str(caught.value).startswith("No system keychain was found.")
    assert "RF_DESKTOP_REFERRAL_FACTORY_TOKEN" in caught.value.hint
    assert "GNOME Keyring or KWallet" in caught.value.hint


# --- refusing what is not a real keychain ---


@pytest.mark.parametrize("backend", [fail.Keyring(), null.Keyring()], ids=["fail", "null"])
def test_fail_and_null_backends_are_refused_even_when_passed_in(backend: KeyringBackend) -> None:
    tokens = TokenStore(backend)
    with pytest.raises(KeychainUnavailableError):
        tokens.set(PD_TOKEN, TOKEN)
    with pytest.raises(KeychainUnavailableError):
        tokens.get(PD_TOKEN)


def test_plaintext_backends_are_refused() -> None:
    plaintext = type("PlaintextKeyring", (MemoryKeyring,), {"__module__": "keyrings.alt.file"})()
    with pytest.raises(KeychainUnavailableError):
        choose_backend(plaintext, explicit=True)


def test_a_discovered_backend_must_be_a_system_keychain(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(keyring, "get_keyring", MemoryKeyring)
    with pytest.raises(
        KeychainUnavailableError, match="keyring offered MemoryKeyring, which is not a system keychain"
    ):
        TokenStore().get(PD_TOKEN)


def test_an_empty_chain_is_refused_and_a_chain_yields_its_real_keychain(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(chainer.ChainerBackend, "backends", [fail.Keyring()])
    with pytest.raises(KeychainUnavailableError):
        choose_backend(chainer.ChainerBackend(), explicit=False)
    real = SecretService.Keyring()
    monkeypatch.setattr(chainer.ChainerBackend, "backends", [MemoryKeyring(), real])
    assert choose_backend(chainer.ChainerBackend(), explicit=False) is real


def test_backend_description(memory: MemoryKeyring) -> None:
    assert (
        TokenStore(SecretService.Keyring()).backend_description()
        == "Secret Service (GNOME Keyring or KWallet)"
    )
    assert "MemoryKeyring" in TokenStore(memory).backend_description()
    assert TokenStore(fail.Keyring()).backend_description() == "No system keychain was found."


# --- turning backend errors into advice ---


@pytest.mark.parametrize(
    "error",
    [
        KeyringLocked("Failed to unlock the collection!"),
        InitError("Failed to create the collection"),
        LockedException("Item is locked!"),
        PromptDismissedException("Prompt dismissed."),
        _foreign("jeepney.wrappers", "DBusErrorResponse")("org.freedesktop.DBus.Error.AccessDenied"),
        _foreign("dbus.exceptions", "DBusException")("denied"),
    ],
    ids=["KeyringLocked", "InitError", "LockedException", "PromptDismissed", "jeepney", "dbus"],
)
def test_locked_or_denied_keychains_say_what_to_do(error: Exception) -> None:
    tokens = TokenStore(FailingKeyring(error))
    for call in (
        lambda: tokens.get(PD_TOKEN),
        lambda: tokens.set(PD_TOKEN, TOKEN),
        lambda: tokens.delete(PD_TOKEN),
    ):
        with pytest.raises(KeychainLockedError) as caught:
            call()
        assert caught.value.message == "The system keychain is locked, or access to it was refused."
        assert caught.value.hint.startswith("Unlock your keychain")
        assert isinstance(caught.value, SecretsError)


def test_a_missing_secret_service_is_unavailable() -> None:
    tokens = TokenStore(FailingKeyring(SecretServiceNotAvailableException("no daemon")))
    with pytest.raises(KeychainUnavailableError):
        tokens.get(PD_TOKEN)


def test_other_keyring_errors_become_secrets_errors_and_others_propagate() -> None:
    with pytest.raises(
        SecretsError, match=r"The system keychain reported an error \(KeyringError\)"
    ) as caught:
        TokenStore(FailingKeyring(KeyringError("odd"))).get(PD_TOKEN)
    assert caught.value.hint
    with pytest.raises(ZeroDivisionError):
        TokenStore(FailingKeyring(ZeroDivisionError())).get(PD_TOKEN)


def test_tokens_never_appear_in_error_text() -> None:
    leaky = FailingKeyring(KeyringError(f"could not store {TOKEN}"))
    with pytest.raises(SecretsError) as caught:
        TokenStore(leaky).set(PD_TOKEN, TOKEN)
    assert TOKEN not in str(caught.value)
    assert TOKEN not in "".join(traceback.format_exception(caught.value))


# --- the real Secret Service (scripts/test runs gnome-keyring-daemon in a D-Bus session) ---


@pytest.fixture
def real_keychain() -> Iterator[TokenStore]:
    if not os.environ.get("DBUS_SESSION_BUS_ADDRESS"):
        no_keychain("no D-Bus session (scripts/test starts one with gnome-keyring-daemon)")
    try:
        # keyring may offer a chain of backends; rf-desktop takes the real keychain out of it
        backend = choose_backend(keyring.get_keyring(), explicit=False)
    except KeychainUnavailableError:
        no_keychain("no system keychain here (scripts/test starts gnome-keyring in a D-Bus session)")
    if not isinstance(backend, SecretService.Keyring):
        no_keychain(f"the keychain here is {type(backend).__name__}, not Secret Service")
    # a service name of its own, so a developer's real tokens are never touched
    tokens = TokenStore(service=f"rf-desktop-test-{uuid.uuid4().hex[:8]}")
    yield tokens
    for name in (PD_TOKEN, RF_TOKEN):
        tokens.delete(name)


@pytest.mark.keychain
def test_real_keychain_round_trip(real_keychain: TokenStore) -> None:
    assert real_keychain.backend_description() == "Secret Service (GNOME Keyring or KWallet)"
    assert real_keychain.get(PD_TOKEN) is None
    real_keychain.set(PD_TOKEN, TOKEN)
    real_keychain.set(RF_TOKEN, "rf-" + TOKEN)
    assert real_keychain.get(PD_TOKEN) == TOKEN
    assert real_keychain.source(RF_TOKEN) == "keychain"
    real_keychain.set(PD_TOKEN, "replaced")
    assert real_keychain.get(PD_TOKEN) == "replaced"
    real_keychain.delete(PD_TOKEN)
    assert real_keychain.get(PD_TOKEN) is None
    assert real_keychain.get(RF_TOKEN) == "rf-" + TOKEN


@pytest.mark.keychain
def test_real_keychain_is_found_by_discovery(real_keychain: TokenStore) -> None:
    real_keychain.set(PD_TOKEN, TOKEN)
    other = TokenStore(service=real_keychain._service)
    assert other.get(PD_TOKEN) == TOKEN


@pytest.mark.keychain
def test_test_again_finds_the_real_keychain_and_moves_the_session_tokens_into_it(
    real_keychain: TokenStore,
) -> None:
    real_keychain.keep_for_session()
    real_keychain.set(PD_TOKEN, TOKEN)
    assert real_keychain.source(PD_TOKEN) == "session"
    real_keychain.recheck()  # keyring's detection runs again, and finds the Secret Service
    assert not real_keychain.session_only
    assert real_keychain.source(PD_TOKEN) == "keychain"
    assert TokenStore(service=real_keychain._service).get(PD_TOKEN) == TOKEN
    assert real_keychain.backend_description() == "Secret Service (GNOME Keyring or KWallet)"

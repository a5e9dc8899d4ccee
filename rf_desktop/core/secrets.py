"""API tokens in the operating system's keychain, through `keyring`.

Two tokens, stored under the service "rf-desktop": "referral-factory" and "pipedrive". For headless use
(a server, CI) the environment variables RF_DESKTOP_REFERRAL_FACTORY_TOKEN and RF_DESKTOP_PIPEDRIVE_TOKEN
win over the keychain.

Only real keychains are used: Secret Service (GNOME Keyring, KWallet's Secret Service), KWallet, the macOS
Keychain and the Windows Credential Locker. When keyring can offer nothing better than its fail/null
backends or a plaintext file, rf-desktop says so (KeychainUnavailableError) instead of quietly writing
tokens to disk. Tokens never appear in exception messages.

Without a usable keychain the owner may choose to keep the tokens for this session only
(`keep_for_session`): in this process's memory, never on disk, gone when rf-desktop quits. `recheck` looks
for a keychain again (one installed or unlocked since) and moves those tokens into it.

Keychain calls can block while the system asks the user to unlock the keychain: call TokenStore methods
from a worker thread (`loop.run_in_executor`), never on the GUI's event loop.
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Mapping
from contextlib import contextmanager, suppress
from typing import Literal

import keyring
from keyring.backend import KeyringBackend
from keyring.backends.chainer import ChainerBackend
from keyring.errors import InitError, KeyringError, KeyringLocked, NoKeyringError, PasswordDeleteError

SERVICE = "rf-desktop"
# the names the tokens are kept under (in the keychain), not tokens
RF_TOKEN = "referral-factory"  # noqa: S105
PD_TOKEN = "pipedrive"  # noqa: S105
TOKEN_NAMES = (RF_TOKEN, PD_TOKEN)
ENV_VARS = {
    RF_TOKEN: "RF_DESKTOP_REFERRAL_FACTORY_TOKEN",
    PD_TOKEN: "RF_DESKTOP_PIPEDRIVE_TOKEN",
}
TokenSource = Literal["environment", "keychain", "session"]

# Real keychains, by backend class, with the name the window shows.
SYSTEM_KEYCHAINS = {
    "keyring.backends.SecretService.Keyring": "Secret Service (GNOME Keyring or KWallet)",
    "keyring.backends.libsecret.Keyring": "Secret Service (libsecret)",
    "keyring.backends.kwallet.DBusKeyring": "KWallet",
    "keyring.backends.kwallet.DBusKeyringKWallet4": "KWallet 4",
    "keyring.backends.macOS.Keyring": "macOS Keychain",
    "keyring.backends.Windows.WinVaultKeyring": "Windows Credential Locker",
}
# Backends that store nothing, or store tokens where anyone who can read the disk can read them.
REFUSED_BACKENDS = frozenset({"keyring.backends.fail.Keyring", "keyring.backends.null.Keyring"})
REFUSED_MODULE_PREFIXES = ("keyrings.alt",)

# both are needed: one token for each service
_ENV_HINT = " and ".join(ENV_VARS.values())
UNAVAILABLE_MESSAGE = "No system keychain was found."
UNAVAILABLE_HINT = f"Install and unlock GNOME Keyring or KWallet, or set {_ENV_HINT} for headless use."
LOCKED_MESSAGE = "The system keychain is locked, or access to it was refused."
LOCKED_HINT = (
    "Unlock your keychain (logging in to your desktop session usually does) and allow rf-desktop to use it, "
    f"then try again. For headless use, set {_ENV_HINT}."
)


# For someone at a desktop, where environment variables are no help: how to get a keychain.
GET_A_KEYCHAIN = (
    "macOS and Windows always have one. On Linux, install GNOME Keyring (the gnome-keyring package) or "
    "KWallet (the kwalletmanager package), log out and back in, then press Test again."
)
_MEANWHILE = "Until then you can keep the tokens for this session only."
DESKTOP_KEYCHAIN_HINT = (
    f"rf-desktop keeps tokens only in your system's keychain, never in a file. {GET_A_KEYCHAIN} {_MEANWHILE}"
)
DESKTOP_LOCKED_HINT = (
    "Unlock your keychain (logging in to your desktop session usually does) and allow rf-desktop to use it, "
    f"then press Test again. {_MEANWHILE}"
)


class SecretsError(Exception):
    """A keychain problem; `hint` says what to do about it."""

    def __init__(self, message: str, hint: str = "") -> None:
        super().__init__(f"{message} {hint}".strip())
        self.message = message
        self.hint = hint


class KeychainUnavailableError(SecretsError):
    def __init__(self, detail: str = "") -> None:
        super().__init__(f"{UNAVAILABLE_MESSAGE}{detail}", UNAVAILABLE_HINT)


class KeychainLockedError(SecretsError):
    def __init__(self) -> None:
        super().__init__(LOCKED_MESSAGE, LOCKED_HINT)


def _class_path(backend: KeyringBackend) -> str:
    cls = type(backend)
    return f"{cls.__module__}.{cls.__qualname__}"


def is_system_keychain(backend: KeyringBackend) -> bool:
    return _class_path(backend) in SYSTEM_KEYCHAINS


def _is_refused(backend: KeyringBackend) -> bool:
    path = _class_path(backend)
    return path in REFUSED_BACKENDS or path.startswith(REFUSED_MODULE_PREFIXES)


def choose_backend(backend: KeyringBackend, *, explicit: bool) -> KeyringBackend:
    """The backend to keep tokens in, or KeychainUnavailableError. From a chain, the best real keychain
    in it. A backend keyring found on its own must be a known system keychain; one the caller passed in
    explicitly is trusted unless it is one of the refused kinds."""
    if isinstance(backend, ChainerBackend):
        real: list[KeyringBackend] = [b for b in backend.backends if is_system_keychain(b)]
        if not real:
            raise KeychainUnavailableError()
        return real[0]
    if _is_refused(backend):
        raise KeychainUnavailableError()
    if is_system_keychain(backend) or explicit:
        return backend
    raise KeychainUnavailableError(
        f" (keyring offered {type(backend).__name__}, which is not a system keychain)"
    )


def _is_locked_error(error: BaseException) -> bool:
    """secretstorage and D-Bus errors, matched by module so this works where they are not installed."""
    module = type(error).__module__
    if module.startswith("secretstorage"):
        return type(error).__name__ in ("LockedException", "PromptDismissedException")
    return module.startswith(("jeepney", "dbus"))


@contextmanager
def _keychain_errors() -> Iterator[None]:
    """Turn backend errors into SecretsError subclasses that say what to do."""
    try:
        yield
    except SecretsError:
        raise
    except (KeyringLocked, InitError):
        raise KeychainLockedError() from None
    except NoKeyringError:
        raise KeychainUnavailableError() from None
    except Exception as error:
        if type(error).__name__ == "SecretServiceNotAvailableException":
            raise KeychainUnavailableError() from None
        if _is_locked_error(error):
            raise KeychainLockedError() from None
        if isinstance(error, KeyringError):
            raise SecretsError(
                f"The system keychain reported an error ({type(error).__name__}).",
                "Try again; if it keeps happening, restart your keychain or log out and in again.",
            ) from None
        raise


def _detect_again() -> None:
    """keyring picks its backend once per process; pick again, for a keychain installed or started since."""
    reset = getattr(keyring.backend.get_all_keyring, "reset", None)
    if callable(reset):
        reset()
    with _keychain_errors():
        keyring.core.init_backend()


class TokenStore:
    """The two API tokens: from the environment when set there, otherwise from the keychain."""

    def __init__(
        self,
        backend: KeyringBackend | None = None,
        *,
        service: str = SERVICE,
        environ: Mapping[str, str] | None = None,
    ) -> None:
        """`backend` defaults to the one keyring picks (checked on first use, so an environment-only
        setup works without any keychain). `service` is the keychain entry's service name."""
        self._given = backend
        self._chosen: KeyringBackend | None = None
        self._service = service
        self._environ = environ if environ is not None else os.environ
        self._session: dict[str, str] = {}
        self.session_only = False  # tokens are kept in memory, for this session only

    def keep_for_session(self) -> None:
        """From now on tokens are kept in memory until the process ends, and the keychain is not used."""
        self.session_only = True

    def recheck(self) -> None:
        """Look for the keychain again (one may have been installed or unlocked since) and move the tokens
        kept for this session into it. Raises SecretsError while there is still none."""
        if self._given is None:
            _detect_again()
        self._chosen = None
        backend = self._keychain()
        with _keychain_errors():
            backend.get_password(self._service, TOKEN_NAMES[0])  # a locked or absent keychain says so here
            for name, token in self._session.items():
                backend.set_password(self._service, name, token)
        self._session.clear()
        self.session_only = False

    def _keychain(self) -> KeyringBackend:
        if self._chosen is None:
            explicit = self._given is not None
            with _keychain_errors():
                found = self._given if self._given is not None else keyring.get_keyring()
            self._chosen = choose_backend(found, explicit=explicit)
        return self._chosen

    @staticmethod
    def _check_name(name: str) -> None:
        if name not in TOKEN_NAMES:
            raise ValueError(f"Unknown token name {name!r}; expected one of {', '.join(TOKEN_NAMES)}")

    def _from_environment(self, name: str) -> str | None:
        value = self._environ.get(ENV_VARS[name], "").strip()
        return value or None

    def get(self, name: str) -> str | None:
        """The token, or None when it is set nowhere. May block on a keychain unlock prompt."""
        self._check_name(name)
        from_env = self._from_environment(name)
        if from_env is not None:
            return from_env
        if self.session_only:
            return self._session.get(name)
        backend = self._keychain()
        with _keychain_errors():
            value = backend.get_password(self._service, name)
        return value or None

    def set(self, name: str, token: str) -> None:
        """Keep the token in the keychain, or in memory for this session only (surrounding spaces from copy
        and paste removed)."""
        self._check_name(name)
        token = token.strip()
        if not token:
            raise ValueError("The token is empty; paste the whole token.")
        if self.session_only:
            self._session[name] = token
            return
        backend = self._keychain()
        with _keychain_errors():
            backend.set_password(self._service, name, token)

    def delete(self, name: str) -> None:
        """Forget the keychain's copy (a token that was never stored is fine)."""
        self._check_name(name)
        if self.session_only:
            self._session.pop(name, None)
            return
        backend = self._keychain()
        # suppress sits inside: a token that was never stored is not an error
        with _keychain_errors(), suppress(PasswordDeleteError):
            backend.delete_password(self._service, name)

    def source(self, name: str) -> TokenSource | None:
        """Where `get` would find the token: "environment", "keychain", "session", or None."""
        self._check_name(name)
        if self._from_environment(name) is not None:
            return "environment"
        if self.session_only:
            return "session" if name in self._session else None
        backend = self._keychain()
        with _keychain_errors():
            stored = backend.get_password(self._service, name)
        return "keychain" if stored else None

    def keychain_error(self) -> SecretsError | None:
        """Why no keychain can be used here, or None when one can; never raises."""
        try:
            self._keychain()
        except SecretsError as error:
            return error
        return None

    def backend_description(self) -> str:
        """Which keychain holds the tokens, in words for the window; never raises."""
        if self.session_only:
            return "Memory, for this session only"
        try:
            backend = self._keychain()
        except SecretsError as error:
            return error.message
        return SYSTEM_KEYCHAINS.get(_class_path(backend), getattr(backend, "name", type(backend).__name__))

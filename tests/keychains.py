"""A keychain in a dict, for tests that pass it in explicitly (the real Secret Service is tested too)."""

from __future__ import annotations

from keyring.backend import KeyringBackend
from keyring.compat import properties
from keyring.errors import NoKeyringError, PasswordDeleteError


class MemoryKeyring(KeyringBackend):
    """Forgets everything with the test. Not viable for keyring's own discovery: a viable test backend
    would join the real keychain in the chain keyring builds, and answer for it in the real-keychain tests."""

    @properties.classproperty
    def priority(cls) -> float:
        raise RuntimeError("only for tests that pass it in")

    def __init__(self) -> None:
        super().__init__()
        self.passwords: dict[tuple[str, str], str] = {}

    def get_password(self, service: str, username: str) -> str | None:
        return self.passwords.get((service, username))

    def set_password(self, service: str, username: str, password: str) -> None:
        self.passwords[(service, username)] = password

    def delete_password(self, service: str, username: str) -> None:
        if self.passwords.pop((service, username), None) is None:
            raise PasswordDeleteError("not stored")


class NotYetInstalledKeyring(MemoryKeyring):
    """A desktop without a keychain, until `installed` is set (the owner installed and started one)."""

    def __init__(self) -> None:
        super().__init__()
        self.installed = False

    def _check(self) -> None:
        if not self.installed:
            raise NoKeyringError("no keychain")

    def get_password(self, service: str, username: str) -> str | None:
        self._check()
        return super().get_password(service, username)

    def set_password(self, service: str, username: str, password: str) -> None:
        self._check()
        super().set_password(service, username, password)

    def delete_password(self, service: str, username: str) -> None:
        self._check()
        super().delete_password(service, username)

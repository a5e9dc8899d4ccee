"""`rf-desktop diagnose`: what this installation of rf-desktop runs on, as JSON.

It answers the questions an installed copy (a wheel, the Linux packages, the Windows or macOS build) can
get wrong while the source checkout gets them right: are the certificate authorities there to reach the
real services over HTTPS, can the system keychain's backend load, where is the data kept. The release
smoke test reads it, and it is what to paste when asking for help. It never prints a token.
"""

from __future__ import annotations

import importlib
import json
import sys
from typing import Any

import certifi
import httpx

from rf_desktop import __version__, paths

# The keychain backend each system uses, with the library it needs (keyring skips a backend whose
# library fails to import, so a build that lost it would quietly fall back to "no keychain").
KEYCHAIN_MODULES = {
    "linux": ("keyring.backends.SecretService", "secretstorage"),
    "darwin": ("keyring.backends.macOS", "keyring.backends.macOS.api"),
    "win32": ("keyring.backends.Windows", "win32ctypes.pywin32.win32cred"),
}


def ca_bundle() -> dict[str, Any]:
    """The certificate authorities the API clients verify HTTPS servers with (httpx's default context)."""
    context = httpx.create_ssl_context()
    return {"path": certifi.where(), "certificates": context.cert_store_stats()["x509_ca"]}


def keychain_backend(platform: str = sys.platform) -> dict[str, Any]:
    """Whether the system keychain's keyring backend and its library import in this installation."""
    modules = KEYCHAIN_MODULES.get("linux" if platform.startswith("linux") else platform)
    if modules is None:
        return {"backend": None, "loadable": False, "detail": f"no system keychain is known for {platform}"}
    try:
        for name in modules:
            importlib.import_module(name)
    except ImportError as error:
        return {"backend": modules[0], "loadable": False, "detail": f"{type(error).__name__}: {error}"}
    return {"backend": modules[0], "loadable": True}


def report() -> dict[str, Any]:
    return {
        "version": __version__,
        "frozen": bool(getattr(sys, "frozen", False)),
        "python": sys.version.split()[0],
        "data_dir": str(paths.data_dir()),
        "ca_bundle": ca_bundle(),
        "keychain": keychain_backend(),
    }


def run_diagnose() -> int:
    print(json.dumps(report(), indent=2))
    return 0

"""TLS verification of the load engine: always on, with the CA mmload installed on the agents
and the coordinator (``$MMLOAD_CA_FILE``, else ``/opt/mmload/ca.pem`` where the agents role puts
the proxy's CA) or else the system's trust store."""

from __future__ import annotations

import os
import ssl
from pathlib import Path
from typing import Any

CA_FILE_ENV = "MMLOAD_CA_FILE"
INSTALLED_CA_FILE = Path("/opt/mmload/ca.pem")  # ansible/roles/agents: agents_ca_file


def ca_file() -> str | None:
    """The CA file to verify the target with, if one is configured or installed."""
    if env := os.environ.get(CA_FILE_ENV):
        return env
    return str(INSTALLED_CA_FILE) if INSTALLED_CA_FILE.is_file() else None


def stdlib_context() -> ssl.SSLContext:
    """The same verification for the standard library's clients (the pre-run probes)."""
    return ssl.create_default_context(cafile=ca_file())


def client_context() -> ssl.SSLContext:
    """The SSL context of every HTTP connection (FastHttpUser's ``ssl_context_factory``)."""
    import gevent.ssl

    return gevent.ssl.create_default_context(cafile=ca_file())


def websocket_sslopt() -> dict[str, Any]:
    """websocket-client's ``sslopt``: certificates verified, with the configured CA."""
    opt: dict[str, Any] = {"cert_reqs": ssl.CERT_REQUIRED}
    if ca := ca_file():
        opt["ca_certs"] = ca
    return opt

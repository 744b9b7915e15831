"""TLS verification of the load engine: always on, with the CA file mmload configured on the
agents (``$MMLOAD_CA_FILE``, the proxy's CA) or else the system's trust store."""

from __future__ import annotations

import os
import ssl
from typing import Any

CA_FILE_ENV = "MMLOAD_CA_FILE"


def ca_file() -> str | None:
    """The CA file to verify the target with, if one is configured."""
    return os.environ.get(CA_FILE_ENV) or None


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

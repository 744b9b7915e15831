"""The host side of ``mmload collect``: runs ON a deployment's host, standard library only.

:mod:`mmload.lifecycle.collect` sends this module's source over SSH (``python3 -c``) with a
JSON request; it answers with a gzipped tar on stdout: the log files asked for (their last
``max_bytes``), each ``config.json`` with its secrets masked **before** it leaves the host,
optionally a window of the host's Prometheus, and ``collect.json`` saying what was found and
what was not (and why).
"""

from __future__ import annotations

import glob
import io
import json
import os
import re
import sys
import tarfile
import time
import urllib.parse
import urllib.request
from typing import Any

MASK = "********"
# Setting names holding a secret (Mattermost's own config sanitising masks the same kinds):
# passwords, secrets, salts, keys, tokens, credentials and database data sources.
SECRET_NAME = re.compile(
    r"(password|secret|salt|token|credential|datasource|dsn|privatekey|"
    r"(^|[a-z])key$|keyid$|apikey|accesskey|encryptkey|license)",
    re.IGNORECASE,
)
URL_PASSWORD = re.compile(r"(://[^:/@\s]+:)[^@\s]+@")


def mask(value: Any, key: str = "") -> Any:
    """``value`` with every secret replaced by ``MASK``: values of secret-named settings, and a
    password inside any URL (``postgres://user:pw@host``)."""
    if isinstance(value, dict):
        return {k: mask(v, k) for k, v in value.items()}
    if isinstance(value, list):
        return [mask(v, key) for v in value]
    if isinstance(value, str) and value:
        if SECRET_NAME.search(key):
            return MASK
        return URL_PASSWORD.sub(r"\1" + MASK + "@", value)
    return value


def _add(tar: tarfile.TarFile, name: str, data: bytes) -> None:
    info = tarfile.TarInfo(name)
    info.size = len(data)
    info.mtime = int(time.time())
    info.mode = 0o600
    tar.addfile(info, io.BytesIO(data))


def _tail(path: str, max_bytes: int) -> bytes:
    with open(path, "rb") as fh:
        fh.seek(0, os.SEEK_END)
        size = fh.tell()
        fh.seek(max(0, size - max_bytes))
        return fh.read()


def _files(pattern: str) -> list[str]:
    found = []
    for path in sorted(glob.glob(pattern)):
        if os.path.isdir(path):
            for root, _dirs, names in os.walk(path):
                found += [os.path.join(root, n) for n in sorted(names)]
        elif os.path.isfile(path):
            found.append(path)
    return found


def _get_json(url: str, timeout: float = 30) -> Any:
    with urllib.request.urlopen(url, timeout=timeout) as resp:
        return json.loads(resp.read())


def prometheus_window(
    url: str, start: float, end: float, step_s: float, max_series: int
) -> dict[str, Any]:
    """Every metric of the Prometheus at ``url`` over ``start``..``end`` (range queries, one per
    metric name, at most ``max_series`` names)."""
    out: dict[str, Any] = {
        "schema": "mmload.prometheus-window/1",
        "url": url,
        "start": start,
        "end": end,
        "step_s": step_s,
        "series": {},
        "errors": {},
    }
    names = _get_json(f"{url}/api/v1/label/__name__/values")["data"]
    if len(names) > max_series:
        out["errors"]["_names"] = f"{len(names)} metric names, kept the first {max_series}"
    for name in names[:max_series]:
        query = urllib.parse.urlencode({"query": name, "start": start, "end": end, "step": step_s})
        try:
            answer = _get_json(f"{url}/api/v1/query_range?{query}")
            out["series"][name] = answer["data"]["result"]
        except (OSError, ValueError, KeyError) as exc:
            out["errors"][name] = str(exc)
    return out


def collect(request: dict[str, Any], stream: Any) -> dict[str, Any]:
    """Write the tar.gz for ``request`` to ``stream``; returns what ``collect.json`` says."""
    report: dict[str, Any] = {"host": os.uname().nodename, "files": [], "missing": []}
    max_bytes = int(request.get("max_bytes", 200 << 20))
    with tarfile.open(fileobj=stream, mode="w|gz") as tar:
        for item in request.get("logs", []):
            paths = _files(item["path"])
            if not paths:
                report["missing"].append({"path": item["path"], "why": "no such file"})
            for path in paths:
                try:
                    data = _tail(path, max_bytes)
                except OSError as exc:
                    report["missing"].append({"path": path, "why": exc.strerror or str(exc)})
                    continue
                _add(tar, item["as"] + path, data)
                report["files"].append({"path": path, "bytes": len(data), "kind": "log"})
        for item in request.get("configs", []):
            path = item["path"]
            try:
                with open(path, encoding="utf-8") as fh:
                    config = json.load(fh)
            except (OSError, ValueError) as exc:
                why = getattr(exc, "strerror", None) or str(exc)
                report["missing"].append({"path": path, "why": why})
                continue
            data = json.dumps(mask(config), indent=2).encode()
            _add(tar, item["as"] + path, data)
            report["files"].append({"path": path, "bytes": len(data), "kind": "config (masked)"})
        prom = request.get("prometheus")
        if prom:
            try:
                window = prometheus_window(
                    prom["url"], prom["start"], prom["end"], prom["step_s"], prom["max_series"]
                )
                _add(tar, "prometheus-window.json", json.dumps(window).encode())
                report["prometheus"] = {"series": len(window["series"]), **window["errors"]}
            except (OSError, ValueError, KeyError) as exc:
                report["missing"].append({"path": prom["url"], "why": f"Prometheus: {exc}"})
        _add(tar, "collect.json", json.dumps(report, indent=2).encode())
    return report


def main() -> None:
    """Entry point on the host: the request is the first argument (JSON)."""
    collect(json.loads(sys.argv[1]), sys.stdout.buffer)
    sys.stdout.buffer.flush()


if __name__ == "__main__":
    main()

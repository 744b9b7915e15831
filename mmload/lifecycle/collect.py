"""``mmload collect``: what a support engineer asks for after a run, in one archive beside the
run record (like ltng's ``collect``).

Per host, one SSH round trip runs :mod:`mmload.lifecycle.collect_host` there (its source, sent
with ``python3 -c``), which answers with a tar.gz: the app nodes' Mattermost logs and
``config.json`` (secrets masked on the node), the proxies' nginx logs, the coordinator's and
agents' job logs of the run, and from the metrics node a window of its Prometheus (every metric,
range queries over the run's start..end). Everything lands in
``<run dir>.collect.tar.gz``: ``<host>/<path on the host>``, ``<metrics host>/
prometheus-window.json`` and one ``collect.json`` per host saying what was found and what was
not.
"""

from __future__ import annotations

import inspect
import io
import json
import subprocess
import tarfile
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from mmload import record
from mmload.errors import RunFailed, UserError
from mmload.lifecycle import collect_host
from mmload.lifecycle.hosts import Reached
from mmload.lifecycle.remote import Remote
from mmload.lifecycle.remote_load import LoadState, parallel

ARCHIVE_SUFFIX = ".collect.tar.gz"
MAX_SERIES = 2000
# Where the roles put things (ansible/roles/*/defaults), under ansible's mmload_root prefix.
APP_LOGS = "/var/log/mattermost"
APP_CONFIG = "/etc/mattermost/config.json"
PROXY_LOGS = "/var/log/nginx"


@dataclass(frozen=True)
class HostRequest:
    """What to take from one host."""

    host: str
    request: dict[str, Any]


def _window(meta: dict[str, Any]) -> tuple[float, float]:
    def epoch(value: str | None) -> float | None:
        return datetime.fromisoformat(value).timestamp() if value else None

    start = epoch(meta.get("started_at"))
    if start is None:
        raise UserError("run.json has no started_at", field="started_at")
    end = epoch(meta.get("ended_at") or meta.get("heartbeat_at")) or start
    return start - 60, max(end, start) + 60  # a minute either side, for context


def plan_requests(
    reached: Reached,
    state: LoadState | None,
    meta: dict[str, Any],
    *,
    root: str,
    prometheus: str,
    max_bytes: int,
) -> list[HostRequest]:
    """One request per host of outputs.json that has something to give."""
    hosts = reached.outputs.hosts
    out: list[HostRequest] = []
    jobs: dict[str, list[str]] = {}
    if state is not None:
        jobs.setdefault(state.coordinator, []).append(state.master)
        for host, folder in state.workers:
            jobs.setdefault(host, []).append(folder)
    start, end = _window(meta)
    for group, members in hosts.items():
        for h in members:
            req: dict[str, Any] = {"max_bytes": max_bytes, "logs": [], "configs": []}
            if group == "app":
                req["logs"].append({"path": root + APP_LOGS, "as": h.name})
                req["configs"].append({"path": root + APP_CONFIG, "as": h.name})
            if group == "proxy":
                req["logs"].append({"path": root + PROXY_LOGS, "as": h.name})
            for folder in jobs.get(h.name, []):
                req["logs"].append({"path": f"{folder}/out.log", "as": h.name})
            if group == "metrics" and h is members[0]:
                step = max(10.0, round((end - start) / 1000))
                req["prometheus"] = {
                    "url": prometheus,
                    "start": start,
                    "end": end,
                    "step_s": step,
                    "max_series": MAX_SERIES,
                }
            if req["logs"] or req["configs"] or "prometheus" in req:
                out.append(HostRequest(h.name, req))
    return out


def host_command(request: dict[str, Any]) -> str:
    """The shell command that runs the host side with ``request``."""
    import shlex

    source = inspect.getsource(collect_host) + "\nmain()\n"
    return f"python3 -c {shlex.quote(source)} {shlex.quote(json.dumps(request))}"


def fetch_host(remote: Remote, item: HostRequest, timeout: float = 900) -> bytes:
    """The host's tar.gz (RunFailed naming the host when it fails)."""
    remote.check_host(item.host)
    argv = [*remote.access.argv(item.host, "-T"), host_command(item.request)]
    try:
        proc = subprocess.run(
            argv, capture_output=True, timeout=timeout, stdin=subprocess.DEVNULL, check=False
        )
    except subprocess.TimeoutExpired:
        raise RunFailed(f"collect from {item.host}: no answer within {timeout:.0f} s") from None
    if proc.returncode != 0:
        why = (proc.stderr.decode(errors="replace").strip().splitlines() or ["?"])[-1]
        raise RunFailed(f"collect from {item.host} failed (exit {proc.returncode}): {why}")
    return proc.stdout


def write_archive(run_dir: Path, parts: dict[str, bytes]) -> Path:
    """Merge the hosts' tars into ``<run dir>.collect.tar.gz``; each host's ``collect.json``
    and ``prometheus-window.json`` go under its name."""
    archive = run_dir.with_name(run_dir.name + ARCHIVE_SUFFIX)
    tmp = archive.with_name(archive.name + ".tmp")
    with tarfile.open(tmp, "w:gz") as out:
        for host, blob in parts.items():
            with tarfile.open(fileobj=io.BytesIO(blob), mode="r:gz") as part:
                for member in part:
                    if not member.isfile():
                        continue
                    data = part.extractfile(member)
                    name = member.name
                    if not name.startswith(host + "/"):
                        name = f"{host}/{name}"
                    member.name = name
                    out.addfile(member, data)
    tmp.replace(archive)
    return archive


def collect_run(
    reached: Reached,
    run_dir: Path,
    *,
    root: str,
    prometheus: str,
    max_bytes: int,
    remote: Remote | None = None,
) -> tuple[Path, dict[str, dict[str, Any]]]:
    """Collect from every host; the archive and each host's ``collect.json``."""
    meta = record.read_run(run_dir)
    try:
        state: LoadState | None = LoadState.load(reached.workdir)
    except UserError:
        state = None  # a run not started by `mmload load start`: no job logs
    remote = remote or Remote(reached.access)
    requests = plan_requests(
        reached, state, meta, root=root, prometheus=prometheus, max_bytes=max_bytes
    )
    blobs = parallel(lambda item: fetch_host(remote, item), requests)
    parts = {item.host: blob for item, blob in zip(requests, blobs, strict=True)}
    reports: dict[str, dict[str, Any]] = {}
    for host, blob in parts.items():
        with tarfile.open(fileobj=io.BytesIO(blob), mode="r:gz") as part:
            fh = part.extractfile("collect.json")
            reports[host] = json.loads(fh.read()) if fh else {}
    return write_archive(run_dir, parts), reports

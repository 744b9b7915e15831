"""Before a run: the target answers (on its pinned addresses: :mod:`mmload.load.pin`), the
open-files limit fits, the user classes load."""

from __future__ import annotations

import contextlib
import json

from mmload.errors import RunFailed, UserError
from mmload.load.pin import http_get
from mmload.load.tls import stdlib_context

USERS_PER_PROCESS_WARN = 3000
FILES_PER_USER = 2  # HTTP + WebSocket
SPARE_FILES = 100
PROBE_TIMEOUT_S = 10.0


def probe_target(target: str, timeout_s: float = PROBE_TIMEOUT_S) -> str | None:
    """The server version the target reports (``Version`` of config/client), or raise."""
    url = target.rstrip("/") + "/api/v4/config/client?format=old"
    try:
        cfg = json.loads(http_get(url, timeout_s, stdlib_context).decode("utf-8"))
    except (OSError, ValueError) as exc:
        raise RunFailed(
            f"target {target} did not answer GET /api/v4/config/client: {exc}"
        ) from None
    version = cfg.get("Version")
    build = cfg.get("BuildNumber")
    return f"{version} (build {build})" if version and build else version


def probe_license(target: str, timeout_s: float = 5.0) -> bool | None:
    """Whether the target reports a license (``IsLicensed`` of license/client); None when it
    does not say."""
    url = target.rstrip("/") + "/api/v4/license/client?format=old"
    try:
        lic = json.loads(http_get(url, timeout_s, stdlib_context).decode("utf-8"))
    except (OSError, ValueError, RunFailed):
        return None
    value = lic.get("IsLicensed") if isinstance(lic, dict) else None
    return {"true": True, "false": False}.get(str(value).lower())


def raise_open_files_limit(needed: int) -> str | None:
    """Raise the soft open-files limit to the hard one; a warning if ``needed`` still won't fit."""
    import resource

    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard == resource.RLIM_INFINITY or soft < hard:
        with contextlib.suppress(ValueError, OSError):
            resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
            soft = hard
    if soft != resource.RLIM_INFINITY and needed > soft:
        return (
            f"each process may need ~{needed:,} open files (HTTP + WebSocket per user) but the "
            f"limit is {soft:,}: use more --workers or raise `ulimit -n`"
        )
    return None


def capacity_warnings(peak_users: int, processes: int) -> list[str]:
    """Warnings for ``peak_users`` spread over ``processes`` (open files, users per core)."""
    per_process = peak_users // max(1, processes)
    warnings = [raise_open_files_limit(FILES_PER_USER * per_process + SPARE_FILES)]
    if per_process > USERS_PER_PROCESS_WARN:
        warnings.append(
            f"{per_process:,} users per process: Locust may saturate one core; consider "
            "--workers N (Mattermost's own tool runs ~2,000 users per 4-vCPU agent)"
        )
    return [w for w in warnings if w]


def load_user_classes(locustfile: str | None) -> list[type]:
    """MattermostUser, or the user classes of a custom locustfile."""
    from mmload.load.user import MattermostUser

    if not locustfile:
        return [MattermostUser]
    from locust.util.load_locustfile import load_locustfile

    try:
        classes, _shapes = load_locustfile(locustfile)
    except SystemExit:
        raise UserError("could not load the locustfile", source=locustfile) from None
    except Exception as exc:
        raise UserError(f"could not load the locustfile: {exc}", source=locustfile) from None
    found = [c for c in classes.values() if issubclass(c, MattermostUser)] or list(classes.values())
    if not found:
        raise UserError("the locustfile defines no User class", source=locustfile)
    # a plain `from mmload.load.user import MattermostUser` alongside a subclass: keep the subclass
    subclasses = [c for c in found if c is not MattermostUser]
    return subclasses or found

"""A simulator campaign's deployments: `mmload sim` with a version's profile at an
architecture's size, on 127.0.0.1, through the one launcher (``mmload.sim.launcher``).

A version is a server-cost profile (named, or a YAML file that may say ``extends: <name>``); an
architecture is the simulator's size: its population and its worker pool (``pool_size`` slots of
``service_ms`` each, the capacity). The profile run is the version's with the architecture's
worker-pool fields laid over it, validated here before anything starts.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import yaml

from mmload.config.campaign import Campaign, CampaignArchitecture, CampaignVersion
from mmload.config.loader import read_yaml, validate_model
from mmload.config.sim import NAMED_PROFILES, Profile
from mmload.errors import UserError
from mmload.files import write_atomic
from mmload.sim.launcher import SimProcess, running_sim

START_TIMEOUT_S = 120.0


def base_profile(version: CampaignVersion, where: str, base: Path, source: str) -> dict[str, Any]:
    """The version's profile as a dict (a file's ``extends:`` resolved)."""
    sim = version.sim
    assert sim is not None
    if sim.profile is not None:
        return NAMED_PROFILES[sim.profile].model_dump()
    path = Path(sim.profile_file or "")
    path = path if path.is_absolute() else base / path
    try:
        data = read_yaml(path)
    except UserError as exc:
        raise UserError(exc.one_line(), source=source, field=f"{where}.sim.profile_file") from None
    if not isinstance(data, dict):
        raise UserError("expected a mapping", source=str(path))
    parent = data.pop("extends", None)
    if parent is not None and parent not in NAMED_PROFILES:
        raise UserError(f"unknown profile {parent!r}", source=str(path), field="extends")
    return {**(NAMED_PROFILES[parent].model_dump() if parent else {}), **data}


def sim_profile(campaign: Campaign, v: int, a: int, base: Path, source: str) -> Profile:
    """The profile version ``v`` runs with on architecture ``a``, validated."""
    version, arch = campaign.versions[v], campaign.architectures[a]
    data = base_profile(version, f"versions[{v}]", base, source)
    size = arch.sim
    assert size is not None
    pool = dict(data.get("worker_pool") or {})
    given = {"size": size.pool_size, "service_ms": size.service_ms, "queue_max": size.queue_max}
    pool.update({k: val for k, val in given.items() if val is not None})
    if pool:
        if "size" not in pool or "service_ms" not in pool:
            raise UserError(
                f"a worker pool needs pool_size and service_ms (version {version.label}'s "
                "profile has no worker_pool)",
                source=source,
                field=f"architectures[{a}].sim",
            )
        data["worker_pool"] = pool
    try:
        return validate_model(Profile, data, source)
    except UserError as exc:
        where = f"versions[{v}].sim, architectures[{a}].sim: {exc.field}"
        raise UserError(exc.message, source=source, field=where) from None


def check_kinds(campaign: Campaign, source: str) -> None:
    """Versions and architectures are all the simulator's, or all real ones."""
    sim = campaign.simulated
    for i, version in enumerate(campaign.versions):
        if (version.sim is not None) != sim:
            raise UserError(
                "give every version sim: (a simulator campaign) or every one mattermost:",
                source=source,
                field=f"versions[{i}]",
            )
    for i, arch in enumerate(campaign.architectures):
        if (arch.sim is not None) != sim:
            want = "sim: sizes (its versions are simulator profiles)" if sim else "catalog tiers"
            raise UserError(
                f"this campaign's architectures are {want}",
                source=source,
                field=f"architectures[{i}]",
            )


@contextmanager
def sim_deployment(
    arch: CampaignArchitecture, profile: Profile, folder: Path, stem: str
) -> Iterator[SimProcess]:
    """`mmload sim` at the architecture's size with ``profile``, stopped (by pid) at the end.

    It dies with the thread that started it (a SIGKILLed campaign leaves no simulator)."""
    assert arch.sim is not None
    folder.mkdir(parents=True, exist_ok=True)
    profile_file = folder / f"{stem}.profile.yaml"
    write_atomic(profile_file, yaml.safe_dump(profile.model_dump(mode="json"), sort_keys=False))
    with running_sim(
        users=arch.sim.users,
        profile_file=profile_file,
        log_path=folder / f"{stem}.sim.log",
        start_timeout=START_TIMEOUT_S,
        with_parent=True,
    ) as sim:
        yield sim

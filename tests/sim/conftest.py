"""Fixtures of the simulator tests (others may use them too).

- ``sim_thread``: an in-process simulator on free ports (fast; small population);
- ``sim_process``: the real `mmload sim` command as a subprocess on free ports;
- ``spec``: Mattermost's OpenAPI document built from ../shared/mattermost-api.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from mmload.config.sim import NAMED_PROFILES, PopulationSpec, SimSettings
from mmload.sim.launcher import SimProcess, running_sim
from mmload.sim.server import SimHandle, start_in_thread
from tests.sim.spec import Spec

SMALL = PopulationSpec(
    users=60, teams=2, channels_per_team=5, channels_joined=2, posts_per_channel=3
)


def small_settings(profile: str = "fast", **overrides: object) -> SimSettings:
    """Free ports, a 60-user population, the named profile."""
    return SimSettings(
        port=0,
        metrics_port=0,
        population=SMALL,
        profile=NAMED_PROFILES[profile].model_copy(deep=True),
        profile_name=profile,
        **overrides,
    )


@pytest.fixture
def sim_thread() -> Iterator[SimHandle]:
    """A fast in-process simulator (profile ``fast``, 60 users, free ports)."""
    handle = start_in_thread(small_settings())
    try:
        yield handle
    finally:
        handle.stop()


@pytest.fixture
def sim_process() -> Iterator[SimProcess]:
    """The real `mmload sim` subprocess (profile ``fast``, 200 users, free ports)."""
    with running_sim(users=200, teams=2) as sim:
        yield sim


@pytest.fixture(scope="session")
def spec() -> Spec:
    from tests.conftest import SHARED

    api = Path(SHARED) / "mattermost-api"
    if not api.is_dir():
        pytest.fail(f"Mattermost OpenAPI excerpts not found at {api} (set MMLOAD_SHARED)")
    return Spec(api)

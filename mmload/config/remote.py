"""Flags of the remote load (``mmload load start|stop``) and ``mmload collect``: validated like
a config file, the only home of their defaults."""

from __future__ import annotations

from pydantic import Field

from mmload.config.base import StrictModel
from mmload.config.bounds import DAY_S, Count, Number
from mmload.config.scenario import RunOptions, WorkerOptions

# Where `mmload configure` installs mmload on the agents and the coordinator
# (ansible/roles/agents: agents_venv).
REMOTE_MMLOAD = "/opt/mmload/venv/bin/mmload"


class RemoteLoadOptions(StrictModel):
    """``mmload load start``: where the run goes, beside the flags of ``mmload run``."""

    target: str | None = Field(None, pattern=r"^https?://[^\s/]+(/.*)?$")
    prometheus: str | None = Field(None, pattern=r"^https?://\S+$")
    workers_per_agent: Count(1, 256) | None = Field(None, description="None: one per vCPU")
    master_port: Count(1, 65535) = WorkerOptions.model_fields["master_port"].default
    remote_mmload: str | None = Field(None, min_length=1, description=f"None: {REMOTE_MMLOAD}")
    remote_dir: str = Field("~/mmload", min_length=1, pattern=r"^[^\n'\"]+$")
    out: str = RunOptions.model_fields["out"].default


class StopOptions(StrictModel):
    """``mmload load stop``."""

    grace: Number(1, DAY_S) = Field(60.0, description="seconds from SIGINT to SIGTERM")


class CollectOptions(StrictModel):
    """``mmload collect``."""

    run: str | None = Field(None, description="None: the last run fetched")
    remote_root: str = Field("", description="prefix of the hosts' paths (ansible's mmload_root)")
    prometheus: str = Field("http://127.0.0.1:9090", pattern=r"^https?://\S+$")
    max_log_mb: Number(0.001, 10_000) = Field(200.0, description="per file, its tail")

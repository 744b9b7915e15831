"""The provisioning steps a command runs: load deployment.yaml, render, and drive Terraform."""

from __future__ import annotations

import re
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from rich.console import Console
from rich.progress import Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

from mmload.config.catalog import load_prices
from mmload.config.deployment import Deployment, load_deployment
from mmload.provision.license import check_license
from mmload.provision.render import Rendered, render
from mmload.provision.sizing import CostLine, cost_lines, resolve
from mmload.provision.terraform import TerraformDriver

DONE = re.compile(r": (Creation|Destruction|Modifications) complete after")


@dataclass
class Prepared:
    """A rendered working directory and the driver for it."""

    dep: Deployment
    rendered: Rendered
    driver: TerraformDriver

    @property
    def costs(self) -> list[CostLine]:
        """Hourly cost lines for this deployment."""
        new_vpc = self.dep.network.existing_vpc_id is None
        return cost_lines(
            self.rendered.sizing, self.dep.database.engine, load_prices(), nat_gateway=new_vpc
        )


class TerraformProgress:
    """Streams Terraform's lines; on a terminal, with a spinner counting finished resources."""

    def __init__(self, console: Console, label: str, total: int | None, live: bool):
        self.console, self.label, self.total, self.live = console, label, total, live
        self.done = 0
        self.progress: Progress | None = None
        self.task = None

    def __call__(self, line: str) -> None:
        if DONE.search(line):
            self.done += 1
        if self.progress is not None and self.task is not None:
            self.progress.console.print(line, markup=False, highlight=False, style="dim")
            self.progress.update(self.task, description=self._describe())
        else:
            self.console.print(line, markup=False, highlight=False, soft_wrap=True)

    def _describe(self) -> str:
        of = f"/{self.total}" if self.total else ""
        return f"{self.label}: {self.done}{of} resources done"

    @contextmanager
    def running(self) -> Iterator[TerraformProgress]:
        """Show the spinner while the block runs (terminal only)."""
        if not self.live:
            yield self
            return
        columns = (SpinnerColumn(), TextColumn("{task.description}"), TimeElapsedColumn())
        with Progress(*columns, console=self.console, transient=True) as progress:
            self.progress = progress
            self.task = progress.add_task(self._describe(), total=None)
            try:
                yield self
            finally:
                self.progress = None


def prepare(
    path: str | Path, sink: TerraformProgress | None = None, *, license_gate: bool = True
) -> Prepared:
    """Load deployment.yaml, render its Terraform, and make a driver for its working dir.

    ``license_gate``: refuse a deployment that needs Enterprise features without a license
    (``provision/license.py``); off for destroy, which must always work."""
    dep = load_deployment(path)
    if license_gate:
        check_license(dep, resolve(dep), str(path))
    workdir = dep.workdir
    rendered = render(dep, workdir, source=str(path))
    driver = TerraformDriver(
        workdir, binary=dep.terraform.binary, plugin_dir=dep.terraform.plugin_dir, sink=sink
    )
    return Prepared(dep, rendered, driver)

"""Fixtures for the reporter: synthetic run records (written through mmload/record.py), the
published Mattermost dataset, and a headless Chromium page check."""

from __future__ import annotations

import base64
import json
import re
import shutil
import subprocess
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest

from mmload.cli import main
from tests.report.synth import Spec, make_record

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"


@pytest.fixture(scope="session")
def records(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """A Sev0 run, and two sides of three ceiling repeats each (new is slower, fewer users)."""
    root = tmp_path_factory.mktemp("records")
    out = {"sev0": make_record(root / "sev0-run", Spec(rows=30_000, duration_s=120))}
    for i, users in enumerate((10_000, 10_150, 9_900)):
        make_record(
            root / "base" / f"base-{i + 1}",
            Spec(
                rows=6_000,
                duration_s=60,
                sev0=False,
                seed=100 + i,
                supported_users=users,
                label="10.11.17",
                architecture="2xl",
            ),
        )
    for i, users in enumerate((8_000, 8_100, 7_950)):
        make_record(
            root / "new" / f"new-{i + 1}",
            Spec(
                rows=6_000,
                duration_s=60,
                sev0=False,
                seed=100 + i,
                supported_users=users,
                label="11.7.1",
                architecture="2xl",
                latency_scale=1.5,
            ),
        )
    out["base"], out["new"] = root / "base", root / "new"
    return out


@pytest.fixture
def mpr(shared: Path) -> Path:
    """Mattermost's published performance reports (read-only)."""
    return shared / "datasets" / "mattermost-performance-reports"


@dataclass
class PageCheck:
    """What headless Chromium saw after loading a page and running its scripts."""

    dom: str
    console: list[str]
    returncode: int

    def attr(self, name: str) -> str | None:
        m = re.search(rf'<html[^>]*\s{name}="([^"]*)"', self.dom)
        return m.group(1) if m else None

    def figures(self) -> dict[str, tuple[int, int, int]]:
        """Every plot Plotly drew: figure id -> (traces, data points, non-zero points), as the
        page marked them after drawing (from the plot's calculated data, not from pixels)."""
        out = {}
        for div in re.findall(r"<div[^>]*data-figure=[^>]*>", self.dom):
            fid = re.search(r'data-figure="([^"]+)"', div)
            got = [re.search(rf'data-{k}="(\d+)"', div) for k in ("traces", "points", "nonzero")]
            assert fid and all(got), f"a plot was not drawn: {div}"
            out[fid.group(1)] = tuple(int(m.group(1)) for m in got)  # type: ignore[union-attr]
        return out

    def trace(self, fid: str, name: str) -> list[float]:
        """The y values of one named trace of a figure (plotly's typed arrays decoded)."""
        for t in self.figure_data(fid)["data"]:
            if t.get("name") == name:
                y = t.get("y", [])
                if isinstance(y, dict):  # {"dtype": "f8", "bdata": base64}
                    y = np.frombuffer(base64.b64decode(y["bdata"]), dtype=y["dtype"]).tolist()
                return [float("nan") if v is None else float(v) for v in y]
        raise AssertionError(f"figure {fid} has no trace {name!r}")

    def figure_data(self, fid: str) -> dict:
        """The plotly JSON (data and layout) embedded for one figure."""
        div = re.search(rf'<div[^>]*id="(plot-\d+)"[^>]*data-figure="{re.escape(fid)}"', self.dom)
        assert div, f"no figure {fid}"
        blob = re.search(
            rf'<script type="application/json" id="{div.group(1)}-data">(.*?)</script>',
            self.dom,
            re.S,
        )
        assert blob, f"no data for figure {fid}"
        return json.loads(blob.group(1))

    def banner(self) -> str | None:
        """The verdict shown at the top (PASS, FAIL, NO SLOS), if any."""
        m = re.search(r'id="verdict" data-verdict="([^"]+)"', self.dom)
        return m.group(1) if m else None


def load_in_chromium(page: Path, tmp: Path) -> PageCheck:
    """Open ``page`` offline in headless Chromium; return the DOM after scripts and the console."""
    profile = tmp / "chromium-profile"
    cmd = [
        CHROMIUM,
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        f"--user-data-dir={profile}",
        "--enable-logging=stderr",
        "--v=0",
        "--virtual-time-budget=10000",
        "--dump-dom",
        page.resolve().as_uri(),
    ]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=180)
    console = [ln for ln in proc.stderr.splitlines() if ":CONSOLE" in ln]
    return PageCheck(proc.stdout, console, proc.returncode)


@dataclass
class CliResult:
    """What `mmload ...` printed and returned."""

    returncode: int
    stdout: str
    stderr: str


Cli = Callable[..., CliResult]


@pytest.fixture
def cli(capsys: pytest.CaptureFixture[str]) -> Cli:
    """Run `mmload ARGS` in this process through the console entry point (`mmload.cli.main`).

    The same code path as the installed script (argument parsing, one-line errors, exit codes)
    without paying the interpreter start-up and imports for every call; a few tests still run
    the real console script in a subprocess (`tests.conftest.run_cli`).
    """

    def run(*args: str) -> CliResult:
        capsys.readouterr()
        try:
            main(list(args))
            code = 0
        except SystemExit as exc:
            code = exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
        out, err = capsys.readouterr()
        return CliResult(code, out, err)

    return run

"""The operator's mmload as a wheel, so agents run exactly the same code and version."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from mmload import __version__
from mmload.errors import RunFailed

# A fixed timestamp makes the wheel byte-identical for identical sources: re-runs copy nothing.
REPRODUCIBLE_EPOCH = "315532800"


def source_tree() -> Path | None:
    """The project folder when mmload runs from a checkout (editable install), else None."""
    root = Path(__file__).resolve().parents[2]
    return root if (root / "pyproject.toml").is_file() and (root / "mmload").is_dir() else None


def build_wheel(dest: Path) -> Path | None:
    """Build the mmload wheel into ``dest``; None when installed from an index (no sources)."""
    src = source_tree()
    if src is None:
        return None
    dest.mkdir(parents=True, exist_ok=True)
    for old in dest.glob("mmload-*.whl"):
        old.unlink()
    env = {**os.environ, "SOURCE_DATE_EPOCH": REPRODUCIBLE_EPOCH}
    cmd = [
        sys.executable,
        "-m",
        "pip",
        "wheel",
        "-q",
        "--no-deps",
        "--no-build-isolation",
        "-w",
        str(dest),
        str(src),
    ]
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=300)
    wheels = sorted(dest.glob(f"mmload-{__version__}-*.whl"))
    if proc.returncode != 0 or not wheels:
        last = (proc.stderr.strip().splitlines() or ["no wheel produced"])[-1]
        raise RunFailed(f"building the mmload wheel for the agents failed: {last}")
    return wheels[-1]

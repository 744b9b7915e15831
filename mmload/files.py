"""Files other processes read while mmload writes them: written beside, then renamed."""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path


def replace_via(tmp: Path, path: Path, write: Callable[[Path], object]) -> None:
    """``write(tmp)``, then rename ``tmp`` over ``path``; a failed write (a full disk, an I/O
    error) removes ``tmp`` and raises, so no temporary file is left behind."""
    try:
        write(tmp)
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def write_atomic(path: Path, text: str) -> None:
    """Write text via a temporary file beside ``path`` and rename, so a reader never sees half."""
    replace_via(path.with_name(f".{path.name}.tmp"), path, lambda t: t.write_text(text, "utf-8"))

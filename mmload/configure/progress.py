"""Task progress for a playbook run: a live Rich line on a terminal, plain lines otherwise."""

from __future__ import annotations

from collections import Counter
from typing import Protocol, TextIO

from rich.console import Console
from rich.live import Live
from rich.text import Text


class Reporter(Protocol):
    """Receives the run's progress from the event handler."""

    def play(self, name: str) -> None: ...
    def task(self, name: str) -> None: ...
    def result(self, status: str, host: str, task: str, message: str = "") -> None: ...
    def close(self) -> None: ...


class PlainReporter:
    """One line per play, per task, and per changed or failed host (logs, CI, pipes)."""

    def __init__(self, out: TextIO) -> None:
        self.out = out
        self.counts: Counter[str] = Counter()

    def _line(self, text: str) -> None:
        self.out.write(text + "\n")
        self.out.flush()

    def play(self, name: str) -> None:
        self._line(f"play: {name}")

    def task(self, name: str) -> None:
        self._line(f"  task: {name}")

    def result(self, status: str, host: str, task: str, message: str = "") -> None:
        self.counts[status] += 1
        if status in ("changed", "failed"):
            self._line(f"    {status}: {host}" + (f": {message}" if message else ""))

    def close(self) -> None:
        c = self.counts
        self._line(
            f"done: {c['ok']} ok, {c['changed']} changed, {c['skipped']} skipped, "
            f"{c['failed']} failed"
        )


class RichReporter:
    """A live status line (play > task, counters); changes and failures printed above it."""

    def __init__(self, console: Console) -> None:
        self.console = console
        self.counts: Counter[str] = Counter()
        self.current_play = ""
        self.current_task = ""
        # Started by the first event, so that input errors before the run leave no live display.
        self.live = Live(self._render(), console=console, transient=True, refresh_per_second=8)
        self.started = False

    def _render(self) -> Text:
        c = self.counts
        return Text.assemble(
            ("⠿ ", "cyan"),
            (f"{self.current_play} > {self.current_task}  ", "bold"),
            (f"ok {c['ok']}  ", "green"),
            (f"changed {c['changed']}  ", "yellow"),
            (f"skipped {c['skipped']}  ", "dim"),
            (f"failed {c['failed']}", "red" if c["failed"] else "dim"),
        )

    def _update(self) -> None:
        if not self.started:
            self.live.start()
            self.started = True
        self.live.update(self._render())

    def play(self, name: str) -> None:
        self.current_play = name
        self.console.print(Text(name, style="bold"))
        self._update()

    def task(self, name: str) -> None:
        self.current_task = name
        self._update()

    def result(self, status: str, host: str, task: str, message: str = "") -> None:
        self.counts[status] += 1
        if status == "changed":
            self.console.print(Text.assemble(("  changed ", "yellow"), f"{host}: {task}"))
        elif status == "failed":
            self.console.print(Text.assemble(("  failed ", "red"), f"{host}: {task}: {message}"))
        self._update()

    def close(self) -> None:
        if self.started:
            self.live.stop()
            self.started = False
        c = self.counts
        self.console.print(
            f"[green]{c['ok']} ok[/green], [yellow]{c['changed']} changed[/yellow], "
            f"{c['skipped']} skipped, [red]{c['failed']} failed[/red]"
        )

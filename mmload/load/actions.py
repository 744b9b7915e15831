"""The steady-state action mix and the idle time between actions.

The table (names, weights, handlers) is config: ``mmload/config/actions.yaml``, read by
:func:`mmload.config.actions.load_table`; this module only picks from it.
"""

from __future__ import annotations

import bisect
import itertools
import random

from mmload.config.actions import Action, load_table


class ActionPicker:
    """Weighted random choice among the implemented actions (weights may be overridden)."""

    def __init__(
        self,
        overrides: dict[str, float] | None = None,
        rng: random.Random | None = None,
        only_listed: bool = False,
    ):
        overrides = overrides or {}
        table = load_table()
        if only_listed:
            overrides = {a.name: overrides.get(a.name, 0.0) for a in table}
        unknown = set(overrides) - {a.name for a in table}
        if unknown:
            raise ValueError(f"unknown action(s): {', '.join(sorted(unknown))}")
        self.actions = [
            a.model_copy(update={"weight": overrides.get(a.name, a.weight)})
            for a in table
            if a.handler and overrides.get(a.name, a.weight) > 0
        ]
        if not self.actions:
            raise ValueError("no action has a positive weight")
        self._cum = list(itertools.accumulate(a.weight for a in self.actions))
        self._rng = rng or random.Random()

    def pick(self) -> Action:
        """One action, with probability proportional to its weight."""
        x = self._rng.random() * self._cum[-1]
        return self.actions[bisect.bisect_right(self._cum, x)]

    def share(self, name: str) -> float:
        """The probability that ``name`` is picked."""
        total = self._cum[-1]
        return sum(a.weight for a in self.actions if a.name == name) / total


def idle_seconds(min_ms: int, avg_ms: int, rng: random.Random | None = None) -> float:
    """load-test-ng's idle rule: uniform in [min_ms, 2*avg_ms - min_ms), mean ``avg_ms``."""
    r = (rng or random).random()
    return (min_ms + r * (2 * avg_ms - 2 * min_ms)) / 1000.0

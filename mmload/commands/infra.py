"""CLI commands of the infra stage."""

from __future__ import annotations

import click


def register(group: click.Group) -> None:
    """Add this stage's commands to group."""

"""Mattermost bulk-import JSONL of the population (the format `mmctl import process` takes).

Order as documented: the version line, teams, channels, users (with team and channel
memberships), posts. ``town-square`` and ``off-topic`` exist in every team automatically, so they
get no channel line, only memberships. Names are lowercase; no team name starts with a reserved
word. A real server assigns its own ids: match simulator and server objects by name.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any, TextIO

from mmload.sim.population import DEFAULT_CHANNELS, Population


def bulk_lines(pop: Population) -> Iterator[dict[str, Any]]:
    """The import lines as dicts."""
    yield {"type": "version", "version": 1}
    for team in pop.teams:
        yield {
            "type": "team",
            "team": {
                "name": team.name,
                "display_name": team.display_name,
                "type": "O",
                "description": "",
                "allow_open_invite": True,
            },
        }
    for team in pop.teams:
        for channel in team.channels:
            if channel.name in DEFAULT_CHANNELS:
                continue
            yield {
                "type": "channel",
                "channel": {
                    "team": team.name,
                    "name": channel.name,
                    "display_name": channel.display_name,
                    "type": "O",
                    "header": "",
                    "purpose": "",
                },
            }
    for user in pop.users:
        team = pop.teams[user.team]
        channels = [{"name": c.name, "roles": "channel_user"} for c in pop.channels_of(user)]
        yield {
            "type": "user",
            "user": {
                "username": user.username,
                "email": user.email,
                "auth_service": "",
                "password": pop.spec.password,
                "first_name": user.first_name,
                "last_name": user.last_name,
                "nickname": "",
                "roles": "system_user",
                "locale": "en",
                "teams": [{"name": team.name, "roles": "team_user", "channels": channels}],
            },
        }
    for post in pop.seed_posts():
        channel = pop.channels[post.channel_id]
        yield {
            "type": "post",
            "post": {
                "team": pop.teams[channel.team].name,
                "channel": channel.name,
                "user": pop.user(post.user_number).username,
                "message": post.message,
                "create_at": post.create_at,
            },
        }


def write_bulk_import(pop: Population, out: TextIO) -> int:
    """Write the JSONL to ``out``; return the number of lines."""
    n = 0
    for line in bulk_lines(pop):
        out.write(json.dumps(line, separators=(",", ":")))
        out.write("\n")
        n += 1
    return n

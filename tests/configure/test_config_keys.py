"""Every Mattermost setting mmload writes is a real one: the keys of settings.json.j2, rendered by
the real Ansible for a full and a bare deployment, against the server's own schema
(mmload/catalog/mattermost-config-keys.txt, read from model/config.go; its header names the
source). The server ignores a key it does not know, so a misspelled or removed setting would
silently leave the server's default in place."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from tests.configure.test_settings import render_settings
from tests.conftest import REPO

KEYS_FILE = REPO / "mmload/catalog/mattermost-config-keys.txt"


def known_keys(path: Path = KEYS_FILE) -> set[str]:
    lines = path.read_text().splitlines()
    return {line.strip() for line in lines if line.strip() and not line.startswith("#")}


def unknown_keys(settings: dict[str, Any], known: set[str], prefix: str = "") -> list[str]:
    """The paths in ``settings`` the schema does not have. Sections are known by their keys;
    below a known key the walk goes on only where the schema lists fields (a nested struct), so
    a map-valued setting such as PluginSettings.PluginStates takes any key."""
    out: list[str] = []
    for key, value in settings.items():
        path = f"{prefix}{key}"
        nested = any(k.startswith(path + ".") for k in known)
        if not (nested if prefix == "" else path in known):
            out.append(path)
        elif isinstance(value, dict) and nested:
            out += unknown_keys(value, known, path + ".")
    return out


def test_the_list_is_the_servers_schema() -> None:
    keys = known_keys()
    header = KEYS_FILE.read_text().split("\n\n", 1)[0]
    assert "mattermost/mattermost" in header and "server/public/model/config.go" in header
    assert "commit" in header
    assert len(keys) > 500
    for key in ("ServiceSettings.IdleTimeout", "SqlSettings.DataSourceReplicas"):
        assert key in keys, key
    assert all(k.count(".") in (1, 2) for k in keys)


def test_a_misspelled_or_unknown_key_is_caught() -> None:
    known = known_keys()
    written = {
        "ServiceSettings": {"IdelTimeout": 90, "SiteURL": "https://x"},
        "ElasticSearchSettings": {"Username": ""},
        "PluginSettings": {"PluginStates": {"any.plugin.id": {"Enable": False}}},
        "MessageExportSettings": {"GlobalRelaySettings": {"CustomerTyp": "A9"}},
    }
    assert unknown_keys(written, known) == [
        "ServiceSettings.IdelTimeout",
        "ElasticSearchSettings",
        "MessageExportSettings.GlobalRelaySettings.CustomerTyp",
    ]


@pytest.mark.slow
def test_every_key_mmload_writes_is_in_the_schema(tmp_path: Path) -> None:
    known = known_keys()
    (tmp_path / "full").mkdir()
    search = {"endpoint": "vpc-mm-es.us-east-1.es.amazonaws.com", "nodes": 2}
    full = render_settings(tmp_path / "full", search)
    assert len(full) > 10  # the render really produced the sections
    assert unknown_keys(full, known) == []
    (tmp_path / "bare").mkdir()
    bare = render_settings(tmp_path / "bare", None, bare=True)  # the other branches
    assert bare["CacheSettings"] == {"CacheType": "lru"}
    assert unknown_keys(bare, known) == []

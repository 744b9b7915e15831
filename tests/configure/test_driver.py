"""The driver's pieces without running Ansible: events → progress, failures, secret handling."""

from __future__ import annotations

import io
import os
import stat

import pytest
from rich.console import Console

from mmload.configure.driver import (
    EventCollector,
    failure_message,
    runner_env,
    secret_vars_file,
)
from mmload.configure.plan import check_tags, selected_roles
from mmload.configure.progress import PlainReporter, RichReporter
from mmload.errors import UserError


def events() -> list[dict]:
    def ev(kind: str, **data) -> dict:
        return {"event": kind, "event_data": data}

    return [
        ev("playbook_on_play_start", name="Put nginx in front of the app nodes"),
        ev("playbook_on_task_start", task="Render nginx.conf"),
        ev("runner_on_ok", host="proxy-0", task="Render nginx.conf", res={"changed": True}),
        ev("runner_on_ok", host="proxy-1", task="Render nginx.conf", res={"changed": False}),
        ev(
            "runner_on_failed",
            host="proxy-2",
            task="Render nginx.conf",
            res={"msg": "failed to validate", "stderr": "nginx: [emerg] bad\nline two"},
        ),
        ev(
            "runner_on_failed",
            host="proxy-3",
            task="Render nginx.conf",
            ignore_errors=True,
            res={"msg": "ignored"},
        ),
        ev(
            "runner_on_unreachable",
            host="proxy-4",
            task="Gathering Facts",
            res={"msg": "ssh: connect to host 10.0.0.4 port 22: Connection refused"},
        ),
        ev(
            "playbook_on_stats",
            changed={"proxy-0": 1},
            ok={"proxy-0": 3},
            failures={"proxy-2": 1},
            dark={"proxy-4": 1},
            processed={"proxy-0": 1, "proxy-2": 1, "proxy-4": 1},
        ),
    ]


def test_collector_reports_failures_with_host_task_message() -> None:
    out = io.StringIO()
    collector = EventCollector(PlainReporter(out))
    for e in events():
        assert collector(e) is True
    assert [f.one_line() for f in collector.failures] == [
        "host proxy-2: task 'Render nginx.conf': failed to validate: line two",
        "host proxy-4: task 'Gathering Facts': unreachable: "
        "ssh: connect to host 10.0.0.4 port 22: Connection refused",
    ]
    assert collector.stats["changed"] == {"proxy-0": 1}
    assert collector.stats["processed"] == {"proxy-0": 1, "proxy-2": 1, "proxy-4": 1}
    text = out.getvalue()
    assert "play: Put nginx in front of the app nodes\n  task: Render nginx.conf\n" in text
    assert "    changed: proxy-0\n" in text
    assert "    failed: proxy-2: failed to validate: line two\n" in text
    assert "proxy-1" not in text and "ignored" not in text


def test_rich_reporter_on_a_terminal() -> None:
    buf = io.StringIO()
    console = Console(file=buf, force_terminal=True, width=120, color_system=None)
    collector = EventCollector(RichReporter(console))
    for e in events():
        collector(e)
    collector.reporter.close()
    text = buf.getvalue()
    assert "Put nginx in front of the app nodes" in text
    assert "changed proxy-0: Render nginx.conf" in text
    assert "failed proxy-2: Render nginx.conf: failed to validate: line two" in text
    assert "1 ok, 1 changed, 0 skipped, 2 failed" in text


def test_failure_message_digs_into_loops_and_modules() -> None:
    loop = {"msg": "", "results": [{"failed": False}, {"failed": True, "msg": "item broke"}]}
    assert failure_message(loop) == "item broke"
    facts = {
        "failed_modules": {
            "ansible.legacy.setup": {
                "msg": "deserialization failed",
                "module_stderr": "python3: not found\n",
            }
        }
    }
    assert failure_message(facts) == "deserialization failed: python3: not found"
    assert failure_message({}) == "failed (no message)"
    assert len(failure_message({"msg": "x" * 5000})) == 400


def test_secret_file_is_private_and_removed() -> None:
    with secret_vars_file({"mattermost_db_password": "pw"}) as path:
        assert path is not None
        assert stat.S_IMODE(path.stat().st_mode) == 0o600
        assert stat.S_IMODE(path.parent.stat().st_mode) == 0o700
        assert path.read_text() == '{"mattermost_db_password": "pw"}'
    assert not path.exists() and not path.parent.exists()
    with secret_vars_file({}) as none:
        assert none is None


def test_runner_env_blanks_secrets(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MMLOAD_DB_PASSWORD", "pw-1")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "aws-secret")
    monkeypatch.setenv("SOME_OTHER_VAR", "pw-2")
    env = runner_env({"mattermost_db_password": "pw-2"})
    assert env["MMLOAD_DB_PASSWORD"] == "" and env["AWS_SECRET_ACCESS_KEY"] == ""
    assert env["SOME_OTHER_VAR"] == ""  # whatever variable carries the secret's value
    assert env["ANSIBLE_CONFIG"].endswith("ansible/ansible.cfg")
    assert env["PATH"].split(os.pathsep)[0].endswith("bin")


def test_tags_select_roles() -> None:
    assert "mattermost" in selected_roles([], [])
    assert "seed" not in selected_roles([], [])
    assert selected_roles(["seed"], []) == {"seed", "mattermost"}
    assert selected_roles(["proxy", "metrics"], ["metrics"]) == {"proxy"}
    with pytest.raises(UserError, match="--skip-tags: unknown tag 'nginx'"):
        check_tags([], ["nginx"])

"""`mmload load start|status|attach|stop|fetch`: the master on the coordinator behind the jump
host, `mmload worker`s on two agents, against a real `mmload sim`, through real OpenSSH servers
on loopback addresses (tests/sshhosts.py). All hosts are this machine, so the "remote" mmload
is this venv's (passed with --remote-mmload, as an operator would for another install path).
"""

from __future__ import annotations

import json
import signal
import subprocess
import tarfile
import time
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path

import pyarrow.parquet as pq
import pytest
import yaml

from mmload import record
from mmload.configure.inventory import load_outputs
from mmload.configure.ssh import write_ssh_config
from mmload.lifecycle.remote import Job, Remote
from mmload.lifecycle.remote_load import LoadState, master_argv, plan_load
from mmload.net import free_port
from mmload.sim.launcher import SimProcess, running_sim
from tests.conftest import MMLOAD, run_cli
from tests.sshhosts import SshHosts

NAME = "mm-rl"
COORD, AGENTS = f"{NAME}-coordinator-0", (f"{NAME}-agents-0", f"{NAME}-agents-1")
APP, PROXY, METRICS = f"{NAME}-app-0", f"{NAME}-proxy-0", f"{NAME}-metrics-0"
SCENARIO = {
    "name": "remote-steady",
    "kind": "steady",
    "users": 4,
    "arrival_s": 1,
    "hold_s": 30,  # `load status` (a new mmload, SSH via the jump host) must see it running:
    # at 12 s it had exited on a machine running three test modules
    "idle": {"min_ms": 50, "avg_ms": 100},
    "websocket": {"enabled": False},
    "actions": False,
}


@pytest.fixture(scope="module")
def sim(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SimProcess]:
    log = tmp_path_factory.mktemp("sim") / "sim.log"
    with running_sim(users=100, log_path=log) as s:
        yield s


class Deployment:
    """deployment.yaml, outputs.json naming the sshd's, and the `mmload load start` flags."""

    def __init__(self, tmp: Path, hosts: SshHosts, sim: SimProcess, *, stack: bool = False):
        """``stack``: app, proxy and metrics hosts too (for `mmload collect`)."""
        roles = {"coordinator": [COORD], "agents": list(AGENTS)}
        if stack:
            roles.update(app=[APP], proxy=[PROXY], metrics=[METRICS])
        hosts.start("jump", *(name for names in roles.values() for name in names))
        self.hosts = hosts
        self.workdir = tmp / ".deployments" / NAME
        hosts.outputs(
            self.workdir, deployment=NAME, jump="jump", roles=roles, extra={"site_url": sim.url}
        )
        self.config = tmp / "deployment.yaml"
        self.config.write_text(
            yaml.safe_dump(
                {
                    "name": NAME,
                    "tier": 200,
                    "operator_cidrs": ["203.0.113.7/32"],
                    "working_dir": str(tmp / ".deployments"),
                }
            )
        )
        self.scenario = tmp / "remote-steady.yaml"
        self.scenario.write_text(json.dumps(SCENARIO))
        self.out = tmp / "runs"
        self.port = free_port(hosts.hosts[COORD].address)
        self.remote_dir = tmp / "remote"

    def start_args(self, *extra: str) -> list[str]:
        return [
            MMLOAD,
            "load",
            "start",
            "-c",
            str(self.config),
            str(self.scenario),
            "--workers-per-agent",
            "1",
            "--remote-mmload",
            MMLOAD,
            "--remote-dir",
            str(self.remote_dir),
            "--master-port",
            str(self.port),
            "--out",
            str(self.out),
            *extra,
        ]

    def remote(self) -> Remote:
        outputs = self.workdir / "outputs.json"
        return Remote(write_ssh_config(load_outputs(outputs), outputs), timeout=60)


def cli(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    """``mmload ARGS`` through its console entry point, in this process (fast): exit code,
    stdout, stderr."""
    from mmload.cli import main

    capsys.readouterr()
    with pytest.raises(SystemExit) as exit_:
        main(list(args))
    out = capsys.readouterr()
    return int(exit_.value.code or 0), out.out, out.err


SECRET = "s3cr3t-" + "x" * 8
CONFIG_JSON = {
    "ServiceSettings": {"SiteURL": "http://mm.example", "GiphySdkKey": SECRET},
    "SqlSettings": {
        "DriverName": "postgres",
        "DataSource": f"postgres://mmuser:{SECRET}@db:5432/mattermost?sslmode=require",
        "DataSourceReplicas": [f"postgres://mmuser:{SECRET}@ro:5432/mattermost"],
        "AtRestEncryptKey": SECRET,
        "MaxOpenConns": 300,
    },
    "FileSettings": {"PublicLinkSalt": SECRET, "AmazonS3SecretAccessKey": SECRET},
    "EmailSettings": {"SMTPPassword": SECRET, "SMTPServer": "smtp.example"},
    "LogSettings": {"FileLocation": f"http://ops:{SECRET}@logs.example/x"},
}


def host_files(root: Path) -> None:
    """What the app and proxy roles leave on their nodes (under ansible's mmload_root): stand-ins
    for Mattermost's and nginx's logs, and a config.json full of secrets."""
    (root / "var/log/mattermost").mkdir(parents=True)
    (root / "var/log/mattermost/mattermost.log").write_text('{"msg":"Server is listening"}\n')
    (root / "etc/mattermost").mkdir(parents=True)
    (root / "etc/mattermost/config.json").write_text(json.dumps(CONFIG_JSON))
    (root / "var/log/nginx").mkdir(parents=True)
    (root / "var/log/nginx/access.log").write_text("x" * 5000 + "\nGET /api/v4/users/me 200\n")


def start_prometheus(tmp: Path, sim: SimProcess) -> tuple[subprocess.Popen[bytes], int]:
    """Debian's Prometheus scraping the simulator's metrics every second."""
    target = (sim.metrics_url or "").split("//", 1)[1].split("/", 1)[0]
    cfg = tmp / "prometheus.yml"
    cfg.write_text(
        "global: {scrape_interval: 1s}\nscrape_configs:\n  - job_name: mattermost\n"
        f"    static_configs: [{{targets: ['{target}']}}]\n"
    )
    port = free_port()
    proc = subprocess.Popen(
        [
            "prometheus",
            f"--config.file={cfg}",
            f"--storage.tsdb.path={tmp / 'tsdb'}",
            f"--web.listen-address=127.0.0.1:{port}",
        ],
        stdout=subprocess.DEVNULL,
        stderr=(tmp / "prom.log").open("wb"),
    )
    return proc, port


def wait_for_line(
    proc: subprocess.Popen[str], prefix: str, seen: list[str], *, measured: bool = False
) -> None:
    """Read proc's stdout until a line starts with ``prefix`` (the lines go into ``seen``);
    ``measured``: a status line that counts requests already. Up to 120 s: the master and two
    workers start behind SSH, each several times its ~7 s on a busy machine."""
    assert proc.stdout is not None
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        line = proc.stdout.readline()
        if not line:
            break
        seen.append(line)
        if line.startswith(prefix) and not (measured and "requests 0," in line):
            return
    raise AssertionError(f"no line starting {prefix!r}:\n{''.join(seen)}")


def finish(proc: subprocess.Popen[str], seen: list[str]) -> tuple[int, str, str]:
    out, err = proc.communicate(timeout=180)
    return proc.returncode, "".join(seen) + out, err


@pytest.mark.slow
def test_remote_run_survives_a_drop_and_records_what_a_local_run_records(
    tmp_path: Path, ssh_hosts: SshHosts, sim: SimProcess, capsys: pytest.CaptureFixture[str]
) -> None:
    dep = Deployment(tmp_path, ssh_hosts, sim, stack=True)
    host_files(tmp_path / "hostroot")
    prometheus, prom_port = start_prometheus(tmp_path, sim)
    prom_url = f"http://127.0.0.1:{prom_port}"  # as the coordinator (this machine) sees it
    # the same scenario run locally, at the same time, for comparison
    local_run = subprocess.Popen(
        [
            MMLOAD,
            "run",
            str(dep.scenario),
            "--target",
            sim.url,
            "--prometheus",
            prom_url,
            "--out",
            str(tmp_path / "local"),
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    proc = subprocess.Popen(
        dep.start_args("--prometheus", prom_url),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    seen: list[str] = []
    try:
        wait_for_line(proc, "[", seen)  # the master's live status, streamed from the coordinator
        status = run_cli("load", "status", "-c", str(dep.config), "--json")
        assert status.returncode == 0, status.stderr
        shown = json.loads(status.stdout)
        assert shown["job"] == "running" and shown["phase"] in ("arrivals", "hold")
        assert shown["users"] >= 1 and "error_rate" in shown
        # the network drops, on the jump host and the coordinator: the run goes on
        assert ssh_hosts.hosts["jump"].drop_sessions() + ssh_hosts.hosts[COORD].drop_sessions()
        code, out, err = finish(proc, seen)
        local_out, _ = local_run.communicate(timeout=180)
        assert code == 0, out + err
        collected = collect(dep, prom_port, capsys)
    finally:
        for p in (proc, local_run, prometheus):
            if p.poll() is None:
                p.kill()
                p.wait()
    assert code == 0, out + err
    assert "connection to" in err and "reconnecting" in err
    assert "record copied back complete: " in out
    local = Path(out.split("record copied back complete: ")[1].split()[0])
    meta = record.read_run(local)
    assert meta["outcome"] == "completed"
    assert meta["parameters"]["remote_workers"] == 2
    assert len(meta["workers_reported"]) == 2  # both agents' workers sent their data
    assert meta["totals"]["requests"] > 0
    # every connection to the coordinator and the agents went through the jump host
    for name in (COORD, *AGENTS):
        assert ssh_hosts.sessions(name), name
    jumps = len(ssh_hosts.sessions("jump"))
    assert jumps >= sum(len(ssh_hosts.sessions(n)) for n in (COORD, *AGENTS))
    state = LoadState.load(dep.workdir)
    remote = dep.remote()
    for host, folder in state.workers:
        assert not remote.job_state(Job(host, folder)).running
    # the workers logged in from their agent's own population file, owner-only (the master's
    # plan carries no password): <remote dir>/population.json beside the jobs
    for _host, folder in state.workers:
        population = Path(folder).parents[1] / "population.json"
        assert population.stat().st_mode & 0o777 == 0o600
        assert json.loads(population.read_text())["username_pattern"] == "user-{i}"

    # the local run recorded the same files and schemas
    assert local_run.returncode == 0, local_out
    (here,) = (tmp_path / "local").iterdir()
    files = sorted(p.name for p in here.iterdir() if not p.name.startswith("worker-"))
    assert sorted(p.name for p in local.iterdir()) == files  # worker-K.log: local processes
    local_meta = record.read_run(here)
    assert set(meta) == set(local_meta)
    assert set(meta["totals"]) == set(local_meta["totals"])
    assert pq.read_schema(local / "requests.parquet") == pq.read_schema(here / "requests.parquet")
    remote_names = {json.loads(ln)["name"] for ln in (local / "hdr.jsonl").open()}
    local_names = {json.loads(ln)["name"] for ln in (here / "hdr.jsonl").open()}
    assert remote_names == local_names  # the same endpoints

    # `mmload collect`: one archive beside the fetched record
    archive, members = collected
    assert archive == local.with_name(local.name + ".collect.tar.gz")
    assert f"{APP}{tmp_path}/hostroot/var/log/mattermost/mattermost.log" in members
    assert f"{PROXY}{tmp_path}/hostroot/var/log/nginx/access.log" in members
    master_log = members[f"{COORD}{state.master}/out.log"].decode()
    assert "record copied back" not in master_log and "run record:" in master_log
    for host, folder in state.workers:
        assert f"{host}{folder}/out.log" in members
    config = members[f"{APP}{tmp_path}/hostroot/etc/mattermost/config.json"].decode()
    assert SECRET not in config  # masked on the node: never sent
    masked = json.loads(config)
    assert masked["SqlSettings"]["DataSource"] == "********"
    assert masked["SqlSettings"]["MaxOpenConns"] == 300
    assert masked["LogSettings"]["FileLocation"] == "http://ops:********@logs.example/x"
    window = json.loads(members[f"{METRICS}/prometheus-window.json"])
    assert window["start"] <= datetime.fromisoformat(meta["started_at"]).timestamp()
    assert any(
        series["values"] for name, result in window["series"].items() for series in result
    ), window["errors"]
    assert all(SECRET.encode() not in blob for blob in members.values())


@pytest.mark.slow
def collect(
    dep: Deployment, prom_port: int, capsys: pytest.CaptureFixture[str]
) -> tuple[Path, dict[str, bytes]]:
    """`mmload collect` after the run; the archive and its members' contents."""
    code, out, err = cli(
        capsys,
        "collect",
        "-c",
        str(dep.config),
        "--remote-root",
        str(dep.out.parent / "hostroot"),
        "--prometheus",
        f"http://127.0.0.1:{prom_port}",
    )
    assert code == 0, out + err
    archive = Path(out.split("archive: ")[1].split()[0])
    with tarfile.open(archive) as tar:
        members = {
            m.name: tar.extractfile(m).read()  # type: ignore[union-attr]
            for m in tar
            if m.isfile()
        }
    return archive, members


@pytest.mark.slow
def test_ctrl_c_stops_the_remote_run_and_fetches_the_partial_record(
    tmp_path: Path, ssh_hosts: SshHosts, sim: SimProcess, capsys: pytest.CaptureFixture[str]
) -> None:
    dep = Deployment(tmp_path, ssh_hosts, sim)
    proc = subprocess.Popen(
        dep.start_args("--duration", "120"),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    seen: list[str] = []
    try:
        wait_for_line(proc, "[", seen, measured=True)
        proc.send_signal(signal.SIGINT)  # Ctrl-C on the laptop
        code, out, err = finish(proc, seen)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert code == 130, out + err
    assert "stopping the run on" in err
    local = Path(out.split("record copied back complete: ")[1].split()[0])
    meta = record.read_run(local)
    assert meta["outcome"] == "interrupted" and meta["stop_reason"] == "Ctrl-C"
    assert meta["totals"]["requests"] > 0  # what was measured is kept
    state = LoadState.load(dep.workdir)
    remote = dep.remote()
    assert remote.job_state(state.master_job).phase == "exited"
    for host, folder in state.workers:
        assert not remote.job_state(Job(host, folder)).running
    # nothing is running any more: status says so, and fetch copies the same record again
    code, out, _ = cli(capsys, "load", "status", "-c", str(dep.config))
    assert code == 0 and "exited" in out and "interrupted" in out, out
    code, out, err = cli(capsys, "load", "fetch", "-c", str(dep.config))
    assert code == 130 and str(local) in out, err


def test_plan_from_outputs_points_prometheus_at_the_metrics_node() -> None:
    from mmload.configure.inventory import DeploymentOutputs
    from tests.configure.conftest import OUTPUTS

    plan = plan_load(DeploymentOutputs.model_validate(OUTPUTS), remote_mmload="/x/mmload")
    assert plan.master_host == "10.0.0.13" and plan.agents == ("mm-2k-agent-0",)
    assert plan.prometheus == "http://10.0.0.11:9090" and plan.target == OUTPUTS["site_url"]
    argv = master_argv(plan, "steady", {"users": 10, "label": None}, 4, "/r/runs")
    assert argv[:4] == ["/x/mmload", "load", "master", "steady"]
    joined = " ".join(argv)
    assert "--remote-workers 4" in joined and "--master-bind 10.0.0.13" in joined
    assert "--prometheus http://10.0.0.11:9090" in joined and "--label" not in joined


def test_worker_counts_from_the_agents() -> None:
    """One job per vCPU; an agent whose `mmload-worker@` units already run gets no jobs and
    its units are counted; --workers-per-agent always means jobs."""
    from mmload.configure.inventory import DeploymentOutputs
    from mmload.lifecycle.remote_load import parse_facts, worker_counts
    from tests.configure.conftest import OUTPUTS

    outputs = dict(
        OUTPUTS,
        hosts={
            **OUTPUTS["hosts"],
            "agents": [
                {"name": "a0", "private_ip": "10.0.0.20"},
                {"name": "a1", "private_ip": "10.0.0.21"},
            ],
        },
    )
    plan = plan_load(DeploymentOutputs.model_validate(outputs))
    facts = {"a0": parse_facts("/home/u\nyes\n4\n0\n"), "a1": parse_facts("/h\nyes\n8\n8\n")}
    assert facts["a0"].home == "/home/u" and facts["a0"].has_mmload and facts["a0"].vcpus == 4
    assert worker_counts(plan, facts, None) == ({"a0": 4, "a1": 0}, 12)
    assert worker_counts(plan, facts, 2) == ({"a0": 2, "a1": 2}, 4)
    assert parse_facts("/h\nno\n\n").vcpus == 1 and not parse_facts("/h\nno\n").has_mmload


def test_bad_input_is_one_line(
    tmp_path: Path, ssh_hosts: SshHosts, sim: SimProcess, capsys: pytest.CaptureFixture[str]
) -> None:
    dep = Deployment(tmp_path, ssh_hosts, sim)
    for cmd in ("status", "stop", "fetch", "attach"):
        code, _, err = cli(capsys, "load", cmd, "-c", str(dep.config))
        assert code == 2 and len(err.strip().splitlines()) == 1 and "load start" in err, err
        assert cli(capsys, "load", cmd, "--help")[0] == 0
    code, _, err = cli(capsys, *dep.start_args("--users", "0")[1:])
    assert code == 2 and "--users" in err and len(err.strip().splitlines()) == 1, err
    code, _, err = cli(capsys, "load", "start", "-c", str(dep.config), "no-such-scenario")
    assert code == 2 and "no-such-scenario" in err and len(err.strip().splitlines()) == 1
    code, _, err = cli(capsys, *dep.start_args("--remote-mmload", "/nonexistent/mmload")[1:])
    assert code == 1 and "/nonexistent/mmload is not there" in err, err
    outputs = json.loads((dep.workdir / "outputs.json").read_text())
    outputs["hosts"]["coordinator"] = []
    (dep.workdir / "outputs.json").write_text(json.dumps(outputs))
    code, _, err = cli(capsys, *dep.start_args()[1:])
    assert code == 2 and "coordinator" in err and len(err.strip().splitlines()) == 1, err
    code, _, err = cli(capsys, "collect", "-c", str(dep.config))
    assert code == 2 and "load start" in err and len(err.strip().splitlines()) == 1, err
    code, _, err = cli(capsys, "collect", "-c", str(dep.config), "--run", str(tmp_path))
    assert code == 2 and "--run" in err and "run.json" in err, err
    code, _, err = cli(capsys, "collect", "-c", str(dep.config), "--max-log-mb", "-1")
    assert code == 2 and "--max-log-mb" in err, err
    assert cli(capsys, "collect", "--help")[0] == 0
    # the real console script, once: no traceback reaches the user
    out = run_cli("load", "status", "-c", str(dep.config))
    assert out.returncode == 2 and "Traceback" not in out.stderr


def test_masking_keeps_settings_and_hides_secrets() -> None:
    from mmload.lifecycle.collect_host import MASK, mask

    masked = mask(CONFIG_JSON)
    assert SECRET not in json.dumps(masked)
    assert masked["SqlSettings"]["DataSourceReplicas"] == [MASK]
    assert masked["FileSettings"] == {"PublicLinkSalt": MASK, "AmazonS3SecretAccessKey": MASK}
    assert masked["EmailSettings"]["SMTPServer"] == "smtp.example"
    assert masked["ServiceSettings"]["SiteURL"] == "http://mm.example"
    assert mask({"EnableSignUpWithEmail": True, "LicenseFileLocation": ""}) == {
        "EnableSignUpWithEmail": True,
        "LicenseFileLocation": "",
    }

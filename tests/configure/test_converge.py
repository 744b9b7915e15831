"""A real converge of ansible/site.yml on THIS machine (connection local, as root), twice.

Contained: everything installs under a temporary prefix (`mmload_root`); the system's nginx and
Prometheus configs are not touched. What it does change on the machine: system users
(mattermost, grafana, node-exporter, mmload) and, where the kernel allows, net.core.somaxconn
raised to 65535 (the ephemeral port range is pinned to its current value so concurrent tests
are not disturbed). systemd is not PID 1 here, so services are rendered but not started and the
/api/v4/system/ping wait is skipped. Downloads come from an emulated site on 127.0.0.1 (see
fakesite.py); Debian packages (nginx, prometheus, python3-venv) come from apt as on a real host.
The agents' venv installs the operator's wheel with --no-deps --no-index: the dependency
download from PyPI is left out to keep the test fast and offline.
"""

from __future__ import annotations

import io
import json
import re
import subprocess
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pytest

from mmload import __version__
from mmload.config.mattermost import MattermostSettings
from mmload.configure.driver import PlaybookResult, run_playbook
from mmload.configure.inventory import local_inventory
from mmload.configure.plan import MattermostInputs, agents_extravars
from mmload.configure.progress import PlainReporter
from mmload.configure.tls import generated_tls
from mmload.configure.wheel import build_wheel
from tests.configure.fakesite import FakeSite

pytestmark = pytest.mark.slow

SECRET = "Zq7-s3cr3t/P@ss:w0rd!"
GRAFANA_PASSWORD = "Gr4fana-" + SECRET[::-1]
USERS = 15000


@dataclass
class Converge:
    root: Path
    work: Path
    first: PlaybookResult
    second: PlaybookResult
    output: str
    site: FakeSite
    extravars: dict[str, Any]
    tls_key: str


def deployment_vars() -> dict[str, Any]:
    return {
        "mmload_deployment": "mm-local",
        "mmload_users": USERS,
        "mmload_site_url": "http://203.0.113.5",
        "mmload_db": {
            "engine": "aurora-postgresql",
            "writer_endpoint": "mm-local-db.cluster-x.us-east-1.rds.amazonaws.com",
            "reader_endpoints": ["mm-local-db-1.x.us-east-1.rds.amazonaws.com"],
            "port": 5432,
            "name": "mattermost",
            "username": "mmuser",
        },
        "mmload_search": {"endpoint": "vpc-mm-local.us-east-1.es.amazonaws.com"},
        "mmload_cache": {"endpoint": "mm-local-cache.x.cache.amazonaws.com", "port": 6379},
        "mmload_bucket": {"name": "mm-local-files", "region": "us-east-1"},
    }


def current_port_range() -> str:
    return " ".join(Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split())


def server_rewrites_config(path: Path) -> None:
    """Do what a starting Mattermost does: add its defaults and re-serialise config.json."""
    cfg = json.loads(path.read_text())
    cfg["ServiceSettings"]["ReadTimeout"] = 300
    cfg["PluginSettings"]["Directory"] = "./plugins"
    cfg["PluginSettings"]["PluginStates"]["com.example.extra"] = {"Enable": True}
    path.write_text(json.dumps(cfg, indent=2, sort_keys=False))


@pytest.fixture(scope="module")
def converge(tmp_path_factory: pytest.TempPathFactory, emulator_apply: Any) -> Converge:
    # emulator_apply: starts `mmload infra apply` against moto in the background now, for
    # test_from_provisioning.py (it overlaps with this converge instead of adding to it).
    tmp = tmp_path_factory.mktemp("converge")
    site = FakeSite(tmp / "site").start()
    license_file = tmp / "enterprise.mattermost-license"
    license_file.write_text("LICENSE-" + SECRET[::-1])
    try:
        tls = generated_tls(tmp / "operator", "mm-local", ["127.0.0.1", "203.0.113.5"])
        settings = MattermostSettings(license_file=str(license_file), sha256="0" * 64)
        mm = MattermostInputs(settings, users=USERS, source="deployment.yaml")
        extravars = {
            **mm.extravars(need_checksum=True),
            **agents_extravars(build_wheel(tmp / "wheels")),
            **site.role_vars(),  # the emulated download site and its real checksums
            "proxy_tls_cert": tls.cert_pem,
            "mmload_ca_cert": tls.ca_pem,
            "mmload_root": str(tmp / "root"),
            "agents_python": "/usr/bin/python3",
            "agents_pip_extra_args": "--no-deps --no-index",
            "common_sysctls": {
                "net.core.somaxconn": 65535,
                "net.ipv4.ip_local_port_range": current_port_range(),
            },
        }
        seed = tmp / "population.jsonl"
        seed.write_text('{"type":"version","version":1}\n')
        extravars["mattermost_seed_file"] = str(seed)
        out = io.StringIO()
        runs = []
        for i in range(2):
            if i == 1:
                server_rewrites_config(tmp / "root/etc/mattermost/config.json")
            runs.append(
                run_playbook(
                    inventory=local_inventory(deployment_vars()),
                    work_dir=tmp / "runner",
                    reporter=PlainReporter(out),
                    extravars=extravars,
                    secrets={
                        "mattermost_db_password": SECRET,
                        "proxy_tls_key": tls.key_pem,
                        "metrics_grafana_admin_password": GRAFANA_PASSWORD,
                    },
                    # everything, plus the seed import (tagged `never`: only when asked)
                    tags=["all", "seed"],
                    timeout=480,
                )
            )
        yield Converge(
            tmp / "root",
            tmp / "runner",
            runs[0],
            runs[1],
            out.getvalue(),
            site,
            extravars,
            tls.key_pem,
        )
    finally:
        site.stop()


def test_converges_then_changes_nothing(converge: Converge) -> None:
    first, second = converge.first, converge.second
    assert first.ok, [f.one_line() for f in first.failures]
    assert first.total("changed") > 10
    assert second.ok, [f.one_line() for f in second.failures]
    assert second.stats["ok"].get("localhost", 0) > 30
    assert second.stats["changed"].get("localhost", 0) == 0, converge.output[-3000:]
    assert second.total("failures") == 0 and second.total("dark") == 0


def test_progress_is_streamed(converge: Converge) -> None:
    out = converge.output
    assert "play: Install and configure Mattermost" in out
    assert "  task: Download Mattermost (checksum verified)" in out
    assert re.search(r"done: \d+ ok, 0 changed, \d+ skipped, 0 failed", out)


def test_secret_never_in_output_or_runner_artifacts(converge: Converge) -> None:
    forms = [SECRET, quote(SECRET, safe="")]  # as typed, and URL-encoded in the DataSource
    forms.append("LICENSE-" + SECRET[::-1])
    key_body = converge.tls_key.splitlines()[1]  # the TLS private key's base64
    forms += [GRAFANA_PASSWORD, key_body]
    assert all(f not in converge.output for f in forms)
    files = [p for p in converge.work.rglob("*") if p.is_file()]
    assert any(p.name == "command" for p in files)  # the artifacts are really there
    for path in files:
        text = path.read_bytes().decode(errors="replace")
        for form in forms:
            assert form not in text, f"secret found in {path}"
    # ...but it did reach the server's config (owner-only) and the license was installed.
    cfg = converge.root / "etc/mattermost/config.json"
    assert forms[1] in cfg.read_text()
    assert cfg.stat().st_mode & 0o777 == 0o600
    lic = converge.root / "etc/mattermost/mattermost.mattermost-license"
    assert lic.read_text() == forms[2] and lic.stat().st_mode & 0o777 == 0o600
    key = converge.root / "etc/nginx/tls/mattermost.key"
    assert key.read_text() == converge.tls_key and key.stat().st_mode & 0o777 == 0o600
    pw = converge.root / "etc/grafana/admin-password"
    assert pw.read_text() == GRAFANA_PASSWORD and pw.stat().st_mode & 0o777 == 0o640
    # Rendered files hold no secret: Grafana reads its password from that file.
    rendered = [p for p in converge.root.rglob("*") if p.is_file() and p not in (key, pw, cfg)]
    rendered = [p for p in rendered if p.suffix in (".ini", ".conf", ".yml", ".service", ".env")]
    assert len(rendered) > 5
    for path in rendered:
        text = path.read_text(errors="replace")
        assert not any(f in text for f in forms), f"secret found in {path}"


def test_grafana_requires_login_behind_the_proxy(converge: Converge) -> None:
    ini = (converge.root / "etc/grafana/grafana.ini").read_text()
    anonymous = ini.split("[auth.anonymous]", 1)[1].split("[", 1)[0]
    assert "enabled = false" in anonymous
    assert "cookie_secure = true" in ini
    assert f"admin_password = $__file{{{converge.root}/etc/grafana/admin-password}}" in ini
    assert "root_url = http://203.0.113.5/grafana/" in ini and "serve_from_sub_path = true" in ini


def test_rendered_nginx_passes_nginx_t(converge: Converge) -> None:
    conf = converge.root / "etc/nginx/nginx.conf"
    proc = subprocess.run(
        ["nginx", "-t", "-c", str(conf), "-p", str(conf.parent) + "/"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 0, proc.stderr
    assert "test is successful" in proc.stderr


def test_nginx_is_configured_as_mattermost_documents(converge: Converge) -> None:
    main = (converge.root / "etc/nginx/nginx.conf").read_text()
    site = (converge.root / "etc/nginx/mattermost.conf").read_text()
    proxy = (converge.root / "etc/nginx/snippets/mattermost-proxy.conf").read_text()
    workers = int(re.search(r"worker_processes (\d+);", main).group(1))
    conns = int(re.search(r"worker_connections (\d+);", main).group(1))
    # Every user: a WebSocket on both sides plus keep-alive HTTP: at least 3 per user in total.
    assert conns * workers >= 3 * USERS and conns >= 20000
    assert int(re.search(r"worker_rlimit_nofile (\d+);", main).group(1)) >= 2 * conns
    assert re.search(r"upstream backend \{\s+server 127\.0\.0\.1:8065 max_fails=0;", site)
    assert "keepalive 256;" in site
    ws = re.search(r"location ~ /api/v\[0-9\]\+/\(users/\)\?websocket\$ \{(.*?)\}", site, re.S)
    assert ws and "proxy_set_header Upgrade $http_upgrade;" in ws.group(1)
    assert 'proxy_set_header Connection "upgrade";' in ws.group(1)
    for line in (
        "proxy_http_version 1.1;",
        "proxy_read_timeout 90s;",
        "proxy_connect_timeout 30s;",
        "proxy_pass http://backend;",
    ):
        assert line in proxy


def test_prometheus_config_passes_promtool(converge: Converge) -> None:
    conf = converge.root / "etc/prometheus/prometheus.yml"
    proc = subprocess.run(
        ["promtool", "check", "config", str(conf)], capture_output=True, text=True, timeout=60
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    text = conf.read_text()
    assert '"127.0.0.1:8067"' in text  # the app node's metrics listener
    for job in ("mattermost", "node-app", "node-proxy", "node-agents", "node-coordinator"):
        assert f"job_name: {job}" in text


def test_dashboard_queries_are_valid_promql(converge: Converge, tmp_path: Path) -> None:
    dash = json.loads((converge.root / "etc/grafana/dashboards/mmload.json").read_text())
    exprs = [t["expr"] for p in dash["panels"] for t in p["targets"]]
    assert any("mattermost_login_logins_total" in e for e in exprs)
    assert any("mattermost_http_websockets_total" in e for e in exprs)
    # promtool parses every query as a recording rule ($__rate_interval is Grafana's macro).
    rules = {
        "groups": [
            {
                "name": "dashboard",
                "rules": [
                    {"record": f"mmload:panel{i}", "expr": e.replace("$__rate_interval", "1m")}
                    for i, e in enumerate(exprs)
                ],
            }
        ]
    }
    path = tmp_path / "rules.yml"
    path.write_text(json.dumps(rules))
    proc = subprocess.run(
        ["promtool", "check", "rules", str(path)], capture_output=True, text=True, timeout=60
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    ds = (converge.root / "etc/grafana/provisioning/datasources/mmload.yml").read_text()
    assert "uid: mmload-prometheus" in ds and "url: http://127.0.0.1:9090" in ds


def test_config_json_has_what_mattermost_expects(converge: Converge) -> None:
    cfg = json.loads((converge.root / "etc/mattermost/config.json").read_text())
    assert cfg["ServiceSettings"]["SiteURL"] == "http://203.0.113.5"
    assert cfg["ServiceSettings"]["ListenAddress"] == ":8065"
    assert cfg["ServiceSettings"]["LicenseFileLocation"].endswith(
        "etc/mattermost/mattermost.mattermost-license"
    )
    sql = cfg["SqlSettings"]
    assert sql["DriverName"] == "postgres"
    assert re.fullmatch(
        r"postgres://mmuser:[^@]+@mm-local-db\.cluster-x\.us-east-1\.rds\.amazonaws\.com:5432/"
        r"mattermost\?sslmode=require.*",
        sql["DataSource"],
    )
    assert len(sql["DataSourceReplicas"]) == 1
    assert "@mm-local-db-1.x." in sql["DataSourceReplicas"][0]
    assert cfg["ClusterSettings"] == {"Enable": False}  # one app node: no cluster
    fs = cfg["FileSettings"]
    assert fs["DriverName"] == "amazons3" and fs["AmazonS3Bucket"] == "mm-local-files"
    # the bucket's default SSE-KMS encrypts (AmazonS3SSE would force SSE-S3); the instance role
    assert fs["AmazonS3SSE"] is False and fs["AmazonS3AccessKeyId"] == ""
    assert cfg["MetricsSettings"] == {"Enable": True, "ListenAddress": ":8067"}
    es = cfg["ElasticsearchSettings"]
    assert es["ConnectionURL"] == "https://vpc-mm-local.us-east-1.es.amazonaws.com"
    assert es["EnableIndexing"] and es["EnableSearching"]
    assert cfg["CacheSettings"]["CacheType"] == "redis"
    assert cfg["CacheSettings"]["RedisAddress"] == "mm-local-cache.x.cache.amazonaws.com:6379"
    # mattermost-facts.md: MaxUsersPerTeam defaults to 50, which blocks a 15,000-user import.
    assert cfg["TeamSettings"]["MaxUsersPerTeam"] >= USERS


def test_server_rewrites_of_config_json_are_kept(converge: Converge) -> None:
    """Between the runs the file was rewritten as the server does (server_rewrites_config):
    the second run merged over it, changed nothing, and kept the server's additions."""
    cfg = json.loads((converge.root / "etc/mattermost/config.json").read_text())
    plugins = cfg["PluginSettings"]
    assert plugins["Directory"] == "./plugins" and plugins["Enable"] is True
    assert plugins["PluginStates"]["com.example.extra"] == {"Enable": True}
    assert plugins["PluginStates"]["com.mattermost.calls"] == {"Enable": False}
    assert cfg["ServiceSettings"]["ReadTimeout"] == 300
    assert cfg["ServiceSettings"]["SiteURL"] == "http://203.0.113.5"
    assert "changed" not in converge.output.split("Write config.json", 2)[2].split("task:")[0]


def test_install_layout_and_checksums(converge: Converge) -> None:
    root = converge.root
    assert (root / "opt/mattermost").resolve() == root / "opt/mattermost-10.11.12"
    assert (root / "opt/mattermost/bin/mattermost").stat().st_mode & 0o111
    assert (root / "opt/node_exporter-1.8.2/node_exporter").is_file()
    assert (root / "opt/grafana-11.3.0/bin/grafana").is_file()
    unit = (root / "etc/systemd/system/mattermost.service").read_text()
    assert f"MM_CONFIG={root}/etc/mattermost/config.json" in unit
    assert "LimitNOFILE=1048576" in unit


def test_kernel_settings_persisted_and_applied_or_reported(converge: Converge) -> None:
    conf = (converge.root / "etc/sysctl.d/90-mmload.conf").read_text()
    assert "net.core.somaxconn = 65535" in conf
    live = Path("/proc/sys/net/core/somaxconn").read_text().strip()
    refused = "not applied (read-only here" in converge.output
    assert live == "65535" or refused
    limits = (converge.root / "etc/security/limits.d/90-mmload.conf").read_text()
    assert "* hard nofile 1048576" in " ".join(limits.split())


def test_agents_run_the_operators_mmload(converge: Converge) -> None:
    venv = converge.root / "opt/mmload/venv"
    proc = subprocess.run(
        [
            str(venv / "bin/python"),
            "-c",
            "import importlib.metadata as m; print(m.version('mmload'))",
        ],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.stdout.strip() == __version__, proc.stderr
    unit = (converge.root / "etc/systemd/system/mmload-worker@.service").read_text()
    assert f"{venv}/bin/mmload worker --master 127.0.0.1 --master-port 5557" in unit
    assert "LimitNOFILE=1048576" in unit


def test_seed_imported_once_with_mmctl(converge: Converge) -> None:
    """The seed tasks ran in both converge runs: copy, zip, `mmctl --local import upload` into
    the server's file store, `import process` of the uploaded name (never `--bypass-upload` with
    a path on app-0's disk: the stand-in cluster's other node claims that job and fails), wait
    for the job, mark it done; the second run imported nothing. mmctl is the stand-in from the
    emulated tarball (fakesite.MMCTL: it logs its calls)."""
    calls = (converge.root / "opt/mattermost/mmctl-calls.log").read_text().splitlines()
    socket = f"{converge.root}/var/lib/mattermost/mattermost_local.socket"
    (zip_path,) = (converge.root / "var/lib/mattermost/import").glob("mmload-seed-*.zip")
    uploaded = f"u1x2y3z4a5b6c7d8e9f0g1h2i3_{zip_path.name}"
    assert calls == [
        f"{socket} --local import list available",
        f"{socket} --local import upload {zip_path}",
        f"{socket} --local import list available",
        f"{socket} --local import process {uploaded} --extract-content=false --json",
        f"{socket} --local import job show job2 --json",
    ]
    assert not any("bypass-upload" in c for c in calls)
    store = converge.root / "opt/mattermost/filestore/import" / uploaded
    with zipfile.ZipFile(store) as z:
        assert z.read("mmload-seed.jsonl") == b'{"type":"version","version":1}\n'
    assert "  task: Start the import" in converge.output

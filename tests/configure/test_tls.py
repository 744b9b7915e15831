"""TLS and secrets of a configure run: mmload's CA and proxy certificate (or the operator's
own), Grafana's generated admin password, and the real nginx serving `mmload sim` over TLS with
that certificate, plain HTTP only redirecting."""

from __future__ import annotations

import json
import os
import socket
import stat
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
import requests
import yaml
from cryptography import x509

from mmload.config.deployment import Deployment
from mmload.configure.driver import ANSIBLE_DIR, PlaybookResult
from mmload.configure.progress import PlainReporter
from mmload.configure.secrets import GRAFANA_PASSWORD_FILE, ensure_grafana_password
from mmload.configure.tls import generated_tls, own_tls
from mmload.errors import UserError
from mmload.net import free_port
from tests.configure.conftest import write_deployment

ANSIBLE_PLAYBOOK = str(Path(sys.executable).with_name("ansible-playbook"))
# The load engine's own clients (Locust's FastHttpSession as MattermostUser sets it up, and the
# WebSocket's options) against the TLS proxy, without and then with $MMLOAD_CA_FILE. In a
# subprocess: importing locust monkey-patches the interpreter with gevent.
ENGINE_PROBE = """
import json, os, ssl, sys
from locust.contrib.fasthttp import FastHttpSession
from locust.env import Environment
import websocket
from mmload.errors import RunFailed
from mmload.load.preflight import probe_target
from mmload.load.tls import websocket_sslopt
from mmload.load.user.mattermost import MattermostUser as U

def probe():
    session = FastHttpSession(sys.argv[1], Environment().events.request, user=None,
                              insecure=U.insecure, ssl_context_factory=U.ssl_context_factory)
    with session.get("/api/v4/system/ping", catch_response=True) as resp:
        http = resp.status_code
        resp.success()
    try:
        websocket.create_connection(sys.argv[1].replace("https", "wss") + "/api/v4/websocket",
                                    timeout=10, sslopt=websocket_sslopt()).close()
        ws = "open"
    except ssl.SSLError:
        ws = "tls-refused"
    except Exception as exc:  # past the TLS handshake (the simulator wants a login)
        ws = "tls-ok:" + type(exc).__name__
    try:
        probe_target(sys.argv[1])
        pre = "ok"
    except RunFailed:
        pre = "refused"
    return {"http": http, "ws": ws, "preflight": pre}

os.environ.pop("MMLOAD_CA_FILE", None)
without = probe()
os.environ["MMLOAD_CA_FILE"] = sys.argv[2]
print(json.dumps({"without": without, "with": probe()}))
"""


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def san(pem: str) -> set[str]:
    cert = x509.load_pem_x509_certificate(pem.encode())
    ext = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    return {str(v) for v in ext.get_values_for_type(x509.IPAddress)} | set(
        ext.get_values_for_type(x509.DNSName)
    )


def test_generated_ca_and_certificate_are_private_reused_and_renewed(tmp_path: Path) -> None:
    first = generated_tls(tmp_path, "mm-t", ["203.0.113.5", "10.0.0.10"])
    tls = tmp_path / "tls"
    assert mode(tls) == 0o700
    assert mode(tls / "ca.key") == 0o600 and mode(tls / "proxy.key") == 0o600
    assert san(first.cert_pem) == {"203.0.113.5", "10.0.0.10"}
    assert first.ca_file == tls / "ca.pem" and first.ca_pem == (tls / "ca.pem").read_text()
    again = generated_tls(tmp_path, "mm-t", ["203.0.113.5", "10.0.0.10"])
    assert again == first  # nothing changed: the same certificate and key
    moved = generated_tls(tmp_path, "mm-t", ["203.0.113.9", "mm.example.com"])
    assert moved.ca_pem == first.ca_pem and moved.key_pem != first.key_pem
    assert san(moved.cert_pem) == {"203.0.113.9", "mm.example.com"}


def test_the_operators_own_certificate_must_match_its_key(tmp_path: Path) -> None:
    a = generated_tls(tmp_path / "a", "mm-a", ["mm.example.com"])
    b = generated_tls(tmp_path / "b", "mm-b", ["mm.example.com"])
    cert = tmp_path / "a" / "tls" / "proxy.pem"
    ok = own_tls(str(cert), str(tmp_path / "a/tls/proxy.key"), str(tmp_path / "a/tls/ca.pem"))
    assert ok.cert_pem == a.cert_pem and ok.key_pem == a.key_pem and ok.ca_pem == a.ca_pem
    with pytest.raises(UserError) as err:
        own_tls(str(cert), str(tmp_path / "b/tls/proxy.key"), None)
    assert err.value.field == "tls.key_file" and "does not belong" in err.value.message
    assert b.key_pem not in str(err.value)
    with pytest.raises(UserError) as err:
        own_tls(str(tmp_path / "b/tls/proxy.key"), str(tmp_path / "b/tls/proxy.key"), None)
    assert err.value.field == "tls.cert_file"


@pytest.mark.parametrize(
    ("tls", "field_hint"),
    [({"cert_file": "c.pem"}, "both"), ({"ca_file": "ca.pem"}, "ca_file goes with")],
)
def test_tls_settings_come_in_pairs(tls: dict[str, str], field_hint: str) -> None:
    with pytest.raises(ValueError, match=field_hint):
        Deployment(name="mm-t", tier=2000, operator_cidrs=["203.0.113.7/32"], tls=tls)


def test_grafana_password_is_generated_once_and_kept_owner_only(tmp_path: Path) -> None:
    password, created = ensure_grafana_password(tmp_path / "w")
    path = tmp_path / "w" / GRAFANA_PASSWORD_FILE
    assert created and len(password) >= 24 and mode(path) == 0o600
    assert ensure_grafana_password(tmp_path / "w") == (password, False)
    path.chmod(0o644)
    assert ensure_grafana_password(tmp_path / "w") == (password, False)
    assert mode(path) == 0o600


def test_configure_hands_cert_ca_key_and_password_to_the_playbook(
    tmp_path: Path, outputs_file: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The seam run.configure → run_playbook: public parts as variables, secrets only in the
    secrets file; the Grafana password is shown once."""
    from mmload.configure import run as run_mod

    calls: list[dict[str, Any]] = []

    def fake_run_playbook(**kw: Any) -> PlaybookResult:
        calls.append(kw)
        return PlaybookResult(status="successful", rc=0)

    monkeypatch.setattr(run_mod, "run_playbook", fake_run_playbook)
    notices: list[str] = []
    dep = write_deployment(tmp_path)
    for _ in range(2):
        run_mod.configure(
            dep,
            outputs_path=outputs_file,
            tags=["proxy", "metrics"],
            skip_tags=[],
            reporter=PlainReporter(open(os.devnull, "w")),  # noqa: SIM115
            notice=notices.append,
        )
    first, second = calls
    work = tmp_path / ".deployments" / "mm-2k"
    password = (work / GRAFANA_PASSWORD_FILE).read_text().strip()
    assert len(notices) == 1 and password in notices[0] and "/grafana/" in notices[0]
    assert first["secrets"]["metrics_grafana_admin_password"] == password
    key = first["secrets"]["proxy_tls_key"]
    assert key == (work / "tls/proxy.key").read_text()
    public = json.dumps(first["extravars"]) + json.dumps(first["inventory"])
    assert key.splitlines()[1] not in public and password not in public
    cert = first["extravars"]["proxy_tls_cert"]
    assert san(cert) == {"203.0.113.5", "10.0.0.10"}  # site URL, public and private address
    assert first["extravars"]["mmload_ca_cert"] == (work / "tls/ca.pem").read_text()
    assert second["extravars"]["proxy_tls_cert"] == cert  # kept, not reissued


# -- the real nginx ---------------------------------------------------------------------------


def render_proxy(root: Path, app_port: int, http_port: int, https_port: int) -> Path:
    """The proxy role's nginx templates rendered by the real Ansible; returns nginx.conf."""
    roles = ANSIBLE_DIR / "roles"
    local = {"ansible_connection": "local", "ansible_python_interpreter": sys.executable}
    inventory = {
        "all": {
            "vars": {"mmload_root": str(root)},
            "children": {
                "app": {"hosts": {"app-0": {**local, "mmload_private_ip": "127.0.0.1"}}},
                "metrics": {"hosts": {"metrics-0": {**local, "mmload_private_ip": "127.0.0.1"}}},
                "proxy": {"hosts": {"proxy-0": local}},
            },
        }
    }
    conf = root / "etc/nginx"
    templates = {
        "nginx.conf": conf / "nginx.conf",
        "mattermost.conf": conf / "mattermost.conf",
        "mattermost-proxy.conf": conf / "snippets/mattermost-proxy.conf",
        "mattermost-cache.conf": conf / "snippets/mattermost-cache.conf",
    }
    for d in ("etc/nginx/snippets", "etc/nginx/tls", "var/log/nginx", "run"):
        (root / d).mkdir(parents=True, exist_ok=True)
    (root / "var/cache/nginx/mattermost").mkdir(parents=True, exist_ok=True)
    playbook = [
        {
            "name": "Render the proxy",
            "hosts": "proxy",
            "gather_facts": False,
            # the shared settings (mmload_somaxconn, the listen backlog) as the playbook has them
            "vars_files": [
                str(ANSIBLE_DIR / "group_vars/all.yml"),
                str(roles / "proxy/defaults/main.yml"),
            ],
            "tasks": [
                {
                    "name": "Render",
                    "ansible.builtin.template": {
                        "src": str(roles / f"proxy/templates/{name}.j2"),
                        "dest": str(dest),
                        "mode": "0644",
                    },
                    "loop_control": {"label": name},
                }
                for name, dest in templates.items()
            ],
        }
    ]
    ports = {  # extra vars: above the role defaults loaded as vars_files
        "mmload_root": str(root),  # group_vars/all.yml's "" is a vars_file here, above inventory
        "proxy_app_port": app_port,
        "proxy_listen_port": http_port,
        "proxy_tls_port": https_port,
        "proxy_worker_connections": 1024,
        "proxy_worker_rlimit_nofile": 4096,
        "proxy_user": "root",  # the workers write the cache under a root-only tmp folder
    }
    (root / "hosts.yml").write_text(yaml.safe_dump(inventory))
    (root / "play.yml").write_text(yaml.safe_dump(playbook, sort_keys=False))
    proc = subprocess.run(
        [ANSIBLE_PLAYBOOK, "-i", "hosts.yml", "play.yml", "-e", json.dumps(ports)],
        cwd=root,
        capture_output=True,
        text=True,
        timeout=180,
    )
    assert proc.returncode == 0, proc.stdout[-3000:]
    return conf / "nginx.conf"


def wait_port(port: int, proc: subprocess.Popen, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            pytest.fail(f"nginx exited {proc.returncode}")
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
            return
        except OSError:
            time.sleep(0.1)
    pytest.fail(f"nginx did not listen on {port}")


@pytest.mark.slow
def test_nginx_serves_mattermost_over_tls_and_redirects_http(tmp_path: Path) -> None:
    from mmload.sim.server import start_in_thread
    from tests.sim.conftest import small_settings

    if os.geteuid() != 0:
        pytest.fail("this test runs nginx as root (as the proxy role does)")
    tls = generated_tls(tmp_path / "operator", "mm-tls", ["127.0.0.1"])
    sim = start_in_thread(small_settings())
    try:
        app_port = int(sim.url.rsplit(":", 1)[1])
        http_port, https_port = free_port(), free_port()
        root = tmp_path / "root"
        conf = render_proxy(root, app_port, http_port, https_port)
        (root / "etc/nginx/tls/mattermost.pem").write_text(tls.cert_pem)
        key = root / "etc/nginx/tls/mattermost.key"
        key.write_text(tls.key_pem)
        key.chmod(0o600)
        check = subprocess.run(
            ["nginx", "-t", "-c", str(conf), "-p", f"{conf.parent}/"],
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert check.returncode == 0, check.stderr
        nginx = subprocess.Popen(
            ["nginx", "-c", str(conf), "-p", f"{conf.parent}/", "-g", "daemon off;"],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
        )
        try:
            wait_port(https_port, nginx)
            url = f"https://127.0.0.1:{https_port}/api/v4/system/ping"
            resp = requests.get(url, verify=str(tls.ca_file), timeout=10)
            assert resp.status_code == 200 and resp.json()["status"] == "OK"
            assert "max-age=" in resp.headers["Strict-Transport-Security"]
            with pytest.raises(requests.exceptions.SSLError):
                requests.get(url, timeout=10)  # the system's trust store does not know the CA
            probe = subprocess.run(
                [sys.executable, "-c", ENGINE_PROBE, url.rsplit("/api", 1)[0], str(tls.ca_file)],
                capture_output=True,
                text=True,
                timeout=120,
            )
            assert probe.returncode == 0, probe.stderr[-2000:]
            seen = json.loads(probe.stdout.strip().splitlines()[-1])
            # Verification is on (the system's store does not know mmload's CA) ...
            assert seen["without"] == {"http": 0, "ws": "tls-refused", "preflight": "refused"}
            # ... and uses the CA file: the same clients get through.
            assert seen["with"]["http"] == 200 and seen["with"]["preflight"] == "ok"
            assert seen["with"]["ws"].startswith(("open", "tls-ok"))
            plain = requests.get(
                f"http://127.0.0.1:{http_port}/api/v4/system/ping?x=1",
                allow_redirects=False,
                timeout=10,
            )
            assert plain.status_code == 301
            assert plain.headers["Location"] == f"{url}?x=1"
        finally:
            nginx.terminate()
            nginx.wait(timeout=20)
    finally:
        sim.stop()
    site = (root / "etc/nginx/mattermost.conf").read_text()
    assert "location /grafana/" in site and "server 127.0.0.1:3000;" in site
    assert tls.key_pem.splitlines()[1] not in site + conf.read_text()

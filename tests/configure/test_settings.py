"""The Mattermost settings mmload writes, each with its reason (docs/configure.md), rendered by the
real Ansible from settings.json.j2 for a full deployment (2 app nodes, 2 database readers, a
3-node OpenSearch domain, Redis, S3), and the real nginx in front of a stand-in upstream that
records the headers it is sent.
"""

from __future__ import annotations

import json
import re
import ssl
import subprocess
import sys
import threading
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
import yaml

from mmload.configure.driver import ANSIBLE_DIR
from mmload.configure.tls import generated_tls
from mmload.net import free_port
from tests.configure.test_tls import render_proxy, wait_port
from tests.conftest import REPO

ANSIBLE_PLAYBOOK = str(Path(sys.executable).with_name("ansible-playbook"))
ROLES = ANSIBLE_DIR / "roles"
pytestmark = pytest.mark.slow
READERS = ["mm-db-1.xyz.us-east-1.rds.amazonaws.com", "mm-db-2.xyz.us-east-1.rds.amazonaws.com"]


def render_settings(tmp: Path, search: dict[str, Any] | None, bare: bool = False) -> dict[str, Any]:
    """settings.json.j2 rendered by ansible-playbook for app-0 of a two-node deployment with
    Redis and S3 (``bare``: one node, neither)."""
    local = {"ansible_connection": "local", "ansible_python_interpreter": "/usr/bin/python3"}
    inventory = {
        "all": {
            "vars": {
                "mmload_root": str(tmp / "root"),
                "mmload_deployment": "mm-set",
                "mmload_users": 20000,
                "mmload_site_url": "https://198.51.100.20",
                "mmload_db": {
                    "engine": "aurora-postgresql",
                    "writer_endpoint": "mm-db.cluster-xyz.us-east-1.rds.amazonaws.com",
                    "reader_endpoints": READERS,
                    "port": 5432,
                    "name": "mattermost",
                    "username": "mmuser",
                },
                "mmload_search": search,
                "mmload_cache": None
                if bare
                else {"endpoint": "mm-cache.x.amazonaws.com", "port": 6379},
                "mmload_bucket": None if bare else {"name": "mm-files", "region": "us-east-1"},
            },
            "children": {
                "app": {
                    "hosts": {
                        "app-0": {**local, "mmload_private_ip": "10.0.1.10"},
                        **({} if bare else {"app-1": {**local, "mmload_private_ip": "10.0.1.11"}}),
                    }
                }
            },
        }
    }
    playbook = [
        {
            "name": "Render the Mattermost settings",
            "hosts": "app-0",
            "gather_facts": False,
            "vars_files": [str(ROLES / "mattermost/defaults/main.yml")],
            "tasks": [
                {
                    "name": "Render",
                    "ansible.builtin.template": {
                        "src": str(ROLES / "mattermost/templates/settings.json.j2"),
                        "dest": str(tmp / "settings.json"),
                        "mode": "0600",
                    },
                }
            ],
        }
    ]
    (tmp / "hosts.yml").write_text(yaml.safe_dump(inventory))
    (tmp / "play.yml").write_text(yaml.safe_dump(playbook, sort_keys=False))
    extra = {"mattermost_db_password": "pw", "mattermost_version": "10.11.12"}
    proc = subprocess.run(
        [ANSIBLE_PLAYBOOK, "-i", "hosts.yml", "play.yml", "-e", json.dumps(extra)],
        cwd=tmp,
        capture_output=True,
        text=True,
        timeout=180,
    )
    assert proc.returncode == 0, proc.stdout[-3000:]
    return json.loads((tmp / "settings.json").read_text())


@pytest.fixture(scope="module")
def settings(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    search = {"endpoint": "vpc-mm-es.us-east-1.es.amazonaws.com", "nodes": 3}
    return render_settings(tmp_path_factory.mktemp("settings"), search)


def test_idle_timeout_outlasts_nginx_upstream_keepalive(settings: dict[str, Any]) -> None:
    """Mattermost (ServiceSettings.IdleTimeout, default 60) must not close an idle upstream
    connection before nginx does (upstream keepalive_timeout 60 s), else nginx reuses a closed
    connection: a sporadic 502. ltng's value is 90."""
    assert settings["ServiceSettings"]["IdleTimeout"] == 90
    site = (ROLES / "proxy/templates/mattermost.conf.j2").read_text()
    defaults = yaml.safe_load((ROLES / "proxy/defaults/main.yml").read_text())
    assert "keepalive_timeout {{ proxy_upstream_keepalive_timeout }};" in site
    assert int(defaults["proxy_upstream_keepalive_timeout"].rstrip("s")) < 90


def test_client_address_header_trusted_from_the_proxy(settings: dict[str, Any]) -> None:
    assert settings["ServiceSettings"]["TrustedProxyIPHeader"] == ["X-Forwarded-For"]


def test_one_dsn_per_reader_instance(settings: dict[str, Any]) -> None:
    replicas = settings["SqlSettings"]["DataSourceReplicas"]
    assert [re.search(r"@([^:/]+):5432/", r).group(1) for r in replicas] == READERS


def test_opensearch_without_basic_auth_and_a_replica_on_every_node(
    settings: dict[str, Any],
) -> None:
    es = settings["ElasticsearchSettings"]
    # The server's defaults are elastic/changeme (model/config.go); AWS OpenSearch without
    # fine-grained access control rejects any basic auth.
    assert es["Username"] == "" and es["Password"] == ""
    assert es["Backend"] == "opensearch" and es["EnableSearching"] is True
    for index in ("Post", "Channel", "User"):
        assert es[f"{index}IndexReplicas"] == 2, index  # 3 nodes: a copy of each index on each


def test_one_search_node_gets_no_replicas(tmp_path: Path) -> None:
    es = render_settings(tmp_path, {"endpoint": "vpc-x.es.amazonaws.com", "nodes": 1})[
        "ElasticsearchSettings"
    ]
    assert (es["PostIndexReplicas"], es["ChannelIndexReplicas"], es["UserIndexReplicas"]) == (
        0,
        0,
        0,
    )


def test_telemetry_sentry_and_security_alerts_off(settings: dict[str, Any]) -> None:
    assert settings["LogSettings"]["EnableDiagnostics"] is False
    assert settings["LogSettings"]["EnableSentry"] is False
    assert settings["ServiceSettings"]["EnableSecurityFixAlert"] is False


def test_prepackaged_plugins_disabled(settings: dict[str, Any]) -> None:
    plugins = settings["PluginSettings"]
    # Plugins stay on as a feature (the web app's /api/v4/plugins/webapp answers 501 otherwise);
    # every plugin the server enables by default (PluginSettings.SetDefaults) is switched off.
    assert plugins["Enable"] is True and plugins["AutomaticPrepackagedPlugins"] is False
    assert plugins["EnableMarketplace"] is False and plugins["EnableRemoteMarketplace"] is False
    states = plugins["PluginStates"]
    for plugin in ("com.mattermost.nps", "com.mattermost.calls", "playbooks"):
        assert states[plugin] == {"Enable": False}, plugin
    assert all(s == {"Enable": False} for s in states.values())


def test_s3_objects_take_the_buckets_kms_encryption(settings: dict[str, Any]) -> None:
    """AmazonS3SSE true makes the server send SSE-S3 (AES256) on every upload, overriding the
    bucket's default SSE-KMS that docs/aws.md promises; off, the bucket's default applies."""
    fs = settings["FileSettings"]
    assert fs["DriverName"] == "amazons3" and fs["AmazonS3SSE"] is False
    bucket = (REPO / "terraform/file_storage.tf.j2").read_text()
    assert 'sse_algorithm = "aws:kms"' in bucket
    assert "SSE-KMS" in (REPO / "docs/aws.md").read_text()


class _Recorder(BaseHTTPRequestHandler):
    seen: list[dict[str, str]] = []

    def do_GET(self) -> None:
        self.seen.append(dict(self.headers))
        body = b'{"status":"OK"}'
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: object) -> None:
        pass


def test_nginx_sends_the_clients_own_address(tmp_path: Path) -> None:
    """Through the real nginx (config checked with nginx -t): the upstream gets the client's
    address in X-Forwarded-For, not a value the client made up (Mattermost takes the header's
    first entry for its rate limiter once TrustedProxyIPHeader names it)."""
    upstream = ThreadingHTTPServer(("127.0.0.1", free_port()), _Recorder)
    thread = threading.Thread(target=upstream.serve_forever, daemon=True)
    thread.start()
    tls = generated_tls(tmp_path / "operator", "mm-xff", ["127.0.0.1"])
    try:
        http_port, https_port = free_port(), free_port()
        root = tmp_path / "root"
        conf = render_proxy(root, upstream.server_address[1], http_port, https_port)
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
        site = (conf.parent / "mattermost.conf").read_text()
        assert re.search(r"keepalive_timeout 60s;\s*\}", site)
        nginx = subprocess.Popen(
            ["nginx", "-c", str(conf), "-p", f"{conf.parent}/", "-g", "daemon off;"],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
        )
        try:
            wait_port(https_port, nginx)
            request = urllib.request.Request(
                f"https://127.0.0.1:{https_port}/api/v4/system/ping",
                headers={"X-Forwarded-For": "203.0.113.99"},  # a client's made-up address
            )
            context = ssl.create_default_context(cafile=str(tls.ca_file))
            with urllib.request.urlopen(request, context=context, timeout=10) as resp:
                assert resp.status == 200
        finally:
            nginx.terminate()
            nginx.wait(timeout=20)
    finally:
        upstream.shutdown()
        upstream.server_close()
    assert _Recorder.seen and _Recorder.seen[-1]["X-Forwarded-For"] == "127.0.0.1"

"""The target guard (issue 10, item 7): a redirect off the target is refused and recorded, never
followed; the target's host is resolved once and every connection of the run goes to that
address.

Real servers on 127.0.0.1 and 127.0.0.2 (threads of this process, tests/load/guard_servers.py),
the real `mmload run` with Locust and its workers, the real simulator. What is emulated is said
where it is: only DNS, through the resolver seam ``mmload.load.pin.PINNED.resolver``.
"""

from __future__ import annotations

import json
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from mmload import record
from mmload.load import pin
from mmload.load.tls import stdlib_context
from mmload.report.runs import scan_requests
from tests.load.conftest import run_dir_from, run_mmload, write_scenario
from tests.load.fakes import import_locust_unpatched
from tests.load.guard_servers import redirector, tally, with_tls

pytestmark = pytest.mark.slow

PIN_CHECK = Path(__file__).with_name("pin_check.py")
ROOT = Path(__file__).parents[2]


def _scenario(tmp: Path, **extra: object) -> Path:
    fields: dict = {
        "name": "guard",
        "kind": "storm",
        "users": 6,
        "arrival_s": 1,
        "hold_s": 1,
        "actions": False,
        "websocket": {"enabled": False},
    }
    fields.update(extra)
    return write_scenario(tmp / "guard.yaml", **fields)


@pytest.mark.parametrize("workers", [0, 1])
def test_a_redirect_to_another_host_is_refused_and_counted(tmp_path: Path, workers: int) -> None:
    """Every API call of the target answers 302 to 127.0.0.2 (the 307-to-another-loopback of
    the probe): the users' requests fail as ``redirect_off_target`` and 127.0.0.2 accepts not
    one connection, from the master's process or from a worker."""
    with tally("127.0.0.2") as other, redirector("127.0.0.1", "") as target:
        target.elsewhere = other.url  # type: ignore[attr-defined]
        res = run_mmload(
            "run", str(_scenario(tmp_path)), "--target", target.url, "--out", str(tmp_path),
            "--workers", str(workers), "--no-fail-on-slo",
        )  # fmt: skip
        assert other.connections == 0 and other.paths == []
    assert res.returncode == 0, res.stdout + res.stderr
    assert "errors by class: transport 6" in res.stdout  # the 6 logins: no answer from anyone
    run_dir = run_dir_from(res.stdout)
    rows = record.read_table(run_dir, record.REQUESTS, ["name", "status", "error"]).to_pandas()
    refused = rows[rows["error"].fillna("").str.startswith("redirect_off_target")]
    # each of the 6 users' login was redirected and refused (later calls need the login)
    assert set(refused["name"]) >= {"POST /api/v4/users/login"}
    assert (refused["name"] == "POST /api/v4/users/login").sum() == 6
    assert (refused["status"] == 0).all()  # nothing was answered by the other host
    assert refused["error"].str.contains(f"refused 127.0.0.2:{other.server_address[1]}").all()
    meta = record.read_run(run_dir)
    assert meta["totals"]["failures"] >= 6
    logins = [e for e in meta_endpoints(run_dir) if e["name"] == "POST /api/v4/users/login"]
    assert logins and logins[0]["failures"] == 6
    # the report's error table names it
    errors = scan_requests(run_dir).errors
    off = errors[errors["error"].str.startswith("redirect_off_target")]
    assert list(off["name"]) == ["POST /api/v4/users/login"] and list(off["count"]) == [6]


def meta_endpoints(run_dir: Path) -> list[dict]:
    """The endpoint table `mmload run` prints (count, fail per endpoint)."""
    from mmload.load.summary import summarize

    return summarize(run_dir, record.read_run(run_dir))["endpoints"]


def test_the_http_client_follows_a_redirect_on_the_target_only() -> None:
    """The users' HTTP client (Locust's FastHttpSession with the pinned pool): a redirect on
    the target is followed, one to another host fails before it connects."""
    import_locust_unpatched()
    from locust.contrib.fasthttp import FastHttpSession
    from locust.event import Events

    from mmload.load.user.client import PinnedPool

    with tally("127.0.0.2") as other, redirector("127.0.0.1", "") as target:
        target.elsewhere = other.url  # type: ignore[attr-defined]
        session = FastHttpSession(target.url, Events().request, user=None, insecure=False)
        session.client.clientpool = PinnedPool.replacing(session.client.clientpool, "127.0.0.1")
        landed = session.request("GET", "/on-target")
        assert landed.status_code == 200 and landed.json() == {"landed": True}
        refused = session.request("POST", "/api/v4/users/login", json={"login_id": "u"})
        assert refused.status_code == 0
        assert isinstance(refused.error, pin.OffTargetError)
        assert str(refused.error).startswith("redirect_off_target: refused 127.0.0.2:")
        absolute = session.request("GET", other.url + "/api/v4/users/me")  # a locustfile's URL
        assert absolute.status_code == 0 and isinstance(absolute.error, pin.OffTargetError)
        assert other.connections == 0
        assert target.paths.count("/landed") == 1


def test_the_websocket_does_not_follow_a_redirect_off_the_target() -> None:
    """websocket-client follows three redirects by default: the users' socket follows none,
    and one to another host fails as ``redirect_off_target``."""
    with tally("127.0.0.2") as other, redirector("127.0.0.1", "") as target:
        target.elsewhere = other.url.replace("http", "ws")  # type: ignore[attr-defined]
        url = target.url.replace("http", "ws") + "/api/v4/websocket"
        with pytest.raises(pin.OffTargetError, match=r"redirect_off_target: refused 127\.0\.0\.2"):
            pin.open_websocket(url, 5.0, stdlib_context)
        assert other.connections == 0
        assert target.paths == ["/api/v4/websocket"]


def test_a_probe_does_not_follow_a_redirect() -> None:
    from mmload.errors import RunFailed
    from mmload.load.preflight import probe_target

    with tally("127.0.0.2") as other, redirector("127.0.0.1", "") as target:
        target.elsewhere = other.url  # type: ignore[attr-defined]
        assert probe_target(target.url, 5.0) == "11.0.0 (build guard-test)"
        with pytest.raises(RunFailed, match=r"HTTP 302 \(redirect to http://127\.0\.0\.2"):
            probe_target(target.url + "/sub", 5.0)
        assert other.connections == 0


# ---------------------------------------------------------------- resolved once, pinned


def test_the_address_book_resolves_a_host_once() -> None:
    """The seam itself: one lookup per host, whatever the resolver says later; an address is
    its own pin (no lookup); an unknown host is one line (RunFailed), not a traceback."""
    answers = iter([["127.0.0.1"], ["127.0.0.2"]])
    lookups: list[str] = []

    def resolver(host: str) -> list[str]:
        lookups.append(host)
        return next(answers)

    book = pin.AddressBook(resolver)
    assert book.addresses("MM.test") == ("127.0.0.1",)
    assert book.addresses("mm.test") == ("127.0.0.1",)
    assert book.addresses("127.0.0.9") == ("127.0.0.9",) and book.addresses("[::1]") == ("::1",)
    assert lookups == ["mm.test"]
    other = pin.AddressBook(lambda h: [])
    with pytest.raises(pin.RunFailed, match=r"cannot resolve the target host nowhere\.test"):
        other.addresses("nowhere.test")
    worker = pin.AddressBook(lambda h: pytest.fail("a worker must not resolve the master's host"))
    worker.install(book.snapshot())
    assert worker.addresses("mm.test") == ("127.0.0.1",)


@pytest.mark.parametrize("workers", [0, 1])
def test_a_dns_change_mid_run_does_not_move_the_traffic(
    tmp_path: Path, sim: str, workers: int
) -> None:
    """The target is ``mm.test`` (a name no resolver on this machine knows). Emulated: the
    master's resolver answers 127.0.0.1 (the simulator) the first time and 127.0.0.2 every
    time after, where a server on the simulator's port counts connections. The run asks once,
    loads the simulator only, and a worker (another process, the system's resolver, which
    cannot resolve ``mm.test``) connects with the master's pin."""
    port = int(sim.rsplit(":", 1)[1])
    with pytest.raises(OSError):
        socket.getaddrinfo("mm.test", port)  # honest: only the emulated resolver knows it
    target = f"http://mm.test:{port}"
    with tally("127.0.0.2", port) as moved:
        out = subprocess.run(
            [sys.executable, str(PIN_CHECK), "mm.test", "127.0.0.1", "127.0.0.2", "--",
             "run", str(_scenario(tmp_path, users=10, websocket={"enabled": True})),
             "--target", target, "--out", str(tmp_path), "--workers", str(workers),
             "--no-fail-on-slo"],
            capture_output=True, text=True, timeout=120, cwd=ROOT,
        )  # fmt: skip
        assert moved.connections == 0, moved.paths
    res = json.loads(out.stdout.strip().splitlines()[-1])
    assert res["code"] == 0, out.stdout + out.stderr
    assert res["lookups"] == ["mm.test"]  # the loopback check's, once for the whole run
    run_dir = run_dir_from(out.stdout)
    meta = record.read_run(run_dir)
    assert meta["target"] == target and meta["server_version"]
    rows = record.read_table(run_dir, record.REQUESTS, ["name", "status"]).to_pandas()
    logins = rows[rows["name"] == "POST /api/v4/users/login"]
    assert len(logins) == 10 and (logins["status"] == 200).all()
    assert meta["totals"]["arrivals"]["ws_connected"] == 10  # the sockets too (pinned)


@pytest.fixture
def pinned_names() -> Iterator[None]:
    """``mm.test`` and ``other.test`` pinned to 127.0.0.1 in this process's table (emulated
    DNS: installed as a worker installs the master's table), forgotten afterwards."""
    pin.PINNED.install({"mm.test": ["127.0.0.1"], "other.test": ["127.0.0.1"]})
    yield
    pin.PINNED.clear()


def test_tls_on_the_pinned_address_still_verifies_the_host_name(
    tmp_path: Path, pinned_names: None
) -> None:
    """A real TLS server on 127.0.0.1 whose certificate names only ``mm.test`` (mmload's own
    CA): the users' HTTP client and the socket of the WebSocket and probes connect to the
    pinned address and verify ``mm.test`` (SNI and the certificate's name); the same address
    reached as ``other.test`` fails verification."""
    import ssl

    import_locust_unpatched()
    import gevent.ssl
    from locust.contrib.fasthttp import FastHttpSession
    from locust.event import Events

    from mmload.configure.tls import generated_tls
    from mmload.load.user.client import PinnedPool

    tls = generated_tls(tmp_path, "guard", ["mm.test"])
    (tmp_path / "key.pem").write_text(tls.key_pem)
    (tmp_path / "cert.pem").write_text(tls.cert_pem)
    ca = str(tls.ca_file)
    server = with_tls(
        redirector("127.0.0.1", ""), str(tmp_path / "cert.pem"), str(tmp_path / "key.pem")
    )
    with server:
        port = server.server_address[1]
        for host, ok in (("mm.test", True), ("other.test", False)):
            session = FastHttpSession(
                f"https://{host}:{port}", Events().request, user=None, insecure=False,
                ssl_context_factory=lambda: gevent.ssl.create_default_context(cafile=ca),
            )  # fmt: skip
            session.client.clientpool = PinnedPool.replacing(session.client.clientpool, host)
            resp = session.request("GET", "/landed")
            assert (resp.status_code == 200) is ok, resp.error
            if not ok:
                assert isinstance(resp.error, ssl.SSLCertVerificationError)

            def context() -> ssl.SSLContext:
                return ssl.create_default_context(cafile=ca)

            if ok:
                pin.open_socket(f"wss://{host}:{port}/api/v4/websocket", 5.0, context).close()
            else:
                with pytest.raises(ssl.SSLCertVerificationError, match=r"other\.test"):
                    pin.open_socket(f"wss://{host}:{port}/api/v4/websocket", 5.0, context)

"""A storm of the customer's own users, each through its own login method (issue 15, item 1).

Real Locust (a master and one worker, `mmload run --workers 1 --credentials users.csv`) against
a real `mmload sim --accounts users.csv` whose OpenID Connect sign-in goes to a real provider —
Authlib's authorization server in a small Flask app (tests/load/oidc_idp.py) on 127.0.0.3 with
its own users. 40 users: email, username, LDAP (some with MFA), MFA (email and username ids)
and OpenID. The sim's side says which method each login used
(``mmload_sim_logins_by_method``: decided by the user's auth service and the TOTP check, not by
what the client claims), the IdP says who signed in there and how many codes it exchanged, the
record says every user loaded — under its salted name only: no login id, password, TOTP secret
or client secret in the record or on the Locust wire.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pyotp
import pytest

from mmload import record
from mmload.net import free_port
from mmload.sim.launcher import SimProcess, running_sim
from tests.load.conftest import run_dir_from, write_scenario

IDP_HOST = "127.0.0.3"
CLIENT_SECRET = "client-secret-5d1e7a"
HERE = Path(__file__).parent
ROOT = HERE.parents[1]
N = 8  # users per kind


@dataclass
class Row:
    login_id: str
    password: str
    method: str = ""
    totp: str = ""


def population() -> list[Row]:
    rows = [Row(f"alice.{i:02d}@corp.example", f"Pw-alice-{i}!") for i in range(N)]
    rows += [Row(f"bob.user{i:02d}", f"Pw-bob-{i}!", "username") for i in range(N)]
    rows += [Row(f"carol.dir{i:02d}", f"Pw-carol-{i}!", "ldap") for i in range(N)]
    for r in rows[-2:]:  # LDAP users with MFA on top
        r.totp = pyotp.random_base32()
    rows += [Row(f"dave.{i:02d}@corp.example", f"Pw-dave-{i}!", "mfa", pyotp.random_base32())
             for i in range(N // 2)]  # fmt: skip
    rows += [Row(f"dan.user{i:02d}", f"Pw-dan-{i}!", "mfa", pyotp.random_base32())
             for i in range(N // 2)]  # fmt: skip
    rows += [Row(f"erin.{i:02d}@corp.example", f"Idp-erin-{i}!", "openid") for i in range(N)]
    return rows


@dataclass
class World:
    sim: SimProcess
    idp_url: str
    csv: Path
    rows: list[Row]


def wait_for_line(proc: subprocess.Popen, log: Path, prefix: str, timeout: float) -> str:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for line in log.read_text(errors="replace").splitlines():
            if line.startswith(prefix):
                return line[len(prefix) :].strip()
        if proc.poll() is not None:
            break
        time.sleep(0.1)
    raise AssertionError(f"no {prefix!r} line: {log.read_text(errors='replace')[-2000:]}")


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    d = tmp_path_factory.mktemp("logins")
    rows = population()
    lines = ["login_id,password,method,totp_secret"]
    lines += [f"{r.login_id},{r.password},{r.method},{r.totp}" for r in rows]
    csv = d / "users.csv"
    csv.write_text("\n".join(lines) + "\n")
    csv.chmod(0o600)
    idp_users = [
        {"username": r.login_id, "password": r.password, "email": r.login_id}
        for r in rows
        if r.method == "openid"
    ] + [{"username": "stranger@corp.example", "password": "x-9!", "email": "s@corp.example"}]
    (d / "idp-users.json").write_text(json.dumps(idp_users))
    secret = d / "client.secret"
    secret.write_text(CLIENT_SECRET + "\n")
    secret.chmod(0o600)
    sim_port, idp_port = free_port(), free_port(IDP_HOST)
    idp_log = d / "idp.log"
    with idp_log.open("wb") as log:
        idp = subprocess.Popen(
            [sys.executable, str(HERE / "oidc_idp.py"), "--host", IDP_HOST, "--port",
             str(idp_port), "--users", str(d / "idp-users.json"), "--client-id", "mattermost",
             "--client-secret-file", str(secret), "--redirect-uri",
             f"http://127.0.0.1:{sim_port}/signup/openid/complete"],
            stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
        )  # fmt: skip
    try:
        idp_url = wait_for_line(idp, idp_log, "idp ready: ", 60)
        with running_sim(
            port=sim_port,
            users=100,
            accounts=csv,
            openid_discovery=f"{idp_url}/.well-known/openid-configuration",
            openid_client_id="mattermost",
            openid_secret_file=secret,
            log_path=d / "sim.log",
        ) as sim:
            yield World(sim, idp_url, csv, rows)
    finally:
        idp.terminate()
        try:
            idp.wait(10)
        except subprocess.TimeoutExpired:
            idp.kill()
            idp.wait(5)


def sim_counters(sim: SimProcess, prefix: str) -> dict[str, float]:
    assert sim.metrics_url
    text = urllib.request.urlopen(sim.metrics_url, timeout=10).read().decode()
    return {
        line.rsplit(" ", 1)[0]: float(line.rsplit(" ", 1)[1])
        for line in text.splitlines()
        if line.startswith(prefix)
    }


def by_method(method: str, mfa: bool, ldap_only: bool) -> str:
    labels = f'ldap_only="{str(ldap_only).lower()}",method="{method}",mfa="{str(mfa).lower()}"'
    return f"mmload_sim_logins_by_method_total{{{labels}}}"


# The hold gives the last arrival's sign-in and load 15 s before the users stop (an OpenID
# sign-in is 5 requests, two hosts): on a loaded machine 2 s was not always enough.
@pytest.mark.slow
def test_a_storm_logs_every_customer_user_in_through_its_own_method(
    tmp_path: Path, world: World
) -> None:
    rows = world.rows
    scenario = write_scenario(tmp_path / "creds.yaml", name="creds", kind="storm",
                              users=len(rows), arrival_s=4, hold_s=15,
                              idle={"min_ms": 200, "avg_ms": 1000})  # fmt: skip
    secrets = [r.password for r in rows] + [r.login_id for r in rows]
    secrets += [r.totp for r in rows if r.totp] + [CLIENT_SECRET]
    out = subprocess.run(
        [sys.executable, str(HERE / "wire_check.py"), *secrets, "--", "run", str(scenario),
         "--target", world.sim.url, "--credentials", str(world.csv), "--out", str(tmp_path),
         "--workers", "1", "--no-fail-on-slo"],
        capture_output=True, text=True, timeout=300, cwd=ROOT,
    )  # fmt: skip
    res = json.loads(out.stdout.strip().splitlines()[-1])
    assert res["code"] == 0, out.stdout[-3000:] + out.stderr[-3000:]
    run_dir = run_dir_from(out.stdout)

    # the sim's side: each login by the method of its user (auth service, TOTP checked)
    got = sim_counters(world.sim, "mmload_sim_logins_by_method_total{")
    assert got == {
        by_method("email", False, False): N,
        by_method("username", False, False): N,
        by_method("ldap", False, True): N - 2,  # ldap_only "true" in every LDAP login body
        by_method("ldap", True, True): 2,
        by_method("email", True, False): N // 2,
        by_method("username", True, False): N // 2,
        by_method("openid", False, False): N,
    }, got
    totals = sim_counters(world.sim, "mattermost_login_logins")
    # the server counts password logins only (AuthenticateUserForLogin), not OAuth sign-ins
    assert totals["mattermost_login_logins_total"] == len(rows) - N, totals
    assert totals["mattermost_login_logins_fail_total"] == N + 2, totals  # MFA's first steps

    # the IdP's side: each OpenID user signed in there once, each code exchanged, userinfo read
    stats = json.loads(urllib.request.urlopen(f"{world.idp_url}/stats", timeout=10).read())
    assert stats["logins"] == {r.login_id: 1 for r in rows if r.method == "openid"}, stats
    assert stats["exchanged"] == N and stats["userinfo"] == N, stats

    # the record: every user loaded, under its salted name only
    arrivals = record.read_table(run_dir, record.ARRIVALS, ["user", "outcome", "error"])
    arrivals = arrivals.to_pandas()
    not_loaded = arrivals[arrivals["outcome"] != "loaded"].to_dict("records")
    assert len(arrivals) == len(rows) and not not_loaded, not_loaded
    assert arrivals["user"].str.fullmatch(r"u-[0-9a-f]{16}").all()
    assert arrivals["user"].nunique() == len(rows)
    reqs = record.read_table(run_dir, record.REQUESTS, ["name", "status"]).to_pandas()
    counts = reqs.groupby(["name", "status"]).size().to_dict()
    logins = {k: v for k, v in counts.items() if "login" in k[0] or "openid" in k[0]}
    assert counts.get(("POST /api/v4/users/login", 200)) == len(rows) - N, logins
    assert counts.get(("POST /api/v4/users/login (no MFA code)", 401)) == N + 2, logins
    assert counts.get(("GET /oauth/openid/login", 302)) == N, logins
    assert counts.get(("IdP POST /login-actions/authenticate", 302)) == N, logins
    assert counts.get(("GET /signup/openid/complete", 307)) == N, logins
    meta = json.loads((run_dir / "run.json").read_text())
    summary = meta["scenario"]["spec"]["population"]["accounts_summary"]
    assert summary["count"] == len(rows) and summary["methods"]["openid"] == N
    assert "accounts" not in meta["scenario"]["spec"]["population"]
    for path in run_dir.rglob("*"):
        if path.is_file():
            data = path.read_bytes()
            leaked = [s for s in secrets if s.encode() in data]
            assert not leaked, f"{path.name} holds {len(leaked)} secret(s)"

    # the wire: the plan, the spawn and the batches went through; no secret in any message
    assert {"to worker: mmload_plan", "from worker: mmload_batch"} <= set(res["types"])
    assert res["with_password"] == [], res["with_password"]
    [written] = res["files"]
    assert written["file_mode"] == 0o600 and written["has_password"]
    assert not Path(written["path"]).parent.exists()


@pytest.mark.slow
def test_wrong_credentials_fail_each_arrival_with_a_reason_and_no_secret(
    tmp_path: Path, world: World
) -> None:
    """The same users with wrong secrets — an OpenID password the IdP refuses, an MFA user
    whose TOTP secret is not the server's, an LDAP password the directory refuses: each arrival
    fails with the step that failed, and no value of the file is in the record or the output."""
    rows = {r.method: r for r in reversed(world.rows)}
    wrong = [
        Row(rows["openid"].login_id, "Not-the-idp-pw-1!", "openid"),
        Row(rows["mfa"].login_id, rows["mfa"].password, "mfa", pyotp.random_base32()),
        Row(rows["ldap"].login_id, "Not-the-ldap-pw-1!", "ldap"),
    ]
    csv = tmp_path / "wrong.csv"
    body = "".join(f"{r.login_id},{r.password},{r.method},{r.totp}\n" for r in wrong)
    csv.write_text("login_id,password,method,totp_secret\n" + body)
    csv.chmod(0o600)
    scenario = write_scenario(tmp_path / "wrong.yaml", name="wrong", kind="storm", users=3,
                              arrival_s=1, hold_s=10)  # fmt: skip
    out = subprocess.run(
        [sys.executable, "-m", "mmload.cli", "run", str(scenario), "--target", world.sim.url,
         "--credentials", str(csv), "--out", str(tmp_path / "runs"), "--no-fail-on-slo"],
        capture_output=True, text=True, timeout=180, cwd=ROOT,
    )  # fmt: skip
    assert out.returncode == 0, out.stdout[-3000:] + out.stderr[-3000:]
    run_dir = run_dir_from(out.stdout)
    arrivals = record.read_table(run_dir, record.ARRIVALS, ["user", "outcome", "error"])
    errors = sorted(arrivals.to_pandas()["error"])
    assert errors == [
        "login: HTTP 401 api.user.check_user_mfa.bad_code.app_error",
        "login: HTTP 401 ent.ldap.do_login.invalid_password.app_error",
        "openid: the IdP refused the login (HTTP 200: its form again)",
    ], errors
    secrets = [s for r in wrong for s in (r.login_id, r.password, r.totp) if s]
    assert not [s for s in secrets if s in out.stdout + out.stderr]
    for path in run_dir.rglob("*"):
        if path.is_file():
            assert not [s for s in secrets if s.encode() in path.read_bytes()], path.name

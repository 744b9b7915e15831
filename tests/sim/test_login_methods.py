"""The simulator's side of the customer's login methods (`--accounts`, issue 15 item 1): LDAP,
MFA and OpenID users answered as `app/authentication.go` and `web/oauth.go` answer them, on a
real in-process simulator over HTTP (the full OpenID round trip with a real IdP is
tests/load/test_login_methods.py)."""

from __future__ import annotations

import base64
import json
import urllib.error
import urllib.request
from collections.abc import Iterator
from typing import Any

import pyotp
import pytest

from mmload.config.credentials import Credential
from mmload.config.sim import OpenIdSettings
from mmload.sim.server import SimHandle, start_in_thread
from tests.conftest import run_cli
from tests.sim.conftest import small_settings

SECRET = pyotp.random_base32()
ACCOUNTS = [
    Credential(login_id="ann@corp.example", password="Pw-ann-1!", method="email"),
    Credential(login_id="cleo", password="Pw-cleo-1!", method="ldap"),
    Credential(login_id="dan", password="Pw-dan-1!", method="mfa", totp_secret=SECRET),
    Credential(login_id="eve@corp.example", password="Idp-eve-1!", method="openid"),
]


@pytest.fixture
def sim() -> Iterator[SimHandle]:
    openid = OpenIdSettings(
        discovery_endpoint="http://127.0.0.1:9/.well-known/openid-configuration",
        client_id="mattermost",
        client_secret="s3cret",
    )
    handle = start_in_thread(small_settings(accounts=ACCOUNTS, openid=openid))
    try:
        yield handle
    finally:
        handle.stop()


class NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args: Any) -> None:
        return None


def call(url: str, body: dict[str, str] | None = None, cookie: str = "") -> tuple[int, Any, Any]:
    data = json.dumps(body).encode() if body is not None else None
    req = urllib.request.Request(url, data=data, method="POST" if body is not None else "GET")
    if cookie:
        req.add_header("Cookie", cookie)
    opener = urllib.request.build_opener(NoRedirect)
    try:
        with opener.open(req, timeout=10) as resp:
            return resp.status, resp.headers, json.loads(resp.read() or b"null")
    except urllib.error.HTTPError as err:
        raw = err.read()
        try:
            return err.code, err.headers, json.loads(raw)
        except ValueError:
            return err.code, err.headers, raw


def login(sim: SimHandle, login_id: str, password: str, **extra: str) -> tuple[int, Any]:
    status, _, body = call(f"{sim.url}/api/v4/users/login",
                           {"login_id": login_id, "password": password, **extra})  # fmt: skip
    return status, body


def method_counts(sim: SimHandle) -> dict[tuple[str, ...], float]:
    out = {}
    for metric in sim.sim.metrics.logins_by_method.collect():
        for s in metric.samples:
            if s.name.endswith("_total"):
                out[(s.labels["method"], s.labels["mfa"], s.labels["ldap_only"])] = s.value
    return out


def test_accounts_take_the_first_users_with_their_own_passwords(sim: SimHandle) -> None:
    status, body = login(sim, "ann@corp.example", "Pw-ann-1!")
    assert status == 200 and body["email"] == "ann@corp.example" and body["username"] == "ann"
    assert login(sim, "ann", "Pw-ann-1!")[0] == 200  # the username of an email login id
    assert login(sim, "ann@corp.example", "Loadtest-1!")[0] == 401  # not the seeded password
    assert login(sim, "user-5", "Loadtest-1!")[0] == 200  # the others stay seeded users
    assert method_counts(sim)[("email", "false", "false")] == 1
    assert method_counts(sim)[("username", "false", "false")] == 2


def test_ldap_users_bind_with_their_directory_password_and_ldap_only_is_counted(
    sim: SimHandle,
) -> None:
    status, body = login(sim, "cleo", "wrong-1!", ldap_only="true")
    assert status == 401 and body["id"] == "ent.ldap.do_login.invalid_password.app_error"
    status, body = login(sim, "cleo", "Pw-cleo-1!", ldap_only="true")
    assert status == 200 and body["auth_service"] == "ldap"
    assert login(sim, "cleo", "Pw-cleo-1!")[0] == 200  # the server decides by auth service
    assert method_counts(sim) == {("ldap", "false", "true"): 1, ("ldap", "false", "false"): 1}


def test_mfa_needs_a_current_totp_code(sim: SimHandle) -> None:
    status, body = login(sim, "dan", "Pw-dan-1!", token="")
    assert status == 401 and body["id"] == "mfa.validate_token.authenticate.app_error"
    status, body = login(sim, "dan", "Pw-dan-1!", token="000000")
    assert status == 401 and body["id"] == "api.user.check_user_mfa.bad_code.app_error"
    status, _ = login(sim, "dan", "wrong-1!", token=pyotp.TOTP(SECRET).now())
    assert status == 401  # the password first
    status, _ = login(sim, "dan", "Pw-dan-1!", token=pyotp.TOTP(SECRET).now())
    assert status == 200
    assert method_counts(sim) == {("username", "true", "false"): 1}


def test_openid_users_cannot_log_in_with_a_password_and_the_state_is_checked(
    sim: SimHandle,
) -> None:
    status, body = login(sim, "eve@corp.example", "Idp-eve-1!")
    assert status == 400 and body["id"] == "api.user.login.use_auth_service.app_error"
    # no code, then a forged state: refused before the IdP is asked anything
    status, _, body = call(f"{sim.url}/signup/openid/complete?state=x")
    assert status == 400 and body["id"] == "api.oauth.missing_code.app_error"
    forged = base64.b64encode(json.dumps({"action": "login", "token": "nope"}).encode()).decode()
    status, _, body = call(f"{sim.url}/signup/openid/complete?code=c&state={forged}",
                           cookie="MMOAUTH=abc")  # fmt: skip
    assert status == 400 and body["id"] == "api.user.authorize_oauth_user.invalid_state.app_error"
    # another service than openid is not configured
    status, _, body = call(f"{sim.url}/oauth/gitlab/login")
    assert status == 501
    # an IdP that does not answer: the server's 500 naming the endpoint, no session
    status, _, body = call(f"{sim.url}/oauth/openid/login")
    assert status == 500 and "openid-configuration" in body["detailed_error"]


def test_bad_openid_flags_are_exit_2_and_the_secret_never_on_argv(tmp_path: Any) -> None:
    out = run_cli("sim", "--port", "0", "--openid-discovery", "http://127.0.0.1:9/x")
    assert out.returncode == 2 and "--openid-client-id" in out.stderr
    out = run_cli("sim", "--port", "0", "--openid-discovery", "http://127.0.0.1:9/x",
                  "--openid-client-id", "mm")  # fmt: skip
    assert out.returncode == 2 and "--openid-secret-file" in out.stderr
    assert len(out.stderr.strip().splitlines()) == 1
    accounts = tmp_path / "a.csv"
    accounts.write_text("login_id,password\n" + "".join(f"u{i},Pw-{i}-xyz!\n" for i in range(5)))
    accounts.chmod(0o600)
    out = run_cli("sim", "--port", "0", "--users", "3", "--accounts", str(accounts))
    assert out.returncode == 2 and "more than --users 3" in out.stderr
    assert "Pw-" not in out.stderr

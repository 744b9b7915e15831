"""The customer's credentials file (issue 15, item 1): read, checked, named by salted hashes.

Bad files are refused by the real `mmload run` with exit 2 and one line naming the file, the
line and the field — never a value from the file; the plan a master sends carries no login id,
password or TOTP secret, and the record names are stable for one salt and differ for another.
"""

from __future__ import annotations

import json
import stat
from pathlib import Path

import pytest

from mmload.config.credentials import read_accounts, record_name
from mmload.config.scenario import RunOptions, Scenario, load_scenario
from mmload.errors import RunFailed, UserError
from mmload.load.plan import Plan
from mmload.load.population import read_population, with_credentials
from tests.conftest import run_cli

SECRET = "JBSWY3DPEHPK3PXPJBSWY3DP"
GOOD = (
    "login_id,password,method,totp_secret\n"
    "ann@corp.example,Pw-ann-1!,,\n"
    "bert,Pw-bert-1!,,\n"
    "cleo,Pw-cleo-1!,ldap,\n"
    f"dan@corp.example,Pw-dan-1!,mfa,{SECRET.lower()}\n"
    "eve@corp.example,Idp-eve-1!,openid,\n"
)


def write(tmp_path: Path, text: str, name: str = "users.csv") -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    path.chmod(0o600)
    return path


def test_a_csv_population_is_read_with_defaults_and_a_private_salt(tmp_path: Path) -> None:
    accounts = read_accounts(str(write(tmp_path, GOOD)))
    methods = [c.method for c in accounts.credentials]
    assert methods == ["email", "username", "ldap", "mfa", "openid"]
    assert accounts.credentials[3].totp_secret == SECRET  # normalised: upper case
    salt = tmp_path / "users.csv.salt"
    assert stat.S_IMODE(salt.stat().st_mode) == 0o600
    again = read_accounts(str(tmp_path / "users.csv"))  # the same salt the next time
    assert again.salt == accounts.salt and again.summary() == accounts.summary()
    s = accounts.summary()
    assert s.count == 5 and s.mfa == 1
    assert s.methods == {"email": 1, "username": 1, "ldap": 1, "mfa": 1, "openid": 1}


def test_jsonl_is_the_same_population(tmp_path: Path) -> None:
    rows = [
        {"login_id": "ann@corp.example", "password": "Pw-ann-1!"},
        {"login_id": "cleo", "password": "Pw-cleo-1!", "method": "ldap", "totp_secret": None},
    ]
    path = write(tmp_path, "\n".join(json.dumps(r) for r in rows) + "\n\n", "users.jsonl")
    accounts = read_accounts(str(path))
    assert [(c.login_id, c.method) for c in accounts.credentials] == [
        ("ann@corp.example", "email"),
        ("cleo", "ldap"),
    ]


def test_record_names_are_salted_hashes_stable_per_salt(tmp_path: Path) -> None:
    path = write(tmp_path, GOOD)
    opts = RunOptions(target="http://127.0.0.1:8065", credentials=str(path))
    scenario = with_credentials(Scenario(name="c", kind="storm", users=5), opts)
    plan = Plan.for_process(scenario, 1.0, 1, 0, "local")
    names = [plan.username(i) for i in range(5)]
    assert all(n.startswith("u-") and len(n) == 18 for n in names) and len(set(names)) == 5
    assert plan.username(5) == names[0]  # indexes wrap around the population
    # what others type to find them (mentions, searches) goes to the target only
    assert [plan.typed_name(i) for i in (0, 1, 2)] == ["ann", "bert", "cleo"]
    salt = scenario.population.accounts.salt
    assert names[0] == record_name(salt, "ANN@corp.example ")  # Mattermost's ids: any case
    other = tmp_path / "other.salt"
    other.write_text("ab" * 32)
    other.chmod(0o600)
    opts2 = RunOptions(target="http://127.0.0.1:8065", credentials=str(path),
                       credentials_salt_file=str(other))  # fmt: skip
    plan2 = Plan.for_process(
        with_credentials(Scenario(name="c", kind="storm"), opts2), 1.0, 1, 0, "l"
    )
    assert plan2.username(0) != names[0]  # another salt, other names


def test_the_plan_message_carries_only_the_summary(tmp_path: Path) -> None:
    path = write(tmp_path, GOOD)
    opts = RunOptions(target="http://127.0.0.1:8065", credentials=str(path))
    scenario = with_credentials(Scenario(name="c", kind="storm", users=5), opts)
    text = json.dumps(Plan.for_process(scenario, 1.0, 2, 0, "w0").to_message())
    for secret in ("ann@corp.example", "bert", "cleo", "Pw-", "Idp-eve", SECRET, SECRET.lower()):
        assert secret not in text
    assert '"accounts_summary"' in text and '"count": 5' in text


BAD = [
    ("login_id,password\n", "users.csv: no users in the file"),
    ("", "users.csv: empty"),
    ("login,password\nx,y\n", "users.csv: line 1: unknown column 'login'"),
    ("password,method\nx,ldap\n", "users.csv: line 1: the header needs login_id and password"),
    ("login_id,password\nann,Secret-9!,extra\n", "users.csv: line 2: 3 fields, the header has 2"),
    ("login_id,password\n,Secret-9!\n", "users.csv: line 2: login_id: empty"),
    ("login_id,password\nann,\n", "users.csv: line 2: password: empty"),
    ("login_id,password,method\nann,Secret-9!,saml\n", "users.csv: line 2: method: must be"),
    ("login_id,password,method\nann,Secret-9!,email\n", "line 2: login_id: method email needs"),
    ("login_id,password,method\nann,Secret-9!,mfa\n", "line 2: totp_secret: method mfa needs"),
    (
        "login_id,password,totp_secret\nann,Secret-9!,NOT-BASE32!\n",
        "line 2: totp_secret: not base32",
    ),
    ("login_id,password,totp_secret\nann,Secret-9!,JBSW\n", "line 2: totp_secret: shorter than"),
    (
        f"login_id,password,method,totp_secret\nann,Secret-9!,openid,{SECRET}\n",
        "not with method openid",
    ),
    ("login_id,password\nann,Secret-9!\nANN,Other-9!\n", "line 3: the same login_id as line 2"),
    ("login_id,password\nann," + "x" * 73 + "\n", "line 2: password: must be at most 72 bytes"),
    ('login_id,password\n"ann,Secret-9!\n', "users.csv: line"),  # an unclosed quote
]


@pytest.mark.parametrize(("text", "expected"), BAD)
def test_a_bad_credentials_file_is_exit_2_with_one_line_and_no_secret(
    tmp_path: Path, text: str, expected: str
) -> None:
    path = write(tmp_path, text)
    out = run_cli("run", "sev0-login-storm", "--target", "http://127.0.0.1:9",
                  "--credentials", str(path), "--out", str(tmp_path / "runs"))  # fmt: skip
    assert out.returncode == 2, out.stdout + out.stderr
    lines = out.stderr.strip().splitlines()
    assert len(lines) == 1 and expected in lines[0], out.stderr
    assert "Traceback" not in out.stderr
    for secret in ("Secret-9!", "Other-9!", "NOT-BASE32", SECRET, "x" * 73):
        assert secret not in out.stdout + out.stderr
    assert not (tmp_path / "runs").exists()


def test_a_credentials_file_others_may_read_is_refused(tmp_path: Path) -> None:
    path = write(tmp_path, GOOD)
    path.chmod(0o644)
    with pytest.raises(
        UserError, match=r"users.csv: must be readable by its owner only: chmod 600"
    ):
        read_accounts(str(path))


def test_a_bad_jsonl_line_and_a_bad_salt_are_refused(tmp_path: Path) -> None:
    path = write(tmp_path, '{"login_id": "ann", "password": "Secret-9!"}\n[1]\n', "u.jsonl")
    with pytest.raises(UserError, match=r"u.jsonl: line 2: not a JSON object"):
        read_accounts(str(path))
    path = write(tmp_path, '{"login_id": "ann", "password": 9}\n', "v.jsonl")
    with pytest.raises(UserError, match=r"v.jsonl: line 1: password: must be a string"):
        read_accounts(str(path))
    good = write(tmp_path, GOOD)
    salt = tmp_path / "open.salt"
    salt.write_text("ab" * 32)
    salt.chmod(0o644)
    with pytest.raises(UserError, match=r"--credentials-salt-file: .*must be 0600 \(it is 644\)"):
        read_accounts(str(good), str(salt))
    salt.write_text("abc")
    salt.chmod(0o600)
    with pytest.raises(UserError, match="16 to 64 bytes as hex"):
        read_accounts(str(good), str(salt))


def test_a_remote_workers_population_file_carries_the_credentials_and_matches_the_master(
    tmp_path: Path,
) -> None:
    """`mmload population` writes what a `mmload worker` agent reads: the credentials in a
    0600 file whose summary matches the master's plan (the same file and salt), and only then."""
    path = write(tmp_path, GOOD)
    out_file = tmp_path / "agent" / "population.json"
    out_file.parent.mkdir()
    out = run_cli(
        "population", "sev0-login-storm", "--credentials", str(path), "--out", str(out_file)
    )
    assert out.returncode == 0, out.stderr
    assert "5 users" in out.stdout
    for secret in ("ann@corp.example", "Pw-", SECRET):
        assert secret not in out.stdout + out.stderr
    assert stat.S_IMODE(out_file.stat().st_mode) == 0o600
    opts = RunOptions(target="http://127.0.0.1:8065", credentials=str(path))
    master = with_credentials(load_scenario("sev0-login-storm")[0], opts)
    received = Plan.from_message(Plan.for_process(master, 1.0, 2, 1, "w1").to_message())
    mine = received.with_population(read_population(out_file), str(out_file))
    assert mine.credentials(3) == ("dan@corp.example", "Pw-dan-1!")
    assert mine.username(3) == Plan.for_process(master, 1.0, 1, 0, "l").username(3)
    other = tmp_path / "other.salt"
    other.write_text("cd" * 32)
    other.chmod(0o600)
    out = run_cli("population", "sev0-login-storm", "--credentials", str(path),
                  "--credentials-salt-file", str(other), "--out", str(out_file))  # fmt: skip
    assert out.returncode == 0, out.stderr
    with pytest.raises(RunFailed, match="differs from the master's scenario"):
        received.with_population(read_population(out_file), str(out_file))
    out = run_cli("population", "sev0-login-storm", "--credentials", str(tmp_path / "missing.csv"),
                  "--out", "x")  # fmt: skip
    assert out.returncode == 2 and "missing.csv: cannot read" in out.stderr


def test_the_idp_login_form_is_found_as_a_browser_fills_it() -> None:
    """The first form with a password field (Keycloak's markup: entities in the action, hidden
    fields, a remember-me box and a second form before it), resolved against the page URL."""
    from mmload.load.idp_form import LoginForm

    page = (
        '<form action="/search"><input type="text" name="q"></form>'
        '<form id="kc-form-login" action="/realms/r/login-actions/authenticate?session_code=a'
        '&amp;tab_id=b" method="post"><input type="hidden" name="credentialId" value="">'
        '<input tabindex="1" id="username" name="username" type="text" autocomplete="off">'
        '<input id="password" name="password" type="password"><input type="checkbox" '
        'name="rememberMe"><input type="submit" name="login" value="Sign In"></form>'
    )
    form = LoginForm.parse(page, "https://idp.example/realms/r/protocol/openid-connect/auth?x=1")
    assert form.ok and form.method == "POST"
    assert form.action == (
        "https://idp.example/realms/r/login-actions/authenticate?session_code=a&tab_id=b"
    )
    assert form.filled("ann", "pw") == {"credentialId": "", "username": "ann", "password": "pw"}
    bare = LoginForm.parse(
        '<form><input name="u" type="email"><input name="p" type="password">', "http://i/l"
    )
    assert bare.ok and bare.method == "GET" and bare.action == "http://i/l"
    assert not LoginForm.parse("<p>Invalid request</p>", "http://i/l").ok

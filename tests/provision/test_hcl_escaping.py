"""Hostile values cannot change the Terraform mmload renders.

Every value that reaches HCL passes the renderer's one escaping step (``hcl_finalize``). A corpus
of hostile strings goes into every free-text field of deployment.yaml that reaches a template;
the rendered files, parsed with python-hcl2 (and by the real ``terraform fmt``), must have
exactly the blocks, attributes and security-group rules of a benign render, and each hostile
value must come back intact as the string it was.
"""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path
from typing import Any

import hcl2
import pytest
from jinja2 import Environment

from mmload.config.deployment import Deployment
from mmload.errors import UserError
from mmload.provision.render import environment, hcl_escape, render
from tests.conftest import run_cli
from tests.provision.conftest import OPERATOR, write_deployment

META = (
    '{"created_at": "2026-01-01T00:00:00Z", "ttl_hours": 8, "expires_at": "2026-01-01T08:00:00Z"}'
)
EVIL_RULE = (
    '"\n}\nresource "aws_security_group_rule" "evil" {\n  type              = "ingress"\n'
    '  protocol          = "tcp"\n  from_port         = 5432\n  to_port           = 5432\n'
    '  cidr_blocks       = ["0.0.0.0/0"]\n  security_group_id = aws_security_group.db.id\n}\n#'
)
HOSTILE = [
    "16.6" + EVIL_RULE,
    'x" cidr_blocks = ["0.0.0.0/0"] #',
    'x"\n  cidr_blocks = ["0.0.0.0/0"]\n  #',
    '${file("/etc/passwd")}',
    "%{ for x in [1] }${x}%{ endfor }",
    "ends with a dollar $",
    "back\\slash\\",
    '\\"\\n',
    "cr\r\nlf and tab\t",
    "ctl \x00\x07\x1b[31m\x7f\x85",
    "separators \u2028\u2029 snow \u2603 astral \U0001f600",
    "}]]}}\n\n\nterraform {\n}",
    "<<EOT\nheredoc\nEOT",
    "$${literal}",
]
# The fields that accept free text and reach a template (the rest are typed patterns).
SUBNETS = {"public": "existing_public_subnet_ids", "private": "existing_private_subnet_ids"}


def deployment(value: str, key_file: Path, workdir: Path) -> Deployment:
    """A deployment with ``value`` in every free-text field that reaches the templates."""
    return Deployment.model_validate(
        {
            "name": "mm-hostile",
            "tier": 2000,
            "operator_cidrs": [OPERATOR],
            "owner": "ci",
            "tags": {"team": value},
            "working_dir": str(workdir),
            "database": {"engine_version": value},
            "network": {
                "existing_vpc_id": "vpc-0abc",
                SUBNETS["public"]: [value, value + "-b"],
                SUBNETS["private"]: [value + "-c", value + "-d"],
            },
            "ssh": {"user": value, "public_key_file": str(key_file)},
            "aws": {
                "profile": value,
                "endpoint_url": "http://127.0.0.1:5000/" + "".join(value.split()),
            },
            "terraform": {
                "backend": "s3",
                "state_bucket": value,
                "state_key": value,
                "lock_table": value,
            },
        }
    )


def render_with(value: str, root: Path) -> dict[str, Any]:
    """Render ``value`` everywhere (and the public key's content); the parsed HCL by file."""
    folder = root / "".join(c if c.isalnum() else "_" for c in value)[:40]
    keys = folder / ("keys " + value.replace("/", "_").replace("\x00", "_"))[:60]
    keys.mkdir(parents=True)
    key_file = keys / "id.pub"
    key_file.write_text("ssh-ed25519 AAAAC3Nza" + printable(value) + "\n", encoding="utf-8")
    work = folder / "w"
    work.mkdir()
    (work / "mmload-meta.json").write_text(META)
    rendered = render(deployment(value, key_file, folder), work)
    return {p.name: hcl2.loads(p.read_text(encoding="utf-8")) for p in rendered.files}


def printable(value: str) -> str:
    """What a public key line may hold (a key of several lines or control characters is refused)."""
    return "".join(c for c in value if c.isprintable())


def shape(node: Any) -> Any:
    """The tree with every string leaf replaced: block types, labels, keys and list lengths stay."""
    if isinstance(node, dict):
        return {k: shape(v) for k, v in node.items()}
    if isinstance(node, list):
        return [shape(v) for v in node]
    return "<str>" if isinstance(node, str) else node


def unquote(raw: str) -> str:
    """An HCL quoted string as python-hcl2 keeps it (raw) → its value. mmload writes JSON's
    escapes (``\\"``, ``\\\\``, ``\\n``, ``\\r``, ``\\t``, ``\\uXXXX``) and ``\\UXXXXXXXX``."""
    assert raw.startswith('"') and raw.endswith('"'), raw
    body = raw[1:-1]
    assert "${" not in body and "%{" not in body, f"template sequence in {raw!r}"
    out, i = [], 0
    while i < len(body):
        if body[i] == "\\" and body[i + 1] == "U":
            out.append(chr(int(body[i + 2 : i + 10], 16)))
            i += 10
        elif body[i] == "\\":
            end = i + (6 if body[i + 1] == "u" else 2)
            out.append(json.loads(f'"{body[i:end]}"'))
            i = end
        else:
            out.append(body[i])
            i += 1
    return "".join(out)


def blocks(parsed: dict[str, Any], kind: str) -> dict[str, dict[str, Any]]:
    """``resource``/``data`` blocks as {"type.name": body} over every file."""
    found: dict[str, dict[str, Any]] = {}
    for tree in parsed.values():
        for entry in tree.get(kind, []):
            for rtype, named in entry.items():
                for name, body in named.items():
                    found[f"{rtype.strip(chr(34))}.{name.strip(chr(34))}"] = body
    return found


def rules(parsed: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """Every security-group rule, by name."""
    return {
        k: v for k, v in blocks(parsed, "resource").items() if k.startswith("aws_security_group_")
    }


@pytest.fixture(scope="module")
def benign(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    return render_with("benign-value", tmp_path_factory.mktemp("benign"))


@pytest.mark.parametrize("value", HOSTILE, ids=range(len(HOSTILE)))
def test_hostile_values_render_exactly_the_intended_terraform(
    value: str, benign: dict[str, Any], tmp_path: Path
) -> None:
    parsed = render_with(value, tmp_path)
    assert shape(parsed) == shape(benign)  # no block, attribute or list item added or removed
    assert rules(parsed) == rules(benign)  # the same rules, value for value
    for name, rule in rules(parsed).items():
        if rule.get("type") == '"ingress"':
            assert '"0.0.0.0/0"' not in rule.get("cidr_blocks", []), name
    prov = parsed["providers.tf"]
    backend = prov["terraform"][0]["backend"][0]['"s3"']
    aws = prov["provider"][0]['"aws"']
    for got in (backend["bucket"], backend["key"], backend["dynamodb_table"], backend["profile"]):
        assert unquote(got) == value
    assert unquote(aws["profile"]) == value
    assert unquote(aws["default_tags"][0]["tags"]['"team"']) == value
    db = blocks(parsed, "resource")["aws_rds_cluster.main"]
    assert unquote(db["engine_version"]) == value
    key = blocks(parsed, "resource")["aws_key_pair.main"]
    assert unquote(key["public_key"]) == ("ssh-ed25519 AAAAC3Nza" + printable(value)).strip()
    out = parsed["outputs.tf"]["output"][0]['"mmload"']["value"]
    assert unquote(out["ssh_user"]) == value
    assert value.replace("/", "_").replace("\x00", "_")[:20] in unquote(out["ssh_private_key_path"])
    subnets = parsed["network.tf"]["locals"][0]["public_subnet_ids"]
    assert [unquote(s) for s in subnets] == [value, value + "-b"]


def test_no_port_is_opened_for_the_locust_web_ui(benign: dict[str, Any]) -> None:
    """Workers run headless under the coordinator: nothing listens on 8089, nothing opens it."""
    for name, rule in rules(benign).items():
        if rule.get("type") == '"ingress"':
            assert not rule["from_port"] <= 8089 <= rule["to_port"], name


@pytest.mark.parametrize("tail", ["\nssh-rsa AAAA second-line", " \x1b[2J", " a\u2028b"])
def test_a_public_key_of_several_lines_or_control_characters_is_refused(
    tail: str, tmp_path: Path
) -> None:
    key_file = tmp_path / "id.pub"
    key_file.write_text("ssh-ed25519 AAAAC3Nza" + tail + "\n", encoding="utf-8")
    dep = deployment("v", key_file, tmp_path)
    with pytest.raises(UserError) as err:
        render(dep, tmp_path / "w")
    assert err.value.field == "ssh.public_key_file"


def test_terraform_itself_parses_the_hostile_renders(tmp_path: Path) -> None:
    """The real terraform parser agrees (fmt parses every file; no provider needed)."""
    if shutil.which("terraform") is None:
        pytest.fail("terraform CLI not on PATH")
    for value in HOSTILE:
        render_with(value, tmp_path)
    proc = subprocess.run(
        ["terraform", "fmt", "-check", "-recursive", str(tmp_path)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_every_template_value_is_escaped_unless_marked() -> None:
    """The environment escapes what any template writes, even a variable added tomorrow."""
    env: Environment = environment()
    tpl = env.from_string('x = "{{ v }}"\n')
    assert tpl.render(v='a"\n}') == 'x = "a\\"\\n}"\n'
    assert tpl.render(v="${x}%{y}") == 'x = "\\u0024{x}\\u0025{y}"\n'
    assert env.from_string("n = {{ n }}").render(n=3) == "n = 3"
    with pytest.raises(TypeError):
        env.from_string("{{ v }}").render(v=["a"])
    with pytest.raises(TypeError):
        env.from_string("{{ v }}").render(v=True)
    assert hcl_escape("plain-1.2_x") == "plain-1.2_x"
    assert env.from_string("{{ v | hcl_list }}").render(v=['a"', "${b}"]) == (
        '["a\\"", "\\u0024{b}"]'
    )
    with pytest.raises(TypeError, match="hcl_list"):
        env.from_string('{{ v | join(", ") }}').render(v=["a"])


@pytest.mark.parametrize(
    ("cidrs", "ok"),
    [
        (["0.0.0.0/1", "128.0.0.0/1"], False),
        (["8.8.0.0/15"], False),
        (["8.8.0.0/16", "8.9.0.0/32"], False),  # together more than a /16
        (["8.8.0.0/16", "8.8.1.0/24"], True),  # overlaps count once
        (["8.8.0.0/16"], True),
        (["10.0.0.0/8", "172.16.0.0/12"], True),  # private space is not public
        ([OPERATOR, "198.51.100.0/24"], True),
    ],
)
def test_operator_cidrs_may_open_at_most_a_slash_16_of_public_space(
    cidrs: list[str], ok: bool, tmp_path: Path
) -> None:
    path = write_deployment(tmp_path / "d.yaml", name="mm-cidr", tier=2000)
    text = path.read_text().replace(f"- {OPERATOR}", "\n".join(f"- {c}" for c in cidrs))
    path.write_text(text)
    from mmload.config.loader import load_model

    if ok:
        load_model(Deployment, path)
        return
    with pytest.raises(UserError) as err:
        load_model(Deployment, path)
    assert err.value.field == "operator_cidrs"
    assert "more than a /16" in err.value.message
    path.write_text("allow_wide_operator_cidrs: true\n" + text)
    assert load_model(Deployment, path).operator_cidrs == cidrs


def test_wide_operator_cidrs_exit_2_in_one_line(tmp_path: Path) -> None:
    path = tmp_path / "d.yaml"
    path.write_text(
        "name: mm-cidr\ntier: 2000\noperator_cidrs: [0.0.0.0/1, 128.0.0.0/1]\n", encoding="utf-8"
    )
    proc = run_cli("infra", "render", "-c", str(path), cwd=tmp_path)
    assert proc.returncode == 2
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and "operator_cidrs" in lines[0] and "/16" in lines[0], proc.stderr

"""A customer's users as the population: the credentials file, its salt, and what may be told.

The file (``mmload run --credentials F``) is CSV with a header — ``login_id,password`` and
optionally ``method`` and ``totp_secret``, in any order — or JSONL (``.jsonl``/``.ndjson``/
``.json``: one object a line with the same keys). ``method`` is ``email``, ``username``, ``ldap``,
``mfa`` or ``openid`` (default: ``email`` when the login id has an ``@``, else ``username``); a
``totp_secret`` (base32, as Mattermost shows it) turns MFA on for any method but ``openid``.

What leaves this module: the credentials themselves only into the worker's 0600 population
file; in the plan and the run record only :class:`AccountsSummary` (counts per method, the salt's
id and a keyed digest of the file) and each user's **record name** ``u-<16 hex>``, an HMAC of
its login id under the salt. The salt is 32 random bytes in ``<file>.salt`` (0600, made on first
use; ``--credentials-salt-file`` to give another): the same file and salt give the same record
names, so two runs of one population can be compared user by user. A bad file is a
:class:`UserError` naming the file, the line and the field — never a value from it.
"""

from __future__ import annotations

import base64
import binascii
import csv
import hashlib
import hmac
import io
import json
import os
import secrets
import stat
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Literal

from pydantic import Field

from mmload.config.base import StrictModel
from mmload.config.bounds import MAX_USERS
from mmload.errors import UserError

Method = Literal["email", "username", "ldap", "mfa", "openid"]
METHODS: tuple[str, ...] = ("email", "username", "ldap", "mfa", "openid")
COLUMNS = ("login_id", "password", "method", "totp_secret")
MAX_LOGIN_ID = 128  # Mattermost: emails up to 128, usernames up to 64
MAX_PASSWORD_BYTES = 72  # Mattermost's cap (bcrypt's, kept for PBKDF2)
MAX_IDP_PASSWORD = 1024  # an IdP's own rules; only a sanity bound here
MIN_TOTP_CHARS = 16  # 80 bits; Mattermost generates 32 base32 characters (160 bits)
MAX_FILE_BYTES = 512 * 1024 * 1024
SALT_BYTES = 32
JSONL_SUFFIXES = (".jsonl", ".ndjson", ".json")


class Credential(StrictModel):
    """One user of the customer's population (never repr'd: it holds the password)."""

    login_id: str = Field(repr=False)
    password: str = Field(repr=False)
    method: Method = "username"
    totp_secret: str | None = Field(None, repr=False)

    @property
    def mfa(self) -> bool:
        """Whether the login needs a TOTP code."""
        return bool(self.totp_secret)


class AccountsSummary(StrictModel):
    """What the plan and the run record may say about a credentials population."""

    count: int = Field(ge=1, le=MAX_USERS)
    methods: dict[str, int] = Field(default_factory=dict, description="users per method")
    mfa: int = Field(0, ge=0, description="users with a TOTP secret")
    salt_id: str = Field(description="sha256 of the salt, 12 hex: the same salt, the same names")
    digest: str = Field(description="HMAC of the whole population under the salt, 16 hex")


class Accounts(StrictModel):
    """The credentials and the salt of their record names: only in 0600 files."""

    credentials: list[Credential] = Field(repr=False, min_length=1, max_length=MAX_USERS)
    salt: str = Field(repr=False, pattern=r"^[0-9a-f]{32,128}$")

    def summary(self) -> AccountsSummary:
        """Counts per method, the salt's id and the population's digest."""
        methods = Counter(c.method for c in self.credentials)
        return AccountsSummary(
            count=len(self.credentials),
            methods={m: methods[m] for m in METHODS if methods[m]},
            mfa=sum(1 for c in self.credentials if c.mfa),
            salt_id=salt_id(self.salt),
            digest=population_digest(self.salt, self.credentials),
        )


def record_name(salt: str, login_id: str) -> str:
    """The name a user has in the run record: ``u-`` + 16 hex of HMAC-SHA256(salt, login id)
    (trimmed, lowercased: Mattermost's login ids are case-insensitive)."""
    key = bytes.fromhex(salt)
    mac = hmac.new(key, login_id.strip().lower().encode(), hashlib.sha256).hexdigest()
    return f"u-{mac[:16]}"


def salt_id(salt: str) -> str:
    """A public id of the salt (two runs with the same id used the same salt)."""
    return hashlib.sha256(b"mmload-salt-id:" + bytes.fromhex(salt)).hexdigest()[:12]


def population_digest(salt: str, credentials: list[Credential]) -> str:
    """A keyed digest of the population (master and workers must hold the same one)."""
    mac = hmac.new(bytes.fromhex(salt), digestmod=hashlib.sha256)
    for c in credentials:
        line = json.dumps([c.login_id, c.password, c.method, c.totp_secret or ""])
        mac.update(line.encode() + b"\n")
    return mac.hexdigest()[:16]


# -- reading the file ---------------------------------------------------------------------------
def read_accounts(path: str, salt_file: str | None = None) -> Accounts:
    """The credentials file at ``path`` and its salt (``salt_file``, else ``<path>.salt``,
    made on first use); UserError (exit 2, one line) naming file, line and field."""
    file = Path(path).expanduser()
    credentials = read_credentials(file)
    salt = read_salt(Path(salt_file).expanduser() if salt_file else salt_path(file), salt_file)
    return Accounts(credentials=credentials, salt=salt)


def salt_path(credentials_file: Path) -> Path:
    """Where the salt of a credentials file lives by default."""
    return credentials_file.with_name(credentials_file.name + ".salt")


def read_salt(path: Path, given: str | None) -> str:
    """The salt in ``path`` (hex, at least 16 bytes); a missing default one is made (0600)."""
    source, field = ("command line", "--credentials-salt-file") if given else (str(path), None)
    if not path.exists() and not given:
        try:
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(fd, "w", encoding="ascii") as f:
                f.write(secrets.token_hex(SALT_BYTES) + "\n")
        except OSError as exc:
            raise UserError(
                f"cannot make the salt {path} ({exc.strerror}): give --credentials-salt-file",
                source=source,
            ) from None
    try:
        mode = path.stat().st_mode
        text = path.read_text(encoding="ascii").strip()
    except (OSError, UnicodeDecodeError) as exc:
        why = getattr(exc, "strerror", None) or "not readable as text"
        raise UserError(f"cannot read the salt {path}: {why}", source=source, field=field) from None
    if mode & (stat.S_IRWXG | stat.S_IRWXO):
        raise UserError(
            f"the salt file {path} must be 0600 (it is {mode & 0o777:o})",
            source=source,
            field=field,
        )
    try:
        raw = bytes.fromhex(text)
    except ValueError:
        raw = b""
    if len(raw) < 16 or len(raw) > 64:
        raise UserError(
            f"the salt file {path} must hold 16 to 64 bytes as hex", source=source, field=field
        )
    return raw.hex()


def read_credentials(path: Path) -> list[Credential]:
    """Every credential of the file, checked (no duplicate login ids)."""
    src = str(path)
    try:
        info = path.stat()
        if info.st_mode & (stat.S_IRWXG | stat.S_IRWXO):
            mode = info.st_mode & 0o777
            raise UserError(
                f"must be readable by its owner only: chmod 600 (it is {mode:o})", source=src
            )
        if info.st_size > MAX_FILE_BYTES:
            raise UserError(f"larger than {MAX_FILE_BYTES >> 20} MiB", source=src)
        text = path.read_text(encoding="utf-8-sig")
    except OSError as exc:
        raise UserError(f"cannot read: {exc.strerror}", source=src) from None
    except UnicodeDecodeError:
        raise UserError("not UTF-8 text", source=src) from None
    rows = _jsonl_rows(text, src) if path.suffix.lower() in JSONL_SUFFIXES else _csv_rows(text, src)
    seen: dict[str, int] = {}
    out: list[Credential] = []
    for line, row in rows:
        cred = credential(row, src, line)
        key = cred.login_id.lower()
        if key in seen:
            raise UserError(
                f"the same login_id as line {seen[key]}", source=src, field=f"line {line}"
            )
        seen[key] = line
        out.append(cred)
        if len(out) > MAX_USERS:
            raise UserError(f"more than {MAX_USERS:,} users", source=src)
    if not out:
        raise UserError("no users in the file", source=src)
    return out


def _csv_rows(text: str, src: str) -> list[tuple[int, dict[str, str]]]:
    reader = csv.reader(io.StringIO(text, newline=""), strict=True)
    try:
        header = next(reader, None)
        if header is None:
            raise UserError(
                "empty file (expected a header: login_id,password[,method][,totp_secret])",
                source=src,
            )
        names = [h.strip().lower() for h in header]
        for name in names:
            if name not in COLUMNS:
                raise UserError(
                    f"unknown column {name[:40]!r} (login_id, password, method, totp_secret)",
                    source=src,
                    field="line 1",
                )
        if len(set(names)) != len(names) or not {"login_id", "password"} <= set(names):
            raise UserError(
                "the header needs login_id and password, each column once",
                source=src,
                field="line 1",
            )
        rows = []
        for values in reader:
            line = reader.line_num
            if not values or all(not v.strip() for v in values):
                continue
            if len(values) != len(names):
                raise UserError(
                    f"{len(values)} fields, the header has {len(names)}",
                    source=src,
                    field=f"line {line}",
                )
            rows.append((line, dict(zip(names, values, strict=True))))
        return rows
    except csv.Error:
        raise UserError("not valid CSV", source=src, field=f"line {reader.line_num}") from None


def _jsonl_rows(text: str, src: str) -> list[tuple[int, dict[str, str]]]:
    rows = []
    for n, raw in enumerate(text.splitlines(), start=1):
        if not raw.strip():
            continue
        try:
            obj = json.loads(raw)
        except ValueError:
            raise UserError("not a JSON object", source=src, field=f"line {n}") from None
        if not isinstance(obj, dict):
            raise UserError("not a JSON object", source=src, field=f"line {n}")
        for key, value in obj.items():
            if key not in COLUMNS:
                raise UserError(
                    f"unknown key {str(key)[:40]!r} (login_id, password, method, totp_secret)",
                    source=src,
                    field=f"line {n}",
                )
            if value is not None and not isinstance(value, str):
                raise UserError("must be a string", source=src, field=f"line {n}: {key}")
        rows.append((n, {k: v for k, v in obj.items() if v is not None}))
    return rows


def credential(row: dict[str, str], src: str, line: int) -> Credential:
    """One row checked; errors name the line and field, never the value."""

    def bad(field: str, why: str) -> UserError:
        return UserError(why, source=src, field=f"line {line}: {field}")

    login_id = row.get("login_id", "").strip()
    if not login_id:
        raise bad("login_id", "empty")
    if len(login_id) > MAX_LOGIN_ID or any(ch.isspace() or ord(ch) < 32 for ch in login_id):
        raise bad("login_id", f"must be 1 to {MAX_LOGIN_ID} characters, no spaces or controls")
    default = "email" if "@" in login_id else "username"
    method = (row.get("method") or "").strip().lower() or default
    if method not in METHODS:
        raise bad("method", "must be email, username, ldap, mfa or openid")
    if method == "email" and "@" not in login_id:
        raise bad("login_id", "method email needs an email address")
    password = row.get("password", "")
    if not password:
        raise bad("password", "empty")
    limit = MAX_IDP_PASSWORD if method == "openid" else MAX_PASSWORD_BYTES
    if len(password.encode()) > limit or "\x00" in password:
        raise bad("password", f"must be at most {limit} bytes, no NUL (Mattermost's limit)")
    secret = totp_secret(row.get("totp_secret") or "", method, bad)
    return Credential(login_id=login_id, password=password, method=method, totp_secret=secret)


def totp_secret(raw: str, method: str, bad: Callable[[str, str], UserError]) -> str | None:
    """A base32 TOTP secret (spaces and case ignored), required by ``mfa``, refused by
    ``openid`` (the IdP keeps its own second factor)."""
    secret = "".join(raw.split()).upper().rstrip("=")
    if not secret:
        if method == "mfa":
            raise bad("totp_secret", "method mfa needs a totp_secret")
        return None
    if method == "openid":
        raise bad("totp_secret", "not with method openid (the IdP asks for its own)")
    try:
        base64.b32decode(secret + "=" * (-len(secret) % 8))
    except (binascii.Error, ValueError):
        raise bad("totp_secret", "not base32 (A-Z, 2-7)") from None
    if len(secret) < MIN_TOTP_CHARS:
        raise bad("totp_secret", f"shorter than {MIN_TOTP_CHARS} base32 characters")
    return secret

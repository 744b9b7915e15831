"""Load YAML files into pydantic models and turn validation errors into one-line UserErrors."""

from __future__ import annotations

import json
import os
import stat
from pathlib import Path
from typing import Any, TypeVar

import yaml
from pydantic import BaseModel, ValidationError
from yaml.composer import ComposerError
from yaml.constructor import ConstructorError

from mmload.errors import UserError

M = TypeVar("M", bound=BaseModel)


def field_path(loc: tuple[Any, ...]) -> str:
    """Render a pydantic error location as ``a.b[2].c``."""
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += f".{part}" if out else str(part)
    return out or "(top level)"


def first_error(err: ValidationError, source: str) -> UserError:
    """The first validation error of ``err`` as a UserError naming file and field."""
    e = err.errors(include_url=False)[0]
    msg = e["msg"].removeprefix("Value error, ")
    if e["type"] == "extra_forbidden":
        msg = "unknown field (check the spelling)"
    return UserError(msg, source=source, field=field_path(tuple(e["loc"])))


def validate_model(model: type[M], data: Any, source: str) -> M:
    """Validate ``data`` as ``model``; on error raise a UserError naming ``source``."""
    try:
        return model.model_validate(data)
    except ValidationError as err:
        raise first_error(err, source) from None


MAX_CONFIG_BYTES = 8 << 20  # a scenario or deployment file is a few KiB
MAX_DEPTH = 64  # nesting levels of a YAML document


def read_bytes(path: str | Path, limit: int) -> bytes:
    """A regular file's bytes, refused before reading when it is not one or is over ``limit``.

    Directories, FIFOs, devices and sockets are refused without blocking on them (the file is
    opened non-blocking and checked with ``fstat``); a file that grows past ``limit`` while
    it is read is refused too, so an endless file never fills memory.
    """
    p = Path(path)
    try:
        fd = os.open(p, os.O_RDONLY | os.O_NONBLOCK | os.O_NOCTTY | os.O_CLOEXEC)
    except FileNotFoundError:
        raise UserError("file not found", source=str(p)) from None
    except IsADirectoryError:
        raise UserError("is a directory, not a file", source=str(p)) from None
    except OSError as exc:
        raise UserError(f"cannot read: {exc.strerror}", source=str(p)) from None
    mode = os.fstat(fd).st_mode
    if not stat.S_ISREG(mode):
        os.close(fd)
        if stat.S_ISDIR(mode):
            raise UserError("is a directory, not a file", source=str(p))
        raise UserError("not a regular file (a FIFO, device or socket)", source=str(p))
    if os.fstat(fd).st_size > limit:
        os.close(fd)
        raise UserError(f"too large: over {limit:,} bytes", source=str(p))
    with os.fdopen(fd, "rb") as fh:
        try:
            data = fh.read(limit + 1)
        except OSError as exc:
            raise UserError(f"cannot read: {exc.strerror}", source=str(p)) from None
    if len(data) > limit:
        raise UserError(f"too large: over {limit:,} bytes", source=str(p))
    return data


_UTF16_32 = (b"\xff\xfe", b"\xfe\xff", b"\x00\x00\xfe\xff")


def decode_text(raw: bytes, source: str) -> str:
    """UTF-8 text (a UTF-8 byte-order mark is dropped); UTF-16/32 and other bytes are refused."""
    if raw.startswith(_UTF16_32) or (len(raw) >= 2 and (raw[0] == 0 or raw[1] == 0)):
        raise UserError("not UTF-8 text (UTF-16 or UTF-32: save it as UTF-8)", source=source)
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise UserError(
            f"not UTF-8 text (byte 0x{raw[exc.start]:02x} at offset {exc.start})", source=source
        ) from None
    if "\x00" in text:
        raise UserError("not UTF-8 text (contains NUL bytes)", source=source)
    return text.removeprefix("\ufeff")


def read_text(path: str | Path, limit: int = MAX_CONFIG_BYTES) -> str:
    """:func:`read_bytes` decoded by :func:`decode_text`."""
    return decode_text(read_bytes(path, limit), str(path))


MAX_TOKEN_BYTES = 4096


def read_token_file(path: str | Path, flag: str) -> str:
    """A secret token: the first line of a small text file, never echoed (errors name the
    file and ``flag``, not its content). Empty or not one printable word: refused."""
    try:
        text = read_text(path, MAX_TOKEN_BYTES)
    except UserError as err:
        raise UserError(err.message, source=str(path), field=flag) from None
    token = text.strip()
    if not token:
        raise UserError("is empty: it must hold the token", source=str(path), field=flag)
    if any(c.isspace() or not c.isprintable() for c in token):
        raise UserError(
            "must hold one token (one word, no spaces or line breaks)", source=str(path), field=flag
        )
    return token


class StrictYamlLoader(yaml.SafeLoader):
    """PyYAML's safe loader that refuses duplicate keys, aliases and deep nesting.

    "Last key wins" hides typos; an alias (``*name``) lets a few lines expand to billions of
    values; nesting deeper than :data:`MAX_DEPTH` exhausts the recursion of the composer.
    """

    _depth = 0

    def compose_node(self, parent: Any, index: Any) -> Any:
        if self.check_event(yaml.AliasEvent):
            mark = self.peek_event().start_mark
            raise ComposerError(None, None, "aliases (*name) are not supported", mark)
        self._depth += 1
        try:
            if self._depth > MAX_DEPTH:
                mark = self.peek_event().start_mark
                raise ComposerError(None, None, f"nested deeper than {MAX_DEPTH} levels", mark)
            return super().compose_node(parent, index)
        finally:
            self._depth -= 1

    def construct_mapping(self, node: Any, deep: bool = False) -> Any:
        if isinstance(node, yaml.MappingNode):
            seen: set[Any] = set()
            for key_node, _ in node.value:
                if isinstance(key_node, yaml.ScalarNode):
                    key = self.construct_object(key_node)
                    if key in seen:
                        raise ConstructorError(
                            None, None, f"duplicate key {key!r}", key_node.start_mark
                        )
                    seen.add(key)
        return super().construct_mapping(node, deep)


def parse_yaml(text: str, source: str) -> Any:
    """Parse YAML text with :class:`StrictYamlLoader`; errors name the line and column."""
    try:
        data = yaml.load(text, Loader=StrictYamlLoader)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"line {mark.line + 1}, column {mark.column + 1}" if mark else "(parse)"
        problem = getattr(exc, "problem", None) or "invalid YAML"
        raise UserError(f"invalid YAML: {problem}", source=source, field=where) from None
    except RecursionError:
        raise UserError("invalid YAML: nested too deeply", source=source) from None
    return {} if data is None else data


def read_yaml(path: str | Path) -> Any:
    """Parse a YAML file (bounded, UTF-8, strict keys); every problem is a UserError."""
    return parse_yaml(read_text(path), str(path))


def parse_json(text: str, source: str) -> Any:
    """Decode JSON; invalid or too deeply nested JSON is a UserError naming ``source``."""
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise UserError(f"invalid JSON: {exc.msg} (line {exc.lineno})", source=source) from None
    except RecursionError:
        raise UserError("invalid JSON: nested too deeply", source=source) from None


def load_model(model: type[M], path: str | Path) -> M:
    """Read ``path`` as YAML and validate it as ``model``."""
    data = read_yaml(path)
    if not isinstance(data, dict):
        raise UserError("expected a mapping at the top level", source=str(path))
    return validate_model(model, data, str(path))

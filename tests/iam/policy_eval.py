"""A small IAM policy evaluator for the tests: identity policies, one request at a time.

It implements what mmload's policies use, as AWS documents it ("Policy evaluation logic",
"Condition operators", "Policy variables"): an explicit Deny wins, else an Allow is needed;
Action/NotAction with ``*``/``?`` wildcards (case-insensitive); Resource/NotResource with
wildcards and ``${...}`` policy variables (a variable whose key is missing makes its pattern
match nothing); Conditions with String*, Arn*, Bool and Null operators, the ``IfExists`` suffix
and the ``ForAllValues:``/``ForAnyValue:`` set operators; condition key names case-insensitive.
Negated operators are true when the key is missing (as in AWS). Anything else raises, so a
policy using an operator this evaluator does not know fails loudly instead of passing.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any

ContextValue = str | list[str]
VARIABLE = re.compile(r"\$\{([^}]+)\}")


@dataclass(frozen=True)
class Request:
    """One authorization: an IAM action on one resource ARN (or ``*``) with its context keys."""

    action: str
    resource: str
    context: dict[str, ContextValue] = field(default_factory=dict)

    def key(self, name: str) -> ContextValue | None:
        lowered = name.lower()
        for k, v in self.context.items():
            if k.lower() == lowered:
                return v
        return None


@dataclass(frozen=True)
class Decision:
    """``allowed`` and the statements that decided it (Sids, or indexes without one)."""

    allowed: bool
    reason: str
    statements: tuple[str, ...] = ()


@lru_cache(maxsize=4096)
def _glob(pattern: str, ignore_case: bool) -> re.Pattern[str]:
    parts = (".*" if c == "*" else "." if c == "?" else re.escape(c) for c in pattern)
    return re.compile("".join(parts), re.DOTALL | (re.IGNORECASE if ignore_case else 0))


def glob_match(pattern: str, value: str, ignore_case: bool = False) -> bool:
    """IAM wildcard match: ``*`` any run of characters, ``?`` one character."""
    return _glob(pattern, ignore_case).fullmatch(value) is not None


def _as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


def _substitute(pattern: str, request: Request) -> str | None:
    """``pattern`` with its policy variables filled in, or None when one has no value."""
    missing = False

    def fill(m: re.Match[str]) -> str:
        nonlocal missing
        name = m.group(1)
        if name in ("*", "?", "$"):
            return name
        value = request.key(name)
        if not isinstance(value, str):
            missing = True
            return ""
        return value

    out = VARIABLE.sub(fill, pattern)
    return None if missing else out


def _action_matches(statement: dict, action: str) -> bool:
    if "Action" in statement:
        return any(glob_match(p, action, True) for p in _as_list(statement["Action"]))
    if "NotAction" in statement:
        return not any(glob_match(p, action, True) for p in _as_list(statement["NotAction"]))
    raise ValueError(f"statement without Action/NotAction: {statement}")


def _resource_matches(statement: dict, request: Request) -> bool:
    def any_match(patterns: Any) -> bool:
        for raw in _as_list(patterns):
            pattern = _substitute(raw, request)
            if pattern is not None and glob_match(pattern, request.resource):
                return True
        return False

    if "Resource" in statement:
        return any_match(statement["Resource"])
    if "NotResource" in statement:
        return not any_match(statement["NotResource"])
    raise ValueError(f"statement without Resource/NotResource: {statement}")


def _compare(base: str, wanted: str, actual: str, request: Request) -> bool:
    """One positive comparison of a context value with one policy value."""
    filled = _substitute(wanted, request)
    if filled is None:
        return False
    if base == "StringEquals":
        return actual == filled
    if base == "StringEqualsIgnoreCase":
        return actual.lower() == filled.lower()
    if base == "StringLike":
        return glob_match(filled, actual)
    if base in ("ArnEquals", "ArnLike"):  # AWS: both take wildcards, per ARN component
        return glob_match(filled, actual)
    if base == "Bool":
        return actual.lower() == filled.lower()
    raise ValueError(f"condition operator {base} is not supported by this evaluator")


NEGATED = {
    "StringNotEquals": "StringEquals",
    "StringNotEqualsIgnoreCase": "StringEqualsIgnoreCase",
    "StringNotLike": "StringLike",
    "ArnNotEquals": "ArnEquals",
    "ArnNotLike": "ArnLike",
}


def _condition_true(operator: str, key: str, wanted: Any, request: Request) -> bool:
    """One key of one condition operator block."""
    wanted_values = [str(v).lower() if isinstance(v, bool) else str(v) for v in _as_list(wanted)]
    actual = request.key(key)
    set_op = None
    if ":" in operator:
        set_op, operator = operator.split(":", 1)
        if set_op not in ("ForAllValues", "ForAnyValue"):
            raise ValueError(f"unknown set operator {set_op}")
    if_exists = operator.endswith("IfExists")
    base = operator.removesuffix("IfExists")
    if base == "Null":
        if set_op or if_exists:
            raise ValueError("Null takes no set operator or IfExists")
        want_null = wanted_values[0].lower() == "true"
        return (actual is None) == want_null
    negated = base in NEGATED
    positive = NEGATED.get(base, base)

    def one(value: str) -> bool:
        hit = any(_compare(positive, w, value, request) for w in wanted_values)
        return not hit if negated else hit

    if set_op == "ForAllValues":
        return actual is None or all(one(v) for v in _as_list(actual))
    if set_op == "ForAnyValue":
        return actual is not None and any(one(v) for v in _as_list(actual))
    if actual is None:
        return if_exists or negated
    if isinstance(actual, list):
        raise ValueError(f"{key} is multi-valued: use ForAllValues/ForAnyValue with {operator}")
    return one(actual)


def _conditions_true(statement: dict, request: Request) -> bool:
    for operator, block in statement.get("Condition", {}).items():
        for key, wanted in block.items():
            if not _condition_true(operator, key, wanted, request):
                return False
    return True


def statement_applies(statement: dict, request: Request) -> bool:
    """Action, resource and every condition of ``statement`` match ``request``."""
    return (
        _action_matches(statement, request.action)
        and _resource_matches(statement, request)
        and _conditions_true(statement, request)
    )


def evaluate(policies: list[dict], request: Request) -> Decision:
    """The decision of identity ``policies`` (all attached to one principal) on ``request``."""
    allows: list[str] = []
    denies: list[str] = []
    for policy in policies:
        for i, statement in enumerate(_as_list(policy["Statement"])):
            if not statement_applies(statement, request):
                continue
            name = statement.get("Sid", f"#{i}")
            (allows if statement["Effect"] == "Allow" else denies).append(name)
    if denies:
        return Decision(False, "explicit deny", tuple(denies))
    if allows:
        return Decision(True, "allowed", tuple(allows))
    return Decision(False, "no statement allows it")


def evaluate_with_boundary(identity: list[dict], boundary: dict, request: Request) -> Decision:
    """A role's effective permission: allowed by its own policies AND by its boundary."""
    own = evaluate(identity, request)
    if not own.allowed:
        return own
    bounded = evaluate([boundary], request)
    if not bounded.allowed:
        return Decision(False, f"boundary: {bounded.reason}", bounded.statements)
    return own

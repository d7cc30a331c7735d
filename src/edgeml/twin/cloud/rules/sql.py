"""The part of AWS IoT SQL (version 2016-03-23) our topic rules use, parsed and evaluated as IoT Core does.

`SELECT <expr> [AS name], ... | * FROM '<topic filter>' [WHERE <condition>]`; expressions are dotted
payload paths (`latency_ms.p99`), string and number literals, `topic()` / `topic(n)`, `timestamp()`,
`clientid()`, comparisons (`= <> != < <= > >=`), `AND`, `OR`, `NOT` and parentheses. IOTDG
iot-sql-reference: a path that is not in the payload is Undefined; a comparison with Undefined or Null is
Undefined, and WHERE treats anything but true as false; a SELECT item that is Undefined is left out of the
result. Anything else in a rule's SQL is refused with `RuleSqlError` (the twin is never more forgiving
than IoT Core: a rule it cannot run is reported, not half-run).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any


class RuleSqlError(ValueError):
    """SQL outside the subset the twin runs (the message names the offending text)."""


class _Undefined:
    def __repr__(self) -> str:
        return "Undefined"


UNDEFINED: Any = _Undefined()

_TOKEN = re.compile(
    r"\s*(?:(?P<num>-?\d+(?:\.\d+)?(?:[eE][-+]?\d+)?)|'(?P<str>(?:[^']|'')*)'|(?P<op><>|!=|<=|>=|[=<>(),.*])"
    r"|(?P<name>[A-Za-z_][A-Za-z0-9_]*))"
)
_KEYWORDS = {"SELECT", "FROM", "WHERE", "AS", "AND", "OR", "NOT", "TRUE", "FALSE", "NULL"}


@dataclass(frozen=True)
class Message:
    topic: str
    payload: Any  # the decoded JSON payload (UNDEFINED when it is not JSON)
    timestamp_ms: int
    client_id: str = ""


Expr = Callable[[Message], Any]


def _tokenize(sql: str) -> list[tuple[str, str]]:
    tokens: list[tuple[str, str]] = []
    position = 0
    text = sql.rstrip()
    while position < len(text):
        match = _TOKEN.match(text, position)
        if match is None or match.end() == position:
            raise RuleSqlError(f"cannot read the SQL at {text[position : position + 20]!r}")
        position = match.end()
        kind = match.lastgroup or ""
        value = match.group(kind)
        if kind == "name" and value.upper() in _KEYWORDS:
            tokens.append(("kw", value.upper()))
        elif kind == "str":
            tokens.append(("str", value.replace("''", "'")))
        else:
            tokens.append((kind, value))
    return tokens


def _path(payload: Any, parts: list[str]) -> Any:
    value = payload
    for part in parts:
        if not isinstance(value, dict) or part not in value:
            return UNDEFINED
        value = value[part]
    return value


def _compare(op: str, left: Any, right: Any) -> Any:
    if left is UNDEFINED or right is UNDEFINED or left is None or right is None:
        return UNDEFINED
    numbers = (int, float)
    both_numbers = isinstance(left, numbers) and isinstance(right, numbers)
    if not both_numbers and type(left) is not type(right):
        return UNDEFINED if op not in ("=", "<>", "!=") else (op != "=")
    if isinstance(left, bool) != isinstance(right, bool):
        return UNDEFINED
    if op == "=":
        return left == right
    if op in ("<>", "!="):
        return left != right
    if isinstance(left, (dict, list, bool)):
        return UNDEFINED
    return {"<": left < right, "<=": left <= right, ">": left > right, ">=": left >= right}[op]


def _topic(message: Message, index: int | None) -> Any:
    if index is None:
        return message.topic
    levels = message.topic.split("/")
    return levels[index - 1] if 1 <= index <= len(levels) else UNDEFINED


class _Parser:
    def __init__(self, tokens: list[tuple[str, str]]) -> None:
        self.tokens = tokens
        self.at = 0

    def peek(self) -> tuple[str, str]:
        return self.tokens[self.at] if self.at < len(self.tokens) else ("end", "")

    def take(self, kind: str, value: str | None = None) -> str:
        token = self.peek()
        if token[0] != kind or (value is not None and token[1] != value):
            raise RuleSqlError(f"expected {value or kind}, found {token[1] or 'the end'!r}")
        self.at += 1
        return token[1]

    def accept(self, kind: str, value: str) -> bool:
        if self.peek() == (kind, value):
            self.at += 1
            return True
        return False

    # condition := and ('OR' and)* ; and := not ('AND' not)* ; not := 'NOT' not | comparison
    def condition(self) -> Expr:
        left = self.conjunction()
        while self.accept("kw", "OR"):
            right = self.conjunction()
            left = _or(left, right)
        return left

    def conjunction(self) -> Expr:
        left = self.negation()
        while self.accept("kw", "AND"):
            right = self.negation()
            left = _and(left, right)
        return left

    def negation(self) -> Expr:
        if self.accept("kw", "NOT"):
            inner = self.negation()
            return lambda m: (not value) if isinstance(value := inner(m), bool) else UNDEFINED
        return self.comparison()

    def comparison(self) -> Expr:
        left = self.operand()
        kind, value = self.peek()
        if kind == "op" and value in ("=", "<>", "!=", "<", "<=", ">", ">="):
            self.at += 1
            right = self.operand()
            return lambda m: _compare(value, left(m), right(m))
        return left

    def operand(self) -> Expr:
        kind, value = self.peek()
        if kind == "num":
            self.at += 1
            number: float | int = float(value) if any(c in value for c in ".eE") else int(value)
            return lambda m: number
        if kind == "str":
            self.at += 1
            return lambda m: value
        if kind == "kw" and value in ("TRUE", "FALSE", "NULL"):
            self.at += 1
            constant = {"TRUE": True, "FALSE": False, "NULL": None}[value]
            return lambda m: constant
        if self.accept("op", "("):
            inner = self.condition()
            self.take("op", ")")
            return inner
        if kind == "name":
            self.at += 1
            if self.accept("op", "("):
                return self.function(value)
            parts = [value]
            while self.accept("op", "."):
                parts.append(self.take("name"))
            return lambda m: _path(m.payload, parts)
        raise RuleSqlError(f"unexpected {value or 'end of SQL'!r}")

    def function(self, name: str) -> Expr:
        lowered = name.lower()
        if lowered == "topic":
            index = None
            if self.peek()[0] == "num":
                index = int(self.take("num"))
            self.take("op", ")")
            return lambda m: _topic(m, index)
        self.take("op", ")")
        if lowered == "timestamp":
            return lambda m: m.timestamp_ms
        if lowered == "clientid":
            return lambda m: m.client_id
        raise RuleSqlError(f"function {name}() is not run by the twin")


def _and(left: Expr, right: Expr) -> Expr:
    def run(message: Message) -> Any:
        a, b = left(message), right(message)
        if a is False or b is False:
            return False
        return True if a is True and b is True else UNDEFINED

    return run


def _or(left: Expr, right: Expr) -> Expr:
    def run(message: Message) -> Any:
        a, b = left(message), right(message)
        if a is True or b is True:
            return True
        return False if a is False and b is False else UNDEFINED

    return run


@dataclass(frozen=True)
class Statement:
    select: tuple[tuple[str, Expr], ...] | None  # None = SELECT *
    topic_filter: str
    where: Expr | None

    def matches(self, topic: str) -> bool:
        return topic_matches(self.topic_filter, topic)

    def run(self, message: Message) -> dict[str, Any] | None:
        """The SELECT result, or None when WHERE is not true."""
        if self.where is not None and self.where(message) is not True:
            return None
        if self.select is None:
            return dict(message.payload) if isinstance(message.payload, dict) else {}
        out: dict[str, Any] = {}
        for name, expr in self.select:
            value = expr(message)
            if value is not UNDEFINED:
                out[name] = value
        return out


def topic_matches(topic_filter: str, topic: str) -> bool:
    """MQTT topic filter matching with `+` (one level) and `#` (the rest)."""
    wanted, levels = topic_filter.split("/"), topic.split("/")
    for index, part in enumerate(wanted):
        if part == "#":
            return True
        if index >= len(levels) or (part != "+" and part != levels[index]):
            return False
    return len(wanted) == len(levels)


def parse(sql: str) -> Statement:
    parser = _Parser(_tokenize(sql))
    parser.take("kw", "SELECT")
    items: list[tuple[str, Expr]] = []
    star = parser.accept("op", "*")
    if not star:
        while True:
            start = parser.at
            expr = parser.condition()
            if parser.accept("kw", "AS"):
                name = parser.take("name")
            else:  # an unaliased path keeps its last segment as the key (IOTDG select clause)
                last = [value for kind, value in parser.tokens[start : parser.at] if kind == "name"]
                name = last[-1] if last else f"_{len(items) + 1}"
            items.append((name, expr))
            if not parser.accept("op", ","):
                break
    parser.take("kw", "FROM")
    topic_filter = parser.take("str")
    where = parser.condition() if parser.accept("kw", "WHERE") else None
    if parser.peek()[0] != "end":
        raise RuleSqlError(f"unexpected {parser.peek()[1]!r} after the statement")
    return Statement(None if star else tuple(items), topic_filter, where)


def parse_expression(text: str) -> Expr:
    """One expression (a substitution template's `${...}` body)."""
    parser = _Parser(_tokenize(text))
    expr = parser.condition()
    if parser.peek()[0] != "end":
        raise RuleSqlError(f"unexpected {parser.peek()[1]!r} in ${{{text}}}")
    return expr

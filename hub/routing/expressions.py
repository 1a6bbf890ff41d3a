"""Target expressions: which agents may take which work.

An expression is a small, safe subset of Python's expression syntax, checked node by node and
compiled once, so evaluating it for each of thousands of agents costs about a microsecond
(interpreting libraries such as simpleeval or cel-python cost 10-100 times more per evaluation).

Names: ``agent`` and ``interaction``. Allowed: ``and``, ``or``, ``not``, comparisons
(``== != < <= > >= in not in``), attribute access (``agent.languages``), subscripts with a
constant key (``agent.skills["billing"]``, missing skills read as 0), constants, and lists or
tuples of constants. No calls, no names but the two, no dunder attributes.

    agent.skills["billing"] >= 4 and interaction.language in agent.languages
    interaction.vip or "priority" in interaction.tags
"""

from __future__ import annotations

import ast
from collections.abc import Mapping
from dataclasses import dataclass
from types import CodeType
from typing import Any

NAMES = frozenset({"agent", "interaction"})
_ALLOWED = (
    ast.Expression,
    ast.BoolOp,
    ast.And,
    ast.Or,
    ast.UnaryOp,
    ast.Not,
    ast.Compare,
    ast.Eq,
    ast.NotEq,
    ast.Lt,
    ast.LtE,
    ast.Gt,
    ast.GtE,
    ast.In,
    ast.NotIn,
    ast.Name,
    ast.Load,
    ast.Attribute,
    ast.Subscript,
    ast.Constant,
    ast.List,
    ast.Tuple,
)
_NO_BUILTINS: dict[str, Any] = {"__builtins__": {}}


class ExpressionError(ValueError):
    """An expression that does not parse or uses something not allowed."""


class Skills(dict[str, int]):
    """Skill name -> proficiency 1-5; a skill the agent lacks reads as 0."""

    def __missing__(self, key: str) -> int:
        return 0


class Attributes:
    """Read-only attribute access over a mapping, for expression evaluation."""

    __slots__ = ("_values",)

    def __init__(self, values: Mapping[str, Any]) -> None:
        self._values = values

    def __getattr__(self, name: str) -> Any:
        try:
            return self._values[name]
        except KeyError:
            return None  # an attribute nobody set compares as absent, never an error


@dataclass(frozen=True, slots=True)
class Expression:
    """A checked, compiled target expression."""

    source: str
    code: CodeType

    def __call__(self, agent: Any, interaction: Any) -> bool:
        try:
            return bool(eval(self.code, _NO_BUILTINS, {"agent": agent, "interaction": interaction}))  # noqa: S307
        except TypeError:
            return False  # e.g. None >= 4: an absent attribute never matches


def compile_expression(source: str) -> Expression:
    """Check and compile an expression, or raise ExpressionError saying what is wrong."""
    text = source.strip()
    if not text:
        raise ExpressionError("an empty expression")
    try:
        tree = ast.parse(text, mode="eval")
    except SyntaxError as err:
        raise ExpressionError(f"does not parse: {err.msg} at column {err.offset}") from err
    for node in ast.walk(tree):
        if not isinstance(node, _ALLOWED):
            raise ExpressionError(f"{type(node).__name__} is not allowed in an expression")
        if isinstance(node, ast.Name) and node.id not in NAMES | {"True", "False", "None"}:
            raise ExpressionError(f"unknown name {node.id!r}; use agent.* or interaction.*")
        if isinstance(node, ast.Attribute) and node.attr.startswith("_"):
            raise ExpressionError(f"attribute {node.attr!r} is not allowed")
        if isinstance(node, ast.Subscript) and not isinstance(node.slice, ast.Constant):
            raise ExpressionError("a subscript must be a constant, e.g. agent.skills['billing']")
    return Expression(text, compile(tree, "<expression>", "eval"))


TRUE = compile_expression("True")

from __future__ import annotations

import pytest

from hub.routing.expressions import Attributes, ExpressionError, Skills, compile_expression

AGENT = Attributes({"skills": Skills({"billing": 4}), "languages": frozenset({"en", "de"})})
CALL = Attributes({"language": "de", "vip": True, "tags": ("priority",), "tier": None})


@pytest.mark.parametrize(
    ("source", "expected"),
    [
        ("agent.skills['billing'] >= 4", True),
        ("agent.skills['billing'] >= 5", False),
        ("agent.skills['spanish'] >= 1", False),
        ("interaction.language in agent.languages", True),
        ("interaction.vip or 'x' in interaction.tags", True),
        ("not interaction.vip", False),
        ("interaction.tier == 'gold'", False),
        ("interaction.tier >= 2", False),  # absent attribute never matches, never errors
    ],
)
def test_expressions_evaluate_against_agent_and_interaction(source: str, expected: bool) -> None:
    assert compile_expression(source)(AGENT, CALL) is expected


@pytest.mark.parametrize(
    "source",
    [
        "",
        "agent.skills['billing'] >=",
        "__import__('os').system('true')",
        "agent.__class__",
        "open('/etc/passwd')",
        "customer.vip",
        "[x for x in agent.languages]",
        "agent.skills[interaction.language]",
        "lambda: 1",
        "agent.languages is None",
    ],
)
def test_anything_but_the_small_language_is_refused(source: str) -> None:
    with pytest.raises(ExpressionError):
        compile_expression(source)

"""The step functions' language: what translates, and clear errors for what does not."""

from __future__ import annotations

import pytest

from anyrnn.cells import pointwise
from anyrnn.cells.language import ProgramError, parse, program


def test_every_step_function_parses_and_inlines_its_helpers():
    for name in pointwise.FUNCTIONS:
        prog = program(name)
        assert prog.returns and prog.params
        calls = [s for _, expr in prog.stmts for s in [expr] if "sigmoid_from_tanh" in repr(s)]
        assert not calls  # helpers were inlined
    lstm = program("lstm_forward")
    assert [p for p in lstm.params if p.startswith("a_")] == ["a_i", "a_f", "a_g", "a_o"]


def conditional_expression(m, a, w, half):
    s = a + w
    y = s if s else w
    return y


def literal(m, a):
    y = a * 0.5
    return y


def branch(m, a):
    if a:
        y = a
    return y


def nested_tanh(m, a, half):
    y = half * m.tanh(a)
    return y


def two_targets(m, a):
    y = z = a
    return y, z


def reassigned(m, a):
    y = a
    y = a + a
    return y


def undefined(m, a):
    y = a + b  # noqa: F821
    return y


def division(m, a):
    y = a / a
    return y


def other_call(m, a):
    y = m.exp(a)
    return y


def no_m(a):
    return a


def returns_expression(m, a):
    return a + a


def where_without_compare(m, a, zero):
    y = m.where(a, a, zero)
    return y


@pytest.mark.parametrize(
    "fn, words",
    [
        (literal, "literal 0.5"),
        (branch, "If is not allowed"),
        (nested_tanh, "m.tanh(name) on a line of its own"),
        (two_targets, "one name at a time"),
        (reassigned, "assigned twice"),
        (undefined, "'b' is not defined"),
        (division, "Div is not allowed"),
        (other_call, "m.exp"),
        (no_m, "first parameter must be m"),
        (returns_expression, "return names"),
        (where_without_compare, "must be a comparison"),
        (conditional_expression, "IfExp is not allowed"),
    ],
    ids=lambda v: getattr(v, "__name__", ""),
)
def test_what_does_not_translate_is_refused_with_the_reason(fn, words):
    with pytest.raises(ProgramError, match=words.replace("(", r"\(").replace(")", r"\)")):
        parse(fn)

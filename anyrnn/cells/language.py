"""The language of :mod:`anyrnn.cells.pointwise`, parsed and checked.

A step function is parsed once into a :class:`Program`: its parameters, a list of
single-name assignments (the module's one-line helpers inlined) and the names it
returns. The engines translate programs (:mod:`anyrnn.engine.codegen`); the cells read
their parameter and return names, which follow the conventions of
:mod:`anyrnn.cells.base`.
"""

from __future__ import annotations

import ast
import functools
import inspect
import textwrap
from dataclasses import dataclass
from typing import Any

from . import pointwise

__all__ = ["Program", "ProgramError", "parse", "program"]

_BINOPS = {ast.Add: "+", ast.Sub: "-", ast.Mult: "*"}
_CMPOPS = {ast.Lt: "<", ast.Gt: ">", ast.LtE: "<=", ast.GtE: ">="}


@dataclass(frozen=True)
class Program:
    """A step function as straight-line code: ``stmts`` are ``(name, expr)`` pairs."""

    name: str
    params: tuple[str, ...]
    stmts: tuple[tuple[str, ast.expr], ...]
    returns: tuple[str, ...]

    def reads(self, expr: ast.expr) -> list[str]:
        """Names an expression reads, in order of first appearance."""
        seen: list[str] = []
        for node in ast.walk(expr):
            if isinstance(node, ast.Name) and node.id not in seen and node.id != "m":
                seen.append(node.id)
        return seen

    @staticmethod
    def tanh_arg(expr: ast.expr) -> str | None:
        """The name ``expr`` takes the tanh of, when it is exactly ``m.tanh(name)``."""
        if (
            isinstance(expr, ast.Call)
            and isinstance(expr.func, ast.Attribute)
            and expr.func.attr == "tanh"
        ):
            return expr.args[0].id  # type: ignore[attr-defined]
        return None


class ProgramError(ValueError):
    """A step function that is not in the language of :mod:`anyrnn.cells.pointwise`."""


def _fail(fn_name: str, node: ast.AST, why: str) -> ProgramError:
    line = getattr(node, "lineno", "?")
    return ProgramError(f"{fn_name} (line {line} of its source): {why}")


def _source_tree(fn: Any) -> ast.FunctionDef:
    tree = ast.parse(textwrap.dedent(inspect.getsource(fn)))
    return tree.body[0]  # type: ignore[return-value]


@functools.cache
def _helper(name: str) -> tuple[tuple[str, ...], ast.expr] | None:
    """``(params, expr)`` of a one-line helper of the pointwise module, else None."""
    fn = getattr(pointwise, name, None)
    if fn is None or name in pointwise.FUNCTIONS or not callable(fn):
        return None
    node = _source_tree(fn)
    body = [s for s in node.body if not _is_docstring(s)]
    if len(body) != 1 or not isinstance(body[0], ast.Return):
        raise ProgramError(f"helper {name} must be a single return statement")
    return tuple(a.arg for a in node.args.args), body[0].value  # type: ignore[return-value]


def _is_docstring(stmt: ast.stmt) -> bool:
    return isinstance(stmt, ast.Expr) and isinstance(stmt.value, ast.Constant)


class _Check(ast.NodeTransformer):
    """Validates an expression and inlines helper calls."""

    def __init__(self, fn_name: str, known: set[str]):
        self.fn_name, self.known = fn_name, known

    def visit_Name(self, node: ast.Name) -> ast.AST:
        if node.id not in self.known:
            raise _fail(self.fn_name, node, f"{node.id!r} is not defined before it is used")
        return node

    def visit_BinOp(self, node: ast.BinOp) -> ast.AST:
        if type(node.op) not in _BINOPS:
            raise _fail(self.fn_name, node, f"operator {type(node.op).__name__} is not allowed")
        return self.generic_visit(node)

    def visit_UnaryOp(self, node: ast.UnaryOp) -> ast.AST:
        if not isinstance(node.op, ast.USub):
            raise _fail(self.fn_name, node, "only unary minus is allowed")
        return self.generic_visit(node)

    def visit_Compare(self, node: ast.Compare) -> ast.AST:
        if len(node.ops) != 1 or type(node.ops[0]) not in _CMPOPS:
            raise _fail(self.fn_name, node, "one comparison <, >, <= or >= at a time")
        return self.generic_visit(node)

    def visit_Constant(self, node: ast.Constant) -> ast.AST:
        raise _fail(
            self.fn_name,
            node,
            f"literal {node.value!r}: pass constants as parameters in the model's dtype",
        )

    def visit_Call(self, node: ast.Call) -> ast.AST:
        if node.keywords:
            raise _fail(self.fn_name, node, "keyword arguments are not allowed")
        func = node.func
        if isinstance(func, ast.Attribute):
            if not (isinstance(func.value, ast.Name) and func.value.id == "m"):
                raise _fail(self.fn_name, node, "only m.tanh and m.where can be called on m")
            arity = {"tanh": 1, "where": 3}.get(func.attr)
            if arity is None or len(node.args) != arity:
                raise _fail(self.fn_name, node, f"m.{func.attr} with {len(node.args)} argument(s)")
            if func.attr == "where" and not isinstance(node.args[0], ast.Compare):
                raise _fail(self.fn_name, node, "the condition of m.where must be a comparison")
            node.args = [self.visit(a) for a in node.args]
            return node
        if isinstance(func, ast.Name):
            helper = _helper(func.id)
            if helper is None:
                raise _fail(
                    self.fn_name, node, f"{func.id} is not a helper of the pointwise module"
                )
            params, expr = helper
            if len(params) != len(node.args):
                raise _fail(self.fn_name, node, f"{func.id} takes {len(params)} arguments")
            args = [self.visit(a) for a in node.args]
            return self.visit(_Substitute(dict(zip(params, args))).visit(_copy(expr)))
        raise _fail(self.fn_name, node, "unsupported call")

    def generic_visit(self, node: ast.AST) -> ast.AST:
        allowed = (
            ast.BinOp,
            ast.UnaryOp,
            ast.Compare,
            ast.Name,
            ast.Call,
            ast.Load,
            ast.Attribute,
            *_BINOPS,
            *_CMPOPS,
            ast.USub,
        )
        if not isinstance(node, allowed):
            raise _fail(self.fn_name, node, f"{type(node).__name__} is not allowed")
        return super().generic_visit(node)


class _Substitute(ast.NodeTransformer):
    def __init__(self, mapping: dict[str, ast.expr]):
        self.mapping = mapping

    def visit_Name(self, node: ast.Name) -> ast.AST:
        return _copy(self.mapping[node.id]) if node.id in self.mapping else node


def _copy(node: ast.expr) -> ast.expr:
    return ast.parse(ast.unparse(node), mode="eval").body


@functools.cache
def program(name: str) -> Program:
    """The parsed, checked program of ``pointwise.<name>`` (cached)."""
    return parse(pointwise.FUNCTIONS[name])


def parse(fn: Any) -> Program:
    """``fn`` as a :class:`Program`, or :class:`ProgramError` saying what is not allowed."""
    name = fn.__name__
    node = _source_tree(fn)
    params = [a.arg for a in node.args.args]
    if not params or params[0] != "m":
        raise ProgramError(f"{name}: the first parameter must be m")
    params = params[1:]
    known = set(params)
    stmts: list[tuple[str, ast.expr]] = []
    returns: list[str] = []
    body = [s for s in node.body if not _is_docstring(s)]
    for k, stmt in enumerate(body):
        if isinstance(stmt, ast.Assign):
            if len(stmt.targets) != 1 or not isinstance(stmt.targets[0], ast.Name):
                raise _fail(name, stmt, "assign to one name at a time")
            target = stmt.targets[0].id
            if target in known or target == "m":
                raise _fail(name, stmt, f"{target!r} is assigned twice")
            expr = _Check(name, known).visit(stmt.value)
            tanh = Program.tanh_arg(expr)
            nested = [
                n
                for n in ast.walk(expr)
                if isinstance(n, ast.Call) and isinstance(n.func, ast.Attribute)
                if n.func.attr == "tanh"
            ]
            if nested and (tanh is None or not isinstance(expr.args[0], ast.Name)):  # type: ignore[attr-defined]
                raise _fail(name, stmt, "write m.tanh(name) on a line of its own")
            stmts.append((target, expr))
            known.add(target)
        elif isinstance(stmt, ast.Return) and k == len(body) - 1:
            items = stmt.value.elts if isinstance(stmt.value, ast.Tuple) else [stmt.value]
            for item in items:
                if not isinstance(item, ast.Name) or item.id not in known:
                    raise _fail(name, stmt, "return names assigned or passed before")
                returns.append(item.id)
        else:
            raise _fail(
                name, stmt, f"{type(stmt).__name__} is not allowed (assignments, then return)"
            )
    if not returns:
        raise ProgramError(f"{name}: it must end with a return of names")
    return Program(name, tuple(params), tuple(stmts), tuple(returns))

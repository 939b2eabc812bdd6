"""``--where EXPR``: a safe expression over a row's columns (never ``eval``).

The expression is parsed with :mod:`ast` (Python syntax) and only this subset is
accepted: column names, literals (numbers, strings, True/False/None, tuples and
lists of them), ``and``/``or``/``not``, comparisons (``== != < <= > >= in
not in is is not``), ``+ - * / %`` and ``len(x)``.  Anything else (calls,
attributes, subscripts, lambdas) is refused when parsing, so nothing from the
command line can run code.  A comparison that cannot be made (a missing value,
mismatched types) is false rather than an error.
"""

from __future__ import annotations

import ast
import operator
from collections.abc import Callable, Iterable
from typing import Any

Getter = Callable[[dict[str, Any]], Any]


class WhereError(ValueError):
    """The expression is not in the accepted subset; ``str()`` says why."""


class _Unknown(Exception):
    """A value could not be computed (None operand, wrong types)."""


_COMPARE: dict[type[ast.cmpop], Callable[[Any, Any], bool]] = {
    ast.Eq: operator.eq, ast.NotEq: operator.ne, ast.Lt: operator.lt, ast.LtE: operator.le,
    ast.Gt: operator.gt, ast.GtE: operator.ge, ast.Is: operator.is_,
    ast.IsNot: operator.is_not,
    ast.In: lambda a, b: a in b, ast.NotIn: lambda a, b: a not in b,
}
_ARITH: dict[type[ast.operator], Callable[[Any, Any], Any]] = {
    ast.Add: operator.add, ast.Sub: operator.sub, ast.Mult: operator.mul,
    ast.Div: operator.truediv, ast.Mod: operator.mod,
}
_ALIASES = {"true": True, "false": False, "null": None}


class Expression:
    """A compiled ``--where`` expression: ``matches(row) -> bool``."""

    def __init__(self, text: str) -> None:
        self.text = text
        try:
            tree = ast.parse(text.strip(), mode="eval")
        except SyntaxError as exc:
            raise WhereError(f"--where {text!r}: not an expression ({exc.msg})") from None
        self.names: set[str] = set()
        self._fn = self._compile(tree.body)

    def check(self, columns: Iterable[str], table: str) -> str | None:
        """An error message when the expression names a column ``table`` lacks."""
        known = set(columns)
        missing = sorted(self.names - known)
        if missing:
            return (f"--where: the {table}s table has no column {', '.join(missing)} "
                    f"(columns: {', '.join(sorted(known))})")
        return None

    def matches(self, row: dict[str, Any]) -> bool:
        try:
            return bool(self._fn(row))
        except _Unknown:
            return False

    # -- compiling ---------------------------------------------------------

    def _compile(self, node: ast.expr) -> Getter:
        if isinstance(node, ast.Constant):
            if not isinstance(node.value, int | float | str | bool | type(None)):
                raise WhereError(f"--where: literal {node.value!r} is not allowed")
            value = node.value
            return lambda row: value
        if isinstance(node, ast.Name):
            return self._name(node.id)
        if isinstance(node, ast.Tuple | ast.List):
            parts = [self._compile(e) for e in node.elts]
            return lambda row: tuple(p(row) for p in parts)
        if isinstance(node, ast.BoolOp):
            return self._boolop(node)
        if isinstance(node, ast.UnaryOp):
            return self._unary(node)
        if isinstance(node, ast.Compare):
            return self._compare(node)
        if isinstance(node, ast.BinOp) and type(node.op) in _ARITH:
            op = _ARITH[type(node.op)]
            left, right = self._compile(node.left), self._compile(node.right)
            return lambda row: _apply(op, left(row), right(row))
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) \
                and node.func.id == "len" and len(node.args) == 1 and not node.keywords:
            arg = self._compile(node.args[0])
            return lambda row: _apply(lambda v, _: len(v), arg(row), 0)
        what = ast.unparse(node)
        raise WhereError(f"--where: {what!r} is not allowed (use columns, literals, and/or/"
                         "not, comparisons, in, + - * / % and len())")

    def _name(self, name: str) -> Getter:
        if name.lower() in _ALIASES:
            value = _ALIASES[name.lower()]
            return lambda row: value
        self.names.add(name)
        return lambda row: row.get(name)

    def _boolop(self, node: ast.BoolOp) -> Getter:
        parts = [self._compile(v) for v in node.values]
        if isinstance(node.op, ast.And):
            return lambda row: all(_truth(p, row) for p in parts)
        return lambda row: any(_truth(p, row) for p in parts)

    def _unary(self, node: ast.UnaryOp) -> Getter:
        inner = self._compile(node.operand)
        if isinstance(node.op, ast.Not):
            return lambda row: not _truth(inner, row)
        if isinstance(node.op, ast.USub):
            return lambda row: _apply(lambda v, _: -v, inner(row), 0)
        raise WhereError(f"--where: {ast.unparse(node)!r} is not allowed")

    def _compare(self, node: ast.Compare) -> Getter:
        first = self._compile(node.left)
        steps = []
        for op, right in zip(node.ops, node.comparators, strict=True):
            steps.append((type(op), _COMPARE[type(op)], self._compile(right)))

        def compare(row: dict[str, Any]) -> bool:
            left = first(row)
            for kind, fn, right_fn in steps:
                right = right_fn(row)
                if kind not in (ast.Is, ast.IsNot, ast.Eq, ast.NotEq) \
                        and (left is None or right is None):
                    raise _Unknown
                try:
                    if not fn(left, right):
                        return False
                except TypeError:
                    raise _Unknown from None
                left = right
            return True
        return compare


def _truth(fn: Getter, row: dict[str, Any]) -> bool:
    try:
        return bool(fn(row))
    except _Unknown:
        return False


def _apply(op: Callable[[Any, Any], Any], a: Any, b: Any) -> Any:
    if a is None or b is None:
        raise _Unknown
    try:
        return op(a, b)
    except (TypeError, ZeroDivisionError, ValueError):
        raise _Unknown from None

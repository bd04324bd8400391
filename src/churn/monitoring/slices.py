"""Slice expressions (`Contract == "Month-to-month"`, `tenure < 6`): checked, then evaluated.

pandas' `eval` would run any Python it is given (attribute access, calls, `@` locals), so
an expression is parsed first and only comparisons, boolean logic, column names and
literal constants are allowed. Only then is it handed to pandas.
"""

from __future__ import annotations

import ast
from collections.abc import Iterable

import numpy as np
import pandas as pd

from churn.errors import ChurnError

_ALLOWED = (
    ast.Expression, ast.Compare, ast.BoolOp, ast.UnaryOp, ast.BinOp, ast.Name, ast.Load,
    ast.Constant, ast.List, ast.Tuple,
    ast.And, ast.Or, ast.Not, ast.USub, ast.BitAnd, ast.BitOr, ast.Invert,
    ast.Eq, ast.NotEq, ast.Lt, ast.LtE, ast.Gt, ast.GtE, ast.In, ast.NotIn,
)


def _names(expression: str) -> set[str]:
    try:
        tree = ast.parse(expression.strip(), mode="eval")
    except SyntaxError as exc:
        raise ValueError(f"slice {expression!r} is not a valid expression: {exc.msg}") from None
    names = set()
    for node in ast.walk(tree):
        if not isinstance(node, _ALLOWED):
            raise ValueError(
                f"slice {expression!r} uses {type(node).__name__}: only comparisons of columns with "
                "constants, and/or/not and lists of constants are allowed"
            )
        if isinstance(node, ast.BinOp) and not isinstance(node.op, (ast.BitAnd, ast.BitOr)):
            raise ValueError(f"slice {expression!r}: arithmetic is not allowed, only comparisons")
        if isinstance(node, ast.Constant) and not isinstance(node.value, (str, int, float, bool)):
            raise ValueError(f"slice {expression!r}: constant {node.value!r} is not a string or number")
        if isinstance(node, ast.Name):
            names.add(node.id)
    if not names:
        raise ValueError(f"slice {expression!r} names no column")
    return names


def check_expression(expression: str, columns: Iterable[str] | None = None) -> set[str]:
    """The columns the expression reads; ValueError when it is not a plain comparison
    (or, given `columns`, when it reads a column that does not exist)."""
    names = _names(expression)
    if columns is not None:
        unknown = sorted(names - set(columns))
        if unknown:
            raise ValueError(f"slice {expression!r} reads unknown columns {unknown}; known: {sorted(columns)}")
    return names


def mask(frame: pd.DataFrame, expression: str) -> np.ndarray:
    """Boolean mask of the rows in the slice (nulls are outside it)."""
    try:
        check_expression(expression, frame.columns)
        result = frame.eval(expression.strip(), engine="python")
    except ValueError as exc:
        raise ChurnError(f"monitor.slices: {exc}") from None
    except Exception as exc:  # a type clash such as comparing text with a number
        raise ChurnError(f"monitor.slices: cannot evaluate {expression!r}: {exc.__class__.__name__}: {exc}") from None
    if not isinstance(result, pd.Series) or len(result) != len(frame):
        raise ChurnError(f"monitor.slices: {expression!r} does not give one true/false per row")
    selected: np.ndarray = result.fillna(False).to_numpy(dtype=bool)
    return selected

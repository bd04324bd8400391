"""Churn probabilities from a fitted pipeline: the same numbers as `predict_proba`, faster.

scikit-learn's HistGradientBoosting predictor walks each tree over every row, one row at a
time, reading the row's feature from the transformed matrix. The configured model is
hundreds of two-leaf trees, so that walk (about 4 s of CPU per million rows, on one core)
was the largest single cost of scoring. Here each tree is applied to a whole column at
once with numpy: a stump is one comparison and one `where` over a contiguous column (the
matrix is handed over column-major). The arithmetic is scikit-learn's own: the baseline,
then each tree's leaf value added in the fitted order, then the loss's own link function,
so the probabilities are bit-for-bit those of `pipeline.predict_proba`
(tests/core/test_predict.py, stumps and deeper trees, with and without missing values).

The pipeline's one-hot encoder maps each text value to its category with a Python dict
lookup per cell (about 2 ms per column per 50,000 rows); `_one_hot` finds the same
categories with pandas' hash table in C and writes the same 0.0/1.0 matrix.

Anything this does not reproduce exactly (categorical splits, the classifier's own
categorical preprocessing, multi-class, another dtype, a scikit-learn release that
renamed its tree arrays) goes to `predict_proba` instead, and any preprocessing other than
a column transformer of plain one-hot encoders and other transformers goes to its own
`transform`.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
from sklearn.compose import ColumnTransformer
from sklearn.ensemble import HistGradientBoostingClassifier
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import OneHotEncoder

# The fields of scikit-learn's tree node records that the walk reads.
_NODE_FIELDS = ("value", "feature_idx", "num_threshold", "missing_go_to_left", "left", "right", "is_leaf", "is_categorical")


def positive_proba(model: Any, features: Any) -> np.ndarray:
    """P(churn) for each row of `features` (the pipeline's input columns)."""
    if isinstance(model, Pipeline) and isinstance(model.steps[-1][1], HistGradientBoostingClassifier):
        matrix = _transformed(model[:-1], features)
        if isinstance(matrix, np.ndarray):
            matrix = np.asfortranarray(matrix)  # the row-major one is freed here
            classifier = model.steps[-1][1]
            walked = _walked_proba(classifier, matrix)
            if walked is not None:
                return walked
            return np.asarray(classifier.predict_proba(matrix)[:, 1])
    return np.asarray(model.predict_proba(features)[:, 1])


def _trees(classifier: HistGradientBoostingClassifier, matrix: np.ndarray) -> list[np.ndarray] | None:
    """The node arrays of each iteration's tree, or None when the walk would not be exact."""
    predictors = getattr(classifier, "_predictors", None)
    baseline = getattr(classifier, "_baseline_prediction", None)
    if (
        not isinstance(predictors, list)
        or not isinstance(baseline, np.ndarray)
        or baseline.shape != (1, 1)
        or baseline.dtype != np.float64
        or getattr(classifier, "n_trees_per_iteration_", None) != 1
        or getattr(classifier, "is_categorical_", None) is not None
        or getattr(classifier, "_preprocessor", None) is not None
        or matrix.dtype != np.float64
        or matrix.ndim != 2
        or matrix.shape[1] != getattr(classifier, "n_features_in_", None)
    ):
        return None
    trees = []
    for iteration in predictors:
        if not isinstance(iteration, list) or len(iteration) != 1:
            return None
        nodes = getattr(iteration[0], "nodes", None)
        names = getattr(getattr(nodes, "dtype", None), "names", None) or ()
        if not isinstance(nodes, np.ndarray) or any(field not in names for field in _NODE_FIELDS):
            return None
        if nodes["is_categorical"].any() or nodes["value"].dtype != np.float64:
            return None
        trees.append(nodes)
    return trees


def _walked_proba(classifier: HistGradientBoostingClassifier, matrix: np.ndarray) -> np.ndarray | None:
    trees = _trees(classifier, matrix)
    if trees is None:
        return None
    # As `_raw_predict`: zeros plus the baseline, then each tree's leaf values in order.
    raw = np.zeros(matrix.shape[0], dtype=np.float64)
    raw += classifier._baseline_prediction[0, 0]
    sides = _StumpSides(matrix)
    for nodes in trees:
        if _is_stump(nodes):
            # Each row's leaf value, picked by its side (0 right, 1 left): `take` with an
            # index array is several times faster than `where` between two scalars.
            raw += np.array([nodes[2]["value"], nodes[1]["value"]]).take(sides.left(nodes[0]))
        else:
            raw += _leaf_values(nodes, matrix, None, 0)
    return np.asarray(classifier._loss.predict_proba(raw)[:, 1])


def _is_stump(nodes: np.ndarray) -> bool:
    return len(nodes) == 3 and not nodes[0]["is_leaf"] and nodes[0]["left"] == 1 and nodes[0]["right"] == 2


class _StumpSides:
    """Which rows go left at a stump's split (1 left, 0 right), worked out once per
    (column, threshold, missing side): the configured model is hundreds of stumps over a
    few dozen distinct splits (a one-hot column is split at one threshold by every tree
    that uses it), and a column without missing values needs no missing-value pass."""

    def __init__(self, matrix: np.ndarray) -> None:
        self._matrix = matrix
        self._missing = np.isnan(matrix).any(axis=0)
        self._found: dict[tuple[int, float, bool], np.ndarray] = {}

    def left(self, split: np.void) -> np.ndarray:
        feature = int(split["feature_idx"])
        missing_left = bool(split["missing_go_to_left"]) and bool(self._missing[feature])
        key = (feature, float(split["num_threshold"]), missing_left)
        found = self._found.get(key)
        if found is None:
            column = self._matrix[:, feature]
            found = column <= split["num_threshold"]  # scikit-learn's rule, as in _leaf_values
            if missing_left:
                found |= np.isnan(column)
            found = found.astype(np.intp)
            self._found[key] = found
        return found


def _leaf_values(nodes: np.ndarray, matrix: np.ndarray, rows: np.ndarray | None, index: int) -> Any:
    """The leaf value reached from node `index` by each of `rows` (None: every row)."""
    node = nodes[index]
    if node["is_leaf"]:
        return node["value"]
    column = matrix[:, node["feature_idx"]]
    if rows is not None:
        column = column[rows]
    # scikit-learn's rule: a missing value goes where the split sends missing values,
    # anything else left when at most the threshold.
    left = column <= node["num_threshold"]
    if node["missing_go_to_left"]:
        left |= np.isnan(column)
    left_node, right_node = nodes[node["left"]], nodes[node["right"]]
    if left_node["is_leaf"] and right_node["is_leaf"]:
        return np.where(left, left_node["value"], right_node["value"])
    values = np.empty(len(column), dtype=np.float64)
    for side, child in ((left, int(node["left"])), (~left, int(node["right"]))):
        positions = np.flatnonzero(side)
        values[side] = _leaf_values(nodes, matrix, positions if rows is None else rows[positions], child)
    return values


def _transformed(preprocess: Pipeline, features: Any) -> Any:
    """`preprocess.transform(features)`, with plain one-hot encoders done by `_one_hot`."""
    parts = _column_parts(preprocess, features)
    if parts is None:
        return preprocess.transform(features)
    blocks = [
        _one_hot(transformer, features, columns) if _plain_one_hot(transformer) else transformer.transform(features[columns])
        for transformer, columns in parts
    ]
    if not all(isinstance(block, np.ndarray) and block.ndim == 2 for block in blocks):
        return preprocess.transform(features)
    # What ColumnTransformer does with dense blocks (np.hstack), laid out column-major
    # for the tree walk straight away instead of copied once more.
    matrix = np.empty((len(features), sum(block.shape[1] for block in blocks)), dtype=np.result_type(*blocks), order="F")
    return np.concatenate(blocks, axis=1, out=matrix)


def _column_parts(preprocess: Pipeline, features: Any) -> list[tuple[Any, list[str]]] | None:
    """(fitted transformer, its input columns) in output order, when the preprocessing is one
    ColumnTransformer over named DataFrame columns with dense output; else None."""
    import sklearn

    if len(preprocess.steps) != 1 or sklearn.get_config().get("transform_output") != "default":
        return None
    transformer = preprocess.steps[0][1]
    if (
        not isinstance(transformer, ColumnTransformer)
        or not isinstance(features, pd.DataFrame)
        or getattr(transformer, "sparse_output_", True)
        or getattr(transformer, "_sklearn_output_config", None)
    ):
        return None
    parts = []
    for _name, fitted, columns in transformer.transformers_:
        if isinstance(fitted, str):
            if fitted == "drop":
                continue
            return None  # passthrough: left to ColumnTransformer
        if (
            not isinstance(columns, list)
            or not columns
            or not all(isinstance(column, str) and column in features.columns for column in columns)
            or getattr(fitted, "_sklearn_output_config", None)
        ):
            return None
        parts.append((fitted, columns))
    return parts or None


def _plain_one_hot(encoder: Any) -> bool:
    """A fitted OneHotEncoder whose output `_one_hot` reproduces exactly: dense float64,
    unknown values as all zeros, nothing dropped or grouped, text categories."""
    return (
        type(encoder) is OneHotEncoder
        and encoder.handle_unknown == "ignore"
        and encoder.drop is None
        and getattr(encoder, "drop_idx_", None) is None
        and getattr(encoder, "_infrequent_enabled", True) is False
        and encoder.sparse_output is False
        and np.dtype(encoder.dtype) == np.float64
        and all(
            isinstance(categories, np.ndarray) and all(isinstance(value, str) for value in categories)
            for categories in encoder.categories_
        )
    )


def _one_hot(encoder: OneHotEncoder, features: pd.DataFrame, columns: list[str]) -> np.ndarray:
    """`encoder.transform(features[columns])`, reading each column where it is (selecting
    the columns first copied every cell)."""
    if list(getattr(encoder, "feature_names_in_", columns)) != columns:
        return np.asarray(encoder.transform(features[columns]))  # columns renamed or reordered: sklearn says so
    widths = [len(categories) for categories in encoder.categories_]
    out = np.zeros((len(features), sum(widths)), dtype=np.float64, order="F")
    offset = 0
    for column, categories, width in zip(columns, encoder.categories_, widths, strict=True):
        # Each distinct value once (a C hash pass), then its place among the fitted
        # categories by dict lookup, as scikit-learn's encoder does per cell; -1 when it is
        # none of them (unknown or missing: an all-zero block, as handle_unknown="ignore").
        distinct_codes, distinct = pd.factorize(features[column].to_numpy(dtype=object))
        place = {category: i for i, category in enumerate(categories)}
        codes = np.array([place.get(value, -1) for value in distinct] + [-1], dtype=np.intp)[distinct_codes]
        for i in range(width):
            out[:, offset + i] = codes == i
        offset += width
    return out

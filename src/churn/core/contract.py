"""The raw-data contract: a pandera schema built from the `dataset` section of params.yaml.

Prep validates the raw snapshot with it and serving validates incoming records with the
same schema, so a row that training would refuse is never scored either.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pandera.pandas as pa
from pandera.dtypes import immutable
from pandera.engines import pandas_engine

from churn.config import Dataset
from churn.errors import ChurnError

EXAMPLES_PER_CHECK = 5


@dataclass(frozen=True)
class FailedCheck:
    column: str
    check: str
    failing_rows: int
    examples: tuple[str, ...]

    def describe(self) -> str:
        if not self.failing_rows:
            return f"{self.column}: {self.check}"
        examples = ", ".join(self.examples)
        rows = "row" if self.failing_rows == 1 else "rows"
        return f"{self.column}: {self.check} in {self.failing_rows} {rows} (e.g. {examples})"


class ContractError(ChurnError):
    """The data breaks the contract; carries every failed check at once."""

    def __init__(self, source: str, failures: list[FailedCheck]):
        self.failures = failures
        lines = [f"{source} breaks the data contract ({len(failures)} failed checks):"]
        lines += [f"  - {failure.describe()}" for failure in failures]
        lines.append(
            "Fix the file (or the `dataset` section of params.yaml if the contract is wrong) "
            "and rerun. Nothing was written (under `dvc repro`, DVC removed this stage's outputs "
            "before it ran: `dvc checkout` restores the ones dvc.lock records)."
        )
        super().__init__("\n".join(lines))


def read_raw_csv(path: str | Path) -> pd.DataFrame:
    """Read every column as text: types are the contract's job, not the parser's guess."""
    path = Path(path)
    if not path.is_file():
        raise ChurnError(
            f"raw data {path} not found: run `make run` (it pulls or recreates the snapshot) "
            f"or `dvc pull {path}`."
        )
    if path.stat().st_size == 0:
        raise ChurnError(f"raw data {path} is empty (0 bytes): restore it with `dvc checkout {path}`.")
    try:
        frame = pd.read_csv(path, dtype=str, keep_default_na=False, na_values=[""])
    except pd.errors.EmptyDataError:
        raise ChurnError(f"raw data {path} has no header and no rows: restore it with `dvc checkout {path}`.") from None
    except (pd.errors.ParserError, UnicodeDecodeError) as exc:
        raise ChurnError(f"raw data {path} is not a readable CSV: {exc}") from None
    check_delimiter(frame, str(path))
    return frame


OTHER_DELIMITERS = {";": "semicolon", "\t": "tab", "|": "pipe"}


def check_delimiter(frame: pd.DataFrame, source: str) -> None:
    """A file read as one column whose header holds another separator was written with
    that separator: say so, instead of listing every column as missing."""
    if len(frame.columns) != 1:
        return
    header = str(frame.columns[0])
    for delimiter, name in OTHER_DELIMITERS.items():
        if header.count(delimiter) >= 1:
            raise ChurnError(
                f"{source} is {name}-separated ({delimiter!r} in its header {header[:60]!r}...), "
                "not comma-separated: save it as a comma-separated CSV."
            )


def normalise(raw: pd.DataFrame, dataset: Dataset) -> pd.DataFrame:
    """Bring records from any reader to the contract's text form.

    Whitespace-only cells of `blank_as_missing` columns become NaN (pandera's coerce won't),
    and categorical codes that arrive as numbers (SeniorCitizen 0 from JSON) become text.
    """
    out = raw.copy(deep=False)  # whole columns are replaced below, never written into
    for column, spec in dataset.numeric.items():
        if spec.blank_as_missing and column in out.columns:
            values = out[column]
            if values.dtype == object:
                out[column] = values.mask(_blank(values), np.nan)
    for column in dataset.categorical:
        if column in out.columns and pd.api.types.is_numeric_dtype(out[column]):
            values = out[column]
            integral = values.dropna()
            if pd.api.types.is_float_dtype(values) and (integral == np.floor(integral)).all():
                values = values.astype("Int64")
            out[column] = as_text(values)
    return out


def _blank(values: pd.Series) -> np.ndarray:
    """Whitespace-only cells. A cell that parses as a number is not blank, so only the
    others are stripped: the parse is one C pass, the strip a Python call per cell."""
    blank = np.zeros(len(values), dtype=bool)
    candidates = pd.to_numeric(values, errors="coerce").isna().to_numpy() & values.notna().to_numpy()
    if candidates.any():
        blank[candidates] = (values[candidates].astype(str).str.strip() == "").to_numpy()
    return blank


@immutable
class Text(pandas_engine.NpString):
    """pandera's `str`, checked in one C pass when it can be: pandera maps `isinstance(v, str)`
    over every value in Python (seconds per column at a million rows). When pandas' own
    inference finds nothing but text (and missing values) that map would be all True, so the
    answer is the same; anything else takes pandera's per-value check, which names the rows."""

    def check(self, pandera_dtype: Any, data_container: Any = None) -> Any:
        if data_container is not None and pd.api.types.infer_dtype(data_container, skipna=True) in ("string", "empty"):
            return True
        return super().check(pandera_dtype, data_container)


TEXT = Text()  # type: ignore[call-arg]  # a pandera dtype dataclass; its field has a default


def as_text(values: pd.Series) -> pd.Series:
    """Each value as `str(value)` would write it, missing values as NaN: one C pass
    (`astype(str)` calls `str` on each object) instead of a Python lambda per value."""
    text = values.astype(object).astype(str).astype(object)
    text[values.isna().to_numpy()] = np.nan
    return text


def raw_schema(dataset: Dataset, label_required: bool = True) -> pa.DataFrameSchema:
    """The contract; scoring input may omit the label (or leave it blank)."""
    columns: dict[str, pa.Column] = {
        dataset.id_column: pa.Column(TEXT, nullable=False, unique=True, coerce=True),
        dataset.label_column: pa.Column(
            TEXT,
            checks=pa.Check.isin([dataset.positive_label, dataset.negative_label]),
            nullable=not label_required,
            required=label_required,
        ),
    }
    if dataset.timestamp_column:
        columns[dataset.timestamp_column] = pa.Column("datetime64[ns]", nullable=False, coerce=True)
    for name, spec in dataset.numeric.items():
        checks = []
        if spec.min is not None:
            checks.append(pa.Check.ge(spec.min))
        checks.append(pa.Check.le(spec.max if spec.max is not None else dataset.default_max))
        if spec.integer:
            checks.append(
                pa.Check(lambda s: s.isna() | (s == np.floor(s)), element_wise=False, name="is_integer")
            )
        columns[name] = pa.Column(float, checks=checks, nullable=spec.blank_as_missing)
    for name, levels in dataset.categorical.items():
        columns[name] = pa.Column(TEXT, checks=pa.Check.isin(levels), nullable=False)
    return pa.DataFrameSchema(
        columns,
        checks=[pa.Check(lambda df: len(df) > 0, name="has_rows")],
        strict=False,
        coerce=False,
    )


def checked_schema(frame: pd.DataFrame, dataset: Dataset, label_required: bool = True) -> pa.DataFrameSchema:
    """The contract for `frame`, less the categorical columns that cannot fail it.

    A categorical column whose every value is one of its levels passes all of its checks
    (text, not missing, one of the levels: pandera's own `isin`), so pandera need not run
    them again; it costs one hash lookup per cell instead of pandera's several passes. Any
    column with a value outside its levels stays, and pandera names its failures as before.
    """
    passing = tuple(
        column
        for column, levels in dataset.categorical.items()
        if column in frame.columns and bool(frame[column].isin(levels).all())
    )
    return _schema(dataset, label_required, passing)


# Schemas built so far: by the dataset's identity (a frozen model, held here so its id is
# not reused), whether the label is required and the columns left out. Scoring validates
# batch after batch against the same few; building one (pandera deep-copies every column's
# checks to leave some out) took longer than the checks of a 25,000-row batch.
_SCHEMAS: dict[tuple[int, bool, tuple[str, ...]], tuple[Dataset, pa.DataFrameSchema]] = {}
_SCHEMAS_KEPT = 16
_SCHEMAS_LOCK = threading.Lock()  # predict validates batches on two threads


def _schema(dataset: Dataset, label_required: bool, left_out: tuple[str, ...]) -> pa.DataFrameSchema:
    key = (id(dataset), label_required, left_out)
    with _SCHEMAS_LOCK:
        cached = _SCHEMAS.get(key)
        if cached is not None and cached[0] is dataset:
            return cached[1]
        schema = raw_schema(dataset, label_required=label_required)
        if left_out:
            schema = schema.remove_columns(list(left_out))
        if len(_SCHEMAS) >= _SCHEMAS_KEPT:
            del _SCHEMAS[next(iter(_SCHEMAS))]
        _SCHEMAS[key] = (dataset, schema)
        return schema


def run_schema(schema: pa.DataFrameSchema, frame: pd.DataFrame, *, inplace: bool) -> pd.DataFrame:
    """pandera's lazy validation, without the reference cycle pandera leaves behind: it caches
    its accessor on the frame it checked (frame -> accessor -> frame), so every validated
    frame waited for the garbage collector's rare full pass. Scoring 5M rows in 50,000-row
    batches held dozens of them (1.4 GB at its peak), and the exit paid seconds of
    collection. `inplace`: coerce `frame` itself (the caller's own copy) instead of a copy."""
    try:
        typed = schema.validate(frame, lazy=True, inplace=inplace)
    except pa.errors.SchemaErrors as exc:
        vars(exc.data).pop("pandera", None)  # the frame pandera checked, `frame` or its copy
        raise
    vars(typed).pop("pandera", None)
    return typed


NOT_A_NUMBER = "wrong type (not a number)"
NOT_FINITE = "not a finite number"


def parse_numbers(
    frame: pd.DataFrame, dataset: Dataset
) -> tuple[pd.DataFrame, list[FailedCheck], dict[tuple[str, int], str]]:
    """Turn numeric columns into floats; text that is not a finite number is a failure.

    Done before pandera so that one bad cell is reported once, as a wrong type, instead of
    also failing every range check that pandera would then run on the unparsed column.
    Blanks that `fill_missing_when` does not allow are failures too. Returns the frame,
    the failed checks and {(column, row index): check} of every failing cell.
    """
    out = frame.copy(deep=False)  # whole columns are replaced below, never written into
    failures: list[FailedCheck] = []
    bad_cells: dict[tuple[str, int], str] = {}

    def fail(column: str, check: str, bad: pd.Series) -> None:
        if bad.any():
            values = tuple(dict.fromkeys(frame.loc[bad, column].map(repr)))[:EXAMPLES_PER_CHECK]
            failures.append(FailedCheck(column, check, int(bad.sum()), values))
            bad_cells.update({(column, index): check for index in out.index[bad]})

    for column in dataset.numeric:
        if column not in out.columns:
            continue
        parsed = pd.to_numeric(out[column], errors="coerce")
        given = out[column].notna()
        unparsed = given & parsed.isna()
        # Only cells that did not parse can be "nan" text: looked at alone, not every cell.
        nan_text = pd.Series(False, index=out.index)
        if unparsed.any():
            mask = unparsed.to_numpy()
            nan_text[mask] = _is_nan_text(out[column][mask]).to_numpy()
        # inf, -inf and "nan" parse as numbers but no model can use them.
        fail(column, NOT_A_NUMBER, unparsed & ~nan_text)
        fail(column, NOT_FINITE, given & (np.isinf(parsed) | (parsed.isna() & nan_text)))
        out[column] = parsed.astype(float)
    for column, spec in dataset.numeric.items():
        if column in out.columns and spec.fill_missing_when:
            blank = out[column].isna() & frame[column].isna()
            fail(column, f"missing values (filled only when {_condition_text(spec.fill_missing_when)})",
                 blank & ~fill_allowed(out, spec.fill_missing_when))
    return out, failures, bad_cells


def _is_nan_text(values: pd.Series) -> pd.Series:
    return values.astype(str).str.strip().str.lower().isin({"nan", "+nan", "-nan"}) & values.notna()


def _condition_text(condition: dict[str, list[str | float]]) -> str:
    def text(value: str | float) -> str:
        return f"{value:g}" if isinstance(value, float) else str(value)

    return " and ".join(f"{column} is {' or '.join(map(text, values))}" for column, values in condition.items())


def fill_allowed(typed: pd.DataFrame, condition: dict[str, list[str | float]]) -> pd.Series:
    """Rows where every named column holds one of its listed values (numbers compared as
    numbers, so tenure 0 matches "0" and 0.0)."""
    allowed = pd.Series(True, index=typed.index)
    for column, values in condition.items():
        if column not in typed.columns:
            return pd.Series(False, index=typed.index)
        observed = typed[column]
        if pd.api.types.is_numeric_dtype(observed):
            numbers = pd.to_numeric(pd.Series(values, dtype=object), errors="coerce").dropna()
            allowed &= observed.isin(numbers.astype(float).tolist())
        else:
            allowed &= observed.astype(str).isin([str(v) for v in values])
    return allowed


def validate_raw(raw: pd.DataFrame, dataset: Dataset, source: str = "raw data") -> pd.DataFrame:
    """Return the typed frame, or raise ContractError listing every failed check."""
    prepared, failures, bad_cells = parse_numbers(normalise(raw, dataset), dataset)
    try:
        typed = run_schema(checked_schema(prepared, dataset), prepared, inplace=True)
    except pa.errors.SchemaErrors as exc:
        cases = one_reason_per_cell(exc.failure_cases)
        already_reported = [
            (column, index) in bad_cells for column, index in zip(cases["column"], cases["index"], strict=True)
        ]
        failures += summarise_failures(cases[~pd.Series(already_reported, index=cases.index)])
    if failures:
        raise ContractError(source, sorted(failures, key=lambda f: (f.column, f.check)))
    return typed


WRONG_TYPE = "wrong type"


def one_reason_per_cell(cases: pd.DataFrame) -> pd.DataFrame:
    """pandera's failure cases with each bad value once, for the right reason.

    pandera fails one value several times: a timestamp that does not parse fails the
    coercion and then the dtype check (two "wrong type"), and a value of another type (a
    date in a categorical column) fails the dtype check and then every value check it cannot
    pass ("unknown value" too). A value of the wrong type is only that; each other reason of
    a cell counts once. Table-level cases (no row index) are all kept.
    """
    reason = cases["check"].astype(str).map(_check_name)
    in_a_row = cases["index"].notna()
    wrong_type = in_a_row & (reason == WRONG_TYPE)
    cells = pd.MultiIndex.from_frame(cases[["column", "index"]])
    shadowed = in_a_row & ~wrong_type & cells.isin(cells[wrong_type.to_numpy()])
    repeated = in_a_row & cases[["column", "index"]].assign(reason=reason).duplicated()
    return cases[~(shadowed | repeated)]


def summarise_failures(cases: pd.DataFrame) -> list[FailedCheck]:
    cases = cases.copy()
    cases["column"] = cases["column"].fillna("<table>").astype(str)
    # A missing column is reported by pandera with the column name as the failure case.
    missing = cases["check"].astype(str).str.startswith("column_in_dataframe")
    cases.loc[missing, "column"] = cases.loc[missing, "failure_case"].astype(str)
    failures = []
    for (column, check), group in cases.groupby(["column", "check"], sort=True, dropna=False):
        if str(check).startswith("column_in_dataframe"):
            failures.append(FailedCheck(column, "column is missing", 0, ()))
            continue
        if check == "has_rows":
            failures.append(FailedCheck("<table>", "no data rows (header only)", 0, ()))
            continue
        values = group["failure_case"].astype(str).map(repr)
        examples = tuple(dict.fromkeys(values))[:EXAMPLES_PER_CHECK]
        failures.append(FailedCheck(column, _check_name(str(check)), len(group), examples))
    return failures


def _check_name(check: str) -> str:
    if check.startswith("field_uniqueness") or check == "unique":
        return "duplicate values"
    if check.startswith(("coerce_dtype", "dtype(")):
        return WRONG_TYPE
    for prefix, meaning in (("greater_than_or_equal_to(", "below the minimum "), ("less_than_or_equal_to(", "above the maximum ")):
        if check.startswith(prefix):
            return meaning + check.removeprefix(prefix).removesuffix(")")
    if check.startswith("isin("):
        return f"unknown value (allowed: {check.removeprefix('isin(').removesuffix(')')})"
    if check.startswith("not_nullable"):
        return "missing values"
    return check


REASONS_COLUMN = "rejection_reasons"


def validate_rows(raw: pd.DataFrame, dataset: Dataset, source: str = "input") -> tuple[pd.DataFrame, pd.DataFrame]:
    """Split scoring input into (typed valid rows, rejected raw rows with their reasons).

    Problems of the table itself (a missing column, no rows) still raise ContractError:
    no row can be scored then.
    """
    raw = raw.reset_index(drop=True)
    prepared, _type_failures, bad_cells = parse_numbers(normalise(raw, dataset), dataset)
    reasons: dict[int, list[str]] = {}
    for column, index in sorted(bad_cells):  # each row's reasons in column order
        reasons.setdefault(index, []).append(f"{column}: {bad_cells[column, index]} {raw.at[index, column]!r}")
    try:
        # pandera coerces the id (and timestamp) column of the frame it checks: it gets a
        # shallow copy to do that in, so the valid rows keep their values and no cell is
        # copied (its own copy was a deep one of every column).
        schema = checked_schema(prepared, dataset, label_required=False)
        run_schema(schema, prepared.copy(deep=False), inplace=True)
    except pa.errors.SchemaErrors as exc:
        cases = one_reason_per_cell(exc.failure_cases)
        table_level = cases["index"].isna()
        if table_level.any():
            raise ContractError(source, summarise_failures(cases[table_level])) from None
        for column, check, value, index in zip(cases["column"], cases["check"], cases["failure_case"], cases["index"], strict=True):
            if (column, index) in bad_cells:
                continue
            reasons.setdefault(int(index), []).append(f"{column}: {_check_name(str(check))} {value!r}")
    rejected_index = sorted(reasons)
    rejected = raw.loc[rejected_index].copy()
    rejected[REASONS_COLUMN] = ["; ".join(dict.fromkeys(reasons[i])) for i in rejected_index]
    valid = prepared.drop(index=rejected_index) if rejected_index else prepared  # prepared is this call's own
    return valid, rejected.reset_index(drop=True)

"""churn.core.contract: the raw-data contract and its error reporting."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pandera.pandas as pa
import pytest

from churn.core.contract import REASONS_COLUMN, ContractError, FailedCheck, raw_schema, read_raw_csv, validate_raw
from churn.errors import ChurnError


def _failures(raw: pd.DataFrame, dataset) -> list[FailedCheck]:
    with pytest.raises(ContractError) as info:
        validate_raw(raw, dataset)
    return info.value.failures


def _only(raw: pd.DataFrame, dataset) -> FailedCheck:
    failures = _failures(raw, dataset)
    assert len(failures) == 1, failures
    return failures[0]


def _examples(failure: FailedCheck) -> list[str]:
    """Example values without the repr quotes."""
    return [e[1:-1] if e[:1] == e[-1:] == "'" else e for e in failure.examples]


# --- the valid frame ---------------------------------------------------------------------

def test_valid_frame_passes_and_is_typed(raw_frame, dataset, special_ids):
    original = raw_frame.copy()
    typed = validate_raw(raw_frame, dataset)
    pd.testing.assert_frame_equal(raw_frame, original)  # input untouched
    assert len(typed) == len(raw_frame)
    for column in dataset.numeric:
        assert typed[column].dtype == np.float64
    by_id = typed.set_index(dataset.id_column)
    assert by_id.loc["5575-GNVDE", "tenure"] == 34.0
    assert by_id.loc["5575-GNVDE", "MonthlyCharges"] == 56.95
    assert by_id.loc["5575-GNVDE", "TotalCharges"] == 1889.5
    # categorical and label columns stay text, unchanged
    for column in [*dataset.categorical, dataset.label_column, dataset.id_column]:
        assert typed[column].tolist() == raw_frame[column].tolist()


def test_blank_total_charges_is_allowed_and_becomes_missing(raw_frame, dataset, special_ids):
    typed = validate_raw(raw_frame, dataset).set_index(dataset.id_column)
    assert raw_frame.set_index(dataset.id_column).loc[special_ids["tenure_zero"], "TotalCharges"].strip() == ""
    assert np.isnan(typed.loc[special_ids["tenure_zero"], "TotalCharges"])
    assert typed["TotalCharges"].isna().sum() == 1


def test_empty_total_charges_cell_is_allowed_at_tenure_zero(raw_frame, dataset):
    raw_frame.loc[3, "TotalCharges"] = np.nan  # what read_csv gives for an empty cell
    raw_frame.loc[3, "tenure"] = "0"
    typed = validate_raw(raw_frame, dataset)
    assert np.isnan(typed.loc[3, "TotalCharges"])


def test_only_whitespace_cells_become_missing_in_blank_as_missing_columns(dataset):
    from churn.core.contract import normalise

    cells = ["", "   ", "\t", "12.5", " 7 ", "abc", None, "nan", "0"]
    raw = pd.DataFrame({"TotalCharges": pd.Series(cells, dtype=object)})
    out = normalise(raw, dataset)["TotalCharges"]
    assert out.isna().tolist() == [True, True, True, False, False, False, True, False, False]
    assert out[3:6].tolist() == ["12.5", " 7 ", "abc"]  # the rest is left to parse_numbers
    assert raw["TotalCharges"].tolist() == cells  # the caller's frame is not changed


def test_blank_total_charges_after_billing_started_is_not_filled_silently(raw_frame, dataset):
    # fill_missing_when: {tenure: [0]} in params.yaml: blank means "not billed yet" only.
    raw_frame.loc[3, "TotalCharges"] = " "
    failure = _only(raw_frame, dataset)
    assert (failure.column, failure.failing_rows) == ("TotalCharges", 1)
    assert failure.check == "missing values (filled only when tenure is 0)"
    # Without the restriction the same blank is filled, as before.
    spec = dataset.numeric["TotalCharges"].model_copy(update={"fill_missing_when": None})
    unrestricted = dataset.model_copy(update={"numeric": {**dataset.numeric, "TotalCharges": spec}})
    assert np.isnan(validate_raw(raw_frame, unrestricted).loc[3, "TotalCharges"])


def test_blank_tenure_is_not_allowed(raw_frame, dataset):
    raw_frame.loc[2, "tenure"] = np.nan
    failure = _only(raw_frame, dataset)
    assert failure.column == "tenure"
    assert "missing" in failure.check
    assert failure.failing_rows == 1


def test_whitespace_tenure_is_not_allowed(raw_frame, dataset):
    raw_frame.loc[2, "tenure"] = " "
    failure = _only(raw_frame, dataset)
    assert failure.column == "tenure"
    assert failure.failing_rows == 1


# --- one problem at a time ---------------------------------------------------------------

def test_missing_column(raw_frame, dataset):
    failure = _only(raw_frame.drop(columns=["Contract"]), dataset)
    assert failure.column == "Contract"
    assert "missing" in failure.check
    assert "Contract" in failure.describe()


def test_wrong_type(raw_frame, dataset):
    raw_frame.loc[4, "tenure"] = "twelve"
    failure = _only(raw_frame, dataset)  # reported once: not also as missing / out of range
    assert failure.column == "tenure"
    assert "type" in failure.check
    assert failure.failing_rows == 1
    assert _examples(failure) == ["twelve"]


def test_negative_tenure(raw_frame, dataset):
    raw_frame.loc[[1, 6], "tenure"] = ["-3", "-5"]
    failure = _only(raw_frame, dataset)
    assert failure.column == "tenure"
    assert "minimum" in failure.check
    assert failure.failing_rows == 2
    assert sorted(float(v) for v in _examples(failure)) == [-5.0, -3.0]


def test_non_integer_tenure(raw_frame, dataset):
    raw_frame.loc[1, "tenure"] = "2.5"
    failure = _only(raw_frame, dataset)
    assert failure.column == "tenure"
    assert failure.failing_rows == 1
    assert [float(v) for v in _examples(failure)] == [2.5]


def test_duplicate_customer_id(raw_frame, dataset):
    duplicated = raw_frame.loc[0, dataset.id_column]
    raw_frame.loc[5, dataset.id_column] = duplicated
    failure = _only(raw_frame, dataset)
    assert failure.column == dataset.id_column
    assert "duplicate" in failure.check
    assert failure.failing_rows == 2
    assert _examples(failure) == [duplicated]


def test_unknown_category(raw_frame, dataset):
    raw_frame.loc[[0, 2, 8], "Contract"] = "Monthly"
    failure = _only(raw_frame, dataset)
    assert failure.column == "Contract"
    assert "unknown value" in failure.check
    assert all(level in failure.check for level in dataset.categorical["Contract"])
    assert failure.failing_rows == 3
    assert _examples(failure) == ["Monthly"]  # examples are distinct values


def test_unknown_label(raw_frame, dataset):
    raw_frame.loc[7, dataset.label_column] = "Maybe"
    failure = _only(raw_frame, dataset)
    assert failure.column == dataset.label_column
    assert "unknown value" in failure.check
    assert failure.failing_rows == 1
    assert _examples(failure) == ["Maybe"]


def test_header_only_frame(raw_frame, dataset):
    failure = _only(raw_frame.iloc[:0], dataset)
    assert failure.failing_rows == 0
    assert "no data rows" in failure.check


def test_examples_are_capped_and_distinct(raw_frame, dataset):
    big = pd.concat([raw_frame] * 10, ignore_index=True)
    big[dataset.id_column] = [f"id-{i}" for i in range(len(big))]
    big.loc[:19, "PaymentMethod"] = [f"Cash {i % 8}" for i in range(20)]
    failure = _only(big, dataset)
    assert failure.column == "PaymentMethod"
    assert failure.failing_rows == 20
    examples = _examples(failure)
    assert 1 <= len(examples) <= 5
    assert len(set(examples)) == len(examples)
    assert set(examples) <= {f"Cash {i}" for i in range(8)}


@pytest.mark.parametrize("value", ["inf", "Infinity"])
def test_infinite_number_breaks_the_contract(raw_frame, dataset, value):
    raw_frame.loc[0, "MonthlyCharges"] = value
    failure = _only(raw_frame, dataset)
    assert failure.column == "MonthlyCharges"


# --- several problems at once -----------------------------------------------------------

@pytest.fixture
def seven_problems(raw_frame, dataset):
    raw = raw_frame.drop(columns=["PaymentMethod"])                    # 1 missing column
    raw.loc[0, "tenure"] = "twelve"                                    # 2 wrong type
    raw.loc[1, "tenure"] = "-3"                                        # 3 below minimum
    raw.loc[3, dataset.id_column] = raw.loc[2, dataset.id_column]      # 4 duplicate id
    raw.loc[4, "Contract"] = "Monthly"                                 # 5 unknown category
    raw.loc[5, dataset.label_column] = "Maybe"                         # 6 unknown label
    raw.loc[6, "MonthlyCharges"] = np.nan                              # 7 missing value
    return raw


def test_all_problems_reported_together(seven_problems, dataset):
    failures = _failures(seven_problems, dataset)
    by_column = {}
    for failure in failures:
        by_column.setdefault(failure.column, []).append(failure)
    assert len(failures) == 7
    assert set(by_column) == {"PaymentMethod", "tenure", dataset.id_column, "Contract",
                              dataset.label_column, "MonthlyCharges"}
    assert len(by_column["tenure"]) == 2
    assert {f.failing_rows for f in by_column["tenure"]} == {1}
    assert by_column[dataset.id_column][0].failing_rows == 2
    assert by_column["MonthlyCharges"][0].failing_rows == 1


def test_error_message_is_short_and_informative(seven_problems, dataset):
    with pytest.raises(ContractError) as info:
        validate_raw(seven_problems, dataset, source="data/raw/x.csv")
    message = str(info.value)
    lines = message.splitlines()
    assert len(lines) <= 15
    assert "data/raw/x.csv" in lines[0]
    for failure in info.value.failures:
        line = next(text for text in lines if failure.describe() in text)
        assert failure.column in line
        if failure.failing_rows:
            assert f"in {failure.failing_rows} row" in line
            assert all(example in line for example in failure.examples)
    assert any("'twelve'" in text and "tenure" in text for text in lines)
    assert any("'Monthly'" in text and "Contract" in text and "1 row" in text for text in lines)
    assert any("'Maybe'" in text and dataset.label_column in text for text in lines)
    assert any("PaymentMethod" in text and "missing" in text for text in lines)


def test_contract_error_is_a_churn_error():
    assert issubclass(ContractError, ChurnError)


# --- reading the file -------------------------------------------------------------------

def test_read_raw_csv_keeps_text(tmp_path, raw_csv_text, raw_frame):
    path = tmp_path / "raw.csv"
    path.write_text(raw_csv_text)
    df = read_raw_csv(path)
    pd.testing.assert_frame_equal(df, raw_frame)
    assert (df["SeniorCitizen"].isin(["0", "1"])).all()  # not parsed as ints


def test_read_raw_csv_zero_bytes(tmp_path):
    path = tmp_path / "raw.csv"
    path.write_bytes(b"")
    with pytest.raises(ChurnError, match="empty"):
        read_raw_csv(path)


def test_read_raw_csv_missing_file(tmp_path):
    with pytest.raises(ChurnError, match="not found"):
        read_raw_csv(tmp_path / "absent.csv")


@pytest.mark.parametrize("content", ["\n", "\n\n  \n"])
def test_read_raw_csv_no_header(tmp_path, content):
    path = tmp_path / "raw.csv"
    path.write_text(content)
    with pytest.raises(ChurnError, match="no header"):
        read_raw_csv(path)


def test_rows_without_header_line_break_the_contract(tmp_path, raw_csv_text, dataset):
    path = tmp_path / "raw.csv"
    path.write_text(raw_csv_text.split("\n", 1)[1])  # data rows only
    with pytest.raises(ChurnError):
        validate_raw(read_raw_csv(path), dataset, source=str(path))


def test_read_raw_csv_unparseable(tmp_path):
    path = tmp_path / "raw.csv"
    path.write_text('a,b\n1,"unterminated\n')
    with pytest.raises(ChurnError, match="not a readable CSV"):
        read_raw_csv(path)


def test_header_only_file_breaks_the_contract(tmp_path, raw_csv_text, dataset):
    path = tmp_path / "raw.csv"
    path.write_text(raw_csv_text.split("\n", 1)[0] + "\n")
    with pytest.raises(ContractError) as info:
        validate_raw(read_raw_csv(path), dataset)
    assert len(info.value.failures) == 1
    assert "no data rows" in info.value.failures[0].check


def test_read_raw_csv_keeps_na_like_text_and_reads_only_empty_cells_as_missing(tmp_path, raw_csv_text):
    # "NA", "None" and "null" are text to the contract (an unknown level), never silently
    # missing; only an empty cell is missing.
    lines = raw_csv_text.splitlines()
    header = lines[0].split(",")
    row = lines[1].split(",")
    row[header.index("PaymentMethod")] = "NA"
    row[header.index("gender")] = "None"
    row[header.index("TotalCharges")] = ""
    path = tmp_path / "raw.csv"
    path.write_text("\n".join([lines[0], ",".join(row), *lines[2:]]) + "\n")
    frame = read_raw_csv(path)
    assert frame.loc[0, "PaymentMethod"] == "NA"
    assert frame.loc[0, "gender"] == "None"
    assert pd.isna(frame.loc[0, "TotalCharges"])


@pytest.mark.parametrize(
    ("check", "meaning"),
    [
        ("field_uniqueness", "duplicate values"),
        ("unique", "duplicate values"),
        ("coerce_dtype('float64')", "wrong type"),
        ("dtype('float64')", "wrong type"),
        ("greater_than_or_equal_to(0)", "below the minimum 0"),
        ("less_than_or_equal_to(1000)", "above the maximum 1000"),
        ("isin(['Yes', 'No'])", "unknown value (allowed: ['Yes', 'No'])"),
        ("not_nullable", "missing values"),
        ("is_integer", "is_integer"),
    ],
)
def test_pandera_check_names_read_as_plain_words(check, meaning):
    from churn.core.contract import _check_name

    assert _check_name(check) == meaning


# --- scoring input, row by row (validate_rows) -------------------------------------------


def test_valid_scoring_rows_are_all_kept(raw_frame, dataset):
    from churn.core.contract import REASONS_COLUMN, validate_rows

    valid, rejected = validate_rows(raw_frame, dataset)
    assert len(valid) == len(raw_frame) and rejected.empty
    assert list(rejected.columns) == [*raw_frame.columns, REASONS_COLUMN]
    assert valid["tenure"].dtype == float


def test_each_bad_row_is_rejected_with_all_its_reasons_and_the_rest_scored(raw_frame, dataset):
    from churn.core.contract import REASONS_COLUMN, validate_rows

    raw = raw_frame.copy()
    raw.index = range(100, 100 + len(raw))  # any index: rows are reported by position
    raw.iloc[1, raw.columns.get_loc("tenure")] = "abc"
    raw.iloc[1, raw.columns.get_loc("MonthlyCharges")] = "x"
    raw.iloc[4, raw.columns.get_loc("Contract")] = "Weekly"
    raw.iloc[4, raw.columns.get_loc("tenure")] = "-3"
    valid, rejected = validate_rows(raw, dataset, source="batch.csv")
    assert list(rejected[dataset.id_column]) == [raw_frame.loc[1, dataset.id_column], raw_frame.loc[4, dataset.id_column]]
    assert list(rejected.index) == [0, 1]
    first, second = rejected[REASONS_COLUMN]
    assert first == "MonthlyCharges: wrong type (not a number) 'x'; tenure: wrong type (not a number) 'abc'"
    assert second == ("tenure: below the minimum 0.0 -3.0; "
                      "Contract: unknown value (allowed: ['Month-to-month', 'One year', 'Two year']) 'Weekly'")
    assert len(valid) == len(raw) - 2
    assert raw_frame.loc[1, dataset.id_column] not in set(valid[dataset.id_column])


def test_scoring_rows_may_omit_or_blank_the_label(raw_frame, dataset):
    from churn.core.contract import validate_rows

    valid, rejected = validate_rows(raw_frame.drop(columns=[dataset.label_column]), dataset)
    assert rejected.empty and len(valid) == len(raw_frame)
    blank = raw_frame.copy()
    blank[dataset.label_column] = np.nan
    valid, rejected = validate_rows(blank, dataset)
    assert rejected.empty and len(valid) == len(raw_frame)


def test_a_table_problem_in_scoring_input_raises_naming_the_source(raw_frame, dataset):
    from churn.core.contract import validate_rows

    with pytest.raises(ContractError, match=r"batch\.csv breaks the data contract") as info:
        validate_rows(raw_frame.drop(columns=["Contract"]), dataset, source="batch.csv")
    assert [(f.column, f.check) for f in info.value.failures] == [("Contract", "column is missing")]
    with pytest.raises(ContractError, match=r"^input breaks the data contract"):
        validate_rows(raw_frame.drop(columns=["Contract"]), dataset)


def test_a_repeated_reason_is_given_once(raw_frame, dataset):
    from churn.core.contract import REASONS_COLUMN, validate_rows

    raw = raw_frame.copy()
    raw.loc[0, "tenure"] = "2.5"  # not an integer: one reason, however pandera reports it
    _, rejected = validate_rows(raw, dataset)
    (reason,) = rejected[REASONS_COLUMN]
    parts = reason.split("; ")
    assert len(parts) == len(set(parts)) and "tenure" in reason


def test_table_problems_of_scoring_input_come_table_first(raw_frame, dataset):
    from churn.core.contract import validate_rows

    with pytest.raises(ContractError) as info:
        validate_rows(raw_frame.head(0).drop(columns=["Contract"]), dataset)
    assert info.value.failures == [
        FailedCheck("<table>", "no data rows (header only)", 0, ()),
        FailedCheck("Contract", "column is missing", 0, ()),
    ]
    assert "  - Contract: column is missing\n" in str(info.value)

# ------------------------------------------- absurd numbers, delimiters (issue 9)


@pytest.mark.parametrize("column", ["MonthlyCharges", "TotalCharges", "tenure"])
def test_absurdly_large_but_finite_numbers_break_the_default_upper_bound(raw_frame, dataset, column):
    raw_frame.loc[4, column] = "1e308"
    failure = _only(raw_frame, dataset)
    assert failure.column == column
    # tenure has its own max (1000); the others get dataset.default_max.
    bound = dataset.numeric[column].max or dataset.default_max
    assert failure.check == f"above the maximum {bound}"
    assert _examples(failure) == ["1e+308"]


def test_the_default_upper_bound_is_configurable(raw_frame, dataset):
    raw_frame.loc[4, "MonthlyCharges"] = "5000"
    validate_raw(raw_frame, dataset)  # well below the default bound
    strict = dataset.model_copy(update={"default_max": 1000.0})
    failures = {f.column: f for f in _failures(raw_frame, strict)}
    assert failures["MonthlyCharges"].check == "above the maximum 1000.0"
    assert failures["MonthlyCharges"].failing_rows == 1
    assert failures["TotalCharges"].check == "above the maximum 1000.0"  # no own max either
    assert "tenure" not in failures  # its own max (1000) applies


@pytest.mark.parametrize("text", ["inf", "-inf", "nan", "NaN", "Infinity", "+nan", " -NaN "])
def test_non_finite_numbers_are_contract_failures(raw_frame, dataset, text):
    raw_frame.loc[4, "MonthlyCharges"] = text
    failure = _only(raw_frame, dataset)
    assert (failure.column, failure.check, _examples(failure)) == ("MonthlyCharges", "not a finite number", [text])


def test_non_finite_scoring_rows_are_rejected_with_their_reason(raw_frame, dataset):
    from churn.core.contract import validate_rows

    raw_frame.loc[4, "TotalCharges"] = "inf"
    raw_frame.loc[5, "MonthlyCharges"] = "1e308"
    valid, rejected = validate_rows(raw_frame, dataset)
    assert len(valid) == len(raw_frame) - 2
    reasons = dict(zip(rejected["customerID"], rejected["rejection_reasons"], strict=True))
    assert reasons[raw_frame.loc[4, "customerID"]] == "TotalCharges: not a finite number 'inf'"
    assert reasons[raw_frame.loc[5, "customerID"]].startswith("MonthlyCharges: above the maximum")


@pytest.mark.parametrize("delimiter, name", [(";", "semicolon"), ("\t", "tab"), ("|", "pipe")])
def test_a_file_with_the_wrong_delimiter_says_so(tmp_path, raw_csv_text, delimiter, name):
    path = tmp_path / "raw.csv"
    path.write_text(raw_csv_text.replace(",", delimiter))
    with pytest.raises(ChurnError, match=f"is {name}-separated") as info:
        read_raw_csv(path)
    assert "missing" not in str(info.value)
    assert "comma-separated" in str(info.value)


def test_contract_errors_say_what_is_true_about_previous_outputs(raw_frame, dataset):
    raw_frame.loc[4, "MonthlyCharges"] = "abc"
    with pytest.raises(ContractError) as info:
        validate_raw(raw_frame, dataset)
    assert "untouched" not in str(info.value)
    assert "dvc checkout" in str(info.value)


# ------------------------------------------- every rule of the contract, one at a time (issue 14)


def _with(dataset, **numeric_updates):
    """The dataset with TotalCharges' spec changed (for fill_missing_when variants)."""
    spec = dataset.numeric["TotalCharges"].model_copy(update=numeric_updates)
    return dataset.model_copy(update={"numeric": {**dataset.numeric, "TotalCharges": spec}})


def test_a_failed_check_reads_as_one_line_with_its_rows_and_examples():
    assert FailedCheck("tenure", "wrong type", 1, ("'a'",)).describe() == "tenure: wrong type in 1 row (e.g. 'a')"
    assert (FailedCheck("tenure", "wrong type", 2, ("'a'", "'b'")).describe()
            == "tenure: wrong type in 2 rows (e.g. 'a', 'b')")
    assert FailedCheck("Contract", "column is missing", 0, ()).describe() == "Contract: column is missing"


def test_the_contract_error_says_how_to_fix_it_and_what_became_of_the_outputs():
    error = ContractError("data/raw/x.csv", [FailedCheck("Contract", "column is missing", 0, ())])
    assert str(error).splitlines() == [
        "data/raw/x.csv breaks the data contract (1 failed checks):",
        "  - Contract: column is missing",
        "Fix the file (or the `dataset` section of params.yaml if the contract is wrong) and rerun. "
        "Nothing was written (under `dvc repro`, DVC removed this stage's outputs before it ran: "
        "`dvc checkout` restores the ones dvc.lock records).",
    ]


def test_raw_data_is_the_default_source_named(raw_frame, dataset):
    with pytest.raises(ContractError, match=r"^raw data breaks the data contract"):
        validate_raw(raw_frame.drop(columns=["Contract"]), dataset)


def test_a_two_column_file_with_another_delimiter_is_named_with_its_path(tmp_path):
    path = tmp_path / "two.csv"
    header = "a;" + "b" * 80
    path.write_text(f"{header}\n1;2\n")
    with pytest.raises(ChurnError) as info:
        read_raw_csv(path)
    assert str(info.value) == (
        f"{path} is semicolon-separated (';' in its header {header[:60]!r}...), "
        "not comma-separated: save it as a comma-separated CSV."
    )


def test_the_label_column_is_required_in_training_data(raw_frame, dataset):
    failure = _only(raw_frame.drop(columns=[dataset.label_column]), dataset)
    assert (failure.column, failure.check) == (dataset.label_column, "column is missing")


def test_a_numeric_label_is_the_wrong_type(raw_frame, dataset):
    raw_frame[dataset.label_column] = (raw_frame[dataset.label_column] == "Yes").astype(int)
    checks = {(f.column, f.check) for f in _failures(raw_frame, dataset)}
    assert (dataset.label_column, "wrong type") in checks


def test_a_categorical_column_of_another_type_is_the_wrong_type(raw_frame, dataset):
    raw_frame["Contract"] = pd.Timestamp("2024-01-01")
    checks = {(f.column, f.check) for f in _failures(raw_frame, dataset)}
    assert ("Contract", "wrong type") in checks


def test_a_missing_category_is_a_missing_value(raw_frame, dataset):
    raw_frame.loc[3, "Contract"] = np.nan
    failure = _only(raw_frame, dataset)
    assert (failure.column, failure.check, failure.failing_rows) == ("Contract", "missing values", 1)


def test_a_missing_customer_id_is_a_missing_value(raw_frame, dataset):
    raw_frame.loc[2, dataset.id_column] = np.nan
    failure = _only(raw_frame, dataset)
    assert (failure.column, failure.check, failure.failing_rows) == (dataset.id_column, "missing values", 1)


def test_numeric_ids_are_accepted_as_text(raw_frame, dataset):
    raw_frame[dataset.id_column] = range(100, 100 + len(raw_frame))
    typed = validate_raw(raw_frame, dataset)
    assert typed[dataset.id_column].tolist()[:2] == ["100", "101"]


def test_one_row_is_enough_and_extra_columns_are_kept(raw_frame, dataset):
    typed = validate_raw(raw_frame.head(1).assign(note="x"), dataset)
    assert len(typed) == 1
    assert typed["note"].tolist() == ["x"]


def test_a_fractional_tenure_fails_the_integer_check_by_name(raw_frame, dataset):
    raw_frame.loc[1, "tenure"] = "2.5"
    assert _only(raw_frame, dataset).check == "is_integer"


def test_a_missing_numeric_column_does_not_stop_the_others_from_being_checked(raw_frame, dataset):
    raw = raw_frame.drop(columns=["tenure"])
    raw.loc[0, "MonthlyCharges"] = "abc"
    failures = [(f.column, f.check) for f in _failures(raw, dataset)]
    # Without tenure, the tenure-0 row's blank TotalCharges cannot be shown to be allowed.
    assert failures == [
        ("MonthlyCharges", "wrong type (not a number)"),
        ("TotalCharges", "missing values (filled only when tenure is 0)"),
        ("tenure", "column is missing"),
    ]


def test_unparseable_text_in_a_fillable_column_is_a_wrong_type_not_a_missing_value(raw_frame, dataset):
    raw_frame.loc[3, "TotalCharges"] = "abc"
    failure = _only(raw_frame, dataset)
    assert (failure.column, failure.check) == ("TotalCharges", "wrong type (not a number)")


def test_fill_missing_when_compares_numbers_as_numbers(raw_frame, dataset, special_ids):
    # "0" in params.yaml (quoted) matches tenure 0 read from the file as "0"; a value that is
    # no number never matches a numeric column, and does not break the check.
    for values in (["0"], [0.0], ["zero", 0.0]):
        typed = validate_raw(raw_frame, _with(dataset, fill_missing_when={"tenure": values}))
        assert typed.set_index(dataset.id_column)["TotalCharges"].isna().sum() == 1
    failure = _only(raw_frame, _with(dataset, fill_missing_when={"tenure": ["zero"]}))
    assert failure.check == "missing values (filled only when tenure is zero)"


def test_fill_missing_when_needs_every_condition(raw_frame, dataset, special_ids):
    row = raw_frame.index[raw_frame[dataset.id_column] == special_ids["tenure_zero"]][0]
    assert raw_frame.loc[row, "Contract"] == "Two year"
    both = {"Contract": ["Two year"], "tenure": [0.0, "1"]}
    validate_raw(raw_frame, _with(dataset, fill_missing_when=both))  # tenure 0 and a two-year contract
    failing = raw_frame.copy()
    failing.loc[row, "Contract"] = "One year"
    failure = _only(failing, _with(dataset, fill_missing_when=both))
    assert failure.check == "missing values (filled only when Contract is Two year and tenure is 0 or 1)"
    # the other order of the same two conditions
    failure = _only(failing, _with(dataset, fill_missing_when=dict(reversed(both.items()))))
    assert failure.check == "missing values (filled only when tenure is 0 or 1 and Contract is Two year)"
    # a blank at tenure 5 on a two-year contract: one condition of two is not enough
    late = raw_frame.copy()
    late.loc[row, "tenure"] = "5"
    assert _only(late, _with(dataset, fill_missing_when=dict(reversed(both.items())))).failing_rows == 1


def test_a_timestamp_column_is_parsed_and_required(raw_frame, dataset):
    stamped = dataset.model_copy(update={"timestamp_column": "signup"})
    dates = ["2024-01-02"] * len(raw_frame)
    typed = validate_raw(raw_frame.assign(signup=dates), stamped)
    assert typed["signup"].dtype == "datetime64[ns]"
    assert typed["signup"].iloc[0] == pd.Timestamp("2024-01-02")
    missing = _failures(raw_frame.assign(signup=[*dates[:-1], np.nan]), stamped)
    assert [(f.column, f.check) for f in missing] == [("signup", "missing values")]
    wrong = _failures(raw_frame.assign(signup=[*dates[:-1], "not a date"]), stamped)
    assert {(f.column, f.check) for f in wrong} == {("signup", "wrong type")}


def test_categorical_codes_that_arrive_as_numbers_are_read_as_text(raw_frame, dataset):
    from churn.core.contract import REASONS_COLUMN, validate_rows

    codes = raw_frame["SeniorCitizen"].astype(int)  # JSON gives 0/1
    valid, rejected = validate_rows(raw_frame.assign(SeniorCitizen=codes), dataset)
    assert rejected.empty
    assert valid["SeniorCitizen"].tolist() == raw_frame["SeniorCitizen"].tolist()
    floats = codes.astype(float)  # a column with a gap comes as floats: 0.0, 1.0, NaN
    floats.iloc[2] = np.nan
    valid, rejected = validate_rows(raw_frame.assign(SeniorCitizen=floats), dataset)
    assert valid["SeniorCitizen"].tolist() == raw_frame["SeniorCitizen"].drop(index=2).tolist()
    assert rejected[REASONS_COLUMN].tolist() == ["SeniorCitizen: missing values nan"]
    fractional = floats.fillna(0.5)  # 0.5 is no code: every value stays as written
    valid, rejected = validate_rows(raw_frame.assign(SeniorCitizen=fractional), dataset)
    assert valid.empty
    assert rejected[REASONS_COLUMN].iloc[2] == "SeniorCitizen: unknown value (allowed: ['0', '1']) '0.5'"
    assert rejected[REASONS_COLUMN].iloc[0] == "SeniorCitizen: unknown value (allowed: ['0', '1']) '0.0'"


def test_the_contract_never_writes_into_its_input(raw_frame, dataset):
    # normalise and parse_numbers share the input's columns (shallow copies) and replace the
    # ones they change: blanks, numbers as text, codes as numbers, and a coerced id all take
    # a path that would show here if one wrote into a shared column.
    from churn.core.contract import validate_rows

    raw = raw_frame.assign(SeniorCitizen=raw_frame["SeniorCitizen"].astype(int))
    raw.loc[0, "TotalCharges"] = " "
    raw.loc[1, "tenure"] = "abc"
    raw.loc[2, "MonthlyCharges"] = " nan "
    raw.loc[3, "Contract"] = "Weekly"
    original = raw.copy()
    with pytest.raises(ContractError):
        validate_raw(raw, dataset)
    pd.testing.assert_frame_equal(raw, original)
    valid, rejected = validate_rows(raw, dataset)
    pd.testing.assert_frame_equal(raw, original)
    assert len(rejected) >= 3 and len(valid) + len(rejected) == len(raw)
    clean = raw_frame.copy()
    validate_raw(raw_frame, dataset)  # the valid path coerces in place: its own copy only
    pd.testing.assert_frame_equal(raw_frame, clean)


# ------------------------------------- one bad value, one reason (issue 14's mutation work)


def test_an_unparseable_timestamp_is_reported_once_as_the_wrong_type(raw_frame, dataset):
    from churn.core.contract import REASONS_COLUMN, validate_rows

    stamped = dataset.model_copy(update={"timestamp_column": "signup"})
    dates = ["2024-01-02"] * len(raw_frame)
    dates[3], dates[5] = "not a date", np.nan
    failures = _failures(raw_frame.assign(signup=dates), stamped)
    # pandera fails the value twice (coercion, then dtype): it is one wrong value
    assert failures == [
        FailedCheck("signup", "missing values", 1, ("'nan'",)),
        FailedCheck("signup", "wrong type", 1, ("'not a date'",)),
    ]
    valid, rejected = validate_rows(raw_frame.assign(signup=dates), stamped)
    assert rejected[REASONS_COLUMN].tolist() == ["signup: wrong type 'not a date'", "signup: missing values nan"]
    assert len(valid) == len(raw_frame) - 2


def test_a_date_in_a_categorical_column_is_the_wrong_type_and_nothing_else(raw_frame, dataset):
    from churn.core.contract import REASONS_COLUMN, validate_rows

    allowed = "unknown value (allowed: ['Month-to-month', 'One year', 'Two year'])"
    contract = raw_frame["Contract"].astype(object)
    contract[0], contract[1] = pd.Timestamp("2024-01-01"), "Three year"
    raw = raw_frame.assign(Contract=contract)
    raw.loc[0, "gender"] = "X"  # another column's problem in the same row still counts
    assert _failures(raw, dataset) == [
        FailedCheck("Contract", allowed, 1, ("'Three year'",)),
        FailedCheck("Contract", "wrong type", 1, ("'2024-01-01 00:00:00'",)),
        FailedCheck("gender", "unknown value (allowed: ['Female', 'Male'])", 1, ("'X'",)),
    ]
    _, rejected = validate_rows(raw, dataset)
    assert rejected[REASONS_COLUMN].tolist() == [
        "gender: unknown value (allowed: ['Female', 'Male']) 'X'; Contract: wrong type Timestamp('2024-01-01 00:00:00')",
        f"Contract: {allowed} 'Three year'",
    ]


def test_a_numeric_label_is_only_the_wrong_type(raw_frame, dataset):
    raw_frame[dataset.label_column] = (raw_frame[dataset.label_column] == "Yes").astype(int)
    failure = _only(raw_frame, dataset)
    assert (failure.column, failure.check, failure.failing_rows) == (dataset.label_column, "wrong type", len(raw_frame))


# --- the Text dtype's one-pass check ---------------------------------------------------

@pytest.fixture
def per_value_calls(monkeypatch):
    """Records each time pandera's own per-value `str` check runs (it answers as before)."""
    from pandera.engines import pandas_engine

    calls = []
    original = pandas_engine.NpString.check

    def spy(self, pandera_dtype, data_container=None):
        calls.append(None if data_container is None else list(data_container))
        return original(self, pandera_dtype, data_container)

    monkeypatch.setattr(pandas_engine.NpString, "check", spy)
    return calls


@pytest.mark.parametrize(
    "values",
    [["a", "b"], ["a", np.nan, None, "b"], [], [np.nan, None]],
    ids=["text", "text with missing values", "empty", "only missing values"],
)
def test_text_and_missing_values_pass_without_the_per_value_check(per_value_calls, values):
    from churn.core.contract import TEXT

    assert TEXT.check(TEXT, pd.Series(values, dtype=object)) is True
    assert per_value_calls == []


def test_anything_but_text_goes_to_the_per_value_check_which_names_the_cell(per_value_calls):
    from churn.core.contract import TEXT

    answer = TEXT.check(TEXT, pd.Series(["a", 3, np.nan], dtype=object))
    assert answer.tolist() == [True, False, True]
    assert per_value_calls == [["a", 3, np.nan]]


def test_text_compared_as_a_dtype_without_data(per_value_calls):
    from pandera.engines import numpy_engine

    from churn.core.contract import TEXT

    assert TEXT.check(TEXT) is True
    assert TEXT.check(numpy_engine.Object()) is True
    assert TEXT.check(numpy_engine.Float64()) is False


def test_the_contract_requires_the_label_unless_told_otherwise(dataset):
    from churn.core.contract import raw_schema

    assert raw_schema(dataset).columns[dataset.label_column].nullable is False
    assert raw_schema(dataset).columns[dataset.label_column].required is True
    scoring = raw_schema(dataset, label_required=False).columns[dataset.label_column]
    assert scoring.nullable is True and scoring.required is False


def test_categorical_columns_that_cannot_fail_are_left_out_of_pandera(raw_frame, dataset):
    from churn.core.contract import checked_schema, raw_schema

    categorical = list(dataset.categorical)
    frame = raw_frame.copy()
    schema = checked_schema(frame, dataset)
    assert not set(categorical) & set(schema.columns)
    assert set(schema.columns) == set(raw_schema(dataset).columns) - set(categorical)
    frame.loc[frame.index[0], categorical[0]] = "no such level"
    kept = checked_schema(frame, dataset).columns
    assert categorical[0] in kept and not set(categorical[1:]) & set(kept)


def test_schemas_are_built_once_per_dataset_and_left_out_columns(raw_frame, dataset):
    from churn.core.contract import checked_schema

    first = checked_schema(raw_frame, dataset, label_required=False)
    assert checked_schema(raw_frame.copy(), dataset, label_required=False) is first
    assert checked_schema(raw_frame, dataset) is not first  # the label is required there
    broken = raw_frame.copy()
    broken.loc[0, "Contract"] = "Weekly"
    assert "Contract" in checked_schema(broken, dataset, label_required=False).columns
    # Another dataset (an equal copy, or one with other levels) gets its own schema.
    levels = {**dataset.categorical, "Contract": [*dataset.categorical["Contract"], "Weekly"]}
    wider = dataset.model_copy(update={"categorical": levels})
    assert "Contract" not in checked_schema(broken, wider, label_required=False).columns
    assert checked_schema(raw_frame, dataset.model_copy(), label_required=False) is not first


def test_valid_rows_keep_the_values_they_came_with(raw_frame, dataset):
    # pandera coerces the id column of what it checks; the rows handed on are the input's.
    from churn.core.contract import validate_rows

    raw = raw_frame.copy()
    raw[dataset.id_column] = pd.Series(range(len(raw)), dtype=object)  # ids from JSON numbers
    valid, rejected = validate_rows(raw, dataset)
    assert not len(rejected)
    assert valid[dataset.id_column].tolist() == list(range(len(raw)))
    assert all(type(value) is int for value in valid[dataset.id_column])
    assert all(type(value) is int for value in raw[dataset.id_column])


def test_ids_that_read_the_same_as_text_are_duplicates_whatever_their_type(raw_frame, dataset):
    # JSON records may send one id as a number and another as text: the contract compares
    # ids as text (pandera coerces the id column before its uniqueness check).
    from churn.core.contract import validate_rows

    raw = raw_frame.head(3).copy()
    raw[dataset.id_column] = pd.Series([7, "7", "8"], dtype=object)
    valid, rejected = validate_rows(raw, dataset)
    assert valid[dataset.id_column].tolist() == ["8"]
    assert rejected[dataset.id_column].tolist() == [7, "7"]
    assert rejected[REASONS_COLUMN].str.contains("duplicate values").all()


def test_validated_frames_hold_no_reference_cycle(raw_frame, dataset):
    # pandera caches its accessor on the frame it validates, and the accessor points back at
    # the frame: each validated batch then waited for a full garbage collection (predict's
    # memory grew with the file). The contract drops that cache from every frame it touched.
    from churn.core.contract import normalise, parse_numbers, run_schema, validate_rows

    typed = validate_raw(raw_frame, dataset)
    valid, _ = validate_rows(raw_frame, dataset)
    assert "pandera" not in vars(typed) and "pandera" not in vars(valid)
    schema = raw_schema(dataset)
    prepared = parse_numbers(normalise(raw_frame, dataset), dataset)[0]
    for inplace in (True, False):
        frame = prepared.copy()
        checked = run_schema(schema, frame, inplace=inplace)
        assert "pandera" not in vars(checked) and "pandera" not in vars(frame)
        assert (checked is frame) is inplace
        broken = prepared.assign(tenure=-prepared["tenure"] - 1)  # fails the range check
        with pytest.raises(pa.errors.SchemaErrors) as failed:
            run_schema(schema, broken, inplace=inplace)
        assert (failed.value.data is broken) is inplace
        assert "pandera" not in vars(failed.value.data) and "pandera" not in vars(broken)

"""churn.config: params.yaml is parsed strictly, and every problem is a ChurnError naming the key."""

from __future__ import annotations

from pathlib import Path

import pydantic
import pytest
import yaml

from churn.config import Params, load_params, parse_params
from churn.errors import ChurnError

PARAMS_FILE = Path(__file__).resolve().parent.parent / "params.yaml"


@pytest.fixture
def raw_params() -> dict:
    """The repository's params.yaml as a plain dict, to be broken one key at a time."""
    return yaml.safe_load(PARAMS_FILE.read_text())


def _write(tmp_path: Path, raw) -> Path:
    path = tmp_path / "params.yaml"
    path.write_text(yaml.safe_dump(raw) if not isinstance(raw, str) else raw)
    return path


def test_repo_params_load(params):
    assert isinstance(params, Params)
    raw = yaml.safe_load(PARAMS_FILE.read_text())
    assert params.dataset.id_column == raw["dataset"]["id_column"]
    assert params.dataset.label_column == raw["dataset"]["label_column"]
    assert list(params.dataset.numeric) == list(raw["dataset"]["numeric"])
    assert list(params.dataset.categorical) == list(raw["dataset"]["categorical"])
    assert params.train.family == raw["train"]["family"]
    assert params.prep.split.test_size == raw["prep"]["split"]["test_size"]
    assert str(params.paths.raw) == raw["paths"]["raw"]


def test_load_params_from_a_copy_equals_repo_params(tmp_path, params, raw_params):
    assert load_params(_write(tmp_path, raw_params)) == params


def test_unknown_key_names_the_key(tmp_path, raw_params):
    raw_params["train"]["lerning_rate"] = 0.1
    with pytest.raises(ChurnError, match=r"train\.lerning_rate"):
        load_params(_write(tmp_path, raw_params))


def test_unknown_section_names_the_section(tmp_path, raw_params):
    raw_params["trian"] = {"seed": 1}
    with pytest.raises(ChurnError, match=r"trian"):
        load_params(_write(tmp_path, raw_params))


def test_wrong_type_names_the_key(tmp_path, raw_params):
    raw_params["train"]["seed"] = "forty-two"
    with pytest.raises(ChurnError, match=r"train\.seed"):
        load_params(_write(tmp_path, raw_params))


def test_out_of_range_value_names_the_key(tmp_path, raw_params):
    raw_params["prep"]["split"]["test_size"] = 1.5
    with pytest.raises(ChurnError, match=r"prep\.split\.test_size"):
        load_params(_write(tmp_path, raw_params))


def test_unknown_model_family_names_the_key(tmp_path, raw_params):
    raw_params["train"]["family"] = "xgboost"
    with pytest.raises(ChurnError, match=r"train\.family"):
        load_params(_write(tmp_path, raw_params))


def test_missing_required_section_names_it(tmp_path, raw_params):
    del raw_params["dataset"]
    with pytest.raises(ChurnError, match=r"dataset"):
        load_params(_write(tmp_path, raw_params))


def test_missing_file(tmp_path):
    missing = tmp_path / "nope.yaml"
    with pytest.raises(ChurnError, match=r"nope\.yaml"):
        load_params(missing)


@pytest.mark.parametrize("text", ["- a\n- b\n", "just a string\n", "42\n", ""])
def test_non_mapping_yaml(tmp_path, text):
    with pytest.raises(ChurnError, match="mapping"):
        load_params(_write(tmp_path, text))


def test_invalid_yaml_syntax(tmp_path):
    with pytest.raises(ChurnError, match="not valid YAML"):
        load_params(_write(tmp_path, "paths: [unclosed\n"))


def test_parse_params_error_is_churn_error_not_pydantic(raw_params):
    raw_params["dataset"]["numeric"]["tenure"]["integer"] = "sometimes"
    with pytest.raises(ChurnError) as info:
        parse_params(raw_params, source="custom.yaml")
    message = str(info.value)
    assert "custom.yaml" in message
    assert "dataset.numeric.tenure.integer" in message


def test_yaml_ints_in_levels_become_strings(tmp_path, raw_params):
    raw_params["dataset"]["categorical"]["SeniorCitizen"] = [0, 1]
    raw_params["dataset"]["categorical"]["Rating"] = [1, 2, 3]
    params = load_params(_write(tmp_path, raw_params))
    assert params.dataset.categorical["SeniorCitizen"] == ["0", "1"]
    assert params.dataset.categorical["Rating"] == ["1", "2", "3"]


def test_repo_senior_citizen_levels_are_text(dataset):
    assert all(isinstance(level, str) for levels in dataset.categorical.values() for level in levels)


def test_int_labels_become_strings(raw_params):
    raw_params["dataset"]["positive_label"] = 1
    raw_params["dataset"]["negative_label"] = 0
    params = parse_params(raw_params)
    assert params.dataset.positive_label == "1"
    assert params.dataset.negative_label == "0"


def test_validate_section_is_read_via_alias(raw_params):
    raw_params["validate"]["gates"]["min_roc_auc"] = 0.77
    raw_params["validate"]["data_checks"]["min_train_rows"] = 123
    params = parse_params(raw_params)
    assert params.validation.gates.min_roc_auc == 0.77
    assert params.validation.data_checks.min_train_rows == 123


def test_repo_validate_section_is_not_the_default(params, raw_params):
    # Guards against the alias silently falling back to the defaults.
    gates = raw_params["validate"]["gates"]
    assert params.validation.gates.min_roc_auc == gates["min_roc_auc"]
    assert params.validation.gates.max_log_loss == gates["max_log_loss"]
    assert params.validation.gates.min_recall == gates["min_recall"]
    assert params.validation.data_checks.positive_rate == tuple(raw_params["validate"]["data_checks"]["positive_rate"])


def test_unknown_key_inside_validate_names_it(raw_params):
    raw_params["validate"]["gates"]["min_auc"] = 0.8
    with pytest.raises(ChurnError, match=r"validate\.gates\.min_auc"):
        parse_params(raw_params)


def test_key_columns_and_raw_columns(dataset, raw_params):
    assert dataset.key_columns == [raw_params["dataset"]["id_column"]]
    assert dataset.raw_columns[0] == dataset.id_column
    assert dataset.raw_columns[-1] == dataset.label_column
    assert dataset.feature_columns == [*raw_params["dataset"]["numeric"], *raw_params["dataset"]["categorical"]]


def test_timestamp_column_is_a_key_column(raw_params):
    raw_params["dataset"]["timestamp_column"] = "as_of"
    params = parse_params(raw_params)
    assert params.dataset.key_columns == [params.dataset.id_column, "as_of"]


def test_params_are_frozen(params):
    with pytest.raises(pydantic.ValidationError, match="frozen"):
        params.train.seed = 1  # type: ignore[misc]

"""churn.core.verdict.read_verdict: anything that prevents checking is a rejection."""

from __future__ import annotations

import hashlib
import json

import pytest

from churn.core.verdict import read_verdict

MODEL_BYTES = b"not really a model, but bytes to hash \x00\x01"


@pytest.fixture
def model(tmp_path):
    path = tmp_path / "model.skops"
    path.write_bytes(MODEL_BYTES)
    return path


def _verdict(tmp_path, **content):
    path = tmp_path / "verdict.json"
    path.write_text(json.dumps(content))
    return path


def _md5(data: bytes = MODEL_BYTES) -> str:
    return hashlib.md5(data).hexdigest()


def test_passed(tmp_path, model):
    path = _verdict(tmp_path, verdict="passed", reasons=[], model_md5=_md5())
    assert read_verdict(path, model) == (True, [])


def test_rejected_with_reasons(tmp_path, model):
    reasons = ["model check validation_roc_auc = 0.7 fails >= 0.8", "data check train_rows = 3 fails >= 1000"]
    path = _verdict(tmp_path, verdict="rejected", reasons=reasons, model_md5=_md5())
    assert read_verdict(path, model) == (False, reasons)


def test_rejected_without_reasons_still_rejected(tmp_path, model):
    passed, reasons = read_verdict(_verdict(tmp_path, verdict="rejected", reasons=[], model_md5=_md5()), model)
    assert passed is False
    assert reasons


def test_missing_verdict_file(tmp_path, model):
    passed, reasons = read_verdict(tmp_path / "absent.json", model)
    assert passed is False
    assert len(reasons) == 1 and "absent.json" in reasons[0]


@pytest.mark.parametrize("text", ["{not json", "", "[1, 2]", '"passed"', '{"verdict": "passed"}', "null",
                                  '{"verdict": "passed", "reasons": null}'])
def test_garbage_verdict(tmp_path, model, text):
    path = tmp_path / "verdict.json"
    path.write_text(text)
    passed, reasons = read_verdict(path, model)
    assert passed is False
    assert len(reasons) == 1 and "verdict.json" in reasons[0]


def test_binary_garbage_verdict(tmp_path, model):
    path = tmp_path / "verdict.json"
    path.write_bytes(b"\xff\xfe\x00garbage")
    assert read_verdict(path, model)[0] is False


def test_verdict_for_another_model(tmp_path, model):
    path = _verdict(tmp_path, verdict="passed", reasons=[], model_md5=_md5(b"another model"))
    passed, reasons = read_verdict(path, model)
    assert passed is False
    assert len(reasons) == 1 and "another model" in reasons[0]


def test_verdict_without_model_md5(tmp_path, model):
    assert read_verdict(_verdict(tmp_path, verdict="passed", reasons=[]), model)[0] is False


def test_model_changed_after_verdict(tmp_path, model):
    path = _verdict(tmp_path, verdict="passed", reasons=[], model_md5=_md5())
    model.write_bytes(MODEL_BYTES + b"retrained")
    assert read_verdict(path, model)[0] is False


def test_missing_model(tmp_path, model):
    path = _verdict(tmp_path, verdict="passed", reasons=[], model_md5=_md5())
    model.unlink()
    passed, reasons = read_verdict(path, model)
    assert passed is False
    assert "model.skops" in reasons[0]


@pytest.mark.parametrize("value", ["approved", "PASSED", "", None, True])
def test_unknown_verdict_value(tmp_path, model, value):
    passed, reasons = read_verdict(_verdict(tmp_path, verdict=value, reasons=[], model_md5=_md5()), model)
    assert passed is False
    assert len(reasons) == 1


def test_passed_with_reasons_is_not_a_pass(tmp_path, model):
    path = _verdict(tmp_path, verdict="passed", reasons=["something failed"], model_md5=_md5())
    assert read_verdict(path, model)[0] is False


def test_rejected_without_reasons_says_so(tmp_path, model):
    path = _verdict(tmp_path, verdict="rejected", reasons=[], model_md5=_md5())
    assert read_verdict(path, model) == (False, ["rejected without a recorded reason"])


def _params():
    from churn.config import load_params
    from tests.conftest import PARAMS_FILE

    return load_params(PARAMS_FILE)


def test_a_verdict_made_under_the_current_params_applies(tmp_path, model):
    from churn.core.verdict import verdict_params_md5

    params = _params()
    path = _verdict(tmp_path, verdict="passed", reasons=[], model_md5=_md5(), params_md5=verdict_params_md5(params))
    assert read_verdict(path, model, params) == (True, [])


@pytest.mark.parametrize("stored", ["0" * 32, None])
def test_a_verdict_made_under_other_params_is_stale(tmp_path, model, stored):
    content = dict(verdict="passed", reasons=[], model_md5=_md5())
    if stored is not None:
        content["params_md5"] = stored
    path = _verdict(tmp_path, **content)
    passed, reasons = read_verdict(path, model, _params())
    assert passed is False
    assert reasons == [f"verdict {path} was made under other params (gates, threshold or dataset): rerun `dvc repro`"]
    assert read_verdict(path, model) == (True, [])  # without params, staleness is not checked


def test_the_verdict_params_are_the_gates_threshold_and_dataset():
    from churn.core.verdict import verdict_params_md5

    params = _params()
    base = verdict_params_md5(params)
    gates = params.validation.gates.model_copy(update={"min_roc_auc": 0.5})
    changed = {
        "gates": params.model_copy(update={"validation": params.validation.model_copy(update={"gates": gates})}),
        "threshold": params.model_copy(update={"train": params.train.model_copy(update={"decision_threshold": 0.4})}),
        "dataset": params.model_copy(update={"dataset": params.dataset.model_copy(update={"name": "other"})}),
    }
    for what, other in changed.items():
        assert verdict_params_md5(other) != base, what
    hyperparameters = {**params.train.hyperparameters, params.train.family: {**params.train.model_params, "max_iter": 7}}
    same = params.model_copy(update={"train": params.train.model_copy(update={"hyperparameters": hyperparameters})})
    assert verdict_params_md5(same) == base, "hyperparameters do not change what the verdict means"

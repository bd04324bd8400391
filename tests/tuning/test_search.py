"""churn.tuning.search: the search space, the printed command and --apply."""

from __future__ import annotations

import optuna
import pytest

from churn.config import SearchParam, parse_params
from churn.errors import ChurnError
from churn.tuning.search import apply_to_params_file, dvc_command, search_space, suggest
from tests.conftest import PARAMS_FILE


def test_integer_bounds_search_integers_and_floats_are_rounded():
    study = optuna.create_study(sampler=optuna.samplers.TPESampler(seed=1))
    trial = study.ask()
    n = suggest(trial, "n", SearchParam(low=50, high=500, step=50))
    rate = suggest(trial, "rate", SearchParam(low=0.01, high=0.3, log=True))
    choice = suggest(trial, "depth", SearchParam(choices=[1, None]))
    assert isinstance(n, int) and n % 50 == 0 and 50 <= n <= 500
    assert isinstance(rate, float) and rate == float(f"{rate:.4g}")
    assert choice in (1, None)


def test_a_search_param_needs_a_range_or_choices():
    with pytest.raises(ValueError):
        SearchParam(low=1, high=1)
    with pytest.raises(ValueError):
        SearchParam(low=1, high=2, choices=[1])


def test_dvc_command_sets_each_value():
    command = dvc_command("hist_gradient_boosting", {"max_iter": 400, "learning_rate": 0.1952, "max_depth": None})
    assert command == (
        "dvc exp run -S train.hyperparameters.hist_gradient_boosting.learning_rate=0.1952 "
        "-S train.hyperparameters.hist_gradient_boosting.max_depth=null "
        "-S train.hyperparameters.hist_gradient_boosting.max_iter=400"
    )


def test_apply_changes_only_the_values(tmp_path, params):
    target = tmp_path / "params.yaml"
    original = PARAMS_FILE.read_text()
    target.write_text(original)
    apply_to_params_file(target, "hist_gradient_boosting", {"max_iter": 123, "learning_rate": 0.0777})
    changed = [(a, b) for a, b in zip(original.splitlines(), target.read_text().splitlines(), strict=True) if a != b]
    assert len(changed) == 2 and all(b.strip() in ("max_iter: 123", "learning_rate: 0.0777") for _, b in changed)
    assert len(original.splitlines()) == len(target.read_text().splitlines())  # comments and layout kept


def test_a_family_without_a_space_is_a_short_error(params):
    raw = params.model_dump(mode="json", by_alias=True)
    raw["tune"]["space"] = {}
    with pytest.raises(ChurnError, match=r"tune\.space has no entry"):
        search_space(parse_params(raw))

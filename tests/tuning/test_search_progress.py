"""`churn tune` shows trials done of total and the best score so far: a bar in a terminal, one
line per trial and a closing line through a pipe, neither with --quiet (the result still prints).
Optuna's own per-trial log lines never appear: our lines replace them."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import yaml

from churn import progress
from tests.helpers import CONTROL_CHARACTERS, DURATION, churn_here, repo_params, without_escapes

TRIALS = 2


@pytest.fixture(scope="module")
def tune_project(tmp_path_factory) -> Path:
    """A tiny prepared project (600 customers, 10-iteration models) with its params file."""
    from churn.data import snapshot
    from churn.prep import stage

    directory = tmp_path_factory.mktemp("tune-progress")

    def small(raw: dict) -> None:
        raw["train"]["hyperparameters"]["hist_gradient_boosting"].update(max_iter=10, min_samples_leaf=20)
        raw["tune"]["space"]["hist_gradient_boosting"] = {"learning_rate": {"low": 0.05, "high": 0.3, "log": True}}

    params = repo_params(small, root=directory, experiment="tune-progress")
    params_file = directory / "params.yaml"
    params_file.write_text(yaml.safe_dump(params.model_dump(mode="json", by_alias=True), sort_keys=False))
    snapshot.simulate_to(params.paths.raw, snapshot.simulated_meta(600, 1, None))
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv(progress.MODE_ENV, "quiet")
        mp.setattr(progress, "_mode", None)
        stage.run(params)
    return params_file


def churn_tune(params_file: Path, monkeypatch, capsys, *options: str, terminal: bool) -> tuple[str, str]:
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{params_file.parent / 'mlflow.db'}")
    monkeypatch.chdir(params_file.parent)
    argv = ["--params", str(params_file), *options, "tune", "--trials", str(TRIALS)]
    return churn_here(argv, monkeypatch, capsys, terminal=terminal)


def check_result(out: str) -> None:
    assert f"tune: {TRIALS} trials of hist_gradient_boosting" in out  # the result, in every mode
    assert "Trial 0 finished" not in out and "[I " not in out  # Optuna's own INFO lines stay off


def test_tune_in_a_terminal_shows_a_bar_of_trials_and_the_best_score(tune_project, monkeypatch, capsys):
    out, err = churn_tune(tune_project, monkeypatch, capsys, terminal=True)
    check_result(out)
    assert progress.mode() == "live"
    assert "\x1b[" in err and "━" in err
    text = without_escapes(err)
    assert "of 2 trials" in text and "best roc_auc 0." in text  # the live bar: counts and best so far
    assert re.search(r"churn: tuning hist_gradient_boosting: 2 of 2 trials in " + DURATION + r" .*; best roc_auc 0\.\d{4}", text), text


def test_tune_piped_prints_a_line_per_trial_and_no_control_characters(tune_project, monkeypatch, capsys):
    out, err = churn_tune(tune_project, monkeypatch, capsys, terminal=False)
    check_result(out + err)
    assert progress.mode() == "plain"
    assert not re.search(CONTROL_CHARACTERS, err), repr(err)
    lines = err.splitlines()
    trials = [line for line in lines if line.startswith("churn: trial ")]
    assert [line.split(":")[1] for line in trials] == [" trial 1 of 2", " trial 2 of 2"], err
    assert all(re.search(r": validation roc_auc 0\.\d{4} \{'learning_rate': .*\} in " + DURATION + r"$", line) for line in trials), err
    closing = [line for line in lines if line.startswith("churn: tuning ")]
    assert len(closing) == 1 and re.fullmatch(
        r"churn: tuning hist_gradient_boosting: 2 of 2 trials in " + DURATION + r" \([\d.]+ trials/s\); best roc_auc 0\.\d{4}",
        closing[0],
    ), err


def test_tune_quiet_prints_only_its_result(tune_project, monkeypatch, capsys):
    out, err = churn_tune(tune_project, monkeypatch, capsys, "--quiet", terminal=True)
    check_result(out)
    assert progress.mode() == "quiet"
    assert err == ""

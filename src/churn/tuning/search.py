"""`churn tune`: a seeded hyperparameter search, recorded in MLflow, applied only on request.

Optuna's TPE sampler proposes values from `tune.space.<family>` in params.yaml; every trial
fits on the training set and is scored on the validation set (the test set is never read).
Each trial is a nested MLflow run under one parent run. The result is a `dvc exp run -S`
line, so the tuned model is trained by the pipeline like any other; `--apply` writes the
values into params.yaml instead.
"""

from __future__ import annotations

import logging
import shlex
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from churn import progress
from churn.config import Params, SearchParam
from churn.core.metrics import classification_metrics
from churn.core.splits import read_split
from churn.errors import ChurnError
from churn.io import md5_file, write_text
from churn.training.pipeline import build_pipeline

log = logging.getLogger(__name__)
LOWER_IS_BETTER = {"log_loss", "brier"}
SIGNIFICANT_DIGITS = 4  # tried values are rounded, so the printed line is exactly what was scored
TAG_TUNE = "churn.tune"


@dataclass(frozen=True)
class TuneResult:
    family: str
    metric: str
    trials: int
    best_trial: int
    best_value: float
    current_value: float  # the params.yaml values, always trial 0
    best_params: dict[str, Any]
    parent_run_id: str
    dvc_command: str
    applied: bool


def _round(value: Any) -> Any:
    if isinstance(value, float):
        return float(f"{value:.{SIGNIFICANT_DIGITS}g}")
    return value


def suggest(trial: Any, name: str, spec: SearchParam) -> Any:
    if spec.choices is not None:
        return trial.suggest_categorical(name, spec.choices)
    assert spec.low is not None and spec.high is not None
    if spec.integer:
        return trial.suggest_int(name, int(spec.low), int(spec.high), step=int(spec.step or 1), log=spec.log)
    return _round(trial.suggest_float(name, float(spec.low), float(spec.high), step=spec.step, log=spec.log))


def _yaml_scalar(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def dvc_command(family: str, values: dict[str, Any]) -> str:
    settings = [f"train.hyperparameters.{family}.{name}={_yaml_scalar(v)}" for name, v in sorted(values.items())]
    return "dvc exp run " + " ".join(f"-S {shlex.quote(s)}" for s in settings)


def search_space(params: Params) -> dict[str, SearchParam]:
    family = params.train.family
    space = params.tune.space.get(family)
    if not space:
        raise ChurnError(f"tune.space has no entry for train.family {family!r}: add its ranges to params.yaml.")
    return space


def run(params: Params, *, trials: int | None = None, apply: bool = False,
        params_file: Path = Path("params.yaml")) -> TuneResult:
    import optuna

    from churn.core import tracking

    space = search_space(params)
    family, metric = params.train.family, params.tune.metric
    n_trials = trials if trials is not None else params.tune.trials
    if n_trials < 1:
        raise ChurnError("--trials must be at least 1.")
    paths, dataset = params.paths, params.dataset
    features, label = dataset.feature_columns, dataset.label_column
    # Train and validation only: the test set stays an unbiased estimate of the chosen model.
    with progress.phase("reading the train and validation sets") as reading:
        train = read_split(paths.train_set, dataset)
        validation = read_split(paths.validation_set, dataset)
        reading.done(f"{len(train):,} + {len(validation):,} rows")

    with progress.phase("connecting to MLflow"):
        mlflow = tracking.connect(params)
    # Our trial lines and bar replace Optuna's per-trial INFO log and its own tqdm bar
    # (show_progress_bar stays off), so each trial is reported once.
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    direction: Literal["minimize", "maximize"] = "minimize" if metric in LOWER_IS_BETTER else "maximize"
    study = optuna.create_study(direction=direction, sampler=optuna.samplers.TPESampler(seed=params.tune.seed))
    current = {name: params.train.model_params[name] for name in space if name in params.train.model_params}
    study.enqueue_trial(current)  # trial 0 scores today's params.yaml, so "best" is never worse

    def objective(trial: Any) -> float:
        with progress.phase(f"trial {trial.number + 1} of {n_trials}") as step:
            value, values = score_trial(trial)
            step.done(f"validation {metric} {value:.4f} {values}")
        return value

    def score_trial(trial: Any) -> tuple[float, dict[str, Any]]:
        values = {name: suggest(trial, name, spec) for name, spec in space.items()}
        trial.set_user_attr("values", values)
        config = params.train.model_copy(
            update={"hyperparameters": {**params.train.hyperparameters, family: {**params.train.model_params, **values}}}
        )
        with mlflow.start_run(run_name=f"trial {trial.number}", nested=True, tags={TAG_TUNE: "trial"}):
            mlflow.log_params({f"model.{k}": v for k, v in values.items()})
            try:
                model = build_pipeline(dataset, config).fit(train[features], train[label])
            except ValueError as exc:
                raise ChurnError(f"tune.space.{family} proposed invalid values {values}: {exc}") from None
            scores = classification_metrics(
                validation[label], model.predict_proba(validation[features])[:, 1], params.train.decision_threshold
            )
            mlflow.log_metrics({f"validation_{k}": v for k, v in scores.items()})
        log.debug("trial %d: validation %s %.4f %s", trial.number, metric, scores[metric], values)
        return scores[metric], values

    tags = {
        TAG_TUNE: "study",
        tracking.TAG_GIT_COMMIT: tracking.git_commit(),
        "dvc.train_md5": md5_file(paths.train_set),
        "dvc.validation_md5": md5_file(paths.validation_set),
    }
    with mlflow.start_run(run_name=f"tune {family}", tags=tags) as parent:
        mlflow.log_params({"family": family, "metric": metric, "trials": n_trials, "sampler_seed": params.tune.seed,
                           "train_seed": params.train.seed})
        with progress.task(f"tuning {family}", total=n_trials, unit="trials") as trials_done:
            study.optimize(objective, n_trials=n_trials, show_progress_bar=False,
                           callbacks=[progress.optuna_callback(trials_done, direction_word=f"best {metric}")])
        best = study.best_trial
        best_values = dict(best.user_attrs["values"])
        mlflow.log_params({f"best.{k}": v for k, v in best_values.items()})
        mlflow.log_metrics({f"best_validation_{metric}": best.value, "best_trial": best.number})
        command = dvc_command(family, best_values)
        mlflow.set_tag("dvc_command", command)
        parent_id = parent.info.run_id

    if apply:
        apply_to_params_file(params_file, family, best_values)
    current_value = study.trials[0].value
    assert best.value is not None and current_value is not None  # completed trials have values
    return TuneResult(family, metric, n_trials, best.number, float(best.value), float(current_value),
                      best_values, parent_id, command, apply)


def apply_to_params_file(path: Path, family: str, values: dict[str, Any]) -> None:
    """Write the values into params.yaml, keeping its comments and layout (ruamel round-trip)."""
    import io

    from ruamel.yaml import YAML

    yaml = YAML(typ="rt")
    yaml.preserve_quotes = True
    yaml.width = 4096  # never re-wrap long lines
    yaml.indent(mapping=2, sequence=4, offset=2)  # block lists as params.yaml writes them
    # Keep `null` as written (ruamel would print an empty value).
    yaml.representer.add_representer(
        type(None), lambda rep, _: rep.represent_scalar("tag:yaml.org,2002:null", "null")
    )
    data = yaml.load(path.read_text())
    section = data["train"].setdefault("hyperparameters", {}).setdefault(family, {})
    for name, value in values.items():
        section[name] = value
    buffer = io.StringIO()
    yaml.dump(data, buffer)
    write_text(path, buffer.getvalue())

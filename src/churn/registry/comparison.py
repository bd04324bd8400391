"""Candidate versus @champion on the same rows, failing closed.

Both models score the candidate's validation set. When the champion cannot be loaded or
cannot score those rows, the candidate is rejected and the reason says why; only a
registry with no champion at all lets the absolute gates decide alone.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import pandas as pd

from churn.config import Params
from churn.errors import ChurnError
from churn.core.metrics import classification_metrics
from churn.registry.versions import CHAMPION, alias_version


@dataclass
class Comparison:
    champion_version: str | None
    passed: bool
    reasons: list[str] = field(default_factory=list)
    rows: list[dict] = field(default_factory=list)
    note: str = ""


def candidate_probabilities(params: Params, validation: pd.DataFrame) -> pd.Series:
    from churn.core.model_file import load_model

    model = load_model(params.paths.model)
    features = validation[params.dataset.feature_columns]
    return pd.Series(model.predict_proba(features)[:, 1], index=validation.index)


def champion_scores(params: Params, champion_uri: str, validation: pd.DataFrame) -> tuple[pd.Series, float]:
    """Champion probabilities aligned to `validation`, and its own decision threshold."""
    import mlflow.pyfunc

    dataset = params.dataset
    scorer = mlflow.pyfunc.load_model(champion_uri).unwrap_python_model()
    if not hasattr(scorer, "score"):
        raise ChurnError(f"{champion_uri} is not a churn model this project logged (no score method)")
    records = validation[[*dataset.key_columns, *dataset.feature_columns]]
    batch = scorer.score(records, source="the candidate's validation set")
    if len(batch.rejected):
        example = batch.rejected["rejection_reasons"].iloc[0]
        raise ChurnError(
            f"the champion rejects {len(batch.rejected)} of {len(records)} validation rows (e.g. {example})"
        )
    by_id = batch.scored.set_index(dataset.id_column)["churn_probability"]
    return validation[dataset.id_column].map(by_id).set_axis(validation.index), scorer.threshold


def compare_with_champion(params: Params, mlflow_client, validation: pd.DataFrame) -> Comparison:
    name = params.registry.model_name
    try:
        champion = alias_version(mlflow_client, name, CHAMPION)
    except ChurnError as exc:
        return Comparison(None, False, [f"champion comparison impossible: {exc}"])
    if champion is None:
        return Comparison(None, True, note=f"no @{CHAMPION} in {name} yet: only the absolute gates apply")

    uri = f"models:/{name}/{champion.version}"
    label = validation[params.dataset.label_column].to_numpy()
    try:
        champion_proba, champion_threshold = champion_scores(params, uri, validation)
        if champion_proba.isna().any():
            raise ChurnError("the champion returned no score for some validation rows")
    except Exception as exc:  # fail closed: whatever stops the champion from scoring rejects
        return Comparison(
            str(champion.version),
            False,
            [f"champion v{champion.version} could not be loaded or scored ({exc.__class__.__name__}: {exc}); "
             "rejecting, since the candidate cannot be shown to be no worse"],
        )
    candidate = classification_metrics(
        label, candidate_probabilities(params, validation), params.train.decision_threshold
    )
    incumbent = classification_metrics(label, champion_proba.to_numpy(), champion_threshold)
    rows, reasons = [], []
    for metric, rule in params.registry.comparison.items():
        if metric not in candidate:
            raise ChurnError(f"registry.comparison.{metric}: unknown metric (use one of {sorted(candidate)})")
        delta = round(candidate[metric] - incumbent[metric], 6)
        if rule.max_drop is not None:
            allowed, passed = f"drop <= {rule.max_drop:g}", delta >= -rule.max_drop
        else:
            allowed, passed = f"rise <= {rule.max_increase:g}", delta <= rule.max_increase
        rows.append(
            {"metric": metric, "candidate": candidate[metric], "champion": incumbent[metric],
             "delta": delta, "allowed": allowed, "passed": bool(passed)}
        )
        if not passed:
            reasons.append(
                f"{metric} {candidate[metric]:g} vs champion v{champion.version} {incumbent[metric]:g} "
                f"(delta {delta:+g}; allowed {allowed})"
            )
    return Comparison(str(champion.version), not reasons, reasons, rows)

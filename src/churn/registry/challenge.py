"""`churn challenge`: the full gate around the DVC graph.

The absolute verdict comes from the graph (validate stage). The comparison with the
current champion depends on registry state, so it runs here, outside `dvc repro`, and its
result goes to the registry and to paths.challenge (never a DVC output).

The comparison fails closed: both models score the candidate's validation set, and when
the champion cannot be read, loaded or made to score those rows, the candidate is rejected
with the reason. Only a registry with no champion at all lets the absolute gates decide alone.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from churn.config import Params
from churn.core import tracking
from churn.core.metrics import classification_metrics
from churn.core.splits import read_split
from churn.core.verdict import read_verdict
from churn.errors import ChurnError
from churn.io import write_json
from churn.markdown import table as markdown_table
from churn.registry import model_card, versions
from churn.registry.checkout import ensure_workspace_model, read_checkout_model

if TYPE_CHECKING:  # pragma: no cover
    from mlflow import MlflowClient
    from mlflow.entities.model_registry import ModelVersion


@dataclass
class Comparison:
    """The candidate against @champion: one row per configured rule."""

    champion_version: str | None
    passed: bool
    reasons: list[str] = field(default_factory=list)
    rows: list[dict[str, Any]] = field(default_factory=list)
    note: str = ""


@dataclass
class ChallengeResult:
    """What `churn challenge` decided, as written to paths.challenge and printed."""

    verdict: str  # "passed" or "rejected"
    reasons: list[str]
    note: str
    model_md5: str
    registered_model: str
    champion_version: str | None
    comparison: list[dict[str, Any]]
    checked_at: str
    version: str | None = None
    model_card: str | None = None
    repaired: str | None = None

    @property
    def passed(self) -> bool:
        return self.verdict == "passed"

    def as_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


def challenge(params: Params, register: bool = True) -> ChallengeResult:
    """The full gate; with `register` False (pull requests), compare only: nothing is
    written to the registry or the tracking store, so a PR's model can never become a
    version that Deploy could promote."""
    model = read_checkout_model(params)
    ensure_workspace_model(params, model)
    absolute_passed, absolute_reasons = read_verdict(params.paths.verdict, params.paths.model, params)
    mlflow_client = versions.client(params)
    if absolute_passed:
        validation = read_split(params.paths.validation_set, params.dataset)
        comparison = compare_with_champion(params, mlflow_client, validation)
    else:
        comparison = Comparison(None, False, note="absolute gates failed: not compared with the champion")
    passed = absolute_passed and comparison.passed
    result = ChallengeResult(
        verdict="passed" if passed else "rejected",
        reasons=[*absolute_reasons, *comparison.reasons],
        note=comparison.note,
        model_md5=model.model_md5,
        registered_model=params.registry.model_name,
        champion_version=comparison.champion_version,
        comparison=comparison.rows,
        checked_at=datetime.now(UTC).isoformat(timespec="seconds"),
    )
    if not register:
        result.note = " ".join(filter(None, [result.note, "Compared only: nothing registered (--compare-only)."]))
        write_json(params.paths.challenge, result.as_dict())
        return result
    with versions.registry_lock(tracking.tracking_uri(params)):
        version = versions.find_version(mlflow_client, params, model.model_md5)
        name = params.registry.model_name
        if version is not None and versions.state(version).startswith("incomplete ("):
            # MLflow never finished creating it: it can hold no usable artifacts.
            versions.mark_invalid(mlflow_client, name, version, f"registration ended as {version.status}")
            result.repaired = f"v{version.version} was marked invalid ({version.status}); registered afresh"
            version = None
        if version is None and passed:
            version = versions.register(params, model, mlflow_client)
            _record_acceptance(params, mlflow_client, version, result)
            result.model_card = model_card.attach(params, mlflow_client, version)
        elif version is not None and versions.state(version) == "incomplete":
            # Created with its lineage, but an earlier challenge died before recording the
            # gate: this run's verdict becomes its record (a rejection blocks promotion).
            _record_acceptance(params, mlflow_client, version, result)
            result.repaired = f"v{version.version} was left without a gate record by an interrupted challenge: completed"
            result.model_card = model_card.attach(params, mlflow_client, version)
        elif version is not None:
            # An existing version keeps the record of the gate that accepted it; later
            # checks (new gates, a new champion) are recorded beside it.
            _record_recheck(params, mlflow_client, version, result)
        if version is not None:
            result.version = str(version.version)
            _update_challenger(params, mlflow_client, version, passed)
        _record_on_run(params, model.model_md5, result)
    write_json(params.paths.challenge, result.as_dict())
    return result


# --- the comparison with @champion ------------------------------------------------------


def compare_with_champion(params: Params, mlflow_client: MlflowClient, validation: pd.DataFrame) -> Comparison:
    name = params.registry.model_name
    try:
        champion = versions.alias_version(mlflow_client, name, versions.CHAMPION)
    except ChurnError as exc:
        return Comparison(None, False, [f"champion comparison impossible: {exc}"])
    if champion is None:
        return Comparison(None, True, note=f"no @{versions.CHAMPION} in {name} yet: only the absolute gates apply")

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
    rows: list[dict[str, Any]] = []
    reasons: list[str] = []
    for metric, rule in params.registry.comparison.items():
        if metric not in candidate:
            raise ChurnError(f"registry.comparison.{metric}: unknown metric (use one of {sorted(candidate)})")
        delta = round(candidate[metric] - incumbent[metric], 6)
        if rule.max_drop is not None:
            allowed, passed = f"drop <= {rule.max_drop:g}", delta >= -rule.max_drop
        elif rule.max_increase is not None:
            allowed, passed = f"rise <= {rule.max_increase:g}", delta <= rule.max_increase
        else:  # ComparisonRule's validator forbids it; a rule that bounds nothing must not pass
            raise ChurnError(f"registry.comparison.{metric}: give max_drop or max_increase")
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


def candidate_probabilities(params: Params, validation: pd.DataFrame) -> np.ndarray:
    """The candidate's churn probability for each validation row, in row order."""
    from churn.core.model_file import load_model

    model = load_model(params.paths.model)
    return np.asarray(model.predict_proba(validation[params.dataset.feature_columns])[:, 1])


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
    return validation[dataset.id_column].map(by_id).set_axis(validation.index), float(scorer.threshold)


# --- the gate record on the registry version -------------------------------------------


def _record_acceptance(params: Params, mlflow_client: MlflowClient, version: ModelVersion, result: ChallengeResult) -> None:
    name = params.registry.model_name
    tags = {
        versions.TAG_REASONS: versions.tag_text(result.reasons),
        versions.TAG_COMPARISON: versions.tag_text(result.comparison),
        versions.TAG_CHAMPION_AT_GATE: str(result.champion_version or "none"),
        versions.TAG_GATE_PARAMS: versions.gate_params_md5(params),
    }
    for key, value in tags.items():
        mlflow_client.set_model_version_tag(name, str(version.version), key, value)
    description = [f"Gate: **{result.verdict}** ({result.checked_at})"]
    if result.note:
        description.append(result.note)
    description += [f"- {reason}" for reason in result.reasons]
    table = markdown_table(result.comparison)
    if table:
        description += ["", f"Compared with champion v{result.champion_version}:", "", table]
    mlflow_client.update_model_version(name, str(version.version), description="\n".join(description))
    # The verdict is written last: a version that has one has its whole gate record.
    mlflow_client.set_model_version_tag(name, str(version.version), versions.TAG_VERDICT, result.verdict)


def _record_recheck(params: Params, mlflow_client: MlflowClient, version: ModelVersion, result: ChallengeResult) -> None:
    name = params.registry.model_name
    tags = {
        versions.TAG_LAST_CHECK: result.verdict,
        versions.TAG_LAST_CHECK_REASONS: versions.tag_text(result.reasons),
        versions.TAG_LAST_CHECK_AT: result.checked_at,
        versions.TAG_LAST_CHECK_PARAMS: versions.gate_params_md5(params),
        versions.TAG_LAST_CHECK_COMPARED_WITH: str(result.champion_version or "none"),
    }
    for key, value in tags.items():
        mlflow_client.set_model_version_tag(name, str(version.version), key, value)


def _update_challenger(params: Params, mlflow_client: MlflowClient, version: ModelVersion, passed: bool) -> None:
    name = params.registry.model_name
    champion = versions.alias_version(mlflow_client, name, versions.CHAMPION)
    is_champion = champion is not None and str(champion.version) == str(version.version)
    if passed and not is_champion:
        mlflow_client.set_registered_model_alias(name, versions.CHALLENGER, str(version.version))
        return
    versions.clear_challenger(mlflow_client, name, str(version.version))


def _record_on_run(params: Params, model_md5: str, result: ChallengeResult) -> None:
    """The training run carries the gate outcome too, registered or not."""
    import mlflow

    run = tracking.find_run_for_model(params, model_md5)
    if run is not None:
        client = mlflow.MlflowClient()
        client.set_tag(run.info.run_id, versions.TAG_VERDICT, result.verdict)
        client.set_tag(run.info.run_id, versions.TAG_REASONS, versions.tag_text(result.reasons))

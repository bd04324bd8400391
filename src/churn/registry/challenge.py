"""`churn challenge`: the full gate around the DVC graph.

The absolute verdict comes from the graph (validate stage); the comparison with the
current champion depends on registry state, so it runs here, outside `dvc repro`, and its
result goes to the registry and to paths.challenge (never a DVC output).
"""

from __future__ import annotations

from datetime import datetime, timezone

from churn.config import Params
from churn.io import write_json
from churn.markdown import table as markdown_table
from churn.registry import model_card, versions
from churn.registry.checkout import ensure_workspace_model, read_checkout_model
from churn.registry.comparison import Comparison, compare_with_champion
from churn.registry.lock import registry_lock
from churn.core import tracking
from churn.core.splits import read_split
from churn.core.verdict import read_verdict


def challenge(params: Params, register: bool = True) -> dict:
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
    result = {
        "verdict": "passed" if passed else "rejected",
        "reasons": [*absolute_reasons, *comparison.reasons],
        "note": comparison.note,
        "model_md5": model.model_md5,
        "registered_model": params.registry.model_name,
        "champion_version": comparison.champion_version,
        "comparison": comparison.rows,
        "checked_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "version": None,
        "model_card": None,
        "repaired": None,
    }
    if not register:
        result["note"] = " ".join(filter(None, [result["note"], "Compared only: nothing registered (--compare-only)."]))
        write_json(params.paths.challenge, result)
        return result
    with registry_lock(tracking.tracking_uri(params)):
        version = versions.find_version(mlflow_client, params, model.model_md5)
        name = params.registry.model_name
        if version is not None and versions.state(version).startswith("incomplete ("):
            # MLflow never finished creating it: it can hold no usable artifacts.
            versions.mark_invalid(mlflow_client, name, version, f"registration ended as {version.status}")
            result["repaired"] = f"v{version.version} was marked invalid ({version.status}); registered afresh"
            version = None
        if version is None and passed:
            version = versions.register(params, model, mlflow_client)
            _record_acceptance(params, mlflow_client, version, result)
            result["model_card"] = model_card.attach(params, mlflow_client, version)
        elif version is not None and versions.state(version) == "incomplete":
            # Created with its lineage, but an earlier challenge died before recording the
            # gate: this run's verdict becomes its record (a rejection blocks promotion).
            _record_acceptance(params, mlflow_client, version, result)
            result["repaired"] = f"v{version.version} was left without a gate record by an interrupted challenge: completed"
            result["model_card"] = model_card.attach(params, mlflow_client, version)
        elif version is not None:
            # An existing version keeps the record of the gate that accepted it; later
            # checks (new gates, a new champion) are recorded beside it.
            _record_recheck(params, mlflow_client, version, result)
        if version is not None:
            result["version"] = str(version.version)
            _update_challenger(params, mlflow_client, version, passed)
        _record_on_run(params, model.model_md5, result)
    write_json(params.paths.challenge, result)
    return result


def _record_acceptance(params: Params, mlflow_client, version, result: dict) -> None:
    name = params.registry.model_name
    tags = {
        versions.TAG_REASONS: versions.tag_text(result["reasons"]),
        versions.TAG_COMPARISON: versions.tag_text(result["comparison"]),
        versions.TAG_CHAMPION_AT_GATE: str(result["champion_version"] or "none"),
        versions.TAG_GATE_PARAMS: versions.gate_params_md5(params),
    }
    for key, value in tags.items():
        mlflow_client.set_model_version_tag(name, str(version.version), key, value)
    description = [f"Gate: **{result['verdict']}** ({result['checked_at']})"]
    if result["note"]:
        description.append(result["note"])
    description += [f"- {reason}" for reason in result["reasons"]]
    table = markdown_table(result["comparison"])
    if table:
        description += ["", f"Compared with champion v{result['champion_version']}:", "", table]
    mlflow_client.update_model_version(name, str(version.version), description="\n".join(description))
    # The verdict is written last: a version that has one has its whole gate record.
    mlflow_client.set_model_version_tag(name, str(version.version), versions.TAG_VERDICT, result["verdict"])


def _record_recheck(params: Params, mlflow_client, version, result: dict) -> None:
    name = params.registry.model_name
    tags = {
        versions.TAG_LAST_CHECK: result["verdict"],
        versions.TAG_LAST_CHECK_REASONS: versions.tag_text(result["reasons"]),
        versions.TAG_LAST_CHECK_AT: result["checked_at"],
        versions.TAG_LAST_CHECK_PARAMS: versions.gate_params_md5(params),
        versions.TAG_LAST_CHECK_COMPARED_WITH: str(result["champion_version"] or "none"),
    }
    for key, value in tags.items():
        mlflow_client.set_model_version_tag(name, str(version.version), key, value)


def _update_challenger(params: Params, mlflow_client, version, passed: bool) -> None:
    name = params.registry.model_name
    champion = versions.alias_version(mlflow_client, name, versions.CHAMPION)
    is_champion = champion is not None and str(champion.version) == str(version.version)
    if passed and not is_champion:
        mlflow_client.set_registered_model_alias(name, versions.CHALLENGER, str(version.version))
        return
    versions.clear_challenger(mlflow_client, name, str(version.version))


def _record_on_run(params: Params, model_md5: str, result: dict) -> None:
    """The training run carries the gate outcome too, registered or not."""
    import mlflow

    run = tracking.find_run_for_model(params, model_md5)
    if run is not None:
        client = mlflow.MlflowClient()
        client.set_tag(run.info.run_id, versions.TAG_VERDICT, result["verdict"])
        client.set_tag(run.info.run_id, versions.TAG_REASONS, versions.tag_text(result["reasons"]))

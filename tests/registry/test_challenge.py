"""`churn challenge` end to end: a comparison failure rejects the candidate, leaves it out of
the registry, says why in reports/challenge.json, and `promote` then refuses it."""

from __future__ import annotations

import json

import pytest
from mlflow import MlflowClient
from mlflow.exceptions import MlflowException
from mlflow.protos.databricks_pb2 import INTERNAL_ERROR

from churn.config import ComparisonRule
from churn.errors import ChurnError
from churn.registry.challenge import challenge
from churn.registry.comparison import compare_with_champion
from churn.registry.promotion import promote

from .conftest import NAME, as_dict, validation_frame, with_section


def with_rules(params, **rules):
    return with_section(params, "registry", comparison={m: ComparisonRule(**r) for m, r in rules.items()})


def assert_rejected_and_not_registered(space, result, reason: str) -> None:
    assert result["verdict"] == "rejected"
    assert any(reason in text for text in result["reasons"]), result["reasons"]
    assert result["version"] is None
    assert space.client().search_model_versions(f"name = '{NAME}' and tags.`dvc.model_md5` = "
                                                f"'{space.project.md5s['base']}'") == []
    written = json.loads(space.params.paths.challenge.read_text())
    assert written["verdict"] == "rejected" and written["reasons"] == result["reasons"]


def test_a_candidate_worse_than_the_champion_beyond_a_rule_is_rejected_though_its_gates_pass(workspace):
    champion = workspace.crown("better")
    workspace.checkout("base")
    # Measure the drop, then set the rule one step tighter than it, and exactly at it.
    measured = compare_with_champion(
        with_rules(workspace.params, roc_auc={"max_drop": 1.0}), workspace.client(), validation_frame(workspace.params)
    )
    delta = measured.rows[0]["delta"]
    assert delta <= -1e-4, f"the base model should rank worse than the better one: {delta}"
    tight = with_rules(workspace.params, roc_auc={"max_drop": -delta - 1e-6})
    result = as_dict(challenge(tight))
    assert result["champion_version"] == champion
    assert_rejected_and_not_registered(workspace, result, f"delta {delta:+g}; allowed drop <= {-delta - 1e-6:g}")
    assert not [r for r in result["reasons"] if "check" in r], "the absolute gates passed: only the rule rejects"
    with pytest.raises(ChurnError, match="rejected by `churn challenge`: roc_auc"):
        promote(tight)
    edge = with_rules(workspace.params, roc_auc={"max_drop": -delta})
    accepted = as_dict(challenge(edge))
    assert accepted["verdict"] == "passed" and accepted["version"] is not None, accepted["reasons"]


def test_a_registry_error_while_reading_the_champion_rejects(workspace, monkeypatch):
    workspace.crown("better")
    workspace.checkout("base")

    def broken(self, name, alias):
        raise MlflowException("database disk image is malformed", error_code=INTERNAL_ERROR)

    monkeypatch.setattr(MlflowClient, "get_model_version_by_alias", broken)
    result = as_dict(challenge(workspace.params))
    assert_rejected_and_not_registered(
        workspace, result, "champion comparison impossible: cannot read alias @champion of churn-classifier: "
        "database disk image is malformed"
    )


@pytest.mark.parametrize("fault", ["deleted", "nan", "foreign"])
def test_a_champion_that_cannot_be_compared_rejects(crowned, fault):
    space = crowned(fault)
    result = as_dict(challenge(space.params))
    assert result["verdict"] == "rejected"
    assert any("could not be loaded or scored" in text for text in result["reasons"]), result["reasons"]
    assert result["version"] is None


def test_the_gate_record_on_the_version_and_the_training_run(workspace):
    champion = workspace.crown("base")
    workspace.checkout("better")
    result = as_dict(challenge(workspace.params))
    assert result["verdict"] == "passed" and result["champion_version"] == champion
    assert result["model_md5"] == workspace.project.md5s["better"]
    assert result["registered_model"] == NAME
    assert result["checked_at"].endswith("+00:00") and len(result["checked_at"]) == 25
    version = workspace.version(result["version"])
    tags = version.tags
    assert tags["gate.verdict"] == "passed" and tags["gate.compared_with"] == champion
    assert json.loads(tags["gate.comparison"]) == result["comparison"]
    assert json.loads(tags["gate.reasons"]) == []
    description = version.description.splitlines()
    assert description[0] == f"Gate: **passed** ({result['checked_at']})"
    assert f"Compared with champion v{champion}:" in description
    assert any(line.startswith("| roc_auc |") for line in description), description
    assert "challenger" in version.aliases
    # The training run that logged the model carries the outcome too.
    import mlflow

    runs = mlflow.search_runs(filter_string=f"tags.`dvc.model_md5` = '{result['model_md5']}'", output_format="list")
    assert runs and all(run.data.tags["gate.verdict"] == "passed" for run in runs)
    assert all(json.loads(run.data.tags["gate.reasons"]) == [] for run in runs)


def test_a_first_version_records_that_no_champion_was_compared(workspace):
    result = as_dict(challenge(workspace.params))
    version = workspace.version(result["version"])
    assert version.tags["gate.compared_with"] == "none"
    lines = version.description.splitlines()
    assert lines[1] == result["note"] and "no @champion" in lines[1]
    assert not any(line.startswith("Compared with") for line in lines)


def test_a_rejected_recheck_is_recorded_beside_the_acceptance_and_drops_challenger(workspace):
    first = workspace.accept("base")
    assert "challenger" in workspace.version(first).aliases
    gates = workspace.params.validation.gates.model_copy(update={"min_roc_auc": 0.99})
    strict = with_section(workspace.params, "validation", gates=gates)
    from .conftest import validate

    validate(strict)
    result = as_dict(challenge(strict))
    assert result["verdict"] == "rejected" and result["version"] == first
    version = workspace.version(first)
    assert "challenger" not in version.aliases
    tags = version.tags
    assert tags["gate.verdict"] == "passed"  # the acceptance stays
    assert tags["gate.last_check.verdict"] == "rejected"
    assert "validation_roc_auc" in tags["gate.last_check.reasons"]
    assert tags["gate.last_check.at"] == result["checked_at"]
    assert tags["gate.last_check.compared_with"] == "none"
    # and the run says the latest outcome
    import mlflow

    runs = mlflow.search_runs(filter_string=f"tags.`dvc.model_md5` = '{result['model_md5']}'", output_format="list")
    assert runs and all(run.data.tags["gate.verdict"] == "rejected" for run in runs)


def test_a_rejected_candidate_says_why_and_is_not_compared(workspace):
    workspace.crown("base")
    workspace.checkout("weak")
    result = as_dict(challenge(workspace.params))
    assert result["verdict"] == "rejected" and result["comparison"] == []
    assert result["note"] == "absolute gates failed: not compared with the champion"
    assert result["champion_version"] is None

"""`churn challenge` end to end: a comparison failure rejects the candidate, leaves it out of
the registry, says why in reports/challenge.json, and `promote` then refuses it.

The champion comparison's rejections, each provoked on purpose on a real SQLite registry.

Rules: two trained models of one family (`base`, undertrained; `better`) differ on every
metric by a measured amount. Whichever of them is the candidate, against the other as
champion, one orientation breaks each rule kind for each metric: a bound one step (1e-6,
the metrics' rounding) tighter than the measured delta rejects, naming the rule and the
delta; the measured delta itself as the bound passes.

Fail-closed paths: the champion slot is filled with models that misbehave in one way each
(NaN scores, too few, duplicated, reordered, rows refused, an exception, a model another
project logged), and the client is made to fail while reading the alias.
"""

from __future__ import annotations

import json
from dataclasses import dataclass

import pytest
from mlflow import MlflowClient
from mlflow.exceptions import MlflowException
from mlflow.protos.databricks_pb2 import INTERNAL_ERROR, INVALID_PARAMETER_VALUE, RESOURCE_DOES_NOT_EXIST

from churn.config import ComparisonRule
from churn.core import tracking
from churn.errors import ChurnError
from churn.markdown import table as markdown_table
from churn.registry import versions
from churn.registry.challenge import challenge, compare_with_champion
from churn.registry.promotion import promote

from .champions import Champion
from .conftest import NAME, as_dict, new_workspace, set_champion, validation_frame, with_section

# Every metric the comparison knows (the metrics module's names); params.yaml uses four.
METRICS = ("roc_auc", "pr_auc", "f1", "precision", "recall", "accuracy", "log_loss", "brier")
KINDS = ("max_drop", "max_increase")
STEP = 1e-6  # metrics and deltas are rounded to 6 digits
MIN_GAP = 1e-4  # the pair must differ at least this much on every metric to be a real test


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
    assert any(line.startswith("| roc_auc |") for line in version.description.splitlines()), version.description
    # The gate record, then (after a blank line) the model card's summary.
    gate_record = "\n".join([
        f"Gate: **passed** ({result['checked_at']})", *filter(None, [result["note"]]),
        "", f"Compared with champion v{champion}:", "", markdown_table(result["comparison"]),
    ])
    assert version.description.startswith(gate_record + "\n\n"), version.description
    assert "challenger" in version.aliases
    # The training run that logged the model carries the outcome too.
    import mlflow

    runs = mlflow.search_runs(filter_string=f"tags.`dvc.model_md5` = '{result['model_md5']}'", output_format="list")
    assert runs and all(run.data.tags["gate.verdict"] == "passed" for run in runs)
    assert all(json.loads(run.data.tags["gate.reasons"]) == [] for run in runs)


def test_a_verdict_made_under_other_params_rejects_and_registers_nothing(workspace):
    """validate ran under other gates than `challenge` reads now: its verdict is stale."""
    gates = workspace.params.validation.gates.model_copy(update={"min_roc_auc": 0.5})
    changed = with_section(workspace.params, "validation", gates=gates)
    result = as_dict(challenge(changed))
    assert result["verdict"] == "rejected" and result["version"] is None
    assert result["reasons"] == [f"verdict {changed.paths.verdict} was made under other params (gates, threshold or "
                                 "dataset): rerun `dvc repro`"]
    assert workspace.client().search_model_versions(f"name = '{NAME}'") == []


def test_a_first_version_records_that_no_champion_was_compared(workspace):
    result = as_dict(challenge(workspace.params))
    version = workspace.version(result["version"])
    assert version.tags["gate.compared_with"] == "none"
    lines = version.description.splitlines()
    assert lines[1] == result["note"] and "no @champion" in lines[1]
    assert not any(line.startswith("Compared with") for line in lines)


def test_challenge_follows_the_configured_tracking_uri_without_the_environment_variable(workspace, monkeypatch):
    """params.tracking.uri alone names the store: the registry lock and the registration use it.

    A process that connected before (a notebook, a server) and no longer has the variable:
    MLflow sets MLFLOW_TRACKING_URI only when its own URI changes, so the configured one is
    all there is to read."""
    configured = with_section(workspace.params, "tracking", uri=f"sqlite:///{workspace.db}")
    tracking.connect(configured)
    monkeypatch.delenv("MLFLOW_TRACKING_URI")
    result = as_dict(challenge(configured))
    assert result["verdict"] == "passed"
    assert "challenger" in versions.client(configured).get_model_version(NAME, result["version"]).aliases


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


def test_rechecking_the_champion_records_the_check_and_names_no_challenger(workspace):
    champion = workspace.crown("base")  # and model base stays checked out
    result = as_dict(challenge(workspace.params))
    assert (result["verdict"], result["version"], result["champion_version"]) == ("passed", champion, champion)
    version = workspace.version(champion)
    assert version.aliases == ["champion"]
    assert version.tags["gate.last_check.verdict"] == "passed"
    assert version.tags["gate.last_check.compared_with"] == champion


def test_a_rejected_candidate_says_why_and_is_not_compared(workspace):
    workspace.crown("base")
    workspace.checkout("weak")
    result = as_dict(challenge(workspace.params))
    assert result["verdict"] == "rejected" and result["comparison"] == []
    assert result["note"] == "absolute gates failed: not compared with the champion"
    assert result["champion_version"] is None


# ======================================================= the champion comparison


def compare(space, rules: dict[str, dict]):
    params = with_section(
        space.params, "registry", comparison={m: ComparisonRule(**rule) for m, rule in rules.items()}
    )
    return compare_with_champion(params, space.client(), validation_frame(params))


# ------------------------------------------------------------------------ the rules


@dataclass
class Orientation:
    candidate: str
    champion_version: str
    deltas: dict[str, float]


@pytest.fixture(scope="module")
def pair(trained_project, tmp_path_factory):
    """Both trained models registered (v1 base, v2 better) and each orientation's deltas."""
    with pytest.MonkeyPatch.context() as patch:
        space = new_workspace(trained_project, tmp_path_factory.mktemp("pair"), patch)
        versions_of = {name: space.accept(name) for name in ("base", "better")}
        loose = {metric: {"max_drop": 1.0} if metric != "log_loss" else {"max_increase": 100.0} for metric in METRICS}
        orientations = []
        for candidate, champion in (("base", "better"), ("better", "base")):
            space.checkout(candidate)
            set_champion(space, versions_of[champion])
            measured = compare(space, loose)
            assert measured.passed, measured.reasons
            deltas = {row["metric"]: row["delta"] for row in measured.rows}
            assert set(deltas) == set(METRICS)
            for row in measured.rows:
                assert row["delta"] == round(row["candidate"] - row["champion"], 6)
            orientations.append(Orientation(candidate, versions_of[champion], deltas))
        # The deliberate pair: a measurable difference on every metric, opposite ways round.
        for metric in METRICS:
            forward, backward = orientations[0].deltas[metric], orientations[1].deltas[metric]
            assert abs(forward) >= MIN_GAP, f"{metric}: base and better differ by only {forward}"
            assert forward == pytest.approx(-backward, abs=2 * STEP)
        yield space, orientations


def breaking(orientations, kind: str, metric: str) -> Orientation:
    """The orientation in which the candidate moves `metric` the way `kind` bounds."""
    return next(o for o in orientations if (o.deltas[metric] < 0) == (kind == "max_drop"))


@pytest.fixture(scope="module")
def outcomes(pair):
    """For each rule kind and orientation: the comparison with every breakable rule set
    one step tighter than the measured delta ("tight"), and exactly at it ("edge")."""
    space, orientations = pair
    with pytest.MonkeyPatch.context() as patch:
        space.enter(patch)
        results = {}
        for kind in KINDS:
            for orientation in orientations:
                metrics = [m for m in METRICS if breaking(orientations, kind, m) is orientation]
                if not metrics:
                    continue
                space.checkout(orientation.candidate)
                set_champion(space, orientation.champion_version)
                for bound in ("tight", "edge"):
                    slack = STEP if bound == "tight" else 0.0
                    rules = {m: {kind: abs(orientation.deltas[m]) - slack} for m in metrics}
                    comparison = compare(space, rules)  # one per (kind, orientation, bound)
                    for metric in metrics:
                        results[kind, bound, metric] = (comparison, rules[metric][kind], orientation)
    return results


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("metric", METRICS)
def test_a_candidate_beyond_a_rule_is_rejected_with_the_rule_and_the_delta(outcomes, metric, kind):
    comparison, bound, orientation = outcomes[kind, "tight", metric]
    delta = orientation.deltas[metric]
    assert comparison.passed is False
    assert comparison.champion_version == orientation.champion_version
    row = next(row for row in comparison.rows if row["metric"] == metric)
    assert row["delta"] == delta and row["passed"] is False
    word = "drop" if kind == "max_drop" else "rise"
    assert row["allowed"] == f"{word} <= {bound:g}"
    assert row["candidate"] - row["champion"] == pytest.approx(delta, abs=1e-9)
    (reason,) = [reason for reason in comparison.reasons if reason.startswith(f"{metric} ")]
    assert f"delta {delta:+g}" in reason, reason
    assert f"allowed {word} <= {bound:g}" in reason, reason
    assert f"vs champion v{orientation.champion_version}" in reason, reason


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("metric", METRICS)
def test_a_candidate_just_inside_a_rule_passes(outcomes, metric, kind):
    comparison, bound, orientation = outcomes[kind, "edge", metric]
    assert bound == abs(orientation.deltas[metric])
    assert comparison.passed is True, comparison.reasons
    assert comparison.reasons == []
    row = next(row for row in comparison.rows if row["metric"] == metric)
    assert row["passed"] is True and row["delta"] == orientation.deltas[metric]


def test_the_configured_rules_are_all_known_metrics(params):
    assert set(params.registry.comparison) <= set(METRICS)


def test_an_unknown_metric_in_the_rules_is_an_error_naming_it(pair, monkeypatch):
    space, orientations = pair
    space.enter(monkeypatch)
    set_champion(space, orientations[0].champion_version)
    with pytest.raises(ChurnError, match=r"registry\.comparison\.auc_roc: unknown metric"):
        compare(space, {"auc_roc": {"max_drop": 0.1}})


def test_no_champion_leaves_the_decision_to_the_absolute_gates(workspace):
    result = compare(workspace, {"roc_auc": {"max_drop": 0.0}})
    assert result.passed is True and result.champion_version is None
    assert result.reasons == [] and result.rows == []
    assert "no @champion" in result.note


# ------------------------------------------------------------ champions that misbehave


RULES = {"roc_auc": {"max_drop": 1.0}}  # so loose that only a fault can reject


def test_an_honest_fake_champion_is_compared(crowned):
    result = compare(crowned("honest"), RULES)
    assert result.passed is True, result.reasons


def test_a_delta_exactly_at_its_bound_passes_and_one_step_more_rejects(crowned):
    """Both rule kinds at their edge, against a champion whose deltas this test measures
    itself. (The same as `outcomes` above, on a fake champion and inside one test: mutmut
    runs for a mutant only the tests that called its function, and a module-scoped fixture
    runs inside whichever test came first.)"""
    space = crowned("honest")
    loose = {m: {"max_drop": 1.0} if m != "log_loss" else {"max_increase": 100.0} for m in METRICS}
    deltas = {row["metric"]: row["delta"] for row in compare(space, loose).rows}
    edge = {m: {"max_increase": delta} if delta >= 0 else {"max_drop": -delta} for m, delta in deltas.items()}
    assert {kind for rule in edge.values() for kind in rule} == set(KINDS), deltas
    at_edge = compare(space, edge)
    assert at_edge.passed is True, at_edge.reasons
    tight = {m: {kind: bound - STEP for kind, bound in rule.items()} for m, rule in edge.items() if deltas[m] != 0}
    beyond = compare(space, tight)
    assert beyond.passed is False
    assert {row["metric"] for row in beyond.rows if not row["passed"]} == set(tight)


@pytest.mark.parametrize(
    ("fault", "reason"),
    [
        ("nan", "returned no score for some validation rows"),
        ("too_few", "returned no score for some validation rows"),
        ("duplicated", "could not be loaded or scored"),
        ("refuses_rows", "the champion rejects 2 of 500 validation rows (e.g. tenure: below the minimum 0 "
                         "(in the candidate's validation set))"),
        ("raises", "RuntimeError: scorer crashed"),
        ("foreign", "is not a churn model this project logged"),
        ("deleted", "could not be loaded or scored"),
    ],
)
def test_a_champion_that_cannot_score_every_row_rejects_the_candidate(crowned, fault, reason):
    space = crowned(fault)
    result = compare(space, RULES)
    assert result.passed is False
    assert result.champion_version == str(space.champion().version)
    (text,) = result.reasons
    assert reason in text, text
    assert text.startswith(f"champion v{result.champion_version} could not be loaded or scored ("), text
    assert text.endswith("); rejecting, since the candidate cannot be shown to be no worse"), text
    assert result.rows == [] and result.note == ""


def test_a_champion_that_returns_no_score_says_which_check_failed(crowned):
    space = crowned("nan")
    (text,) = compare(space, RULES).reasons
    assert text == (
        f"champion v{space.champion().version} could not be loaded or scored (ChurnError: the champion "
        "returned no score for some validation rows); rejecting, since the candidate cannot be shown to be no worse"
    )


def test_a_rule_that_bounds_nothing_is_an_error_not_a_pass(crowned):
    # ComparisonRule's validator forbids it; built around the validator, it still must not pass.
    space = crowned("honest")
    params = with_section(space.params, "registry", comparison={"roc_auc": ComparisonRule.model_construct(
        max_drop=None, max_increase=None)})
    with pytest.raises(ChurnError, match=r"^registry\.comparison\.roc_auc: give max_drop or max_increase$"):
        compare_with_champion(params, space.client(), validation_frame(params))


def test_reordered_scores_are_matched_to_their_rows_by_id(crowned):
    # Reordering is not a fault when each score carries its key: the comparison must align
    # by customer, giving exactly what the same scores in order give.
    in_order = compare(crowned("honest"), {"roc_auc": {"max_drop": 0.0}, "log_loss": {"max_increase": 0.0}})
    reordered = compare(crowned("reordered"), {"roc_auc": {"max_drop": 0.0}, "log_loss": {"max_increase": 0.0}})
    assert reordered.rows == in_order.rows
    assert reordered.passed == in_order.passed
    assert [row["champion"] for row in in_order.rows] != [row["candidate"] for row in in_order.rows]


# -------------------------------------------------------- a registry that cannot answer


class FailingClient:
    """The real client, except that reading an alias fails as a broken store would."""

    def __init__(self, real, error: Exception):
        self._real, self._error = real, error

    def get_model_version_by_alias(self, name, alias):
        raise self._error

    def __getattr__(self, attribute):
        return getattr(self._real, attribute)


@pytest.mark.parametrize(
    "error",
    [
        MlflowException("database is locked", error_code=INTERNAL_ERROR),
        # "not found" answers that are not MLflow's own "no such alias / model" wording
        MlflowException("404 Not Found (proxy)", error_code=RESOURCE_DOES_NOT_EXIST),
        MlflowException("alias champion not found", error_code=INTERNAL_ERROR),
        MlflowException(f"Registered Model with name={NAME} not found", error_code=INVALID_PARAMETER_VALUE),
    ],
    ids=["store-error", "bare-404", "alias-text-other-code", "model-text-other-code"],
)
def test_a_registry_error_reading_the_champion_rejects(workspace, error):
    workspace.crown("better")
    workspace.checkout("base")
    result = compare_with_champion(
        workspace.params, FailingClient(workspace.client(), error), validation_frame(workspace.params)
    )
    assert result.passed is False
    (reason,) = result.reasons
    assert reason.startswith("champion comparison impossible: cannot read alias @champion"), reason
    assert error.message in reason


@pytest.mark.parametrize(
    "error",
    [
        MlflowException("Registered model alias champion not found.", error_code=INVALID_PARAMETER_VALUE),
        MlflowException(f"Registered Model with name={NAME} not found", error_code=RESOURCE_DOES_NOT_EXIST),
    ],
    ids=["no-alias", "no-model"],
)
def test_only_mlflows_own_absence_answers_mean_no_champion(workspace, error):
    result = compare_with_champion(
        workspace.params, FailingClient(workspace.client(), error), validation_frame(workspace.params)
    )
    assert result.passed is True and result.champion_version is None
    assert "no @champion" in result.note


def test_the_champion_is_judged_at_its_own_threshold(crowned):
    from sklearn.metrics import precision_score, recall_score

    space = crowned("honest")
    frame = validation_frame(space.params)
    result = compare(space, {"recall": {"max_drop": 1.0}, "precision": {"max_drop": 1.0}})
    labels = frame[space.params.dataset.label_column].to_numpy()
    predicted = Champion.probability(frame) >= Champion.threshold
    rows = {row["metric"]: row for row in result.rows}
    assert rows["recall"]["champion"] == round(recall_score(labels, predicted), 6)
    assert rows["precision"]["champion"] == round(precision_score(labels, predicted), 6)

"""Registry lifecycle on a real SQLite store: gate, register, promote, reject, roll back.

Each test builds the registry history it needs from a fresh store (see conftest), so the
tests hold in any order and on any worker.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from mlflow.exceptions import MlflowException

from churn import cli
from churn.errors import ChurnError
from churn.registry import model_card, versions
from churn.registry.challenge import challenge
from churn.registry.checkout import read_checkout_model
from churn.registry.promotion import TAG_PREVIOUS, TAG_PROMOTED_BY, promote, rollback, which

from .conftest import NAME, as_dict, validate, with_section


def test_first_model_has_no_champion_so_only_absolute_gates_apply(workspace):
    result = as_dict(challenge(workspace.params))
    assert result["verdict"] == "passed", result
    assert "no @champion" in result["note"]
    assert result["comparison"] == []
    version = workspace.version(result["version"])
    assert version.tags[versions.TAG_VERDICT] == "passed"
    assert version.tags["dvc.model_md5"] == workspace.project.md5s["base"]
    assert version.tags["dvc.raw_md5"] == read_checkout_model(workspace.params).raw_md5
    assert {"git_commit", "params_hash", "dvc.train_md5"} <= set(version.tags)
    assert versions.CHALLENGER in version.aliases
    assert json.loads(workspace.params.paths.challenge.read_text())["verdict"] == "passed"
    # The new version's model card: a run artifact, tagged, in the description, kept locally.
    card = version.tags[model_card.TAG_MODEL_CARD]
    assert card == result["model_card"] and card.startswith(f"runs:/{version.run_id}/")
    import mlflow

    text = mlflow.artifacts.load_text(card)
    assert text.startswith(f"# Model card: {NAME} v{result['version']}") and "## Known limitations" in text
    assert text in version.description or card in version.description
    assert workspace.params.paths.model_card.read_text() == text


def test_registration_is_idempotent(workspace):
    first = as_dict(challenge(workspace.params))
    again = as_dict(challenge(workspace.params))
    found = workspace.client().search_model_versions(f"name = '{NAME}'")
    assert [str(v.version) for v in found] == [first["version"]] == [again["version"]]


def test_which_finds_the_checkout_model_by_content(workspace):
    assert as_dict(which(workspace.params))["version"] is None
    version = workspace.accept("base")
    answer = as_dict(which(workspace.params))
    assert answer["model_md5"] == workspace.project.md5s["base"] and answer["version"] == version


def test_promote_first_model_then_idempotent(workspace, monkeypatch):
    workspace.accept("base")
    monkeypatch.setenv("GITHUB_ACTOR", "ci-bot")
    result = as_dict(promote(workspace.params))
    assert result == {"version": "1", "previous": None, "changed": True}
    champion = workspace.champion()
    assert str(champion.version) == "1"
    assert champion.tags[TAG_PROMOTED_BY] == "ci-bot"
    assert versions.CHALLENGER not in champion.aliases
    assert as_dict(promote(workspace.params))["changed"] is False


def test_better_candidate_passes_and_is_promoted(workspace):
    workspace.crown("base")
    workspace.checkout("better")
    result = as_dict(challenge(workspace.params))
    assert result["verdict"] == "passed", result["reasons"]
    assert result["champion_version"] == "1"
    assert {row["metric"] for row in result["comparison"]} == set(workspace.params.registry.comparison)
    assert "Compared with champion v1" in workspace.version(result["version"]).description
    assert as_dict(promote(workspace.params))["previous"] == "1"
    assert workspace.champion().tags[TAG_PREVIOUS] == "1"


def test_weakened_candidate_is_rejected_and_promote_refuses(workspace):
    workspace.crown("base")
    workspace.checkout("weak")
    result = as_dict(challenge(workspace.params))
    assert result["verdict"] == "rejected"
    assert result["reasons"], "a rejection must say why"
    assert result["version"] is None, "a rejected model is not registered"
    with pytest.raises(ChurnError, match="rejected"):
        promote(workspace.params)
    assert str(workspace.champion().version) == "1"


def test_rollback_restores_previous_champion(workspace):
    workspace.crown("base")
    workspace.crown("better")
    result = as_dict(rollback(workspace.params))
    assert result == {"version": "1", "rolled_back_from": "2"}
    assert str(workspace.champion().version) == "1"
    with pytest.raises(ChurnError, match="no previous champion"):
        rollback(workspace.params)


def test_rolled_back_version_is_not_repromoted_without_force(workspace):
    workspace.crown("base")
    workspace.crown("better")
    rollback(workspace.params)
    v2 = workspace.version(2)
    assert v2.tags[versions.TAG_ROLLBACK_BLOCKED] == "true"
    with pytest.raises(ChurnError, match="rolled back"):
        promote(workspace.params, model_md5=v2.tags["dvc.model_md5"])
    assert str(workspace.champion().version) == "1"
    forced = as_dict(promote(workspace.params, model_md5=v2.tags["dvc.model_md5"], force=True))
    assert forced == {"version": "2", "previous": "1", "changed": True}
    assert versions.TAG_ROLLBACK_BLOCKED not in workspace.version(2).tags
    rollback(workspace.params)
    assert str(workspace.champion().version) == "1"


def test_threshold_change_is_a_new_version_compared_with_the_champion(workspace):
    workspace.crown("better")
    lower = with_section(workspace.params, "train", decision_threshold=0.25)
    validate(lower)
    result = as_dict(challenge(lower))
    assert result["version"] == "2", result
    assert result["champion_version"] == "1"
    recall = next(row for row in result["comparison"] if row["metric"] == "recall")
    assert recall["candidate"] != recall["champion"]
    assert workspace.version(2).tags["dvc.model_md5"] == workspace.version(1).tags["dvc.model_md5"]


def test_recheck_keeps_the_acceptance_record_and_blocks_promotion(workspace):
    workspace.crown("base")
    assert workspace.accept("better") == "2"
    gates = workspace.params.validation.gates.model_copy(update={"min_roc_auc": 0.99})
    strict = with_section(workspace.params, "validation", gates=gates)
    validate(strict)
    result = as_dict(challenge(strict))
    assert result["verdict"] == "rejected" and result["version"] == "2"
    tags = workspace.version(2).tags
    assert tags[versions.TAG_VERDICT] == "passed"
    assert tags[versions.TAG_LAST_CHECK] == "rejected"
    with pytest.raises(ChurnError, match="latest gate check rejected"):
        promote(strict, force=True)
    assert str(workspace.champion().version) == "1"


def test_broken_champion_makes_the_gate_reject(workspace, tmp_path):
    workspace.crown("base")
    workspace.checkout("better")
    champion = workspace.champion()
    # Destroy the champion's stored model files: it can no longer be loaded. They belong to
    # the session's training run, so put them back afterwards.
    source = Path(workspace.client().get_model_version_download_uri(NAME, champion.version).removeprefix("file://"))
    shutil.copytree(source, tmp_path / "saved")
    shutil.rmtree(source)
    try:
        result = as_dict(challenge(workspace.params))
    finally:
        shutil.copytree(tmp_path / "saved", source)
    assert result["verdict"] == "rejected"
    assert any("could not be loaded or scored" in reason for reason in result["reasons"]), result["reasons"]
    assert result["version"] is None


def test_unreachable_registry_rejects_with_reason(workspace, monkeypatch):
    monkeypatch.setenv("MLFLOW_TRACKING_URI", "http://127.0.0.1:9")
    with pytest.raises(ChurnError, match="unreachable"):
        challenge(workspace.params)


def test_registration_without_a_run_logs_the_checkout_model(workspace, monkeypatch, tmp_path):
    # A new, empty team server: no run for this model exists there.
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{tmp_path / 'team.db'}")
    result = as_dict(challenge(workspace.params))
    assert result["verdict"] == "passed", result["reasons"]
    version = workspace.version(result["version"])
    import mlflow

    run = mlflow.get_run(version.run_id)
    model = read_checkout_model(workspace.params)
    assert run.data.tags["dvc.model_md5"] == model.model_md5
    assert run.info.run_name == "registered-from-checkout"
    assert {i.dataset.digest for i in run.inputs.dataset_inputs} == {model.train_md5, model.validation_md5}


RACE = """
import sys
from churn.config import load_params
from churn.errors import ChurnError
from churn.registry.promotion import promote
try:
    promote(load_params(sys.argv[1]), model_md5=sys.argv[2])
except ChurnError as exc:
    print(exc)
    sys.exit(2)
print("promoted")
"""


def test_two_promotions_racing_leave_one_champion_and_a_consistent_record(workspace, tmp_path):
    # Both were accepted while there was no champion. Whichever promotion takes the lock
    # first wins; the other then sees a champion its gate never compared it with.
    md5s = {workspace.accept(name): workspace.project.md5s[name] for name in ("base", "better")}
    params_file = tmp_path / "params.yaml"
    params_file.write_text(yaml.safe_dump(workspace.params.model_dump(mode="json", by_alias=True)))
    # The racers import the churn this test imported: the registry finds a version by a key
    # over the serving code. Under `make mutation` that is mutmut's copy, and a racer runs the
    # mutant under test; while mutmut only records which tests call what ("stats"), a racer
    # runs the plain code (recording needs mutmut's configuration, in another directory).
    import churn

    path = os.pathsep.join(filter(None, [str(Path(churn.__file__).parents[1]), os.environ.get("PYTHONPATH")]))
    env = {**os.environ, "MLFLOW_TRACKING_URI": f"sqlite:///{workspace.db}", "PYTHONPATH": path}
    if env.get("MUTANT_UNDER_TEST") == "stats":
        env["MUTANT_UNDER_TEST"] = ""
    racers = {
        number: subprocess.Popen([sys.executable, "-c", RACE, str(params_file), md5], env=env,
                                 stdout=subprocess.PIPE, text=True)
        for number, md5 in md5s.items()
    }
    outputs = {number: racer.communicate(timeout=300)[0].strip() for number, racer in racers.items()}
    winners = [number for number, racer in racers.items() if racer.returncode == 0]
    assert len(winners) == 1, outputs
    (loser,) = set(md5s) - set(winners)
    assert racers[loser].returncode == 2
    assert "compared it with no champion" in outputs[loser], outputs[loser]
    champion = workspace.champion()
    assert str(champion.version) == winners[0]
    assert champion.tags[TAG_PREVIOUS] == ""
    assert TAG_PREVIOUS not in workspace.version(loser).tags
    holders = [v for v in workspace.client().search_model_versions(f"name = '{NAME}'")
               if versions.CHAMPION in workspace.version(v.version).aliases]
    assert len(holders) == 1
    assert sorted(outputs) == ["1", "2"]


# ---------------------------------------------------- nothing half-registered (issue 9)
# A challenge that dies between creating a version and recording its gate is completed by
# the next one, and `which` says what state the version is in. Own registered model names,
# so the state left by the tests above does not matter.

REPAIR_NAME = "churn-repair-test"  # its own registered model: no champion from other tests


class ServerDiesAfterCreate:
    """An MlflowClient whose server goes away right after a version was created: every
    write to a version fails, as when the tracking server is killed mid-command."""

    def __init__(self, real):
        self._real = real
        self.failed_writes = 0

    def __getattr__(self, name):
        attribute = getattr(self._real, name)
        if name in ("set_model_version_tag", "update_model_version", "set_registered_model_alias"):
            def dead(*args, **kwargs):
                self.failed_writes += 1
                raise MlflowException("API request failed: Max retries exceeded (connection refused)")
            return dead
        return attribute


@pytest.fixture
def repair_params(workspace):
    params = workspace.params.model_copy(
        update={"registry": workspace.params.registry.model_copy(update={"model_name": REPAIR_NAME})}
    )
    workspace.train(params)
    return params


def test_an_interrupted_challenge_is_completed_by_the_next(repair_params, monkeypatch, capsys):
    real_client = versions.client
    faulty: list[ServerDiesAfterCreate] = []

    def faulty_client(params):
        faulty.append(ServerDiesAfterCreate(real_client(params)))
        return faulty[-1]

    monkeypatch.setattr(versions, "client", faulty_client)
    with pytest.raises(MlflowException):
        challenge(repair_params)
    assert faulty[-1].failed_writes == 1  # died on the first write after the create
    monkeypatch.setattr(versions, "client", real_client)

    # The version exists with its lineage but no gate record: `which` says so, and
    # promote refuses with the way out.
    client = versions.client(repair_params)
    [half] = client.search_model_versions(f"name = '{REPAIR_NAME}'")
    assert versions.TAG_VERDICT not in half.tags and "dvc.model_md5" in half.tags
    answer = which(repair_params)
    assert (answer.version, answer.state) == (str(half.version), "incomplete")
    assert cli._which(argparse.Namespace(), repair_params) == 1
    assert "incomplete: created without a gate record" in capsys.readouterr().out
    with pytest.raises(Exception, match="rerun `churn challenge`"):
        promote(repair_params)

    # The next challenge completes that same version instead of stranding it.
    result = challenge(repair_params)
    assert result.verdict == "passed", result
    assert result.version == str(half.version)
    assert result.repaired == f"v{half.version} was left without a gate record by an interrupted challenge: completed"
    [done] = client.search_model_versions(f"name = '{REPAIR_NAME}'")
    # Completed like a fresh registration: with its model card.
    assert result.model_card is not None and done.tags[model_card.TAG_MODEL_CARD] == result.model_card
    assert done.tags[versions.TAG_VERDICT] == "passed"
    assert versions.CHALLENGER in client.get_model_version(REPAIR_NAME, str(done.version)).aliases
    assert which(repair_params).state == "gated"
    assert promote(repair_params).changed is True


def test_a_version_whose_registration_failed_is_marked_invalid_and_replaced(repair_params, monkeypatch):
    params = repair_params.model_copy(
        update={"registry": repair_params.registry.model_copy(update={"model_name": REPAIR_NAME + "-failed"})}
    )
    real_client = versions.client
    monkeypatch.setattr(versions, "client", lambda p: ServerDiesAfterCreate(real_client(p)))
    with pytest.raises(MlflowException):
        challenge(params)
    monkeypatch.setattr(versions, "client", real_client)
    client = versions.client(params)
    [first] = client.search_model_versions(f"name = '{REPAIR_NAME}-failed'")

    class FailedRegistration:
        """The version as a store reports it when it could not finish creating it."""

        def __init__(self, version):
            self._version = version

        def __getattr__(self, name):
            return "FAILED_REGISTRATION" if name == "status" else getattr(self._version, name)

    real_find = versions.find_version

    def find(mlflow_client, p, md5):
        found = real_find(mlflow_client, p, md5)
        return FailedRegistration(found) if found is not None and found.version == first.version else found

    monkeypatch.setattr(versions, "find_version", find)
    assert versions.state(FailedRegistration(first)) == "incomplete (registration FAILED_REGISTRATION)"
    result = challenge(params)
    assert result.repaired == f"v{first.version} was marked invalid (FAILED_REGISTRATION); registered afresh"
    assert result.verdict == "passed" and result.version != str(first.version)
    invalid = client.get_model_version(REPAIR_NAME + "-failed", str(first.version))
    assert invalid.tags[versions.TAG_INVALID] == "true"
    assert invalid.description == "Invalid: registration ended as FAILED_REGISTRATION"
    monkeypatch.setattr(versions, "find_version", real_find)
    assert str(versions.find_version(client, params, first.tags["dvc.model_md5"]).version) == result.version


def test_compare_only_writes_nothing_to_the_registry(repair_params):
    params = repair_params.model_copy(
        update={"registry": repair_params.registry.model_copy(update={"model_name": REPAIR_NAME + "-pr"})}
    )
    result = challenge(params, register=False)
    assert result.verdict == "passed" and result.version is None
    assert result.note == (
        f"no @champion in {REPAIR_NAME}-pr yet: only the absolute gates apply "
        "Compared only: nothing registered (--compare-only)."
    )
    assert versions.client(params).search_model_versions(f"name = '{REPAIR_NAME}-pr'") == []
    assert json.loads(params.paths.challenge.read_text())["verdict"] == "passed"

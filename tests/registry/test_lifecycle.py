"""Registry lifecycle on a real SQLite store: gate, register, promote, reject, roll back.

The tests run in order on one workspace, as a team's registry evolves.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from churn.errors import ChurnError
from churn.registry import versions
from churn.registry.challenge import challenge
from churn.registry.checkout import read_checkout_model
from churn.registry.promotion import TAG_PREVIOUS, TAG_PROMOTED_BY, promote, rollback, which

NAME = "churn-classifier"


def _client(params):
    return versions.client(params)


def _champion(params):
    return versions.alias_version(_client(params), NAME, versions.CHAMPION)


@pytest.fixture(scope="module")
def first(workspace):
    md5 = workspace.train()
    return md5


def test_first_model_has_no_champion_so_only_absolute_gates_apply(workspace, first):
    result = challenge(workspace.params)
    assert result["verdict"] == "passed", result
    assert "no @champion" in result["note"]
    assert result["comparison"] == []
    version = _client(workspace.params).get_model_version(NAME, result["version"])
    assert version.tags[versions.TAG_VERDICT] == "passed"
    assert version.tags["dvc.model_md5"] == first
    assert version.tags["dvc.raw_md5"] == read_checkout_model(workspace.params).raw_md5
    assert {"git_commit", "params_hash", "dvc.train_md5"} <= set(version.tags)
    assert versions.CHALLENGER in version.aliases
    assert json.loads(workspace.params.paths.challenge.read_text())["verdict"] == "passed"


def test_registration_is_idempotent(workspace, first):
    again = challenge(workspace.params)
    found = _client(workspace.params).search_model_versions(f"name = '{NAME}'")
    assert [str(v.version) for v in found] == [again["version"]]


def test_which_finds_the_checkout_model_by_content(workspace, first):
    answer = which(workspace.params)
    assert answer["model_md5"] == first and answer["version"] == "1"


def test_promote_first_model_then_idempotent(workspace, first, monkeypatch):
    monkeypatch.setenv("GITHUB_ACTOR", "ci-bot")
    result = promote(workspace.params)
    assert result == {"version": "1", "previous": None, "changed": True}
    champion = _champion(workspace.params)
    assert str(champion.version) == "1"
    assert champion.tags[TAG_PROMOTED_BY] == "ci-bot"
    assert versions.CHALLENGER not in champion.aliases
    assert promote(workspace.params)["changed"] is False


def test_better_candidate_passes_and_is_promoted(workspace, first):
    better = workspace.with_train(max_iter=120)
    md5 = workspace.train(better)
    assert md5 != first
    result = challenge(better)
    assert result["verdict"] == "passed", result["reasons"]
    assert result["champion_version"] == "1"
    assert {row["metric"] for row in result["comparison"]} == set(better.registry.comparison)
    version = _client(better).get_model_version(NAME, result["version"])
    assert "Compared with champion v1" in version.description
    assert promote(better)["previous"] == "1"
    assert _champion(better).tags[TAG_PREVIOUS] == "1"


def test_weakened_candidate_is_rejected_and_promote_refuses(workspace):
    weak = workspace.with_train(max_iter=3, learning_rate=0.01, max_leaf_nodes=2)
    workspace.train(weak)
    result = challenge(weak)
    assert result["verdict"] == "rejected"
    assert result["reasons"], "a rejection must say why"
    assert result["version"] is None, "a rejected model is not registered"
    with pytest.raises(ChurnError, match="rejected"):
        promote(weak)
    assert str(_champion(weak).version) == "2"


def test_rollback_restores_previous_champion(workspace):
    result = rollback(workspace.params)
    assert result == {"version": "1", "rolled_back_from": "2"}
    assert str(_champion(workspace.params).version) == "1"
    with pytest.raises(ChurnError, match="no previous champion"):
        rollback(workspace.params)


def test_rolled_back_version_is_not_repromoted_without_force(workspace):
    client = _client(workspace.params)
    v2 = client.get_model_version(NAME, "2")
    assert v2.tags[versions.TAG_ROLLBACK_BLOCKED] == "true"
    with pytest.raises(ChurnError, match="rolled back"):
        promote(workspace.params, model_md5=v2.tags["dvc.model_md5"])
    assert str(_champion(workspace.params).version) == "1"
    forced = promote(workspace.params, model_md5=v2.tags["dvc.model_md5"], force=True)
    assert forced == {"version": "2", "previous": "1", "changed": True}
    assert versions.TAG_ROLLBACK_BLOCKED not in client.get_model_version(NAME, "2").tags
    rollback(workspace.params)
    assert str(_champion(workspace.params).version) == "1"


def test_threshold_change_is_a_new_version_compared_with_the_champion(workspace):
    better = workspace.with_train(max_iter=120)
    train = better.train.model_copy(update={"decision_threshold": 0.25})
    lower = better.model_copy(update={"train": train})
    workspace.train(lower)
    result = challenge(lower)
    assert result["version"] not in (None, "1", "2"), result
    assert result["champion_version"] == "1"
    recall = next(row for row in result["comparison"] if row["metric"] == "recall")
    assert recall["candidate"] != recall["champion"]
    served = _client(lower).get_model_version(NAME, result["version"])
    assert served.tags["dvc.model_md5"] == _client(lower).get_model_version(NAME, "2").tags["dvc.model_md5"]


def test_recheck_keeps_the_acceptance_record_and_blocks_promotion(workspace):
    strict = workspace.with_train(max_iter=120)
    gates = strict.validation.gates.model_copy(update={"min_roc_auc": 0.99})
    strict = strict.model_copy(update={"validation": strict.validation.model_copy(update={"gates": gates})})
    workspace.train(strict)
    result = challenge(strict)
    assert result["verdict"] == "rejected" and result["version"] == "2"
    tags = _client(strict).get_model_version(NAME, "2").tags
    assert tags[versions.TAG_VERDICT] == "passed"
    assert tags[versions.TAG_LAST_CHECK] == "rejected"
    with pytest.raises(ChurnError, match="latest gate check rejected"):
        promote(strict, force=True)


def test_broken_champion_makes_the_gate_reject(workspace):
    workspace.train(workspace.with_train(max_iter=150))
    client = _client(workspace.params)
    champion = _champion(workspace.params)
    # Destroy the champion's stored model files: it can no longer be loaded.
    source = client.get_model_version_download_uri(NAME, champion.version)
    shutil.rmtree(Path(source.removeprefix("file://")))
    result = challenge(workspace.params)
    assert result["verdict"] == "rejected"
    assert any("could not be loaded or scored" in reason for reason in result["reasons"]), result["reasons"]


def test_unreachable_registry_rejects_with_reason(workspace, monkeypatch):
    monkeypatch.setenv("MLFLOW_TRACKING_URI", "http://127.0.0.1:9")
    with pytest.raises(ChurnError, match="unreachable"):
        challenge(workspace.params)


def test_registration_without_a_run_logs_the_checkout_model(workspace, monkeypatch, tmp_path):
    # A new, empty team server: no run for this model exists there.
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{tmp_path / 'team.db'}")
    result = challenge(workspace.params)
    assert result["verdict"] == "passed", result["reasons"]
    version = _client(workspace.params).get_model_version(NAME, result["version"])
    import mlflow

    run = mlflow.get_run(version.run_id)
    assert run.data.tags["dvc.model_md5"] == read_checkout_model(workspace.params).model_md5
    assert run.info.run_name == "registered-from-checkout"
    assert {i.dataset.digest for i in run.inputs.dataset_inputs} == {
        read_checkout_model(workspace.params).train_md5,
        read_checkout_model(workspace.params).validation_md5,
    }


RACE = """
import sys
from churn.config import load_params
from churn.registry.promotion import promote
print(promote(load_params(sys.argv[1]), model_md5=sys.argv[2])["version"])
"""


def test_two_promotions_racing_leave_one_champion_and_a_consistent_record(workspace, tmp_path, monkeypatch):
    uri = f"sqlite:///{tmp_path / 'race.db'}"
    monkeypatch.setenv("MLFLOW_TRACKING_URI", uri)
    md5s = []
    for iterations in (70, 90):
        params = workspace.with_train(max_iter=iterations)
        md5s.append(workspace.train(params))
        assert challenge(params)["verdict"] == "passed"
    params_file = tmp_path / "params.yaml"
    import yaml

    params_file.write_text(yaml.safe_dump(workspace.params.model_dump(mode="json", by_alias=True)))
    env = {**__import__("os").environ, "MLFLOW_TRACKING_URI": uri}
    racers = [
        subprocess.Popen([sys.executable, "-c", RACE, str(params_file), md5], env=env, stdout=subprocess.PIPE, text=True)
        for md5 in md5s
    ]
    outputs = [racer.communicate(timeout=300)[0].strip().splitlines()[-1] for racer in racers]
    assert all(racer.returncode == 0 for racer in racers)
    client = _client(workspace.params)
    champion = _champion(workspace.params)
    holders = [v for v in client.search_model_versions(f"name = '{NAME}'") if versions.CHAMPION in client.get_model_version(NAME, v.version).aliases]
    assert len(holders) == 1
    other = ({"1", "2"} - {str(champion.version)}).pop()
    # Whoever won last must record the other as its predecessor; the first had none.
    assert champion.tags[TAG_PREVIOUS] == other
    assert client.get_model_version(NAME, other).tags[TAG_PREVIOUS] == ""
    assert sorted(outputs) == ["1", "2"]

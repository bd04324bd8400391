"""No version becomes @champion, by `promote` or by `rollback`, unless its gate record says it
may: a missing, rejected, stale or rolled-back record refuses, and changes nothing.

Each test builds its registry history from a fresh store (see conftest).
"""

from __future__ import annotations

import json
import re

import pytest

from churn.config import ComparisonRule
from churn.errors import ChurnError
from churn.registry import versions
from churn.registry.challenge import challenge
from churn.registry.promotion import TAG_PREVIOUS, TAG_ROLLED_BACK_AT, TAG_ROLLED_BACK_BY, promote, rollback

from .conftest import NAME, as_dict, validate, with_section


def champion_number(space) -> str | None:
    champion = space.champion()
    return None if champion is None else str(champion.version)


def refuses(action, match: str, space, *args, **kwargs) -> None:
    """`action` raises a ChurnError matching `match` and leaves the champion alone."""
    before = champion_number(space)
    tags_before = {v.version: dict(space.version(v.version).tags) for v in space.client().search_model_versions(f"name = '{NAME}'")}
    with pytest.raises(ChurnError, match=match):
        action(*args, **kwargs)
    assert champion_number(space) == before
    tags_after = {v.version: dict(space.version(v.version).tags) for v in space.client().search_model_versions(f"name = '{NAME}'")}
    assert tags_after == tags_before, "a refusal changed the registry"


def looser_gates(params):
    gates = params.validation.gates.model_copy(update={"min_roc_auc": 0.5})
    return with_section(params, "validation", gates=gates)


def other_rules(params):
    rules = {**params.registry.comparison, "brier": ComparisonRule(max_increase=0.5)}
    return with_section(params, "registry", comparison=rules)


def other_data_checks(params):
    checks = params.validation.data_checks.model_copy(update={"max_missing_share": 0.5})
    return with_section(params, "validation", data_checks=checks)


def strict_gates(params):
    gates = params.validation.gates.model_copy(update={"min_roc_auc": 0.99})
    return with_section(params, "validation", gates=gates)


# -------------------------------------------------------------------------- promote


def test_a_model_the_gate_never_saw_is_not_promoted(workspace):
    refuses(promote, "never accepted by the gate: run `churn challenge`", workspace, workspace.params)


def test_a_model_the_gate_rejected_is_not_promoted_and_the_reason_is_given(workspace):
    workspace.checkout("weak")
    result = as_dict(challenge(workspace.params))
    assert result["verdict"] == "rejected"
    refuses(promote, r"rejected by `churn challenge`: .*validation_roc_auc", workspace, workspace.params)


def test_a_version_without_a_gate_record_is_not_promoted(workspace):
    version = workspace.accept("base")
    workspace.client().delete_model_version_tag(NAME, version, versions.TAG_VERDICT)
    refuses(promote, f"v{version}: it has no gate record", workspace, workspace.params, force=True)


def test_a_version_whose_gate_record_says_rejected_is_not_promoted(workspace):
    version = workspace.accept("base")
    client = workspace.client()
    client.set_model_version_tag(NAME, version, versions.TAG_VERDICT, "rejected")
    client.set_model_version_tag(NAME, version, versions.TAG_REASONS, "model check validation_recall fails")
    refuses(promote, "its gate verdict is rejected model check validation_recall fails", workspace,
            workspace.params, force=True)


def test_a_version_whose_latest_check_rejected_it_is_not_promoted(workspace):
    version = workspace.accept("base")
    strict = strict_gates(workspace.params)
    validate(strict)
    assert as_dict(challenge(strict))["verdict"] == "rejected"
    refuses(promote, rf"v{version}: its latest gate check rejected it .*validation_roc_auc", workspace, strict, force=True)


@pytest.mark.parametrize("change", [looser_gates, other_rules, other_data_checks], ids=lambda f: f.__name__)
def test_a_version_gated_under_other_params_is_stale_until_rechecked(workspace, change):
    version = workspace.accept("base")
    changed = change(workspace.params)
    validate(changed)  # the absolute verdict is current: only the registry record is stale
    refuses(promote, f"v{version}: its gate record is stale: it was made under other gates", workspace,
            changed, force=True)
    assert as_dict(challenge(changed))["verdict"] == "passed"
    assert as_dict(promote(changed))["version"] == version


def test_a_version_compared_with_another_champion_is_stale_until_rechecked(workspace):
    first = workspace.accept("base")
    second = workspace.accept("better")
    promote(workspace.params, model_md5=workspace.project.md5s["base"])
    refuses(promote, f"v{second}: .*compared it with no champion, but @champion is now v{first}", workspace,
            workspace.params, model_md5=workspace.project.md5s["better"], force=True)
    workspace.checkout("better")
    assert as_dict(challenge(workspace.params))["champion_version"] == first
    assert as_dict(promote(workspace.params))["previous"] == first


def test_a_rolled_back_version_is_not_promoted_without_force(workspace, monkeypatch):
    from churn.registry.promotion import history_of

    first = workspace.crown("base")
    second = workspace.crown("better")
    rollback(workspace.params)
    tags = workspace.version(second).tags
    refuses(promote, re.escape(
        f"refusing to promote {NAME} v{second}: it was rolled back on {tags[TAG_ROLLED_BACK_AT]} by "
        f"{tags[TAG_ROLLED_BACK_BY]}. Merge a new model, or re-promote it on purpose with `churn promote --force`."),
        workspace, workspace.params)
    # Without the time and actor tags the refusal still holds, with '?' for the lost facts.
    for tag in (TAG_ROLLED_BACK_AT, TAG_ROLLED_BACK_BY):
        workspace.client().delete_model_version_tag(NAME, second, tag)
    refuses(promote, re.escape(f"v{second}: it was rolled back on ? by ?. Merge a new model"), workspace,
            workspace.params)
    monkeypatch.setenv("GITHUB_ACTOR", "release-bot")
    monkeypatch.setenv("GITHUB_SHA", "feed")
    assert as_dict(promote(workspace.params, force=True))["version"] == second
    # The history names the forced re-promotion, its commit and the champion it replaced.
    tags = workspace.version(second).tags
    assert history_of(tags)[-1] == {"event": "re-promoted after a rollback (--force)", "at": tags["promotion.at"],
                                     "by": "release-bot", "commit": "feed", "replaced": first}


def test_a_first_promotion_records_that_it_replaced_no_champion(workspace, monkeypatch):
    from churn.registry.promotion import history_of

    monkeypatch.setenv("GITHUB_ACTOR", "release-bot")
    monkeypatch.setenv("GITHUB_SHA", "cafe")
    first = workspace.crown("base")
    tags = workspace.version(first).tags
    assert history_of(tags)[-1] == {"event": "promoted", "at": tags["promotion.at"], "by": "release-bot",
                                    "commit": "cafe", "replaced": "none"}
    assert tags[TAG_PREVIOUS] == ""


def test_which_tells_the_story_of_promotions_and_rollbacks(workspace, capsys):
    """After a rollback `which` says the version is out of service; after `--force` the
    rollback is history, not state, and every step is listed with who and when."""
    from churn import cli
    from churn.registry.promotion import TAG_ROLLED_BACK_AT, TAG_ROLLED_BACK_BY, which

    first = workspace.crown("base")
    second = workspace.crown("better")
    rollback(workspace.params)
    answer = which(workspace.params)
    assert answer.version == second and answer.aliases == []
    tags = workspace.version(second).tags
    assert tags[TAG_ROLLED_BACK_AT] and tags[TAG_ROLLED_BACK_BY]
    assert answer.state == (f"rolled back on {tags[TAG_ROLLED_BACK_AT]} by {tags[TAG_ROLLED_BACK_BY]}: "
                            "out of service until `churn promote --force`")
    assert [e["event"] for e in answer.history] == ["promoted", f"rolled back to v{first}"]
    assert all(e["by"] and e["at"] for e in answer.history)
    promote(workspace.params, force=True)
    answer = which(workspace.params)
    assert answer.state == "gated" and answer.aliases == ["champion"]
    assert TAG_ROLLED_BACK_AT not in workspace.version(second).tags
    assert [e["event"] for e in answer.history] == [
        "promoted", f"rolled back to v{first}", "re-promoted after a rollback (--force)"]
    assert cli._which(None, workspace.params) == 0
    printed = capsys.readouterr().out
    assert "re-promoted after a rollback (--force)" in printed and f"rolled back to v{first}" in printed


def test_a_recheck_that_passes_supersedes_the_acceptance(workspace):
    # v1 accepted before any champion; v2 then became champion; a recheck of v1 against v2
    # (a passing one) is the record that counts.
    loose = with_section(workspace.params, "registry", comparison={"roc_auc": ComparisonRule(max_drop=1.0)})
    first = workspace.accept("base", loose)
    second = workspace.crown("better", loose)
    workspace.checkout("base")
    assert as_dict(challenge(loose))["champion_version"] == second
    assert as_dict(promote(loose))["previous"] == second
    assert champion_number(workspace) == first


# ------------------------------------------------------------------------- rollback


def two_champions(space, params=None) -> tuple[str, str]:
    return space.crown("base", params), space.crown("better", params)


def test_rollback_refuses_a_previous_version_without_a_gate_record(workspace):
    first, second = two_champions(workspace)
    workspace.client().delete_model_version_tag(NAME, first, versions.TAG_VERDICT)
    refuses(rollback, f"refusing to roll {NAME} back to v{first}: it has no gate record", workspace, workspace.params)
    assert versions.TAG_ROLLBACK_BLOCKED not in workspace.version(second).tags


def test_rollback_refuses_a_previous_version_the_gate_has_since_rejected(workspace):
    first, second = two_champions(workspace)
    strict = strict_gates(workspace.params)
    workspace.checkout("base")
    validate(strict)
    assert as_dict(challenge(strict))["verdict"] == "rejected"
    refuses(rollback, f"back to v{first}: its latest gate check rejected it", workspace, strict)
    assert champion_number(workspace) == second


def test_rollback_refuses_a_previous_version_gated_under_other_params(workspace):
    first, second = two_champions(workspace)
    refuses(rollback, f"back to v{first}: its gate record is stale", workspace, looser_gates(workspace.params))
    # Under the params it was gated with, the same rollback goes through.
    assert as_dict(rollback(workspace.params)) == {"version": first, "rolled_back_from": second}


def test_rollback_refuses_a_previous_version_that_was_itself_rolled_back(workspace):
    loose = with_section(workspace.params, "registry", comparison={"roc_auc": ComparisonRule(max_drop=1.0)})
    first, second = two_champions(workspace, loose)
    workspace.checkout("base")
    challenge(loose)  # recheck v1 against v2, then promote it back on top of v2
    assert as_dict(promote(loose))["previous"] == second
    assert as_dict(rollback(loose)) == {"version": second, "rolled_back_from": first}
    # v2's own predecessor is v1, which was just rolled back: not restored silently.
    assert workspace.version(second).tags[TAG_PREVIOUS] == first
    tags = workspace.version(first).tags
    refuses(rollback, re.escape(
        f"refusing to roll {NAME} back to v{first}: it was itself rolled back on {tags[TAG_ROLLED_BACK_AT]} by "
        f"{tags[TAG_ROLLED_BACK_BY]}. @champion stays v{second}; promote a model explicitly instead."),
        workspace, loose)
    assert champion_number(workspace) == second
    # Without the time and actor tags the refusal still holds, with '?' for the lost facts.
    for tag in (TAG_ROLLED_BACK_AT, TAG_ROLLED_BACK_BY):
        workspace.client().delete_model_version_tag(NAME, first, tag)
    refuses(rollback, re.escape(f"back to v{first}: it was itself rolled back on ? by ?. @champion"), workspace, loose)


def test_rollback_restores_a_previous_version_whose_record_is_current(workspace):
    first, second = two_champions(workspace)
    assert as_dict(rollback(workspace.params)) == {"version": first, "rolled_back_from": second}
    assert workspace.version(second).tags[versions.TAG_ROLLBACK_BLOCKED] == "true"
    # Both versions' histories end with the rollback, at the time and by the actor the tags name.
    from churn.registry.promotion import history_of

    restored, replaced = workspace.version(first).tags, workspace.version(second).tags
    stamp, who = restored[TAG_ROLLED_BACK_AT], restored[TAG_ROLLED_BACK_BY]
    assert (replaced[TAG_ROLLED_BACK_AT], replaced[TAG_ROLLED_BACK_BY]) == (stamp, who) and stamp and who
    assert history_of(restored)[-1] == {"event": f"restored as champion by a rollback of v{second}", "at": stamp, "by": who}
    assert history_of(replaced)[-1] == {"event": f"rolled back to v{first}", "at": stamp, "by": who}


def test_rollback_follows_the_configured_tracking_uri_without_the_environment_variable(workspace, monkeypatch):
    first, second = two_champions(workspace)
    configured = with_section(workspace.params, "tracking", uri=f"sqlite:///{workspace.db}")
    monkeypatch.delenv("MLFLOW_TRACKING_URI")
    assert as_dict(rollback(configured)) == {"version": first, "rolled_back_from": second}



def test_which_says_a_rollback_it_cannot_date_is_unknown(workspace):
    """A blocked version whose time and actor tags were lost (edited by hand, an older
    churn) still reads as out of service, with '?' where the facts are missing."""
    from churn.registry.promotion import TAG_ROLLED_BACK_AT, TAG_ROLLED_BACK_BY, which

    workspace.crown("base")
    second = workspace.crown("better")
    rollback(workspace.params)
    for tag in (TAG_ROLLED_BACK_AT, TAG_ROLLED_BACK_BY):
        workspace.client().delete_model_version_tag(NAME, second, tag)
    assert which(workspace.params).state == "rolled back on ? by ?: out of service until `churn promote --force`"


# ----------------------------------------------------------------- who, when, which


@pytest.mark.parametrize(
    ("variables", "expected"),
    [
        ({"GITHUB_ACTOR": "gh", "BUILD_REQUESTEDFOR": "az", "GITLAB_USER_LOGIN": "gl", "USER": "me"}, "gh"),
        ({"BUILD_REQUESTEDFOR": "az", "GITLAB_USER_LOGIN": "gl", "USER": "me"}, "az"),
        ({"GITLAB_USER_LOGIN": "gl", "USER": "me"}, "gl"),
        ({"USER": "me"}, "me"),
        ({"GITHUB_ACTOR": "", "USER": "me"}, "me"),
    ],
)
def test_the_actor_is_the_ci_user_first(monkeypatch, variables, expected):
    from churn.registry.promotion import actor

    for name in ("GITHUB_ACTOR", "BUILD_REQUESTEDFOR", "GITLAB_USER_LOGIN", "USER"):
        monkeypatch.delenv(name, raising=False)
    for name, value in variables.items():
        monkeypatch.setenv(name, value)
    monkeypatch.setenv("LOGNAME", "login-name")  # getpass's first choice: USER must be read before it
    assert actor() == expected


def test_without_any_variable_the_actor_is_the_login_or_unknown(monkeypatch):
    import getpass

    from churn.registry.promotion import actor

    for name in ("GITHUB_ACTOR", "BUILD_REQUESTEDFOR", "GITLAB_USER_LOGIN", "USER"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setattr(getpass, "getuser", lambda: "login")
    assert actor() == "login"

    def no_user():
        raise KeyError("uid not in passwd")

    monkeypatch.setattr(getpass, "getuser", no_user)
    assert actor() == "unknown"


def test_promotion_records_who_when_from_which_commit_and_what_it_replaced(workspace, monkeypatch):
    import re

    first = workspace.crown("base")
    monkeypatch.setenv("GITHUB_ACTOR", "release-bot")
    monkeypatch.setenv("GITHUB_SHA", "c0ffee")
    second = workspace.accept("better")
    assert as_dict(promote(workspace.params)) == {"version": second, "previous": first, "changed": True}
    tags = workspace.version(second).tags
    assert tags["promotion.by"] == "release-bot" and tags["promotion.commit"] == "c0ffee"
    assert tags[TAG_PREVIOUS] == first
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\+00:00", tags["promotion.at"]), tags["promotion.at"]
    # Idempotent: promoting the champion again reports it unchanged, with its predecessor.
    assert as_dict(promote(workspace.params)) == {"version": second, "previous": first, "changed": False}


def test_promote_follows_the_configured_tracking_uri_without_the_environment_variable(workspace, monkeypatch):
    """params.tracking.uri alone names the store: the registry lock and the lookup use it."""
    first = workspace.crown("base")
    second = workspace.accept("better")
    configured = with_section(workspace.params, "tracking", uri=f"sqlite:///{workspace.db}")
    monkeypatch.delenv("MLFLOW_TRACKING_URI")
    assert as_dict(promote(configured)) == {"version": second, "previous": first, "changed": True}


def test_without_a_ci_commit_the_promotion_records_the_checkouts_commit(workspace, monkeypatch):
    from churn.core import tracking

    monkeypatch.delenv("GITHUB_SHA", raising=False)
    monkeypatch.setattr(tracking, "git_commit", lambda: "abc123")
    workspace.crown("base")
    assert workspace.champion().tags["promotion.commit"] == "abc123"


def test_rollback_records_who_and_when_on_both_versions(workspace, monkeypatch):
    first, second = two_champions(workspace)
    monkeypatch.setenv("GITHUB_ACTOR", "oncall")
    rollback(workspace.params)
    restored, replaced = workspace.version(first), workspace.version(second)
    assert replaced.tags["rollback.by"] == restored.tags["rollback.by"] == "oncall"
    assert replaced.tags["rollback.at"] == restored.tags["rollback.at"]
    assert restored.tags["rollback.from_version"] == second
    assert "champion" in restored.aliases and "champion" not in replaced.aliases


def test_rollback_to_a_version_deleted_since_is_refused(workspace):
    first, second = two_champions(workspace)
    workspace.client().delete_model_version(NAME, first)
    with pytest.raises(ChurnError, match=f"records v{first} as the previous champion, but that version no longer exists"):
        rollback(workspace.params)
    assert champion_number(workspace) == second


def test_rollback_without_a_champion_is_refused(workspace):
    with pytest.raises(ChurnError, match="has no @champion: nothing to roll back"):
        rollback(workspace.params)


def test_a_rejection_report_for_another_model_does_not_explain_this_one(workspace):
    # reports/challenge.json says the weak model was rejected; the checkout is another model
    workspace.params.paths.challenge.write_text(
        json.dumps({"model_md5": workspace.project.md5s["weak"], "verdict": "rejected", "reasons": ["x"]})
    )
    refuses(promote, "never accepted by the gate", workspace, workspace.params)


def test_which_names_the_version_its_aliases_and_verdict(workspace):
    from churn.registry.promotion import which

    version = workspace.crown("base")
    answer = as_dict(which(workspace.params))
    history = answer.pop("history")
    assert answer == {"model_md5": workspace.project.md5s["base"], "version": version,
                      "aliases": ["champion"], "verdict": "passed", "state": "gated"}
    assert [event["event"] for event in history] == ["promoted"]
    workspace.checkout("better")
    assert as_dict(which(workspace.params)) == {"model_md5": workspace.project.md5s["better"], "version": None,
                                                "aliases": [], "verdict": None, "state": None, "history": []}


# ------------------------------------------ the gate record and the history, read alone
# The rules above, on tag dictionaries and a stand-in client: every branch and message,
# without a registry (fast, so `make mutation` kills a mutant here before the slow tests).


def record(params, **changes):
    """A gate record that lets a version become champion (no champion yet), with `changes`
    (tag -> value; None removes the tag)."""
    tags = {
        versions.TAG_VERDICT: "passed",
        versions.TAG_GATE_PARAMS: versions.gate_params_md5(params),
        versions.TAG_CHAMPION_AT_GATE: "none",
    }
    tags.update(changes)
    return {key: value for key, value in tags.items() if value is not None}


STALE_PARAMS = (
    "its gate record is stale: it was made under other gates, threshold, data contract or "
    "comparison rules than params.yaml sets now; rerun `churn challenge`"
)


def test_a_current_passed_record_lets_a_version_become_champion(params):
    from churn.registry.promotion import gate_refusal

    assert gate_refusal(params, record(params)) is None
    assert gate_refusal(params, record(params, **{versions.TAG_CHAMPION_AT_GATE: "3"}), champion="3") is None


def test_a_version_without_a_verdict_has_no_gate_record(params):
    from churn.registry.promotion import gate_refusal

    assert gate_refusal(params, record(params, **{versions.TAG_VERDICT: None})) == (
        "it has no gate record (a `churn challenge` died before writing it, or another tool "
        "registered it): rerun `churn challenge`, which completes it"
    )


def test_a_rejected_verdict_refuses_with_its_reasons(params):
    from churn.registry.promotion import gate_refusal

    rejected = record(params, **{versions.TAG_VERDICT: "rejected"})
    assert gate_refusal(params, rejected) == "its gate verdict is rejected"
    rejected[versions.TAG_REASONS] = '["recall 0.2 < 0.3"]'
    assert gate_refusal(params, rejected) == 'its gate verdict is rejected ["recall 0.2 < 0.3"]'


def test_a_rejecting_latest_check_refuses_with_its_reasons(params):
    from churn.registry.promotion import gate_refusal

    rechecked = record(params, **{versions.TAG_LAST_CHECK: "rejected"})
    assert gate_refusal(params, rechecked) == "its latest gate check rejected it"
    rechecked[versions.TAG_LAST_CHECK_REASONS] = '["roc_auc 0.7 < 0.99"]'
    assert gate_refusal(params, rechecked) == 'its latest gate check rejected it ["roc_auc 0.7 < 0.99"]'


def test_the_latest_record_decides_whether_it_is_stale(params):
    from churn.registry.promotion import gate_refusal

    current, old = versions.gate_params_md5(params), "0" * 32
    # accepted under other params, rechecked (passed) under these: current
    recheck = {versions.TAG_LAST_CHECK: "passed", versions.TAG_LAST_CHECK_PARAMS: current,
               versions.TAG_LAST_CHECK_COMPARED_WITH: "2"}
    assert gate_refusal(params, record(params, **{versions.TAG_GATE_PARAMS: old}, **recheck), champion="2") is None
    # accepted under these, rechecked under other params: stale
    stale = {**recheck, versions.TAG_LAST_CHECK_PARAMS: old}
    assert gate_refusal(params, record(params, **stale), champion="2") == STALE_PARAMS
    assert gate_refusal(params, record(params, **{versions.TAG_GATE_PARAMS: old})) == STALE_PARAMS
    assert gate_refusal(params, record(params, **{versions.TAG_GATE_PARAMS: None})) == STALE_PARAMS
    # the recheck compared it with v2, the acceptance with no champion: the recheck counts
    assert gate_refusal(params, record(params, **recheck)) == (
        "its gate record is stale: the gate compared it with v2, but @champion is now no champion; "
        "rerun `churn challenge`"
    )


def test_a_record_made_against_another_champion_is_stale_unless_rolling_back(params):
    from churn.registry.promotion import gate_refusal

    assert gate_refusal(params, record(params), champion="4") == (
        "its gate record is stale: the gate compared it with no champion, but @champion is now v4; "
        "rerun `churn challenge`"
    )
    unknown = record(params, **{versions.TAG_CHAMPION_AT_GATE: None})  # never says what it compared
    assert gate_refusal(params, unknown) == (
        "its gate record is stale: the gate compared it with no champion, but @champion is now no champion; "
        "rerun `churn challenge`"
    )
    assert gate_refusal(params, record(params), champion="4", compare_champion=False) is None
    assert gate_refusal(params, unknown, compare_champion=False) is None


def test_the_history_tag_is_read_forgivingly(params):
    from churn.registry.promotion import TAG_HISTORY, history_of

    event = {"event": "promoted", "at": "2026-01-01T00:00:00+00:00", "by": "me"}
    assert history_of({}) == []
    assert history_of({TAG_HISTORY: json.dumps([event, "noise", 3, event])}) == [event, event]
    assert history_of({TAG_HISTORY: "not json"}) == []
    assert history_of({TAG_HISTORY: json.dumps(event)}) == []
    assert history_of({TAG_HISTORY: "3"}) == []  # JSON, but not a list of events


class TagClient:
    """The two calls `_record_event` makes, on one version's tags."""

    def __init__(self, tags):
        self.tags, self.calls = tags, []

    def get_model_version(self, name, version):
        from types import SimpleNamespace

        self.calls.append(("get", name, version))
        return SimpleNamespace(tags=self.tags)

    def set_model_version_tag(self, name, version, key, value):
        self.calls.append(("set", name, version))
        self.tags = {**(self.tags or {}), key: value}


def test_an_event_is_appended_to_the_newest_twenty_as_sorted_json():
    from churn.registry.promotion import HISTORY_EVENTS, TAG_HISTORY, _record_event

    old = [{"event": f"e{i}", "at": "t", "by": "b"} for i in range(HISTORY_EVENTS + 5)]
    client = TagClient({TAG_HISTORY: json.dumps(old)})
    _record_event(client, NAME, 7, "promoted", "2026-01-02T03:04:05+00:00", "me", commit="c0ffee", replaced="6")
    assert client.calls == [("get", NAME, "7"), ("set", NAME, "7")]
    new = {"event": "promoted", "at": "2026-01-02T03:04:05+00:00", "by": "me", "commit": "c0ffee", "replaced": "6"}
    assert HISTORY_EVENTS == 20
    expected = [*old[-19:], new]
    assert client.tags[TAG_HISTORY] == json.dumps(expected, sort_keys=True)
    fresh = TagClient(None)  # a version without tags at all
    _record_event(fresh, NAME, "1", "promoted", "t", "me")
    assert json.loads(fresh.tags[TAG_HISTORY]) == [{"event": "promoted", "at": "t", "by": "me"}]


def with_report(params, tmp_path, report):
    path = tmp_path / "challenge.json"
    if report is not None:
        path.write_text(json.dumps(report))
    return params.model_copy(update={"paths": params.paths.model_copy(update={"challenge": path})})


@pytest.mark.parametrize(
    ("report", "reason"),
    [
        (None, "it was never accepted by the gate: run `churn challenge` first"),
        ({"model_md5": "abc", "verdict": "rejected", "reasons": ["recall low", "brier high"]},
         "it was rejected by `churn challenge`: recall low; brier high"),
        ({"model_md5": "abc", "verdict": "rejected"}, "it was rejected by `churn challenge`: "),
        ({"model_md5": "abc", "verdict": "passed", "reasons": []}, "it was never accepted by the gate: run `churn challenge` first"),
        ({"model_md5": "other", "verdict": "rejected", "reasons": ["x"]},
         "it was never accepted by the gate: run `churn challenge` first"),
    ],
)
def test_why_an_unregistered_model_is_refused(params, tmp_path, report, reason):
    from churn.registry.promotion import _refusal_reason

    assert _refusal_reason(with_report(params, tmp_path, report), "abc") == reason

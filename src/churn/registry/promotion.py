"""`churn promote` and `churn rollback`: move @champion, and keep the record on the versions.

Each promoted version carries who promoted it, when, from which commit, and which version
was champion before it, so a rollback needs nothing but the registry.
"""

from __future__ import annotations

import getpass
import json
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from churn.config import Params
from churn.core import tracking
from churn.errors import ChurnError
from churn.io import read_json
from churn.registry import versions
from churn.registry.checkout import read_checkout_model

TAG_PROMOTED_AT = "promotion.at"
TAG_PROMOTED_BY = "promotion.by"
TAG_PROMOTED_COMMIT = "promotion.commit"
TAG_PREVIOUS = "promotion.previous_champion"
TAG_ROLLED_BACK_AT = "rollback.at"
TAG_ROLLED_BACK_BY = "rollback.by"
TAG_ROLLED_BACK_FROM = "rollback.from_version"
# The version's story, oldest first: promoted, rolled back, restored, re-promoted; by whom,
# when, from which commit. `churn which` prints it.
TAG_HISTORY = "history"
HISTORY_EVENTS = 20  # the newest ones kept, so the tag stays under MLflow's size limit


@dataclass(frozen=True)
class PromotionResult:
    version: str
    previous: str | None
    changed: bool


@dataclass(frozen=True)
class RollbackResult:
    version: str
    rolled_back_from: str


@dataclass(frozen=True)
class WhichResult:
    model_md5: str
    version: str | None
    aliases: list[str] = field(default_factory=list)
    verdict: str | None = None
    state: str | None = None
    history: list[dict[str, str]] = field(default_factory=list)


def history_of(tags: Mapping[str, str]) -> list[dict[str, str]]:
    try:
        events = json.loads(tags.get(TAG_HISTORY, "[]"))
    except ValueError:
        return []
    return [event for event in events if isinstance(event, dict)] if isinstance(events, list) else []


def _record_event(mlflow_client: Any, name: str, version: Any, event: str, stamp: str, who: str, **details: str) -> None:
    tags = mlflow_client.get_model_version(name, str(version)).tags or {}
    events = [*history_of(tags), {"event": event, "at": stamp, "by": who, **details}][-HISTORY_EVENTS:]
    mlflow_client.set_model_version_tag(name, str(version), TAG_HISTORY, json.dumps(events, sort_keys=True))


def actor() -> str:
    """Who acts: the CI actor when there is one, else the local user."""
    for variable in ("GITHUB_ACTOR", "BUILD_REQUESTEDFOR", "GITLAB_USER_LOGIN", "USER"):
        if os.environ.get(variable):
            return os.environ[variable]
    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return "unknown"


def commit() -> str:
    return os.environ.get("GITHUB_SHA") or tracking.git_commit()


def now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


def _refusal_reason(params: Params, model_md5: str) -> str:
    report = read_json(params.paths.challenge) or {}
    if report.get("model_md5") == model_md5 and report.get("verdict") == "rejected":
        return "it was rejected by `churn challenge`: " + "; ".join(report.get("reasons", []))
    return "it was never accepted by the gate: run `churn challenge` first"


def gate_refusal(
    params: Params, tags: Mapping[str, str], champion: str | None = None, *, compare_champion: bool = True
) -> str | None:
    """Why this version's gate record does not let it become champion, or None.

    Fails closed: the record must exist, say passed (its latest check included), have been
    made under the gates, threshold, contract and comparison rules in force now, and (for a
    promotion) have compared the version with the champion it would replace. A rollback
    restores the champion's predecessor on purpose, so it skips that last condition.
    """
    verdict, last_check = tags.get(versions.TAG_VERDICT), tags.get(versions.TAG_LAST_CHECK)
    if verdict is None:
        return (
            "it has no gate record (a `churn challenge` died before writing it, or another tool "
            "registered it): rerun `churn challenge`, which completes it"
        )
    if verdict != "passed":
        return f"its gate verdict is {verdict} {tags.get(versions.TAG_REASONS, '')}".rstrip()
    if last_check is not None and last_check != "passed":
        return f"its latest gate check rejected it {tags.get(versions.TAG_LAST_CHECK_REASONS, '')}".rstrip()
    # The latest record decides: a recheck (new gates, new champion) supersedes the acceptance.
    recheck = last_check is not None
    made_under = tags.get(versions.TAG_LAST_CHECK_PARAMS if recheck else versions.TAG_GATE_PARAMS)
    if made_under != versions.gate_params_md5(params):
        return (
            "its gate record is stale: it was made under other gates, threshold, data contract or "
            "comparison rules than params.yaml sets now; rerun `churn challenge`"
        )
    if compare_champion:
        compared = tags.get(versions.TAG_LAST_CHECK_COMPARED_WITH if recheck else versions.TAG_CHAMPION_AT_GATE)
        expected = champion or "none"
        if compared != expected:
            return (
                f"its gate record is stale: the gate compared it with {_champion_text(compared)}, but "
                f"@{versions.CHAMPION} is now {_champion_text(expected)}; rerun `churn challenge`"
            )
    return None


def _champion_text(version: str | None) -> str:
    return "no champion" if version in (None, "none") else f"v{version}"


def promote(params: Params, model_md5: str | None = None, force: bool = False) -> PromotionResult:
    """Point @champion at this checkout's model (or the version holding `model_md5`).

    `force` re-promotes a version that a rollback took out of service; nothing overrides a
    gate rejection.
    """
    md5 = model_md5 or read_checkout_model(params).model_md5
    name = params.registry.model_name
    mlflow_client = versions.client(params)
    with versions.registry_lock(tracking.tracking_uri(params)):
        version = versions.find_version(mlflow_client, params, md5)
        if version is None:
            raise ChurnError(f"refusing to promote model {md5}: {_refusal_reason(params, md5)}.")
        number, tags = str(version.version), version.tags
        current = versions.alias_version(mlflow_client, name, versions.CHAMPION)
        if current is not None and str(current.version) == number:
            return PromotionResult(number, current.tags.get(TAG_PREVIOUS) or None, changed=False)
        refusal = gate_refusal(params, tags, champion=str(current.version) if current is not None else None)
        if refusal:
            raise ChurnError(f"refusing to promote {name} v{number}: {refusal}")
        if tags.get(versions.TAG_ROLLBACK_BLOCKED) == "true" and not force:
            raise ChurnError(
                f"refusing to promote {name} v{number}: it was rolled back on {tags.get(TAG_ROLLED_BACK_AT, '?')} "
                f"by {tags.get(TAG_ROLLED_BACK_BY, '?')}. Merge a new model, or re-promote it on purpose "
                "with `churn promote --force`."
            )
        previous = str(current.version) if current is not None else ""
        stamp, who, sha = now(), actor(), commit()
        for key, value in {
            TAG_PROMOTED_AT: stamp,
            TAG_PROMOTED_BY: who,
            TAG_PROMOTED_COMMIT: sha,
            TAG_PREVIOUS: previous,
        }.items():
            mlflow_client.set_model_version_tag(name, number, key, value)
        rolled_back = bool(tags.get(versions.TAG_ROLLBACK_BLOCKED))
        if rolled_back:
            # Re-promoted on purpose: the rollback is history now, not the version's state.
            for key in (versions.TAG_ROLLBACK_BLOCKED, TAG_ROLLED_BACK_AT, TAG_ROLLED_BACK_BY):
                if key in tags:
                    mlflow_client.delete_model_version_tag(name, number, key)
        mlflow_client.set_registered_model_alias(name, versions.CHAMPION, number)
        versions.clear_challenger(mlflow_client, name, number)
        event = "re-promoted after a rollback (--force)" if rolled_back else "promoted"
        _record_event(mlflow_client, name, number, event, stamp, who, commit=sha, replaced=previous or "none")
    return PromotionResult(number, previous or None, changed=True)


def rollback(params: Params) -> RollbackResult:
    """Give @champion back to the version that held it before the current one."""
    name = params.registry.model_name
    mlflow_client = versions.client(params)
    with versions.registry_lock(tracking.tracking_uri(params)):
        current = versions.alias_version(mlflow_client, name, versions.CHAMPION)
        if current is None:
            raise ChurnError(f"{name} has no @{versions.CHAMPION}: nothing to roll back.")
        previous = current.tags.get(TAG_PREVIOUS)
        if not previous:
            raise ChurnError(
                f"{name} v{current.version} records no previous champion: nothing to roll back to."
            )
        from mlflow.exceptions import MlflowException

        try:
            restored = mlflow_client.get_model_version(name, previous)
        except MlflowException:
            raise ChurnError(
                f"{name} v{current.version} records v{previous} as the previous champion, but that "
                "version no longer exists: promote a model explicitly instead."
            ) from None
        refusal = gate_refusal(params, restored.tags, compare_champion=False)
        if refusal is None and restored.tags.get(versions.TAG_ROLLBACK_BLOCKED) == "true":
            refusal = (
                f"it was itself rolled back on {restored.tags.get(TAG_ROLLED_BACK_AT, '?')} by "
                f"{restored.tags.get(TAG_ROLLED_BACK_BY, '?')}"
            )
        if refusal:
            raise ChurnError(
                f"refusing to roll {name} back to v{previous}: {refusal}. @{versions.CHAMPION} stays "
                f"v{current.version}; promote a model explicitly instead."
            )
        # Alias first: if a tag write fails afterwards, the champion is already the right one.
        mlflow_client.set_registered_model_alias(name, versions.CHAMPION, previous)
        stamp, who, replaced = now(), actor(), str(current.version)
        mlflow_client.set_model_version_tag(name, replaced, TAG_ROLLED_BACK_AT, stamp)
        mlflow_client.set_model_version_tag(name, replaced, TAG_ROLLED_BACK_BY, who)
        # Out of service until someone decides otherwise: the next deploy of the same
        # model must not quietly undo the rollback.
        mlflow_client.set_model_version_tag(name, replaced, versions.TAG_ROLLBACK_BLOCKED, "true")
        mlflow_client.set_model_version_tag(name, previous, TAG_ROLLED_BACK_FROM, replaced)
        mlflow_client.set_model_version_tag(name, previous, TAG_ROLLED_BACK_AT, stamp)
        mlflow_client.set_model_version_tag(name, previous, TAG_ROLLED_BACK_BY, who)
        _record_event(mlflow_client, name, replaced, f"rolled back to v{previous}", stamp, who)
        _record_event(mlflow_client, name, previous, f"restored as champion by a rollback of v{replaced}", stamp, who)
    return RollbackResult(previous, str(current.version))


def which(params: Params) -> WhichResult:
    """Which registry version is the model in this checkout's dvc.lock?"""
    model = read_checkout_model(params)
    name = params.registry.model_name
    mlflow_client = versions.client(params)
    version = versions.find_version(mlflow_client, params, model.model_md5)
    if version is None:
        return WhichResult(model.model_md5, None)
    # Search results leave aliases out; a direct get has them.
    version = mlflow_client.get_model_version(name, str(version.version))
    tags = version.tags or {}
    state = versions.state(version)
    if state == "gated" and tags.get(versions.TAG_ROLLBACK_BLOCKED) == "true":
        state = (
            f"rolled back on {tags.get(TAG_ROLLED_BACK_AT, '?')} by {tags.get(TAG_ROLLED_BACK_BY, '?')}: "
            "out of service until `churn promote --force`"
        )
    return WhichResult(
        model_md5=model.model_md5,
        version=str(version.version),
        aliases=sorted(version.aliases),
        verdict=tags.get(versions.TAG_VERDICT),
        state=state,
        history=history_of(tags),
    )

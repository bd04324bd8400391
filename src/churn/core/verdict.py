"""The verdict file the validate stage writes, read the one way every gate reads it:
failing closed (missing, unreadable, stale or foreign is a rejection)."""

from __future__ import annotations

import json
from pathlib import Path

from churn.config import Params
from churn.io import content_md5, md5_file


def verdict_params_md5(params: Params) -> str:
    """The params a verdict depends on (what dvc.yaml lists for validate)."""
    return content_md5(
        {
            "dataset": params.dataset.model_dump(mode="json"),
            "validate": params.validation.model_dump(mode="json"),
            "decision_threshold": params.train.decision_threshold,
            # The baselines are fitted with the training seed, and skipped for the candidate's family.
            "seed": params.train.seed,
            "family": params.train.family,
        }
    )


def read_verdict(path: Path, model_path: Path, params: Params | None = None) -> tuple[bool, list[str]]:
    """(passed, reasons). Anything that prevents checking is a rejection: fail closed.

    With `params`, a verdict made under other gates, threshold or contract is stale too.
    """
    try:
        data = json.loads(Path(path).read_text())
        outcome, reasons = data["verdict"], list(data["reasons"])
    except FileNotFoundError:
        return False, [f"no verdict at {path}: run `dvc repro validate`"]
    except (OSError, ValueError, KeyError, TypeError) as exc:
        return False, [f"verdict {path} is unreadable ({exc.__class__.__name__}): rerun `dvc repro validate`"]
    try:
        current_md5 = md5_file(model_path)
    except OSError:
        return False, [f"model {model_path} is missing, so the verdict cannot apply to it: run `dvc repro`"]
    if data.get("model_md5") != current_md5:
        return False, [f"verdict {path} was made for another model than {model_path}: rerun `dvc repro validate`"]
    if params is not None and data.get("params_md5") != verdict_params_md5(params):
        return False, [f"verdict {path} was made under other params (gates, threshold or dataset): rerun `dvc repro`"]
    if outcome == "passed" and not reasons:
        return True, []
    if outcome == "rejected":
        return False, reasons or ["rejected without a recorded reason"]
    return False, [f"verdict {path} says {outcome!r}, which is neither passed nor rejected"]

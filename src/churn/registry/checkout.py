"""What this checkout's model is, by content: the md5s that dvc.lock records."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import yaml

from churn.config import Params
from churn.errors import ChurnError

LOCK_FILE = Path("dvc.lock")


@dataclass(frozen=True)
class CheckoutModel:
    model_md5: str
    raw_md5: str
    train_md5: str
    validation_md5: str


def read_checkout_model(params: Params, lock_file: Path = LOCK_FILE) -> CheckoutModel:
    try:
        lock = yaml.safe_load(lock_file.read_text())
        train = lock["stages"]["train"]
    except FileNotFoundError:
        raise ChurnError(f"{lock_file} not found: run `dvc repro` (or `make run`) first.") from None
    except (yaml.YAMLError, KeyError, TypeError):
        raise ChurnError(f"{lock_file} has no train stage: run `dvc repro train`.") from None
    outs = {entry["path"]: entry["md5"] for entry in train.get("outs", [])}
    deps = {entry["path"]: entry["md5"] for entry in train.get("deps", [])}
    paths = params.paths
    try:
        return CheckoutModel(
            model_md5=outs[str(paths.model)],
            raw_md5=deps[str(paths.raw)],
            train_md5=deps[str(paths.train_set)],
            validation_md5=deps[str(paths.validation_set)],
        )
    except KeyError as missing:
        raise ChurnError(
            f"{lock_file} does not record {missing} for the train stage: rerun `dvc repro`."
        ) from None


def ensure_locked(path: Path, md5: str) -> None:
    """The workspace file must be the one dvc.lock names, or the registry would record one
    file under another's md5."""
    from churn.io import md5_file

    if not path.is_file():
        raise ChurnError(f"{path} is not in the workspace: `dvc pull {path}` or `dvc repro`.")
    if md5_file(path) != md5:
        raise ChurnError(f"{path} differs from what dvc.lock records: `dvc checkout {path}` or `dvc repro`.")


def ensure_workspace_model(params: Params, model: CheckoutModel) -> None:
    ensure_locked(params.paths.model, model.model_md5)

"""The identity of a servable model: what it computes for a record.

Two registry versions differ exactly when they could score a record differently: another
model file, another data contract or decision threshold, or other code on the path from a
raw record to a probability. That code is the list below (tests/servable/test_identity.py
loads the logged pyfunc and checks that it runs nothing outside it).
"""

from __future__ import annotations

import hashlib
from pathlib import Path

from churn.config import Params
from churn.io import content_md5

PACKAGE_ROOT = Path(__file__).resolve().parent.parent
# Every project file the logged pyfunc loads, relative to the churn package.
SERVABLE_FILES = (
    "__init__.py",
    "config.py",
    "errors.py",
    "io.py",
    "core/__init__.py",
    "core/clean.py",
    "core/contract.py",
    "core/model_file.py",
    "core/predict.py",
    "servable/__init__.py",
    "servable/model_code.py",
    "servable/pyfunc.py",
    "servable/scoring.py",
)


def code_digest(root: Path = PACKAGE_ROOT) -> str:
    digest = hashlib.md5()
    for name in SERVABLE_FILES:
        digest.update(name.encode() + b"\0" + (root / name).read_bytes() + b"\0")
    return digest.hexdigest()


def serving_key(params: Params, model_md5: str) -> str:
    """Model md5 + data contract + decision threshold + the servable's code."""
    return content_md5(
        {
            "model_md5": model_md5,
            "dataset": params.dataset.model_dump(mode="json"),
            "decision_threshold": params.train.decision_threshold,
            "code": code_digest(),
        }
    )

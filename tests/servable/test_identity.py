"""The serving key: a registry version is reused only for a model that scores the same way."""

from __future__ import annotations

import shutil

from churn.servable import identity
from tests.helpers import repo_params

MODEL_MD5 = "0123456789abcdef0123456789abcdef"


def _package_copy(tmp_path):
    root = tmp_path / "churn"
    shutil.copytree(identity.PACKAGE_ROOT, root, ignore=shutil.ignore_patterns("__pycache__"))
    return root


def test_code_digest_follows_every_servable_file(tmp_path):
    root = _package_copy(tmp_path)
    before = identity.code_digest(root)
    assert identity.code_digest(root) == before
    for name in identity.SERVABLE_FILES:
        path = root / name
        original = path.read_bytes()
        path.write_bytes(original + b"\n# changed\n")
        assert identity.code_digest(root) != before, name
        path.write_bytes(original)
    assert identity.code_digest(root) == before


def test_code_outside_the_servable_does_not_change_it(tmp_path):
    root = _package_copy(tmp_path)
    before = identity.code_digest(root)
    cli = root / "cli.py"
    cli.write_text(cli.read_text() + "\n# changed\n")
    assert identity.code_digest(root) == before


def test_serving_key_changes_with_model_contract_threshold_and_code(monkeypatch):
    params = repo_params()
    key = identity.serving_key(params, MODEL_MD5)
    assert identity.serving_key(params, MODEL_MD5) == key
    assert identity.serving_key(params, "f" * 32) != key
    threshold = params.model_copy(update={"train": params.train.model_copy(update={"decision_threshold": 0.4})})
    assert identity.serving_key(threshold, MODEL_MD5) != key
    contract = params.model_copy(update={"dataset": params.dataset.model_copy(update={"description": "other"})})
    assert identity.serving_key(contract, MODEL_MD5) != key
    monkeypatch.setattr(identity, "code_digest", lambda root=identity.PACKAGE_ROOT: "new serving code")
    assert identity.serving_key(params, MODEL_MD5) != key

"""churn.registry.model_card: the card's sections come from the checkout's DVC outputs."""

from __future__ import annotations

import json
import shutil

from churn.io import md5_file
from churn.registry.model_card import render
from tests.conftest import REPO_ROOT


def _params_in(tmp_path, params):
    """The repository's committed verdict, metrics and slice table, with a prep report and a
    model file of our own, under tmp_path."""
    paths = {name: tmp_path / value for name, value in params.paths.model_dump().items()}
    for name in ("verdict", "test_metrics", "slice_metrics"):
        paths[name].parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(REPO_ROOT / getattr(params.paths, name), paths[name])
    paths["plots_dir"].mkdir(parents=True, exist_ok=True)
    shutil.copy(REPO_ROOT / params.paths.plots_dir / "slices.csv", paths["plots_dir"] / "slices.csv")
    paths["prep_report"].parent.mkdir(parents=True, exist_ok=True)
    paths["prep_report"].write_text(json.dumps(
        {"raw_rows": 20000, "positive_rate": 0.264, "split_rows": {"train": 12000, "validation": 4000, "test": 4000}}
    ))
    paths["model"].parent.mkdir(parents=True, exist_ok=True)
    paths["model"].write_bytes(b"model bytes")
    return params.model_copy(update={"paths": params.paths.model_copy(update=paths)})


def test_card_has_every_section_with_numbers(tmp_path, params):
    local = _params_in(tmp_path, params)
    text = render(local, "7")
    verdict = json.loads(local.paths.verdict.read_text())
    test = json.loads(local.paths.test_metrics.read_text())
    assert text.startswith(f"# Model card: {params.registry.model_name} v7\n")
    for heading in ("## Intended use", "## Training data (lineage)", "## Metrics", "## Metrics per slice (test set)",
                    "## Fairness", "## Leakage checks", "## Baseline checks", "## Known limitations"):
        assert heading in text
    assert md5_file(local.paths.model) in text
    assert "| 12000 |" in text.replace(",", "")  # training rows from the prep report
    assert f"{test['roc_auc']:.4f}" in text and f"{verdict['validation_metrics']['roc_auc']:.4f}" in text
    assert "Contract=Month-to-month" in text
    assert "SeniorCitizen" in text and "statistical parity" in text
    assert "roc_auc_gain_over.logistic_regression" in text
    assert f"Gate verdict: **{verdict['verdict']}**" in text


def test_card_says_what_is_missing(tmp_path, params):
    local = _params_in(tmp_path, params)
    (local.paths.plots_dir / "slices.csv").unlink()
    local.paths.model.unlink()
    text = render(local)
    assert "Per-slice test metrics: unavailable" in text
    assert "`missing`" in text

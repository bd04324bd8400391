"""churn.deployment.labels (`churn label`): late labels matched, counted, rejected with reasons."""

from __future__ import annotations

import os
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pandas as pd
import pytest
import yaml

from churn.cli import main
from churn.config import parse_params
from churn.core.clean import clean_features
from churn.core.contract import validate_raw
from churn.data.simulate import simulate
from churn.deployment.inference_log import append, read_labels, read_log
from churn.deployment.labels import REASONS_COLUMN, label
from churn.errors import ChurnError
from churn.servable.scoring import PREDICTION, PROBABILITY
from tests.conftest import PARAMS_FILE

T0 = datetime(2026, 10, 1, 8, 0, tzinfo=UTC)
NOW = datetime(2026, 11, 20, 12, 0, tzinfo=UTC)


@pytest.fixture
def logged(tmp_path, params):
    """A log with 10 scored customers (no labels yet); returns (log root, their ids)."""
    dataset = params.dataset
    raw = simulate(10, seed=4)
    scored = clean_features(validate_raw(raw, dataset), dataset)
    scored[PROBABILITY] = 0.3
    scored[PREDICTION] = 0
    root = tmp_path / "log"
    append(root, scored, dataset=dataset, model_version="1", model_uri="models:/m@champion", scored_at=T0)
    return root, list(scored[dataset.id_column])


def write(path: Path, rows: list[dict]) -> Path:
    pd.DataFrame(rows).to_csv(path, index=False)
    return path


def test_labels_match_reject_and_supersede(tmp_path, params, logged):
    root, ids = logged
    rows = [
        {"customerID": ids[0], "Churn": "Yes", "labelled_at": "2026-11-01T00:00:00Z"},
        {"customerID": ids[1], "Churn": "No", "labelled_at": "2026-11-01"},  # no offset: UTC
        # the same id twice: the latest labelled_at wins, whatever the row order
        {"customerID": ids[2], "Churn": "No", "labelled_at": "2026-11-05T00:00:00+01:00"},
        {"customerID": ids[2], "Churn": "Yes", "labelled_at": "2026-11-03T00:00:00Z"},
        {"customerID": "0000-NOSUCH", "Churn": "Yes", "labelled_at": "2026-11-01"},  # unknown
        {"customerID": ids[3], "Churn": "Maybe", "labelled_at": "2026-11-01"},  # malformed
        {"customerID": "", "Churn": "No", "labelled_at": "2026-11-01"},
        {"customerID": ids[4], "Churn": "No", "labelled_at": "yesterday"},
        {"customerID": ids[5], "Churn": "No", "labelled_at": "2027-01-01"},  # after NOW
        {"customerID": ids[6], "Churn": "No", "labelled_at": ""},
    ]
    source = write(tmp_path / "labels.csv", rows)
    log_before = {p: p.read_bytes() for p in root.glob("date=*/*.parquet")}

    result = label(params, source, log_root=root, now=NOW)

    assert (result.rows, result.matched, result.unknown, result.rejected, result.superseded) == (10, 3, 1, 5, 1)
    assert {p: p.read_bytes() for p in root.glob("date=*/*.parquet")} == log_before  # append-only
    assert result.labels_file is not None and result.labels_file.parent.name == "date=2026-11-04"
    labels = read_labels(root, dataset=params.dataset).set_index("customerID")
    assert labels["Churn"].to_dict() == {ids[0]: "Yes", ids[1]: "No", ids[2]: "No"}
    assert labels.loc[ids[2], "labelled_at"] == pd.Timestamp("2026-11-04T23:00:00Z")
    assert labels.loc[ids[1], "labelled_at"] == pd.Timestamp("2026-11-01T00:00:00Z")

    rejected = pd.read_csv(result.rejected_path, dtype=str, keep_default_na=False)
    assert result.rejected_path == tmp_path / "labels.rejected.csv"
    reasons = dict(zip(rejected["customerID"], rejected[REASONS_COLUMN], strict=True))
    assert len(rejected) == 6
    assert "no logged prediction" in reasons["0000-NOSUCH"]
    assert "unknown value 'Maybe'" in reasons[ids[3]]
    assert "customerID: missing" in reasons[""]
    assert "not an ISO 8601 time 'yesterday'" in reasons[ids[4]]
    assert "in the future" in reasons[ids[5]]
    assert "labelled_at: missing" in reasons[ids[6]]

    joined = read_log(root, dataset=params.dataset, with_labels=True).set_index("customerID")
    assert joined.loc[ids[0], "Churn"] == "Yes" and joined.loc[ids[9], "Churn"] is None


def test_without_labelled_at_every_label_gets_now_and_a_clean_file_removes_old_rejects(tmp_path, params, logged):
    root, ids = logged
    stale = tmp_path / "labels.rejected.csv"
    stale.write_text("old")
    source = write(tmp_path / "labels.csv", [{"customerID": i, "Churn": "No"} for i in ids[:4]])
    result = label(params, source, log_root=root, now=NOW)
    assert (result.matched, result.unknown, result.rejected, result.rejected_path) == (4, 0, 0, None)
    assert not stale.exists()
    assert set(read_labels(root, dataset=params.dataset)["labelled_at"]) == {pd.Timestamp(NOW)}


def test_unusable_files_raise_and_attach_nothing(tmp_path, params, logged):
    root, ids = logged
    with pytest.raises(ChurnError, match=r"lacks columns \['Churn'\]"):
        label(params, write(tmp_path / "a.csv", [{"customerID": ids[0]}]), log_root=root)
    (tmp_path / "b.csv").write_text("customerID,Churn\n")
    with pytest.raises(ChurnError, match="no labels"):
        label(params, tmp_path / "b.csv", log_root=root)
    with pytest.raises(ChurnError, match="not found"):
        label(params, tmp_path / "missing.csv", log_root=root)
    with pytest.raises(ChurnError, match="does not exist: score batches first"):
        label(params, write(tmp_path / "c.csv", [{"customerID": ids[0], "Churn": "No"}]), log_root=tmp_path / "nolog")
    assert not (root / "labels").exists()


def test_cli_reports_counts_and_exit_codes(tmp_path, logged, capsys, monkeypatch):
    # main() sets the OpenMP/BLAS thread variables when absent; undo that after the test.
    for variable in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
        monkeypatch.setenv(variable, os.environ.get(variable, "1"))
    root, ids = logged
    raw = yaml.safe_load(PARAMS_FILE.read_text())
    raw["paths"]["inference_log"] = str(root)
    params_file = tmp_path / "p.yaml"
    params_file.write_text(yaml.safe_dump(raw))
    parse_params(raw)
    monkeypatch.chdir(tmp_path)

    good = write(tmp_path / "good.csv", [{"customerID": ids[0], "Churn": "Yes"}])
    assert main(["label", "--params", str(params_file), "--input", str(good)]) == 0
    out = capsys.readouterr().out
    assert "attached 1 to logged predictions, 0 unknown ids, 0 malformed, 0 superseded" in out

    mixed = write(tmp_path / "mixed.csv", [{"customerID": ids[1], "Churn": "No"}, {"customerID": "x", "Churn": "No"},
                                           {"customerID": ids[1], "Churn": "Yes"}])
    assert main(["label", "--params", str(params_file), "--input", str(mixed)]) == 3
    captured = capsys.readouterr()
    assert "attached 1 to logged predictions, 1 unknown ids, 0 malformed, 1 superseded" in captured.out
    assert "mixed.rejected.csv" in captured.err
    # on a tie (no labelled_at: both now) the later row wins
    assert read_labels(root, dataset=parse_params(raw).dataset).set_index("customerID").loc[ids[1], "Churn"] == "Yes"

    assert main(["label", "--params", str(params_file), "--input", str(tmp_path / "nope.txt")]) == 2
    assert "error: cannot read labels" in capsys.readouterr().err


def test_attach_labels_keeps_the_latest_of_duplicates(tmp_path, params):
    from churn.deployment.inference_log import attach_labels

    dataset = params.dataset
    frame = pd.DataFrame({
        "customerID": ["a", "a", "b"],
        "Churn": ["Yes", "No", "No"],
        "labelled_at": [T0 + timedelta(days=2), T0, T0],
    })
    assert attach_labels(tmp_path, frame, dataset=dataset) == 2
    assert read_labels(tmp_path, dataset=dataset, latest=False).set_index("customerID")["Churn"].to_dict() == {
        "a": "Yes", "b": "No"}

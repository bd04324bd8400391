"""churn.data.refresh (`churn refresh`): the next raw snapshot from labelled log rows, tracked by DVC."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pandas as pd
import pytest
import yaml

from churn.config import load_params, parse_params
from churn.core.clean import clean_features
from churn.core.contract import read_raw_csv, validate_raw
from churn.data import snapshot
from churn.data.refresh import build, refresh
from churn.data.simulate import simulate, write_snapshot
from churn.deployment.inference_log import append, attach_labels
from churn.errors import ChurnError
from churn.io import md5_file
from churn.servable.scoring import PREDICTION, PROBABILITY
from tests.conftest import PARAMS_FILE

AS_OF = datetime(2026, 11, 1, 12, 0, tzinfo=UTC)
DVC = str(Path(sys.executable).with_name("dvc"))


def params_for(directory: Path, **refresh):
    raw = load_params(PARAMS_FILE).model_dump(mode="json", by_alias=True)
    raw["paths"]["raw"] = "data/raw/snapshot.csv"
    raw["paths"]["inference_log"] = "log"
    raw["refresh"] = {"window_days": 30, "horizon_days": 365, "min_labelled_rows": 5, **refresh}
    return parse_params(raw)


def score_into_log(params, raw: pd.DataFrame, at: datetime, with_label: bool = False) -> pd.DataFrame:
    dataset = params.dataset
    scored = clean_features(validate_raw(raw, dataset), dataset)
    if with_label:
        scored[dataset.label_column] = raw[dataset.label_column].to_numpy()
    scored[PROBABILITY] = 0.4
    scored[PREDICTION] = 1
    append("log", scored, dataset=dataset, model_version="1", model_uri="models:/m@champion", scored_at=at)
    return scored


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    """A DVC repository (no git) with a tracked simulated snapshot of 60 customers and a log:
    30 new customers scored in the window (20 labelled later), one current customer scored
    again and labelled, and 5 labelled customers scored before the window. Built once; each
    test gets its own copy."""
    path = tmp_path_factory.mktemp("refresh")
    with pytest.MonkeyPatch.context() as mp:
        mp.chdir(path)
        mp.setenv("PATH", f"{Path(DVC).parent}{os.pathsep}{os.environ.get('PATH', '')}")
        subprocess.run([DVC, "init", "--no-scm", "-q"], check=True)
        params = params_for(path)
        current = simulate(60, seed=11)
        write_snapshot(current, params.paths.raw)
        snapshot.track(params.paths.raw, snapshot.simulated_meta(60, 11, None))
        dataset = params.dataset
        fresh = simulate(30, seed=12, drift=params.simulate.drift)
        score_into_log(params, fresh, AS_OF - timedelta(days=3))
        score_into_log(params, current.head(1), AS_OF - timedelta(days=2))
        old = simulate(5, seed=13)
        score_into_log(params, old, AS_OF - timedelta(days=40), with_label=True)  # labels came with the requests
        labels = pd.concat([fresh.head(20), current.head(1).assign(Churn="Yes")])[[dataset.id_column, "Churn"]]
        attach_labels("log", labels, dataset=dataset, labelled_at=AS_OF - timedelta(days=1))
    return {"params": params, "current": current, "fresh": fresh, "dir": path}


@pytest.fixture
def project(built, tmp_path, monkeypatch):
    copy = tmp_path / "project"
    shutil.copytree(built["dir"], copy)
    monkeypatch.chdir(copy)
    monkeypatch.setenv("PATH", f"{Path(DVC).parent}{os.pathsep}{os.environ.get('PATH', '')}")
    return {**built, "dir": copy}


def test_refresh_builds_validates_and_tracks_the_next_snapshot(project):
    params, current, fresh = project["params"], project["current"], project["fresh"]
    dataset = params.dataset
    previous = md5_file(params.paths.raw)

    result = refresh(params, AS_OF)

    counts = result.counts
    assert (counts.from_log, counts.from_current, counts.replaced, counts.unlabelled) == (21, 59, 1, 10)
    written = read_raw_csv(params.paths.raw)
    assert len(written) == 80 and list(written.columns) == dataset.raw_columns
    validate_raw(written, dataset)
    by_id = written.set_index(dataset.id_column)
    # the current customer scored again comes from the log, with the label attached late
    assert by_id.loc[current[dataset.id_column].iloc[0], "Churn"] == "Yes"
    # log rows, cleaned again, are exactly what the model saw (structural levels folded)
    log_ids = list(fresh[dataset.id_column].head(20))
    logged = clean_features(validate_raw(fresh.head(20), dataset), dataset).set_index(dataset.id_column)
    again = clean_features(validate_raw(written[written[dataset.id_column].isin(log_ids)], dataset), dataset)
    pd.testing.assert_frame_equal(again.set_index(dataset.id_column).loc[log_ids], logged.loc[log_ids])
    assert by_id.loc[log_ids, "Churn"].tolist() == fresh["Churn"].head(20).tolist()
    # rows of the current snapshot are kept verbatim, raw encoding included
    kept = current[current[dataset.id_column] != current[dataset.id_column].iloc[0]].set_index(dataset.id_column)
    assert by_id.loc[kept.index, "InternetService"].tolist() == kept["InternetService"].tolist()

    tracked = yaml.safe_load(snapshot.dvc_file(params.paths.raw).read_text())
    meta = tracked["meta"]
    assert tracked["outs"][0]["md5"] == md5_file(params.paths.raw) == result.md5 == meta["md5"]
    assert meta["source"] == "churn refresh" and meta["previous_md5"] == previous
    assert meta["log_window"] == {"start": "2026-10-02T12:00:00Z", "end": "2026-11-01T12:00:00Z"}
    assert meta["rows"] == {"total": 80, "from_log": 21, "from_current": 59, "current_replaced_by_log": 1,
                            "current_outside_horizon": 0, "unlabelled_in_window": 10}

    # A clone whose remote does not hold it gets an error; it is never re-simulated.
    params.paths.raw.unlink()
    subprocess.run([DVC, "cache", "dir", str(project["dir"] / "empty-cache")], check=True)
    with pytest.raises(ChurnError, match=r"built by `churn refresh` from the inference log .* cannot be recreated"):
        snapshot.ensure_raw(params)
    assert not params.paths.raw.exists()


def test_horizon_zero_uses_the_log_alone_and_a_refreshed_snapshot_is_dated_by_its_as_of(project):
    params = params_for(project["dir"], horizon_days=0)
    frame, counts, _ = build(params, AS_OF)
    assert (len(frame), counts.from_log, counts.from_current) == (21, 21, 0)
    # A refreshed snapshot dated 400 days before the window is beyond a 365-day horizon.
    stale = {"as_of": (AS_OF - timedelta(days=430)).isoformat()}
    frame, counts, _ = build(project["params"], AS_OF, meta=stale)
    assert (counts.from_current, counts.outside_horizon, len(frame)) == (0, 60, 21)


def test_too_few_labels_a_future_time_or_a_modified_snapshot_write_nothing(project):
    params = project["params"]
    raw, dvc_file = params.paths.raw, snapshot.dvc_file(params.paths.raw)
    before = (raw.read_bytes(), dvc_file.read_bytes())
    with pytest.raises(ChurnError, match=r"only 21 labelled predictions .* \(10 more have no label yet\)"):
        refresh(params_for(project["dir"], min_labelled_rows=22), AS_OF)
    with pytest.raises(ChurnError, match="in the future"):
        refresh(params, datetime.now(UTC) + timedelta(days=1))
    assert (raw.read_bytes(), dvc_file.read_bytes()) == before
    raw.write_text(raw.read_text() + "\n")
    with pytest.raises(ChurnError, match="differs from what"):
        refresh(params, AS_OF)



# --- progress: phases in a terminal and through a pipe, none with --quiet -------------------------


def churn_refresh(project, monkeypatch, capsys, *options: str, terminal: bool) -> tuple[str, str]:
    from tests.helpers import churn_here

    params_file = project["dir"] / "params.yaml"
    params_file.write_text(yaml.safe_dump(project["params"].model_dump(mode="json", by_alias=True), sort_keys=False))
    argv = ["--params", str(params_file), *options, "refresh", "--as-of", AS_OF.isoformat()]
    out, err = churn_here(argv, monkeypatch, capsys, terminal=terminal)
    assert "refreshed data/raw/snapshot.csv: 80 rows = 21 labelled predictions" in out  # the result, in every mode
    return out, err


def test_refresh_in_a_terminal_draws_its_phases_and_writes_what_a_quiet_run_writes(project, monkeypatch, capsys, tmp_path):
    from churn import progress
    from churn.io import write_csv
    from tests.helpers import without_escapes

    with monkeypatch.context() as quiet:  # the snapshot as made with no progress at all
        quiet.setattr(progress, "_mode", "quiet")
        reference = tmp_path / "reference.csv"
        write_csv(reference, build(project["params"], AS_OF, meta=snapshot.read_tracked(project["params"].paths.raw)[1])[0])
    _, err = churn_refresh(project, monkeypatch, capsys, terminal=True)
    assert "\x1b[" in err and "━" in err  # rich's spinner and bar
    text = without_escapes(err)
    for phase in ("reading the inference log", "building the snapshot", "writing data/raw/snapshot.csv",
                  "dvc add and push data/raw/snapshot.csv"):
        assert f"churn: {phase}" in text, text
    # The DVC-tracked output is the same byte for byte.
    assert project["params"].paths.raw.read_bytes() == reference.read_bytes()


def test_refresh_piped_prints_a_line_per_phase_with_counts(project, monkeypatch, capsys):
    import re

    from tests.helpers import CONTROL_CHARACTERS, DURATION

    _, err = churn_refresh(project, monkeypatch, capsys, terminal=False)
    assert not re.search(CONTROL_CHARACTERS, err), repr(err)
    expected = [
        r"churn: reading the inference log log from 2026-10-02: 31 rows scored in the window, 21 customers labelled in " + DURATION,
        r"churn: building the snapshot and checking it against the contract: 21 rows from the log \+ 59 of the current snapshot in " + DURATION,
        r"churn: writing data/raw/snapshot.csv: 80 rows in " + DURATION,
        r"churn: dvc add and push data/raw/snapshot.csv in " + DURATION,
        r"churn: building the next raw snapshot from the inference log \(dvc add, push\) in " + DURATION,
    ]
    lines = err.splitlines()
    assert len(lines) == len(expected) and all(re.fullmatch(p, line) for p, line in zip(expected, lines, strict=True)), err


def test_refresh_quiet_prints_only_its_result(project, monkeypatch, capsys):
    _, err = churn_refresh(project, monkeypatch, capsys, "--quiet", terminal=True)
    assert err == ""

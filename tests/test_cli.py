"""churn.cli.main: exit codes, error messages, option placement, and the stage commands dvc.yaml uses."""

from __future__ import annotations

import hashlib
import json
import os
import shlex

import pandas as pd
import pytest
import yaml

from churn.cli import build_parser, main
from churn.data.simulate import COLUMNS, simulate, write_snapshot
from tests.conftest import PARAMS_FILE, REPO_ROOT

MODEL_BYTES = b"a model file, as far as the gate is concerned"


@pytest.fixture(autouse=True)
def _isolated(monkeypatch, tmp_path):
    """Run outside the project, so a default `params.yaml` is never the repository's; and
    undo main()'s setdefault of the OMP/BLAS thread variables after each test."""
    monkeypatch.chdir(tmp_path)
    for variable in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
        monkeypatch.setenv(variable, os.environ.get(variable, "1"))


def write_params(directory) -> str:
    """The repository's params.yaml with every path moved into `directory`."""
    raw = yaml.safe_load(PARAMS_FILE.read_text())
    raw["paths"] = {name: str(directory / path) for name, path in raw["paths"].items()}
    # Not named params.yaml: the default must never find it by accident.
    path = directory / "test-params.yaml"
    path.write_text(yaml.safe_dump(raw, sort_keys=False))
    return str(path)


@pytest.fixture
def project(tmp_path):
    params = write_params(tmp_path)
    model = tmp_path / "models" / "model.skops"
    model.parent.mkdir(parents=True)
    model.write_bytes(MODEL_BYTES)
    verdict = tmp_path / "reports" / "verdict.json"
    verdict.parent.mkdir(parents=True)
    return {"params": params, "model": model, "verdict": verdict}


def write_verdict(project, outcome: str, reasons: list[str], model_bytes: bytes = MODEL_BYTES) -> None:
    from churn.config import load_params
    from churn.core.verdict import verdict_params_md5

    content = {
        "verdict": outcome,
        "reasons": reasons,
        "checks": [],
        "model_md5": hashlib.md5(model_bytes).hexdigest(),
        "params_md5": verdict_params_md5(load_params(project["params"])),
    }
    project["verdict"].write_text(json.dumps(content))


# ------------------------------------------------------------------ gate


def test_gate_rejects_a_verdict_made_under_other_params(project, capsys):
    write_verdict(project, "passed", [])
    content = json.loads(project["verdict"].read_text())
    content["params_md5"] = "0" * 32  # e.g. the threshold was edited after `dvc repro`
    project["verdict"].write_text(json.dumps(content))
    assert main(["gate", "--params", project["params"]]) == 1
    assert "other params" in capsys.readouterr().err


def test_gate_passes_for_a_passed_verdict_of_this_model(project, capsys):
    write_verdict(project, "passed", [])
    assert main(["gate", "--params", project["params"]]) == 0
    out, err = capsys.readouterr()
    assert "passed" in out
    assert "rejected" not in err


def test_gate_fails_for_a_rejected_verdict_and_prints_the_reasons(project, capsys):
    reasons = ["model check validation_roc_auc = 0.7 fails >= 0.8", "data check train_rows = 3 fails >= 1000"]
    write_verdict(project, "rejected", reasons)
    assert main(["gate", "--params", project["params"]]) == 1
    out, err = capsys.readouterr()
    assert "rejected" in err
    for reason in reasons:
        assert reason in err
    assert "passed" not in out


def test_gate_fails_without_a_verdict(project, capsys):
    assert main(["gate", "--params", project["params"]]) == 1
    err = capsys.readouterr().err
    assert str(project["verdict"]) in err


def test_gate_fails_for_a_stale_verdict(project, capsys):
    write_verdict(project, "passed", [], model_bytes=b"the model before retraining")
    assert main(["gate", "--params", project["params"]]) == 1
    err = capsys.readouterr().err
    assert "another model" in err


def test_gate_fails_when_the_model_changed_after_validation(project, capsys):
    write_verdict(project, "passed", [])
    project["model"].write_bytes(MODEL_BYTES + b" retrained")
    assert main(["gate", "--params", project["params"]]) == 1
    assert "rejected" in capsys.readouterr().err


# ------------------------------------------------------------------ errors


def test_churn_error_is_exit_code_2_with_a_short_message(tmp_path, capsys):
    missing = tmp_path / "nowhere" / "params.yaml"
    assert main(["gate", "--params", str(missing)]) == 2
    out, err = capsys.readouterr()
    assert err.startswith("error: ")
    assert str(missing) in err
    assert "Traceback" not in err and "Traceback" not in out
    assert len(err.strip().splitlines()) <= 3


def test_invalid_params_is_exit_code_2_naming_the_key(tmp_path, capsys):
    raw = yaml.safe_load(PARAMS_FILE.read_text())
    raw["train"]["family"] = "xgboost"
    path = tmp_path / "params.yaml"
    path.write_text(yaml.safe_dump(raw, sort_keys=False))
    assert main(["gate", "--params", str(path)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and "train.family" in err
    assert "Traceback" not in err


def test_stage_error_is_exit_code_2(project, capsys):
    # No raw data at the configured path: prep explains how to get it.
    assert main(["prep", "--params", project["params"]]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and "raw data" in err
    assert "Traceback" not in err


# ------------------------------------------------------------------ option placement


@pytest.mark.parametrize(
    "argv",
    [
        ["--params", "X.yaml", "-v", "gate"],
        ["gate", "--params", "X.yaml", "-v"],
        ["--params", "X.yaml", "gate", "-v"],
        ["-v", "gate", "--params", "X.yaml"],
        ["--verbose", "--params=X.yaml", "summary"],
    ],
)
def test_common_options_before_or_after_the_subcommand(argv):
    args = build_parser().parse_args(argv)
    assert args.params == "X.yaml"
    assert args.verbose is True


@pytest.mark.parametrize("argv", [["gate"], ["prep"]])
def test_common_option_defaults(argv):
    args = build_parser().parse_args(argv)
    assert args.params == "params.yaml"
    assert args.verbose is False


@pytest.mark.parametrize("before", [True, False])
def test_params_before_or_after_the_subcommand_is_used(project, capsys, before):
    write_verdict(project, "passed", [])
    argv = ["--params", project["params"], "-v", "gate"] if before else ["gate", "-v", "--params", project["params"]]
    assert main(argv) == 0
    assert "passed" in capsys.readouterr().out


# ------------------------------------------------------------------ simulate


def test_simulate_writes_the_requested_rows(tmp_path, capsys):
    output = tmp_path / "x.csv"
    assert main(["simulate", "--rows", "200", "--output", str(output), "--params", str(PARAMS_FILE)]) == 0
    lines = output.read_text().splitlines()
    assert len(lines) == 201
    assert lines[0].split(",") == COLUMNS
    frame = pd.read_csv(output, dtype=str, keep_default_na=False)
    assert len(frame) == 200 and frame["customerID"].is_unique
    # The seed defaults to simulate.seed: the same bytes as the library call.
    expected = tmp_path / "expected.csv"
    write_snapshot(simulate(200, yaml.safe_load(PARAMS_FILE.read_text())["simulate"]["seed"]), expected)
    assert output.read_bytes() == expected.read_bytes()
    assert str(output) in capsys.readouterr().out


def test_simulate_zero_rows_is_an_error_not_the_default(tmp_path, capsys):
    output = tmp_path / "zero.csv"
    assert main(["simulate", "--rows", "0", "--output", str(output), "--params", str(PARAMS_FILE)]) == 2
    assert capsys.readouterr().err.startswith("error: ")
    assert not output.exists()


def test_simulate_negative_rows_is_an_error(tmp_path, capsys):
    output = tmp_path / "negative.csv"
    assert main(["simulate", "--rows", "-3", "--output", str(output), "--params", str(PARAMS_FILE)]) == 2
    assert "n_customers" in capsys.readouterr().err
    assert not output.exists()


def test_simulate_drifted_period_differs(tmp_path):
    base, drifted = tmp_path / "base.csv", tmp_path / "drifted.csv"
    common = ["--rows", "200", "--params", str(PARAMS_FILE)]
    assert main(["simulate", *common, "--output", str(base)]) == 0
    assert main(["simulate", "--period", "drifted", *common, "--output", str(drifted)]) == 0
    assert len(drifted.read_text().splitlines()) == 201
    assert base.read_bytes() != drifted.read_bytes()


# ------------------------------------------------------------------ dvc.yaml <-> parser


def _dvc_stage_packages() -> dict[str, str]:
    """Stage name -> the package dvc.yaml runs with `python -m`."""
    stages = yaml.safe_load((REPO_ROOT / "dvc.yaml").read_text())["stages"]
    out = {}
    for name, stage in stages.items():
        words = shlex.split(stage["cmd"])
        assert words[:2] == ["python", "-m"], f"stage {name} does not run a stage module: {stage['cmd']}"
        out[name] = words[2]
    return out


def test_dvc_yaml_has_the_pipeline_stages():
    assert set(_dvc_stage_packages()) == {"prep", "train", "validate", "evaluate"}


def test_each_dvc_stage_module_is_also_a_churn_subcommand(capsys):
    import importlib.util

    parser = build_parser()
    (subparsers,) = [a for a in parser._actions if a.__class__.__name__ == "_SubParsersAction"]
    for stage, package in _dvc_stage_packages().items():
        assert importlib.util.find_spec(f"{package}.__main__") is not None, package
        assert importlib.util.find_spec(f"{package}.stage") is not None, package
        assert stage in subparsers.choices, f"no `churn {stage}` for dvc.yaml stage {stage}"
        with pytest.raises(SystemExit) as exited:
            main([stage, "--help"])
        assert exited.value.code == 0
    capsys.readouterr()


def test_unknown_subcommand_is_a_usage_error(capsys):
    with pytest.raises(SystemExit) as exited:
        main(["retrain"])
    assert exited.value.code == 2
    assert "invalid choice" in capsys.readouterr().err


@pytest.mark.parametrize("as_of, message", [("2999-01-01", "is in the future"), ("soon", "not an ISO 8601 time")])
def test_predict_as_of_is_checked_before_anything_runs(tmp_path, capsys, as_of, message):
    params = write_params(tmp_path)
    (tmp_path / "in.csv").write_text("customerID\nx\n")
    code = main(["predict", "--params", params, "--input", "in.csv", "--output", "out.parquet", "--as-of", as_of])
    assert code == 2
    assert message in capsys.readouterr().err
    assert not (tmp_path / "out.parquet").exists()


def test_simulate_refuses_a_dataset_of_other_columns(tmp_path, capsys):
    raw = yaml.safe_load(PARAMS_FILE.read_text())
    raw["dataset"]["numeric"]["balance"] = {"min": 0}
    other = tmp_path / "params.yaml"
    other.write_text(yaml.safe_dump(raw))
    assert main(["simulate", "--params", str(other), "--rows", "10", "--output", str(tmp_path / "x.csv")]) == 2
    assert "IBM Telco columns" in capsys.readouterr().err
    assert not (tmp_path / "x.csv").exists()


def test_a_closed_pipe_ends_quietly(tmp_path):
    """`churn summary | head -3`: the reader leaves early; churn stops without an error."""
    import subprocess
    import sys

    from tests.conftest import PARAMS_FILE

    code = (
        "import sys, churn.cli as cli\n"
        "def chatty(args, params):\n"
        "    for i in range(200000):\n"
        "        print('summary line', i)\n"
        "    return 0\n"
        "cli._summary = chatty\n"
        f"sys.exit(cli.main(['--params', {str(PARAMS_FILE)!r}, 'summary']))\n"
    )
    process = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, stderr=subprocess.PIPE, cwd=tmp_path)
    head = [process.stdout.readline() for _ in range(3)]
    process.stdout.close()  # what `head -3` does after three lines
    stderr = process.stderr.read().decode()
    assert process.wait(timeout=60) == 141, stderr
    assert head[0].startswith(b"summary line 0")
    assert stderr == "", stderr  # no "error: [Errno 32] Broken pipe", no "Exception ignored"


# ------------------------------------------------------------------ engines


@pytest.mark.parametrize("command", ["predict", "monitor"])
def test_predict_and_monitor_name_their_engines_alike(command, capsys):
    with pytest.raises(SystemExit):
        main([command, "--help"])
    usage = capsys.readouterr().out
    assert "--engine {local,spark}" in usage and "local: " in usage and "pandas" not in usage


@pytest.mark.parametrize("spelling", [None, "local", "pandas"])
def test_monitor_runs_the_local_engine_by_default_and_for_the_deprecated_pandas(tmp_path, monkeypatch, capsys,
                                                                              spelling):
    from churn.errors import ChurnError
    from churn.monitoring import command

    calls = []

    def local(params, now=None):
        calls.append(params)
        raise ChurnError("the local engine was called")

    monkeypatch.setattr(command, "run", local)
    engine = [] if spelling is None else ["--engine", spelling]
    assert main(["monitor", "--no-drill-down", "--params", write_params(tmp_path), *engine]) == 2
    err = capsys.readouterr().err
    assert len(calls) == 1 and "error: the local engine was called" in err
    deprecated = "warning: --engine pandas is deprecated: use --engine local" in err
    assert deprecated == (spelling == "pandas"), err


def test_predict_help_states_the_streaming_default_batch_size():
    # The parser does not import the streaming module (pandas, pyarrow), so its help text
    # carries the number itself; predict uses the module's default when none is given.
    from churn.deployment.stream import DEFAULT_BATCH_ROWS

    predict = next(
        action for action in build_parser()._subparsers._group_actions[0].choices["predict"]._actions
        if "--batch-rows" in action.option_strings
    )
    assert predict.default is None and f"default {DEFAULT_BATCH_ROWS}" in predict.help

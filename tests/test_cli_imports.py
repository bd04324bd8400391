"""A `churn` command that needs neither MLflow nor evidently does not import them (each
takes seconds to import): checked in a fresh interpreter per command."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from tests.conftest import PARAMS_FILE

# (pyspark is not listed: pandera imports pyspark.pandas whenever the spark extra is installed.)
HEAVY = ("mlflow", "evidently")
PROBE = """
import json, sys
from churn.cli import main
try:
    main(sys.argv[1:])
except SystemExit:
    pass
print(json.dumps({name: name in sys.modules for name in HEAVY}))
""".replace("HEAVY", repr(HEAVY))

# Commands run in an empty directory: most fail on the missing data, after their imports.
LIGHT = [
    ["gate"],
    ["summary"],
    ["prep"],
    ["predict", "--help"],
    # The input is read before the model: a missing one fails before MLflow is imported.
    ["predict", "--input", "missing.parquet", "--output", "scores.parquet"],
]


@pytest.mark.parametrize("command", LIGHT, ids=" ".join)
def test_light_commands_do_not_import_mlflow_or_evidently(command, tmp_path):
    done = subprocess.run(
        [sys.executable, "-c", PROBE, "--params", str(PARAMS_FILE), *command],
        cwd=tmp_path, capture_output=True, text=True, timeout=120,
    )
    loaded = json.loads(done.stdout.strip().splitlines()[-1])
    assert not any(loaded.values()), f"churn {' '.join(command)} imported {[n for n, v in loaded.items() if v]}"


def test_the_probe_sees_an_import(tmp_path):
    """The check can fail: `churn which` asks the registry, so it imports MLflow."""
    done = subprocess.run(
        [sys.executable, "-c", PROBE, "--params", str(PARAMS_FILE), "which"],
        cwd=tmp_path, capture_output=True, text=True, timeout=120,
    )
    assert json.loads(done.stdout.strip().splitlines()[-1])["mlflow"] is True

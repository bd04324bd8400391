"""`churn monitor [--check]` through the CLI: exit codes, verdict file, dashboard in a browser."""

from __future__ import annotations

import json
import shutil
import subprocess

import pytest
import yaml

from churn import cli
from churn.config import DriftScenario
from churn.monitoring import command

from .conftest import NOW, world_params

DRIFTED = DriftScenario(price_increase=0.3, fiber_shift=0.3, month_to_month_shift=0.3, churn_logit_shift=0.0)


@pytest.fixture(autouse=True)
def fixed_now(monkeypatch):
    """The log is stamped in late 2026: monitor as of NOW, whatever today is."""
    real = command.run
    monkeypatch.setattr(command, "run", lambda params, now=None: real(params, now=NOW))


def params_file(world) -> str:
    path = world.root / "params.yaml"
    path.write_text(yaml.safe_dump(world.params.model_dump(mode="json", by_alias=True)))
    return str(path)


def verdict(world) -> dict:
    return json.loads(world.params.monitor.paths.verdict.read_text())


def test_quiet_on_the_training_distribution(world, capsys):
    for day in range(4):
        world.log_day(day, 400)
    code = cli.main(["monitor", "--check", "--no-drill-down", "--params", params_file(world)])
    out = capsys.readouterr().out
    assert code == 0, out
    assert "retraining rule: ok" in out and verdict(world)["status"] == "ok"
    assert world.params.monitor.paths.dashboard.is_file()
    again = cli.main(["monitor", "--no-drill-down", "--params", params_file(world)])
    assert again == 0 and "up to date" in capsys.readouterr().out


def test_no_baseline_exits_2_and_says_the_check_could_not_be_made(world, tmp_path, capsys):
    world.params = world_params(world.params, world.root, tmp_path / "gone.parquet")
    world.log_day(0, 300)
    code = cli.main(["monitor", "--check", "--params", params_file(world)])
    err = capsys.readouterr().err
    assert code == 2
    assert "error: the retraining check could not be made: no baseline" in err and "gone.parquet" in err
    assert verdict(world)["status"] == "could not check"


def test_empty_log_exits_2_with_a_verdict(world, capsys):
    code = cli.main(["monitor", "--check", "--params", params_file(world)])
    assert code == 2 and "holds no scored rows" in capsys.readouterr().err
    assert verdict(world)["status"] == "could not check"


def test_drift_fires_and_the_dashboard_reads_in_a_browser(world, tmp_path, capsys):
    for day in range(2):
        world.log_day(day, 1200)
    for day in range(2, 6):
        world.log_day(day, 1200, drift=DRIFTED)
    code = cli.main(["monitor", "--check", "--params", params_file(world)])
    out = capsys.readouterr().out
    assert code == 1, out
    result = verdict(world)
    assert result["status"] == "retrain"
    fired = [name for name, metric in result["metrics"].items() if metric.get("fired")]
    assert fired and all(any(name in reason for reason in result["reasons"]) for name in fired)
    assert result["metrics"]["drifted_share"]["values"][-1] > 0.1  # the drift is seen too
    paths = world.params.monitor.paths
    page = paths.dashboard.read_text()
    assert page.count("data:image/png;base64,") == 4
    assert paths.drill_down.is_file() and paths.drill_down.name in page

    browser = shutil.which("chromium")
    if browser is None:
        pytest.skip("chromium is not installed (apt-get install chromium): the page was not rendered")
    flags = [browser, "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
             "--disable-component-update", "--disable-sync", "--no-first-run", f"--user-data-dir={tmp_path / 'profile'}"]
    dom = subprocess.run([*flags, "--dump-dom", paths.dashboard.as_uri()], capture_output=True, text=True, timeout=120)
    assert "Churn model monitoring" in dom.stdout and "retraining rule: retrain" in dom.stdout
    assert dom.stdout.count("<img") == 4
    shot = tmp_path / "dashboard.png"
    subprocess.run([*flags, "--window-size=1280,2400", f"--screenshot={shot}", paths.dashboard.as_uri()],
                   capture_output=True, timeout=120)
    assert shot.is_file() and shot.stat().st_size > 50_000  # a rendered page, not a blank one
    keep = world.root.parent / "monitoring-dashboard.png"
    shutil.copy(shot, keep)

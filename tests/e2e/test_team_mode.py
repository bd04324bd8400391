"""Team mode on real servers: `scripts/services.py` (what `make services` runs) starts
PostgreSQL, an S3 server and an MLflow server with basic auth, and the whole lifecycle runs
against them by configuration alone: repro, push, a fresh clone that reproduces from the
remote without retraining, challenge, promote, predict (the log lands in S3), serve,
rollback, report; then the MLflow server dies during a command.

The tests share one set of servers and one project and run in file order: each step
builds on the one before, as a team's day does.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path

import pandas as pd
import psutil
import pytest

from tests.conftest import RAW_CSV, read_raw_text
from tests.e2e.conftest import Project, make_project, project_env, ran_stages
from tests.helpers import free_port

pytestmark = [pytest.mark.e2e, pytest.mark.services]

ROOT = Path(__file__).resolve().parents[2]
SERVICES = [sys.executable, str(ROOT / "scripts" / "services.py")]
MODEL = "churn-classifier"


@dataclass
class Team:
    directory: Path  # the services directory (.services/ for `make services`)
    ports: list[str]  # the port options given to every `up`
    env: dict[str, str]  # the exports of <directory>/env
    project: Project
    log_url: str

    def services(self, command: str, *extra: str, cwd: Path | None = None) -> subprocess.CompletedProcess:
        ports = self.ports if command == "up" else []
        return subprocess.run([*SERVICES, command, "--dir", str(self.directory), *ports, *extra],
                              cwd=cwd or self.directory, capture_output=True, text=True, timeout=400)

    def state(self) -> dict:
        return json.loads((self.directory / "state.json").read_text())

    def client(self):
        from mlflow import MlflowClient

        return MlflowClient(self.env["MLFLOW_TRACKING_URI"])  # credentials: set by the fixture

    def log_keys(self) -> list[str]:
        import boto3

        bucket, prefix = self.log_url[len("s3://"):].split("/", 1)
        s3 = boto3.client("s3", endpoint_url=self.env["AWS_ENDPOINT_URL"], region_name=self.env["AWS_DEFAULT_REGION"],
                          aws_access_key_id=self.env["AWS_ACCESS_KEY_ID"],
                          aws_secret_access_key=self.env["AWS_SECRET_ACCESS_KEY"])
        return sorted(o["Key"] for o in s3.list_objects_v2(Bucket=bucket, Prefix=prefix).get("Contents", []))


def read_env(path: Path) -> dict[str, str]:
    values = {}
    for line in path.read_text().splitlines():
        match = re.match(r"^export (\w+)='(.*)'$", line)
        if match:
            values[match.group(1)] = match.group(2)
    return values


def cheap(params: dict) -> None:
    """This suite tests the plumbing, not the model: fewer boosting rounds and samples."""
    params["train"]["hyperparameters"]["hist_gradient_boosting"].update(max_iter=60)
    params["evaluate"]["importance"].update(n_repeats=1, sample_size=300)
    params["evaluate"]["drift"].update(sample_size=500)
    params["report"].update(drift_sample_size=500)
    # A 3,000-customer project has too few seniors to judge fairness or small slices (those
    # gates then reject as "could not check"), and a logistic regression ties the boosted
    # model on it: the gates that need more data are off here, as in the registry tests.
    params["validate"]["slices"].update(min_roc_auc=None, max_roc_auc_gap=None)
    params["validate"]["fairness"]["protected"] = []
    params["validate"]["baseline"]["min_gain"] = 0.0


@pytest.fixture(scope="module")
def team(tmp_path_factory):
    # Not under pytest's private tmp root: the `postgres` user must reach the data folder.
    directory = Path(tempfile.mkdtemp(prefix="churn-services-"))
    directory.chmod(0o755)
    ports = ["--pg-port", str(free_port()), "--s3-port", str(free_port()), "--mlflow-port", str(free_port())]
    started = subprocess.run([*SERVICES, "up", "--dir", str(directory), *ports, "--no-dvc-remote"],
                             capture_output=True, text=True, timeout=400)
    credentials = pytest.MonkeyPatch()  # for this module's own MLflow client only
    try:
        assert started.returncode == 0, started.stdout + started.stderr
        for name in ("postgres", "s3", "mlflow"):
            assert re.search(rf"^{name}: ready at 127\.0\.0\.1:\d+ \(pid \d+, log .*\) after \d+\.\d s$", started.stdout, re.M), started.stdout
        # Through a pipe: a plain line as each server starts (which one, where), no control characters.
        for label in ("PostgreSQL", "the S3 server", "the MLflow server"):
            assert re.search(rf"^churn: starting {label} on 127\.0\.0\.1:\d+, waiting until it answers$", started.stderr, re.M), started.stderr
        assert not re.search(r"[\x00-\x08\x0b-\x1f\x7f]", started.stdout + started.stderr)
        env = read_env(directory / "env")
        assert (directory / "env").stat().st_mode & 0o077 == 0  # credentials: owner only
        base = tmp_path_factory.mktemp("team")
        project = make_project(base)
        project.env.update(env)
        # A dead server must fail a command in seconds, not after MLflow's minutes of retries.
        project.env.update(MLFLOW_HTTP_REQUEST_MAX_RETRIES="1", MLFLOW_HTTP_REQUEST_BACKOFF_FACTOR="1")
        credentials.setenv("MLFLOW_TRACKING_USERNAME", env["MLFLOW_TRACKING_USERNAME"])
        credentials.setenv("MLFLOW_TRACKING_PASSWORD", env["MLFLOW_TRACKING_PASSWORD"])
        log_url = env["CHURN_INFERENCE_LOG_URL"]
        project.set_params(lambda p: p["paths"].update(inference_log=log_url))
        project.set_params(cheap)
        project.git("commit", "-q", "-am", "team mode: the inference log in the team's bucket")
        yield Team(directory, ports, env, project, log_url)
    finally:
        credentials.undo()
        stopped = subprocess.run([*SERVICES, "down", "--dir", str(directory)], capture_output=True, text=True, timeout=120)
        print(stopped.stdout, stopped.stderr)
        shutil.rmtree(directory, ignore_errors=True)


def test_services_answer_with_auth_and_a_second_up_is_harmless(team):
    for name, record in team.state().items():
        assert psutil.Process(record["pid"]).is_running(), name
    again = team.services("up", "--dvc-repo", str(team.project.path), cwd=team.project.path)
    assert again.returncode == 0, again.stderr
    for name in ("postgres", "s3", "mlflow"):
        assert f"{name}: already running" in again.stdout
    assert "dvc: local default remote 'services'" in again.stdout
    assert team.project.run("dvc", "remote", "default").stdout.strip() == "services"
    assert "config.local" not in team.project.git("status", "--porcelain")  # the remote stays local

    status = team.services("status")
    assert status.returncode == 0 and status.stdout.count("answering") == 3, status.stdout
    # Basic auth is on: the server refuses a client without the password.
    url = team.env["MLFLOW_TRACKING_URI"] + "/api/2.0/mlflow/experiments/search?max_results=1"
    with pytest.raises(urllib.error.HTTPError) as refused:
        urllib.request.urlopen(url, timeout=10)
    assert refused.value.code == 401
    env = {k: v for k, v in team.project.env.items() if k != "MLFLOW_TRACKING_PASSWORD"}
    denied = subprocess.run(["churn", "which"], cwd=team.project.path, env=env, capture_output=True, text=True)
    assert denied.returncode == 2 and denied.stderr.startswith("error:") and "Traceback" not in denied.stderr


def test_repro_logs_to_the_server_and_pushes_to_s3(team):
    project = team.project
    result = project.repro()
    assert ran_stages(result.stdout) == {"prep", "train", "validate", "evaluate"}
    project.git("add", "-A")
    project.git("commit", "-q", "-m", "reproduce")
    runs = team.client().search_runs([team.client().get_experiment_by_name("churn").experiment_id])
    assert len(runs) == 1 and runs[0].data.tags["dvc.model_md5"] == project.lock()["stages"]["train"]["outs"][0]["md5"]
    pushed = project.run("dvc", "push", "--run-cache")
    assert "pushed" in pushed.stdout, pushed.stdout
    summary = project.run("churn", "summary").stdout
    assert f"MLflow UI:     {team.env['MLFLOW_TRACKING_URI']}" in summary and "mlflow ui" not in summary


def test_a_fresh_clone_reproduces_from_the_remote_without_retraining(team, tmp_path):
    clone = Project(tmp_path / "clone", project_env(tmp_path))
    Project(tmp_path, clone.env).run("git", "clone", "-q", str(team.project.path), str(clone.path))
    clone.env.update(team.project.env)
    added = team.services("up", "--dvc-repo", str(clone.path), cwd=clone.path)
    assert added.returncode == 0, added.stderr
    result = clone.run("dvc", "repro", "--pull", "--allow-missing")
    assert ran_stages(result.stdout) == set(), result.stdout
    clone.run("dvc", "pull")
    assert clone.run("dvc", "status").stdout.strip() == "Data and pipelines are up to date."
    assert clone.git("status", "--porcelain") == ""


def test_challenge_promote_predict_and_serve(team, tmp_path):
    project = team.project
    assert "challenge: passed as churn-classifier v1" in project.run("churn", "challenge").stdout
    assert "v1 is now @champion" in project.run("churn", "promote").stdout

    records = tmp_path / "customers.csv"
    read_raw_text(RAW_CSV).to_csv(records, index=False)
    predicted = project.run("churn", "predict", "--input", str(records), "--output", str(tmp_path / "scores.parquet"))
    assert f"inference log: {team.log_url}/date=" in predicted.stdout
    assert len(team.log_keys()) == 1
    scores = pd.read_parquet(tmp_path / "scores.parquet").set_index("customerID")

    port = free_port()
    log = tmp_path / "serve.log"
    with open(log, "wb") as out:
        # MLflow's scoring server on the team registry: the model and its artifacts come
        # through the server, with the client's credentials only.
        server = subprocess.Popen(
            [str(Path(sys.executable).parent / "mlflow"), "models", "serve", "-m", f"models:/{MODEL}@champion",
             "--env-manager", "local", "--host", "127.0.0.1", "--port", str(port)],
            cwd=project.path, env=project.env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
    try:
        deadline = time.monotonic() + 120
        while True:
            assert server.poll() is None, log.read_text()[-3000:]
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/ping", timeout=2):
                    break
            except urllib.error.HTTPError:
                break  # it answers
            except OSError:
                assert time.monotonic() < deadline, log.read_text()[-3000:]
                time.sleep(0.5)
        record = read_raw_text(RAW_CSV).drop(columns="Churn").head(1)
        body = json.dumps({"dataframe_records": json.loads(record.to_json(orient="records"))}).encode()
        request = urllib.request.Request(f"http://127.0.0.1:{port}/invocations", data=body,
                                         headers={"Content-Type": "application/json"})
        with urllib.request.urlopen(request, timeout=60) as response:
            answer = json.loads(response.read())["predictions"][0]
        assert answer["churn_probability"] == pytest.approx(scores.loc[answer["customerID"], "churn_probability"], abs=1e-9)
    finally:
        os.killpg(server.pid, signal.SIGTERM)
        server.wait(timeout=30)


def test_the_readme_gives_ci_its_own_user(team):
    """The README's snippet, run as the admin, makes a user that can edit the model, not delete it."""
    from mlflow import MlflowClient
    from mlflow.exceptions import MlflowException

    readme = (ROOT / "README.md").read_text()
    snippet = readme.split("## Team mode")[1].split("python - <<'PY'\n")[1].split("\nPY\n")[0]
    made = subprocess.run([sys.executable, "-c", snippet], env=team.project.env, capture_output=True, text=True, timeout=120)
    assert made.returncode == 0, made.stderr
    credentials = dict(re.findall(r"(MLFLOW_TRACKING_\w+)=(\S+)", made.stdout))
    assert credentials["MLFLOW_TRACKING_USERNAME"] == "ci"
    env = {**team.project.env, **credentials}
    as_ci = subprocess.run(["churn", "which"], cwd=team.project.path, env=env, capture_output=True, text=True)
    assert as_ci.returncode == 0 and "@champion" in as_ci.stdout, as_ci.stderr
    os.environ.update(credentials)
    try:
        client = MlflowClient(team.env["MLFLOW_TRACKING_URI"])
        client.set_model_version_tag(MODEL, "1", "ci.checked", "yes")  # EDIT
        with pytest.raises(MlflowException, match=r"PERMISSION_DENIED|403"):
            client.delete_registered_model(MODEL)  # needs MANAGE
    finally:
        for name in credentials:
            os.environ[name] = team.env[name]


def test_a_second_champion_then_rollback_and_report(team):
    project = team.project
    project.git("checkout", "-q", "-b", "threshold")
    project.set_params(lambda p: p["train"].update(decision_threshold=0.34))  # a new servable, same model
    project.repro()
    project.git("commit", "-q", "-am", "threshold 0.34")
    assert "challenge: passed as churn-classifier v2" in project.run("churn", "challenge").stdout
    assert "v2 is now @champion (previous champion: v1)" in project.run("churn", "promote").stdout
    # Roll back from main, whose params v1 was gated under (rollback rechecks that record).
    project.git("checkout", "-q", "main")
    project.run("dvc", "checkout", "-q")
    assert "rolled back from v2 to v1" in project.run("churn", "rollback").stdout
    assert team.client().get_model_version_by_alias(MODEL, "champion").version == "1"
    project.git("checkout", "-q", "threshold")
    project.run("dvc", "checkout", "-q")

    reported = project.run("churn", "report", "--base", "main")
    assert "gate passed" in reported.stdout
    text = (project.path / "report.md").read_text()
    assert "decision_threshold" in text and f"MLflow: team tracking server `{team.env['MLFLOW_TRACKING_URI']}`" in text


def test_the_mlflow_server_dies_during_predict(team, tmp_path):
    """The command fails with a short error, writes no scores and adds nothing to the log."""
    project = team.project
    records = tmp_path / "customers.csv"
    read_raw_text(RAW_CSV).to_csv(records, index=False)
    output = tmp_path / "scores.parquet"
    server_log = Path(team.state()["mlflow"]["log"])
    offset = server_log.stat().st_size
    logged = team.log_keys()
    env = {**project.env, "PYTHONPATH": str(project.path / "src")}
    command = subprocess.Popen(["churn", "predict", "--input", str(records), "--output", str(output)],
                               cwd=project.path, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    # Kill it once the command is downloading the model through the server.
    deadline = time.monotonic() + 120
    while "mlflow-artifacts" not in server_log.read_text(errors="replace")[offset:]:
        assert command.poll() is None and time.monotonic() < deadline, command.communicate()
        time.sleep(0.05)
    os.killpg(team.state()["mlflow"]["pid"], signal.SIGKILL)
    stdout, stderr = command.communicate(timeout=300)

    assert command.returncode == 2, (stdout, stderr)
    assert stderr.strip().splitlines()[-1].startswith("error: cannot load models:/churn-classifier@champion"), stderr
    assert "Traceback" not in stderr and len(stderr) < 2000, stderr
    assert not output.exists() and not list(tmp_path.glob(".*"))
    assert team.log_keys() == logged

    status = team.services("status")
    assert status.returncode == 1 and "mlflow: stopped" in status.stdout
    again = team.services("up", "--no-dvc-remote")  # restarts what died, leaves the rest
    assert again.returncode == 0, again.stderr
    assert "postgres: already running" in again.stdout and "mlflow: ready" in again.stdout
    versions = team.client().search_model_versions(f"name='{MODEL}'")
    assert sorted(v.version for v in versions) == ["1", "2"]
    assert team.client().get_model_version_by_alias(MODEL, "champion").version == "1"


def test_services_down_stops_exactly_what_it_started(team):
    records = team.state()
    processes = {name: psutil.Process(r["pid"]) for name, r in records.items()}
    stopped = team.services("down")
    assert stopped.returncode == 0, stopped.stderr
    for name, process in processes.items():
        assert f"{name}: stopped" in stopped.stdout
        assert not process.is_running() or process.status() == psutil.STATUS_ZOMBIE
    assert not (team.directory / "state.json").exists()
    assert team.services("status").returncode == 1
    assert "nothing to stop" in team.services("down").stdout

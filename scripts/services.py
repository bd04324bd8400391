"""`make services`: the team-mode servers on this machine, for a laptop or a CI job.

    python scripts/services.py up       # PostgreSQL, an S3 server, an MLflow server; writes .services/env
    python scripts/services.py status   # what runs where
    python scripts/services.py down     # stops exactly the processes `up` started

Everything listens on 127.0.0.1 only and keeps its data under the services directory
(`.services/`, git-ignored): PostgreSQL (Debian's server binaries) holds MLflow's backend
store and its basic-auth users, `rclone serve s3` is the object store (DVC remote, MLflow
artifacts, the inference log), and `mlflow server --app-name basic-auth` serves tracking,
the registry and proxied artifacts. Secrets are generated once and kept in the directory
(mode 0600), so a second `up` finds the same users and is harmless. Ports come from
--pg-port/--s3-port/--mlflow-port or CHURN_PG_PORT/CHURN_S3_PORT/CHURN_MLFLOW_PORT.

While a server starts, stderr shows which one with a spinner and elapsed time (in a log: a
line as it starts); each ends with `<name>: ready at ... after 3.2 s` on stdout. --quiet (or
CHURN_QUIET=1, e.g. `make services CHURN_QUIET=1`) keeps only those result lines and errors.
"""

from __future__ import annotations

import argparse
import base64
import json
import os
import pwd
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import psutil

from churn import progress

BIN = Path(sys.executable).parent
DEFAULT_DIR = Path(".services")
# Away from the usual 5432 (PostgreSQL), 9000 (MinIO) and 5000 (MLflow, macOS AirPlay).
DEFAULT_PORTS = {"postgres": 55432, "s3": 59000, "mlflow": 55000}
PORT_VARIABLES = {"postgres": "CHURN_PG_PORT", "s3": "CHURN_S3_PORT", "mlflow": "CHURN_MLFLOW_PORT"}
HOST = "127.0.0.1"
PG_SUPERUSER = "churn"
DATABASES = ("mlflow", "mlflow_auth")
BUCKETS = {"dvc": "churn-dvc", "artifacts": "churn-mlflow", "data": "churn-data"}
REGION = "us-east-1"
MLFLOW_ADMIN = "admin"
DVC_REMOTE = "services"
ORDER = ("postgres", "s3", "mlflow")  # start order; stop in reverse
LABELS = {"postgres": "PostgreSQL", "s3": "the S3 server", "mlflow": "the MLflow server"}
START_TIMEOUT = 180.0


class ServicesError(Exception):
    """A problem `up`/`down` cannot solve alone; the message names the fix."""


@dataclass
class Record:
    """One started process: enough to find it again, and only it."""

    name: str
    pid: int
    created: float  # psutil create_time: tells our process from a later one with the same pid
    port: int
    log: str
    command: list[str]

    def process(self) -> psutil.Process | None:
        try:
            process = psutil.Process(self.pid)
            same = abs(process.create_time() - self.created) < 0.05
            if same and process.is_running() and process.status() != psutil.STATUS_ZOMBIE:
                return process
        except psutil.Error:
            pass
        return None


@dataclass
class Layout:
    root: Path

    @property
    def state(self) -> Path:
        return self.root / "state.json"

    @property
    def secrets(self) -> Path:
        return self.root / "secrets.json"

    @property
    def env(self) -> Path:
        return self.root / "env"

    @property
    def logs(self) -> Path:
        return self.root / "logs"

    @property
    def postgres(self) -> Path:
        return self.root / "postgres"

    @property
    def s3(self) -> Path:
        return self.root / "s3"

    @property
    def mlflow(self) -> Path:
        return self.root / "mlflow"


# ------------------------------------------------------------------------------ helpers


def say(line: str) -> None:
    print(line, flush=True)


def write_private(path: Path, text: str) -> None:
    """Write a file only its owner may read (it holds credentials), atomically."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as handle:
        handle.write(text)
    os.replace(tmp, path)


def load_json(path: Path) -> dict[str, Any]:
    try:
        data = json.loads(path.read_text())
    except FileNotFoundError:
        return {}
    except ValueError as exc:
        raise ServicesError(f"{path} is damaged ({exc}): move it away and run `make services` again") from None
    return data if isinstance(data, dict) else {}


def load_state(layout: Layout) -> dict[str, Record]:
    return {name: Record(**fields) for name, fields in load_json(layout.state).items()}


def save_state(layout: Layout, state: dict[str, Record]) -> None:
    write_private(layout.state, json.dumps({name: asdict(r) for name, r in state.items()}, indent=2) + "\n")


def load_secrets(layout: Layout) -> dict[str, str]:
    """Generated on the first `up` and reused: PostgreSQL and MLflow keep the first ones."""
    stored = load_json(layout.secrets)
    wanted = {
        "pg_password": lambda: secrets.token_urlsafe(24),
        "s3_access_key": lambda: "churn" + secrets.token_hex(8),
        "s3_secret_key": lambda: secrets.token_urlsafe(30),
        "mlflow_admin_password": lambda: secrets.token_urlsafe(24),
        "mlflow_flask_secret": lambda: secrets.token_urlsafe(32),
    }
    changed = False
    for key, make in wanted.items():
        if not stored.get(key):
            stored[key] = make()
            changed = True
    if changed:
        write_private(layout.secrets, json.dumps(stored, indent=2) + "\n")
    return stored


def port_in_use(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.settimeout(1)
        return probe.connect_ex((HOST, port)) == 0


def tail(path: Path, chars: int = 2500) -> str:
    try:
        return path.read_text(errors="replace")[-chars:]
    except OSError:
        return "(no log)"


def wait_until(what: str, ready: Callable[[], bool], record: Record, log: Path, timeout: float = START_TIMEOUT) -> None:
    deadline = time.monotonic() + timeout
    while True:
        try:
            if ready():
                return
        except Exception:  # not up yet: connection refused, auth tables not created, ...
            pass
        if record.process() is None:
            raise ServicesError(f"{what} exited during start-up; its log {log} ends with:\n{tail(log)}")
        if time.monotonic() > deadline:
            raise ServicesError(f"{what} did not answer within {timeout:.0f} s; see its log {log}:\n{tail(log)}")
        time.sleep(0.3)


def spawn(name: str, command: list[str], port: int, layout: Layout, *, env: dict[str, str] | None = None,
          user: pwd.struct_passwd | None = None, cwd: Path | None = None) -> Record:
    layout.logs.mkdir(parents=True, exist_ok=True)
    log_path = layout.logs / f"{name}.log"
    with open(log_path, "ab") as log:
        log.write(f"\n--- {time.strftime('%Y-%m-%dT%H:%M:%S')} {' '.join(command)}\n".encode())
        log.flush()
        # A session of its own: `down` signals the whole group (MLflow's workers too) and
        # nothing else, and Ctrl-C in the shell that ran `make services` does not reach it.
        process = subprocess.Popen(
            command, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT, env=env,
            cwd=cwd, start_new_session=True,
            **({"user": user.pw_uid, "group": user.pw_gid, "extra_groups": []} if user else {}),
        )
    created = psutil.Process(process.pid).create_time()
    return Record(name, process.pid, created, port, str(log_path), command)


def stop(record: Record, signum: int = signal.SIGTERM, timeout: float = 30.0) -> bool:
    """Signal the recorded process group; True if something of ours was running."""
    process = record.process()
    if process is None:
        return False
    try:
        os.killpg(record.pid, signum)
    except ProcessLookupError:
        return False
    except PermissionError as exc:
        raise ServicesError(f"cannot stop {record.name} (pid {record.pid}): {exc}; run as the user who started it") from None
    deadline = time.monotonic() + timeout
    while record.process() is not None and time.monotonic() < deadline:
        time.sleep(0.2)
    if record.process() is not None:
        os.killpg(record.pid, signal.SIGKILL)
        time.sleep(0.5)
    return True


# ---------------------------------------------------------------------------- postgres


def postgres_bin() -> Path:
    candidates = [Path(os.environ["PG_BIN"])] if os.environ.get("PG_BIN") else []
    candidates.append(Path("/usr/lib/postgresql/15/bin"))
    candidates += sorted(Path("/usr/lib/postgresql").glob("*/bin"), reverse=True)
    config = shutil.which("pg_config")
    if config:
        candidates.append(Path(subprocess.run([config, "--bindir"], capture_output=True, text=True).stdout.strip()))
    for directory in candidates:
        if (directory / "initdb").is_file() and (directory / "postgres").is_file():
            return directory
    raise ServicesError(
        "PostgreSQL server binaries (initdb, postgres) not found in /usr/lib/postgresql/*/bin or PG_BIN: "
        "install them (`apt-get install -y postgresql`, which `make services` does when run as root "
        "on Debian/Ubuntu) or set PG_BIN to the directory that holds them"
    )


def postgres_user() -> pwd.struct_passwd | None:
    """The user the server runs as: PostgreSQL refuses root, so root hands it to `postgres`."""
    if os.geteuid() != 0:
        return None
    name = os.environ.get("CHURN_PG_USER", "postgres")
    try:
        return pwd.getpwnam(name)
    except KeyError:
        raise ServicesError(
            f"running as root, PostgreSQL needs a non-root user to run as, and user {name!r} does not "
            "exist: install the postgresql package (it creates `postgres`), or set CHURN_PG_USER"
        ) from None


def check_reachable(path: Path, user: pwd.struct_passwd) -> None:
    result = subprocess.run(["test", "-x", str(path)], user=user.pw_uid, group=user.pw_gid, extra_groups=[])
    if result.returncode != 0:
        raise ServicesError(
            f"user {user.pw_name} (who runs PostgreSQL) cannot enter {path}: one of its parent folders "
            "is private; make them searchable (chmod o+x) or choose another directory with --dir"
        )


def pg_url(port: int, password: str, database: str, driver: str = "postgresql+psycopg") -> str:
    return f"{driver}://{PG_SUPERUSER}:{password}@{HOST}:{port}/{database}"


def pg_connect(port: int, password: str, database: str = "postgres"):  # -> psycopg.Connection
    import psycopg

    return psycopg.connect(host=HOST, port=port, user=PG_SUPERUSER, password=password, dbname=database,
                           connect_timeout=3, autocommit=True)


def start_postgres(layout: Layout, port: int, keys: dict[str, str]) -> Record:
    bindir = postgres_bin()
    user = postgres_user()
    home = layout.postgres
    data, sockets = home / "data", home / "run"
    home.mkdir(parents=True, exist_ok=True)
    home.chmod(0o700)
    sockets.mkdir(exist_ok=True)
    if user is not None:
        layout.root.chmod(layout.root.stat().st_mode | 0o011)  # o+x, g+x: let it reach its own folder
        for path in (home, sockets, *([data] if data.exists() else [])):
            os.chown(path, user.pw_uid, user.pw_gid)
        check_reachable(home, user)
    if not (data / "PG_VERSION").is_file():
        pwfile = home / "pwfile"
        write_private(pwfile, keys["pg_password"] + "\n")
        if user is not None:
            os.chown(pwfile, user.pw_uid, user.pw_gid)
        try:
            init = subprocess.run(
                [str(bindir / "initdb"), "-D", str(data), "-U", PG_SUPERUSER, f"--pwfile={pwfile}",
                 "--auth=scram-sha-256", "--encoding=UTF8", "--locale=C"],
                capture_output=True, text=True, cwd=home,
                **({"user": user.pw_uid, "group": user.pw_gid, "extra_groups": []} if user else {}),
            )
        finally:
            pwfile.unlink(missing_ok=True)
        if init.returncode != 0:
            raise ServicesError(f"initdb failed for {data}:\n{init.stdout[-1500:]}{init.stderr[-1500:]}")
    command = [str(bindir / "postgres"), "-D", str(data), "-p", str(port), "-c", f"listen_addresses={HOST}",
               "-c", f"unix_socket_directories={sockets}"]
    record = spawn("postgres", command, port, layout, user=user, cwd=home)

    def ready() -> bool:
        with pg_connect(port, keys["pg_password"]) as connection:
            connection.execute("SELECT 1")
        return True

    wait_until("PostgreSQL", ready, record, Path(record.log), timeout=60)
    return record


def ensure_databases(port: int, keys: dict[str, str]) -> None:
    from psycopg import sql

    with pg_connect(port, keys["pg_password"]) as connection:
        present = {row[0] for row in connection.execute("SELECT datname FROM pg_database")}
        for name in DATABASES:
            if name not in present:
                connection.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))


# ---------------------------------------------------------------------------------- s3


def rclone_binary() -> str:
    found = BIN / "rclone" if (BIN / "rclone").is_file() else shutil.which("rclone")
    if not found:
        raise ServicesError(
            "rclone not found in the project environment: install the services extra "
            "(`make services` does: uv pip install -r requirements-services.lock)"
        )
    return str(found)


def s3_client(port: int, keys: dict[str, str]):  # -> botocore S3 client
    import boto3
    from botocore.config import Config

    return boto3.client(
        "s3", endpoint_url=f"http://{HOST}:{port}", aws_access_key_id=keys["s3_access_key"],
        aws_secret_access_key=keys["s3_secret_key"], region_name=REGION,
        config=Config(s3={"addressing_style": "path"}, retries={"max_attempts": 1}, connect_timeout=2, read_timeout=10),
    )


def start_s3(layout: Layout, port: int, keys: dict[str, str]) -> Record:
    layout.s3.mkdir(parents=True, exist_ok=True)
    command = [rclone_binary(), "serve", "s3", "--addr", f"{HOST}:{port}",
               "--auth-key", f"{keys['s3_access_key']},{keys['s3_secret_key']}", str(layout.s3)]
    # No rclone.conf is read or written: the local folder needs none.
    env = {**os.environ, "RCLONE_CONFIG": "/dev/null"}
    # rclone shows its arguments (the secret too) in `ps` to users of this machine; the
    # environment is private to the owner, so the key travels there instead.
    # A list flag read from the environment is CSV: quote the pair so its comma stays inside.
    env["RCLONE_AUTH_KEY"] = '"' + command.pop(command.index("--auth-key") + 1) + '"'
    command.remove("--auth-key")
    record = spawn("s3", command, port, layout, env=env)
    wait_until("S3 server", lambda: bool(s3_client(port, keys).list_buckets() is not None), record, Path(record.log), 60)
    return record


def ensure_buckets(port: int, keys: dict[str, str]) -> None:
    client = s3_client(port, keys)
    present = {bucket["Name"] for bucket in client.list_buckets().get("Buckets", [])}
    for bucket in BUCKETS.values():
        if bucket not in present:
            client.create_bucket(Bucket=bucket)


# ------------------------------------------------------------------------------ mlflow


def mlflow_request(url: str, auth: tuple[str, str] | None) -> int:
    request = urllib.request.Request(url)
    if auth:
        token = base64.b64encode(f"{auth[0]}:{auth[1]}".encode()).decode()
        request.add_header("Authorization", f"Basic {token}")
    try:
        with urllib.request.urlopen(request, timeout=5) as response:
            return int(response.status)
    except urllib.error.HTTPError as exc:
        return int(exc.code)


def start_mlflow(layout: Layout, ports: dict[str, int], keys: dict[str, str]) -> Record:
    layout.mlflow.mkdir(parents=True, exist_ok=True)
    auth_ini = layout.mlflow / "basic_auth.ini"
    # The auth app's own settings; its users live in PostgreSQL beside the tracking data.
    write_private(auth_ini, "\n".join([
        "[mlflow]",
        "default_permission = READ",
        f"database_uri = {pg_url(ports['postgres'], keys['pg_password'], 'mlflow_auth')}",
        f"admin_username = {MLFLOW_ADMIN}",
        "authorization_function = mlflow.server.auth:authenticate_request_basic_auth",
        # Each request's password check is a PBKDF2 hash: without this cache, loading a model
        # (one request per artifact file) takes a minute. One worker: no stale entries.
        "auth_cache_ttl_seconds = 60",
        "",
    ]))
    s3_url = f"http://{HOST}:{ports['s3']}"
    env = {
        **os.environ,
        "PATH": f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}",
        "MLFLOW_AUTH_CONFIG_PATH": str(auth_ini),
        "MLFLOW_AUTH_ADMIN_PASSWORD": keys["mlflow_admin_password"],  # used on the first start only
        "MLFLOW_FLASK_SERVER_SECRET_KEY": keys["mlflow_flask_secret"],
        "AWS_ACCESS_KEY_ID": keys["s3_access_key"],
        "AWS_SECRET_ACCESS_KEY": keys["s3_secret_key"],
        "AWS_DEFAULT_REGION": REGION,
        "MLFLOW_S3_ENDPOINT_URL": s3_url,
        # The GenAI job runner (huey workers, periodic tasks) adds about a minute to start-up
        # and nothing this project uses.
        "MLFLOW_SERVER_ENABLE_JOB_EXECUTION": "false",
    }
    for inherited in ("MLFLOW_TRACKING_URI", "MLFLOW_TRACKING_USERNAME", "MLFLOW_TRACKING_PASSWORD", "AWS_ENDPOINT_URL"):
        env.pop(inherited, None)
    command = [
        str(BIN / "mlflow"), "server", "--host", HOST, "--port", str(ports["mlflow"]),
        "--backend-store-uri", pg_url(ports["postgres"], keys["pg_password"], "mlflow"),
        "--artifacts-destination", f"s3://{BUCKETS['artifacts']}/artifacts", "--serve-artifacts",
        "--app-name", "basic-auth", "--workers", "1",
    ]
    # The store URI carries the database password: keep it out of `ps`, like rclone's key.
    env["MLFLOW_BACKEND_STORE_URI"] = command.pop(command.index("--backend-store-uri") + 1)
    command.remove("--backend-store-uri")
    record = spawn("mlflow", command, ports["mlflow"], layout, env=env, cwd=layout.mlflow)
    url = f"http://{HOST}:{ports['mlflow']}"
    probe = f"{url}/api/2.0/mlflow/experiments/search?max_results=1"
    admin = (MLFLOW_ADMIN, keys["mlflow_admin_password"])
    wait_until("MLflow server", lambda: mlflow_request(probe, admin) == 200, record, Path(record.log))
    return record


def check_mlflow_auth(port: int, keys: dict[str, str]) -> None:
    """Fail closed: a server that answers without credentials is not the one we meant to start."""
    probe = f"http://{HOST}:{port}/api/2.0/mlflow/experiments/search?max_results=1"
    anonymous = mlflow_request(probe, None)
    if anonymous != 401:
        raise ServicesError(f"the MLflow server on port {port} answered {anonymous} without credentials: basic auth is off")
    admin = mlflow_request(probe, (MLFLOW_ADMIN, keys["mlflow_admin_password"]))
    if admin != 200:
        raise ServicesError(
            f"the MLflow server on port {port} refused the admin password ({admin}): its user store "
            "was made with other secrets; run `make services-down`, move .services away and start again"
        )


# ----------------------------------------------------------------------- env and DVC


def env_lines(ports: dict[str, int], keys: dict[str, str]) -> dict[str, str]:
    s3_url = f"http://{HOST}:{ports['s3']}"
    return {
        "MLFLOW_TRACKING_URI": f"http://{HOST}:{ports['mlflow']}",
        "MLFLOW_TRACKING_USERNAME": MLFLOW_ADMIN,
        "MLFLOW_TRACKING_PASSWORD": keys["mlflow_admin_password"],
        "AWS_ACCESS_KEY_ID": keys["s3_access_key"],
        "AWS_SECRET_ACCESS_KEY": keys["s3_secret_key"],
        "AWS_ENDPOINT_URL": s3_url,
        "MLFLOW_S3_ENDPOINT_URL": s3_url,
        "AWS_DEFAULT_REGION": REGION,
        "AWS_REGION": REGION,
        "DVC_REMOTE_URL": f"s3://{BUCKETS['dvc']}/churn",
        "CHURN_INFERENCE_LOG_URL": f"s3://{BUCKETS['data']}/inference_log",
    }


def write_env(layout: Layout, values: dict[str, str]) -> None:
    lines = [
        "# Written by `make services` (scripts/services.py): `source .services/env` in a shell or CI job.",
        "# DVC_REMOTE_URL and CHURN_INFERENCE_LOG_URL are where this setup keeps DVC data and the",
        "# inference log (set paths.inference_log to the latter to log there).",
    ]
    lines += [f"export {name}='{value}'" for name, value in values.items()]
    write_private(layout.env, "\n".join(lines) + "\n")


def add_dvc_remote(repo: Path, values: dict[str, str]) -> bool:
    """A local (git-ignored) default remote on the S3 server; False outside a DVC repository."""
    if not (repo / ".dvc").is_dir():
        return False
    dvc = str(BIN / "dvc") if (BIN / "dvc").is_file() else "dvc"
    settings = [
        ["remote", "add", "--local", "--default", "--force", DVC_REMOTE, values["DVC_REMOTE_URL"]],
        ["remote", "modify", "--local", DVC_REMOTE, "endpointurl", values["AWS_ENDPOINT_URL"]],
        ["remote", "modify", "--local", DVC_REMOTE, "region", values["AWS_REGION"]],
        ["remote", "modify", "--local", DVC_REMOTE, "access_key_id", values["AWS_ACCESS_KEY_ID"]],
        ["remote", "modify", "--local", DVC_REMOTE, "secret_access_key", values["AWS_SECRET_ACCESS_KEY"]],
    ]
    for arguments in settings:
        result = subprocess.run([dvc, *arguments], cwd=repo, capture_output=True, text=True)
        if result.returncode != 0:
            raise ServicesError(f"`dvc {' '.join(arguments[:4])} ...` failed in {repo}: {result.stderr.strip()}")
    return True


# ---------------------------------------------------------------------------- commands


def wanted_ports(args: argparse.Namespace) -> dict[str, int]:
    ports = {}
    for name in ORDER:
        given = getattr(args, f"{name}_port") or os.environ.get(PORT_VARIABLES[name]) or DEFAULT_PORTS[name]
        try:
            ports[name] = int(given)
        except ValueError:
            raise ServicesError(f"{PORT_VARIABLES[name]}={given!r} is not a port number") from None
        if not 1 <= ports[name] <= 65535:
            raise ServicesError(f"port {ports[name]} for {name} is out of range 1-65535")
    if len(set(ports.values())) != len(ports):
        raise ServicesError(f"the ports must differ, got {ports}")
    return ports


def start(name: str, layout: Layout, ports: dict[str, int], keys: dict[str, str]) -> tuple[Record, float]:
    """Start one server and wait until it answers; its record and the seconds that took.
    A spinner while it starts; in a log, a line saying which server is awaited."""
    with progress.waiting(f"starting {LABELS[name]}", f"on {HOST}:{ports[name]}, waiting until it answers") as wait:
        if name == "postgres":
            record = start_postgres(layout, ports[name], keys)
        elif name == "s3":
            record = start_s3(layout, ports[name], keys)
        else:
            record = start_mlflow(layout, ports, keys)
    return record, wait.elapsed


def up(layout: Layout, args: argparse.Namespace) -> None:
    layout.root.mkdir(parents=True, exist_ok=True)
    state = load_state(layout)
    ports = wanted_ports(args)
    keys = load_secrets(layout)
    for name in ORDER:
        record = state.get(name)
        if record is not None and record.process() is not None:
            ports[name] = record.port  # running: keep it where it is
            say(f"{name}: already running at {HOST}:{record.port} (pid {record.pid})")
            continue
        if port_in_use(ports[name]):
            raise ServicesError(
                f"port {ports[name]} ({name}) is taken by another program: choose another with "
                f"{PORT_VARIABLES[name]}=<port> (e.g. `make services {PORT_VARIABLES[name]}={ports[name] + 1}`)"
            )
        record, seconds = start(name, layout, ports, keys)
        state[name] = record
        save_state(layout, state)  # at once: a later failure must still let `down` stop it
        say(f"{name}: ready at {HOST}:{record.port} (pid {record.pid}, log {record.log}) "
            f"after {progress.format_seconds(seconds)}")
        if name == "postgres":
            ensure_databases(ports["postgres"], keys)
            say(f"postgres: databases {', '.join(DATABASES)} present")
        elif name == "s3":
            ensure_buckets(ports["s3"], keys)
            say(f"s3: buckets {', '.join(BUCKETS.values())} present")
    check_mlflow_auth(ports["mlflow"], keys)
    values = env_lines(ports, keys)
    write_env(layout, values)
    say(f"env: {layout.env} (source it: `source {layout.env}`)")
    repo = Path(args.dvc_repo).resolve()
    if not args.no_dvc_remote and add_dvc_remote(repo, values):
        say(f"dvc: local default remote {DVC_REMOTE!r} -> {values['DVC_REMOTE_URL']} in {repo / '.dvc/config.local'}")
    say(f"MLflow UI: {values['MLFLOW_TRACKING_URI']} (user {MLFLOW_ADMIN}, password in {layout.env})")


def down(layout: Layout) -> None:
    state = load_state(layout)
    if not state:
        say(f"nothing recorded in {layout.state}: nothing to stop")
        return
    for name in reversed(ORDER):
        record = state.get(name)
        if record is None:
            continue
        # PostgreSQL's fast shutdown is SIGINT: it ends sessions and checkpoints cleanly.
        stopped = stop(record, signal.SIGINT if name == "postgres" else signal.SIGTERM)
        say(f"{name}: {'stopped' if stopped else 'was not running'} (pid {record.pid})")
        del state[name]
        save_state(layout, state)
    layout.state.unlink(missing_ok=True)


def status(layout: Layout) -> int:
    state = load_state(layout)
    running = 0
    for name in ORDER:
        record = state.get(name)
        if record is None:
            say(f"{name}: not started")
        elif record.process() is None:
            say(f"{name}: stopped (was pid {record.pid} on {HOST}:{record.port})")
        else:
            running += 1
            answers = "answering" if port_in_use(record.port) else "NOT answering"
            say(f"{name}: running at {HOST}:{record.port} (pid {record.pid}, {answers}, log {record.log})")
    if layout.env.is_file():
        say(f"env: {layout.env}")
    return 0 if running == len(ORDER) else 1


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="services", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("command", choices=["up", "down", "status"])
    parser.add_argument("--dir", default=os.environ.get("CHURN_SERVICES_DIR", str(DEFAULT_DIR)),
                        help="where data, logs, secrets and the env file live (default .services)")
    parser.add_argument("--postgres-port", "--pg-port", dest="postgres_port", type=int)
    parser.add_argument("--s3-port", type=int)
    parser.add_argument("--mlflow-port", type=int)
    parser.add_argument("--dvc-repo", default=".", help="DVC repository that gets the local remote (default: here)")
    parser.add_argument("--no-dvc-remote", action="store_true", help="do not add the DVC remote")
    parser.add_argument("-q", "--quiet", action="store_true",
                        help="no progress while servers start (results and errors still print); also CHURN_QUIET=1")
    args = parser.parse_args(argv)
    progress.configure(quiet=args.quiet)
    layout = Layout(Path(args.dir).resolve())
    try:
        if args.command == "up":
            up(layout, args)
        elif args.command == "down":
            down(layout)
        else:
            return status(layout)
    except ServicesError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())

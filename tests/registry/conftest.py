"""Registry tests on a real SQLite MLflow store, each test with a registry of its own.

Training is the slow part, so each xdist worker (or a plain run) trains the few models the
tests need once, in a session-scoped project whose MLflow store becomes a template. Every
test then gets a fresh copy of that store (the training runs are in it, no registry
version, no alias) and checks out one of the trained models (model file, verdict and
dvc.lock, as `dvc checkout` would). No test sees another's registry state, so the tests
pass in any order (`pytest -p randomly`) and split over workers (`-n 2`).
"""

from __future__ import annotations

import json
import os
import shutil
from dataclasses import dataclass
from pathlib import Path

import pytest
import yaml

from churn.config import Params, parse_params
from churn.data.simulate import simulate, write_snapshot
from churn.io import md5_file

ROOT = Path(__file__).resolve().parents[2]
ROWS = 2500
NAME = "churn-classifier"

# Trained once per session: name -> hyperparameters over the workspace's (undertrained) base.
MODELS = {
    "base": {},
    "better": {"max_iter": 120},
    "weak": {"max_iter": 3, "learning_rate": 0.01, "max_leaf_nodes": 2},  # fails the absolute gates
}
CHECKOUT_FILES = ("model", "verdict")


def workspace_params() -> Params:
    raw = yaml.safe_load((ROOT / "params.yaml").read_text())
    raw["validate"]["data_checks"].update(min_train_rows=500, min_validation_rows=100)
    # Deliberately undertrained, so that a later candidate can really be better.
    raw["train"]["hyperparameters"]["hist_gradient_boosting"] = dict(
        learning_rate=0.05, max_iter=25, max_leaf_nodes=15, min_samples_leaf=40, l2_regularization=1.0
    )
    # An undertrained model on 2500 rows: the evidence gates (tested in tests/validation)
    # would reject it, and these tests are about the registry lifecycle.
    raw["validate"]["baseline"]["min_gain"] = None
    raw["validate"]["slices"].update(min_roc_auc=None, max_roc_auc_gap=None)
    raw["validate"]["fairness"]["protected"] = []
    return parse_params(raw)


def with_train(params: Params, **hyperparameters) -> Params:
    train = params.train
    merged = {**train.hyperparameters, train.family: {**train.model_params, **hyperparameters}}
    return params.model_copy(update={"train": train.model_copy(update={"hyperparameters": merged})})


def with_section(params: Params, section: str, **changes) -> Params:
    """`params` with fields of one section (train, validation, registry, ...) replaced."""
    return params.model_copy(update={section: getattr(params, section).model_copy(update=changes)})


def write_lock(params: Params) -> None:
    paths = params.paths
    entry = lambda path: {"path": str(path), "md5": md5_file(path)}  # noqa: E731
    lock = {
        "schema": "2.0",
        "stages": {
            "train": {
                "cmd": "churn train",
                "deps": [entry(paths.raw), entry(paths.train_set), entry(paths.validation_set)],
                "outs": [entry(paths.model)],
            }
        },
    }
    Path("dvc.lock").write_text(yaml.safe_dump(lock))


def train(params: Params) -> str:
    """Train, validate and write dvc.lock's train entry as `dvc repro` would."""
    from churn.training import stage as train_stage
    from churn.validation import stage as validate_stage

    train_stage.run(params)
    validate_stage.run(params)
    write_lock(params)
    return md5_file(params.paths.model)


def validate(params: Params) -> None:
    """Rerun only the validate stage (new gates or threshold over the same model)."""
    from churn.validation import stage as validate_stage

    validate_stage.run(params)


@dataclass
class Project:
    path: Path
    template_db: Path
    stash: Path
    md5s: dict[str, str]


# Set to a directory to keep the trained project between pytest sessions (`make mutation`
# runs the registry tests once per mutant; retraining each time would dominate). Only the
# training is reused: every session still works in a copy, with fresh registries.
CACHE_ENV = "CHURN_TEST_REGISTRY_CACHE"


def build_project(path: Path) -> dict[str, str]:
    """Simulate, prep and train every model in MODELS at `path`; stash each checkout."""
    from churn.prep import stage as prep_stage

    with pytest.MonkeyPatch.context() as patch:
        patch.chdir(path)
        patch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{path / 'template.db'}")
        # Under `make mutation` the project is built by whichever mutant's tests first find
        # no cache: built with that mutant active, every later mutant would be tested against
        # its damage. An empty name makes mutmut's trampolines call the original code.
        patch.setenv("MUTANT_UNDER_TEST", "")
        params = workspace_params()
        write_snapshot(simulate(ROWS, seed=11), params.paths.raw)
        prep_stage.run(params)
        md5s = {}
        for name, hyperparameters in MODELS.items():
            md5s[name] = train(with_train(params, **hyperparameters))
            stash = path / "stash" / name
            stash.mkdir(parents=True)
            for key in CHECKOUT_FILES:
                shutil.copy2(getattr(params.paths, key), stash / key)
            shutil.copy2("dvc.lock", stash / "dvc.lock")
    (path / "md5s.json").write_text(json.dumps(md5s))
    return md5s


def code_key() -> str:
    """What the cached project was built from: the churn package's code (as imported, so
    mutmut's copy counts as its own), params.yaml and the models' settings. The logged runs
    carry a serving key over the code: a project kept across a code change would not match
    it, and the registry tests would log the models again instead of finding their runs."""
    import hashlib

    import churn

    digest = hashlib.md5(json.dumps([ROWS, MODELS]).encode())
    package = Path(churn.__file__).parent
    for path in sorted(package.rglob("*.py")):
        digest.update(str(path.relative_to(package)).encode() + b"\0" + path.read_bytes() + b"\0")
    digest.update((ROOT / "params.yaml").read_bytes())
    return digest.hexdigest()


def cached_project(cache: Path) -> Path:
    """The project built from this code, under `cache/<code key>`. One directory per key:
    sessions running other code (a checkout beside mutmut's copy, say) each keep their
    own, and a finished build is never rebuilt under a session that is copying it."""
    import fcntl

    cache.mkdir(parents=True, exist_ok=True)
    built = cache / code_key()
    with open(cache / ".lock", "a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not (built / "md5s.json").is_file():
            shutil.rmtree(built, ignore_errors=True)  # an interrupted build
            built.mkdir()
            build_project(built)  # md5s.json is its last file: present means complete
    return built


@pytest.fixture(scope="session")
def trained_project(tmp_path_factory) -> Project:
    cache = os.environ.get(CACHE_ENV)
    if cache:
        built = cached_project(Path(cache))
    else:
        built = tmp_path_factory.mktemp("registry-build")
        build_project(built)
    # Tests write the checkout (model, verdict, dvc.lock, reports): a working copy of the
    # project's files per session. The template store and its artifacts stay read-only.
    path = tmp_path_factory.mktemp("registry-project")
    for item in ("data", "stash"):
        shutil.copytree(built / item, path / item)
    md5s = json.loads((built / "md5s.json").read_text())
    return Project(path, built / "template.db", path / "stash", md5s)


class Workspace:
    """The project directory (the process cwd) with its own registry and one checked-out model."""

    def __init__(self, project: Project, params: Params, db: Path):
        self.project = project
        self.path = project.path
        self.params = params
        self.db = db

    def enter(self, patch: pytest.MonkeyPatch) -> None:
        """Make this the current project and registry (for the life of `patch`)."""
        patch.chdir(self.path)
        patch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{self.db}")

    def checkout(self, name: str) -> str:
        """Put trained model `name` (file, verdict, dvc.lock) in the workspace; its md5."""
        stash = self.project.stash / name
        for key in CHECKOUT_FILES:
            target = Path(getattr(self.params.paths, key))
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(stash / key, target)
        shutil.copy2(stash / "dvc.lock", "dvc.lock")
        self.params.paths.challenge.unlink(missing_ok=True)
        return self.project.md5s[name]

    def with_train(self, **hyperparameters) -> Params:
        return with_train(self.params, **hyperparameters)

    def train(self, params: Params | None = None) -> str:
        return train(params or self.params)

    def client(self):
        from churn.registry import versions

        return versions.client(self.params)

    def champion(self):
        from churn.registry import versions

        return versions.alias_version(self.client(), NAME, versions.CHAMPION)

    def version(self, number):
        return self.client().get_model_version(NAME, str(number))

    def accept(self, name: str, params: Params | None = None) -> str:
        """Check out model `name` and run the gate on it; the version it got (must pass)."""
        from churn.registry.challenge import challenge

        self.checkout(name)
        result = as_dict(challenge(params or self.params))
        assert result["verdict"] == "passed", result["reasons"]
        return str(result["version"])

    def crown(self, name: str, params: Params | None = None) -> str:
        """Make model `name` the champion through the gate and `churn promote`."""
        from churn.registry.promotion import promote

        version = self.accept(name, params)
        promote(params or self.params)
        return version


def as_dict(result) -> dict:
    """Results as plain dicts, whether a command returns a dict or a dataclass."""
    import dataclasses

    return dataclasses.asdict(result) if dataclasses.is_dataclass(result) else dict(result)


def new_workspace(project: Project, directory: Path, patch: pytest.MonkeyPatch) -> Workspace:
    """A fresh registry (a copy of the template store: runs, no versions) and model `base`."""
    db = directory / "mlflow.db"
    shutil.copy2(project.template_db, db)
    space = Workspace(project, workspace_params(), db)
    space.enter(patch)
    space.checkout("base")
    return space


@pytest.fixture
def workspace(trained_project, tmp_path, monkeypatch) -> Workspace:
    return new_workspace(trained_project, tmp_path, monkeypatch)


def set_champion(space: Workspace, version: str) -> None:
    """Point @champion at `version` directly (test setup, not a promotion)."""
    from churn.registry import versions

    space.client().set_registered_model_alias(NAME, versions.CHAMPION, str(version))


def validation_frame(params: Params):
    import pandas as pd

    return pd.read_parquet(params.paths.validation_set)


@pytest.fixture(scope="module")
def champions(trained_project, tmp_path_factory):
    """A registry holding one fake champion per fault (see champions.py), none crowned."""
    from .champions import log_champions

    with pytest.MonkeyPatch.context() as patch:
        space = new_workspace(trained_project, tmp_path_factory.mktemp("champions"), patch)
        space.client()  # points mlflow at this store
        yield space, log_champions(NAME)


@pytest.fixture
def crowned(champions, monkeypatch):
    """crowned(fault): this module's fake-champion registry, with that fault as @champion
    and model `base` checked out as the candidate."""
    space, numbers = champions
    space.enter(monkeypatch)
    space.checkout("base")

    def crown(fault: str) -> Workspace:
        set_champion(space, numbers[fault])
        return space

    return crown

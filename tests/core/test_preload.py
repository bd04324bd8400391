from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from churn.config import load_params
from churn.core import preload, tracking
from tests.conftest import PARAMS_FILE


@pytest.fixture
def modules_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """A directory on sys.path for throw-away modules, removed from sys.modules afterwards."""
    monkeypatch.syspath_prepend(str(tmp_path))
    before = set(sys.modules)
    yield tmp_path
    for name in set(sys.modules) - before:
        del sys.modules[name]


@pytest.fixture
def two_cores(monkeypatch: pytest.MonkeyPatch) -> None:
    """Preloading on, as on a machine with a second core."""
    monkeypatch.setenv(preload.SWITCH, "1")
    monkeypatch.setattr(preload.os, "cpu_count", lambda: 2)


def _module(directory: Path, name: str, body: str = "") -> None:
    (directory / f"{name}.py").write_text(body)


def _preload_and_wait(*names: str) -> None:
    thread = preload.in_background(*names)
    assert thread is not None
    thread.join(timeout=30)
    assert not thread.is_alive()


def test_imports_the_modules_on_another_thread_in_order(modules_dir: Path, two_cores: None) -> None:
    _module(modules_dir, "churn_pre_first", "import threading\nORDER = [threading.current_thread().name]\n")
    _module(modules_dir, "churn_pre_second", "import churn_pre_first\nchurn_pre_first.ORDER.append('second')\n")

    _preload_and_wait("churn_pre_first", "churn_pre_second")
    assert sys.modules["churn_pre_first"].ORDER == ["churn-preload", "second"]


def test_a_failed_import_is_left_for_the_stage_to_raise(modules_dir: Path, two_cores: None) -> None:
    _module(modules_dir, "churn_pre_broken", "raise RuntimeError('broken on import')\n")
    _module(modules_dir, "churn_pre_after", "")

    _preload_and_wait("churn_pre_broken", "churn_pre_after")
    # Nothing after the failure is imported, and the stage's own import raises the error.
    assert "churn_pre_after" not in sys.modules
    with pytest.raises(RuntimeError, match="broken on import"):
        __import__("churn_pre_broken")


@pytest.mark.parametrize(("switch", "cores"), [("0", 2), ("1", 1), ("1", None)])
def test_off_by_switch_or_on_one_core(
    modules_dir: Path, monkeypatch: pytest.MonkeyPatch, switch: str, cores: int | None
) -> None:
    monkeypatch.setenv(preload.SWITCH, switch)
    monkeypatch.setattr(preload.os, "cpu_count", lambda: cores)
    _module(modules_dir, "churn_pre_unused", "")

    assert preload.in_background("churn_pre_unused") is None
    assert "churn_pre_unused" not in sys.modules


def test_on_by_default_with_two_cores(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(preload.SWITCH, raising=False)
    monkeypatch.setattr(preload.os, "cpu_count", lambda: 2)
    assert preload.enabled()
    assert preload.in_background() is None  # nothing to import: no thread


@pytest.mark.parametrize(
    ("uri", "stores"),
    [("sqlite:///mlflow.db", True), ("postgresql://db/mlflow", True), ("http://127.0.0.1:5000", False),
     ("https://mlflow.example", False)],
)
def test_tracking_preload_sets_mlflows_environment_first(
    monkeypatch: pytest.MonkeyPatch, uri: str, stores: bool
) -> None:
    """MLflow reads its logging level when imported: the preload must not import it before
    connect's settings are in place, and opens the SQL store's modules only for a database."""
    for variable in ("MLFLOW_LOGGING_LEVEL", "MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", *tracking.HTTP_LIMITS):
        monkeypatch.delenv(variable, raising=False)
    monkeypatch.setenv("MLFLOW_TRACKING_URI", uri)
    seen: dict[str, object] = {}

    def fake(*modules: str) -> None:
        seen["modules"] = modules
        seen["level"] = tracking.os.environ.get("MLFLOW_LOGGING_LEVEL")
        seen["retries"] = tracking.os.environ.get("MLFLOW_HTTP_REQUEST_MAX_RETRIES")

    monkeypatch.setattr(tracking, "in_background", fake)

    tracking.preload(load_params(PARAMS_FILE), "evidently")

    expected = ("evidently", "mlflow", "mlflow.pyfunc", *(tracking.SQL_STORE_MODULES if stores else ()))
    assert seen == {"modules": expected, "level": "WARNING", "retries": "2"}

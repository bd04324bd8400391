"""What every `churn` process does first and last: logging, native threads, short errors.

The DVC stages run as `python -m churn.<stage>` through `stage_main`, so a stage loads its
own phase package and the shared layers, never the whole command line: `dvc.yaml` can then
list exactly the files a stage runs (tests/e2e/test_stage_deps.py checks that it does).
"""

from __future__ import annotations

import argparse
import atexit
import contextlib
import gc
import json
import logging
import os
import signal
import sys
import warnings
from collections.abc import Callable
from importlib import import_module
from pathlib import Path

from churn import progress
from churn.config import DEFAULT_PARAMS, load_params
from churn.errors import ChurnError

log = logging.getLogger("churn")
# Set to a file path to record which project modules a stage loaded (the deps test reads it).
RECORD_MODULES_ENV = "CHURN_RECORD_MODULES"


def configure_process(quiet: bool = False) -> None:
    atexit.unregister(_finish_quickly)  # once per process, however often a test configures it
    atexit.register(_finish_quickly)
    progress.configure(quiet=quiet)
    handler = progress.LogHandler()  # log lines appear above progress bars, not through them
    handler.setFormatter(logging.Formatter("%(name)s: %(message)s"))
    logging.basicConfig(level=logging.INFO, handlers=[handler])
    quiet_libraries()


def quiet_libraries() -> None:
    """Libraries' chatter is not the command's output (also in a stage's side process)."""
    # Libraries' INFO lines are not the command's progress (matplotlib announces building its
    # font cache on a machine's first plot, in the middle of `churn report`'s phase lines).
    for noisy in ("mlflow", "alembic", "urllib3", "evidently", "git", "botocore", "aiobotocore", "s3fs", "fsspec",
                  "matplotlib"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    # urllib3 warns on every retry of a dead server; the command's own error says it once.
    logging.getLogger("urllib3").setLevel(logging.ERROR)
    warnings.filterwarnings("ignore", category=FutureWarning)
    warnings.filterwarnings("ignore", category=DeprecationWarning)
    warnings.filterwarnings("ignore", category=UserWarning, module=r"mlflow\.")


def _finish_quickly() -> None:
    """At exit, collect today's garbage once (its finalizers run as before), then freeze
    what is left. The interpreter's teardown would otherwise walk every tracked object
    (hundreds of thousands, from the imports of MLflow, pandas and scikit-learn) in several
    full collections: 1.5-2 s after `churn predict` of 1M rows, paid by every command and
    every DVC stage. What is frozen is still freed as the modules are cleared."""
    gc.collect()
    gc.freeze()


def limit_native_threads(threads: int) -> None:
    # Read by OpenMP and BLAS when they load, which happens later, inside the handlers.
    for variable in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
        os.environ.setdefault(variable, str(threads))


def closed_pipe() -> int:
    """The reader of stdout went away (`churn summary | head -3`): stop quietly with the
    status of a process ended by SIGPIPE, like other command-line tools. stdout is pointed
    at /dev/null so that the interpreter's final flush cannot fail a second time."""
    with contextlib.suppress(OSError, ValueError):  # no real file descriptor (captured, already closed)
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
    return 128 + signal.SIGPIPE


def guarded(action: Callable[[], int]) -> int:
    """Run `action`; a problem the user can fix becomes `error: ...` and exit code 2."""
    try:
        status = action()
        sys.stdout.flush()  # a reader that went away shows here, not at interpreter exit
        return status
    except BrokenPipeError:
        return closed_pipe()
    except ChurnError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except OSError as exc:  # a file or device problem the message already names
        print(f"error: {exc}", file=sys.stderr)
        return 2
    finally:
        record_loaded_modules()


def run_stage(stage_module: str, params_file: str | Path = DEFAULT_PARAMS, verbose: bool = False) -> int:
    """Load params, then import and run one stage module's `run(params)`."""
    def action() -> int:
        params = load_params(params_file)
        limit_native_threads(params.runtime.threads)
        with progress.stage(stage_module.split(".")[1]):  # `churn: training done in 59.5 s: ...`
            result = import_module(stage_module).run(params)
        if verbose:
            print(json.dumps(result.as_dict(), indent=2, default=str))
        return 0

    return guarded(action)


def stage_main(stage_module: str, argv: list[str] | None = None) -> int:
    """`python -m churn.<stage> [--params FILE] [-v]`: what dvc.yaml runs."""
    parser = argparse.ArgumentParser(prog=f"python -m {stage_module.rsplit('.', 1)[0]}")
    parser.add_argument("--params", default=str(DEFAULT_PARAMS), help="params file (default: params.yaml)")
    parser.add_argument("-v", "--verbose", action="store_true", help="print the stage's result")
    parser.add_argument("-q", "--quiet", action="store_true", help="no progress output (also CHURN_QUIET=1)")
    args = parser.parse_args(argv)
    configure_process(quiet=args.quiet)
    return run_stage(stage_module, args.params, args.verbose)


def record_loaded_modules(suffix: str = "") -> None:
    """With RECORD_MODULES_ENV set, write the project files this process loaded to that
    path (a stage's side process: to that path plus `suffix`)."""
    target = os.environ.get(RECORD_MODULES_ENV)
    if not target:
        return
    target += suffix
    files = sorted(
        str(Path(file).resolve())
        for name, module in list(sys.modules.items())
        if (name == "churn" or name.startswith("churn.")) and (file := getattr(module, "__file__", None))
    )
    Path(target).write_text("\n".join(files) + "\n")

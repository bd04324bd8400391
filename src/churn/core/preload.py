"""Import, on a second thread, the slow libraries a stage needs only at its end.

Stages compute on one thread (`runtime.threads`), so while they read and score, a second
core sits idle; train and evaluate then spend seconds importing MLflow (and evaluate
evidently) after the data work. Started first, those imports overlap it instead.

Only *when* a module is imported changes: the stage still imports it where it uses it (and
waits there for this thread if the import is under way), so an import that fails here is
raised again by that import, inside the stage's own error handling.
"""

from __future__ import annotations

import importlib
import os
import threading

# Off with CHURN_PRELOAD=0: one core, or a profile that wants imports in line.
SWITCH = "CHURN_PRELOAD"


def enabled() -> bool:
    return os.environ.get(SWITCH, "1") != "0" and (os.cpu_count() or 1) > 1


def in_background(*modules: str) -> threading.Thread | None:
    """Start importing `modules` in order on a new thread; None when preloading is off.

    Not a daemon: a stage that fails before it needs the modules still lets the import
    finish rather than tearing the interpreter down under it.
    """
    if not enabled() or not modules:
        return None
    thread = threading.Thread(target=_import_all, args=(modules,), name="churn-preload")
    thread.start()
    return thread


def _import_all(modules: tuple[str, ...]) -> None:
    for name in modules:
        try:
            importlib.import_module(name)
        except Exception:  # the stage's own import raises it again, where it is handled
            return

"""The yardstick: the pipeline's scikit-learn work done bare, in one process.

Read the raw CSV, clean it, split it as prep does, fit the configured model, score the
validation and test sets. No DVC, MLflow, pandera or evidently, no outputs written.
`python -m benchmarks.bare <raw.csv> <params.yaml>` prints the phase times as JSON.
"""

from __future__ import annotations

import json
import os
import sys
import time

import yaml


def main(raw_path: str, params_path: str) -> int:
    with open(params_path) as handle:
        params = yaml.safe_load(handle)
    threads = str(params.get("runtime", {}).get("threads", 1))
    for variable in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
        os.environ.setdefault(variable, threads)

    import pandas as pd
    from sklearn.metrics import roc_auc_score
    from sklearn.model_selection import train_test_split

    from churn.config import load_params
    from churn.training.pipeline import build_pipeline

    config = load_params(params_path)
    dataset, split = config.dataset, config.prep.split
    phases = {}

    started = time.perf_counter()
    raw = pd.read_csv(raw_path)
    for column, spec in dataset.numeric.items():
        values = pd.to_numeric(raw[column], errors="coerce")
        raw[column] = values.fillna(spec.fill_missing) if spec.fill_missing is not None else values
    categorical = list(dataset.categorical)
    raw[categorical] = raw[categorical].astype(str).replace(dataset.structural_levels)
    y = (raw[dataset.label_column] == dataset.positive_label).astype("int64")
    x = raw[dataset.feature_columns]
    phases["read_clean_s"] = time.perf_counter() - started

    started = time.perf_counter()
    x_rest, x_test, y_rest, y_test = train_test_split(x, y, test_size=split.test_size, stratify=y, random_state=split.seed)
    share = split.validation_size / (1 - split.test_size)
    x_train, x_val, y_train, y_val = train_test_split(
        x_rest, y_rest, test_size=share, stratify=y_rest, random_state=split.seed
    )
    phases["split_s"] = time.perf_counter() - started

    started = time.perf_counter()
    model = build_pipeline(dataset, config.train).fit(x_train, y_train)
    phases["fit_s"] = time.perf_counter() - started

    started = time.perf_counter()
    auc = {name: roc_auc_score(y_true, model.predict_proba(frame)[:, 1])
           for name, frame, y_true in (("validation", x_val, y_val), ("test", x_test, y_test))}
    phases["score_s"] = time.perf_counter() - started
    print(json.dumps({**phases, "roc_auc": auc}))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1], sys.argv[2]))

"""Register the model of the newest training run and alias it @champion (benchmark setup:
the registry's own gate and comparison are not what is measured)."""

from __future__ import annotations

import sys

import mlflow
from mlflow import MlflowClient


def main(experiment: str, model_name: str) -> int:
    runs = mlflow.search_runs(
        experiment_names=[experiment], order_by=["attributes.start_time DESC"], max_results=1, output_format="list"
    )
    if not runs:
        print(f"no run in experiment {experiment}", file=sys.stderr)
        return 1
    version = mlflow.register_model(runs[0].data.tags["model_uri"], model_name)
    MlflowClient().set_registered_model_alias(model_name, "champion", version.version)
    print(version.version)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1], sys.argv[2]))

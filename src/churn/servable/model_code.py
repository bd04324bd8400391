"""Entry file for MLflow "models from code": the servable model is built from this code,
the skops archive and a JSON config, so loading it unpickles nothing."""

import mlflow

from churn.servable.pyfunc import ChurnModel

mlflow.models.set_model(ChurnModel())

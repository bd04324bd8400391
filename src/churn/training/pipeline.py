"""The model: one scikit-learn Pipeline from cleaned feature columns to a churn probability."""

from __future__ import annotations

from collections.abc import Callable

from sklearn.compose import ColumnTransformer
from sklearn.ensemble import GradientBoostingClassifier, HistGradientBoostingClassifier, RandomForestClassifier
from sklearn.impute import SimpleImputer
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import OneHotEncoder, StandardScaler

from churn.config import Dataset, Train
from churn.errors import ChurnError

CLASSIFIERS = {
    "hist_gradient_boosting": HistGradientBoostingClassifier,
    "gradient_boosting": GradientBoostingClassifier,
    "random_forest": RandomForestClassifier,
    "logistic_regression": LogisticRegression,
}


def build_pipeline(dataset: Dataset, train: Train) -> Pipeline:
    numeric_steps = [("impute", SimpleImputer(strategy="median"))]
    if train.family == "logistic_regression":
        numeric_steps.append(("scale", StandardScaler()))
    preprocess = ColumnTransformer(
        [
            ("numeric", Pipeline(numeric_steps), list(dataset.numeric)),
            (
                "categorical",
                OneHotEncoder(handle_unknown="ignore", sparse_output=False),
                list(dataset.categorical),
            ),
        ],
        remainder="drop",
        verbose_feature_names_out=False,
    )
    classifier_class = CLASSIFIERS[train.family]
    hyperparameters = train.model_params
    try:
        classifier = classifier_class(random_state=train.seed, **hyperparameters)
    except TypeError as exc:
        raise ChurnError(
            f"train.hyperparameters.{train.family} has a key {classifier_class.__name__} "
            f"does not accept: {exc}"
        ) from None
    return Pipeline([("preprocess", preprocess), ("classifier", classifier)])


def iteration_probe(pipeline: Pipeline) -> tuple[int | None, Callable[[], int | None]]:
    """(most boosting iterations the fit can run, a probe of how many it has run so far), for
    a progress bar during `pipeline.fit`; (None, probe of None) for models without iterations.

    HistGradientBoosting has no callback, and turning on its `verbose` would change the model
    file (the flag is a stored parameter). It appends one entry to `_predictors` per
    iteration, so a thread can read its length: reading changes nothing, the model stays
    byte-identical. If a scikit-learn release renames the attribute the bar falls back to a
    spinner (the probe returns None), never to a failed fit.
    """
    classifier = pipeline.named_steps["classifier"]
    if not isinstance(classifier, HistGradientBoostingClassifier):
        return None, lambda: None

    def done() -> int | None:
        predictors = getattr(classifier, "_predictors", None)
        return len(predictors) if isinstance(predictors, list) else None

    return int(classifier.max_iter), done

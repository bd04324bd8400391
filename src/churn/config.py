"""Typed view of params.yaml, loaded once per process."""

from __future__ import annotations

import re
from functools import lru_cache
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, ValidationError, model_validator
from ruamel.yaml import YAML
from ruamel.yaml.error import YAMLError

from churn.errors import ChurnError

_URL = re.compile(r"^(?P<scheme>[A-Za-z][A-Za-z0-9+.-]*)://")


def is_url(location: str | Path) -> bool:
    return isinstance(location, str) and _URL.match(location) is not None


def as_location(value: Any) -> Any:
    """URLs stay text (a Path would fold `s3://` to `s3:/`); other text becomes a Path."""
    if isinstance(value, str) and is_url(value):
        from fsspec.registry import known_implementations

        scheme = _URL.match(value).group("scheme")  # type: ignore[union-attr]
        if scheme not in known_implementations:
            raise ValueError(
                f"{value!r} has an unknown storage scheme {scheme!r}: use a local path or e.g. s3://bucket/prefix"
            )
        return value.rstrip("/")
    if isinstance(value, (str, Path)):
        return Path(value)
    return value


# A folder written around the graph: a local path, or an object-store URL (s3://bucket/prefix)
# that a team shares (read and written by churn.storage).
Location = Annotated[Path | str, BeforeValidator(as_location)]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Paths(_Strict):
    raw: Path
    feature_table: Path
    feature_metadata: Path
    label_table: Path
    prep_report: Path
    train_set: Path
    validation_set: Path
    test_set: Path
    model: Path
    verdict: Path
    test_metrics: Path
    drift_metrics: Path
    plots_dir: Path
    drift_report_html: Path
    challenge: Path = Path("reports/challenge.json")
    inference_log: Location = Path("data/inference_log")
    slice_metrics: Path = Path("metrics/slices.json")  # test-set slice and fairness summary
    model_card: Path = Path("reports/model_card.md")  # written at registration, outside the graph


class DriftScenario(_Strict):
    seed: int = 7
    price_increase: float = 0.12
    fiber_shift: float = 0.15
    month_to_month_shift: float = 0.10
    churn_logit_shift: float = 0.4


class Simulate(_Strict):
    seed: int = 42
    n_customers: int = Field(20000, gt=0)
    drift: DriftScenario = DriftScenario()


class NumericColumn(_Strict):
    min: float | None = None
    max: float | None = None
    integer: bool = False
    blank_as_missing: bool = False
    fill_missing: float | None = None
    # Blanks may be filled only in rows where each named column holds one of the listed
    # values (e.g. TotalCharges blank only when tenure is 0: "not billed yet"); a blank
    # elsewhere breaks the contract instead of being filled silently.
    fill_missing_when: dict[str, list[str | float]] | None = None

    @model_validator(mode="after")
    def _fill_condition_needs_a_fill(self) -> NumericColumn:
        if self.fill_missing_when is not None and self.fill_missing is None:
            raise ValueError("fill_missing_when restricts fill_missing: set fill_missing too")
        return self


class Dataset(_Strict):
    name: str
    description: str = ""
    id_column: str
    label_column: str
    positive_label: str
    negative_label: str
    timestamp_column: str | None = None
    numeric: dict[str, NumericColumn]
    categorical: dict[str, list[str]]
    structural_levels: dict[str, str] = {}
    # Upper bound of every numeric column without its own `max`: a value such as 1e308 is
    # finite but no customer's, and overflows sums and scalers downstream.
    default_max: float = Field(1e9, gt=0, allow_inf_nan=False)

    @model_validator(mode="after")
    def _fill_conditions_name_columns(self) -> Dataset:
        for name, spec in self.numeric.items():
            for column in spec.fill_missing_when or {}:
                if column not in self.numeric and column not in self.categorical:
                    raise ValueError(f"numeric.{name}.fill_missing_when names {column!r}, not a feature column")
        return self

    @model_validator(mode="before")
    @classmethod
    def _levels_as_text(cls, data: Any) -> Any:
        # YAML reads 0/1 as ints; raw values are compared as text.
        if isinstance(data, dict) and isinstance(data.get("categorical"), dict):
            data = dict(data)
            data["categorical"] = {
                col: [str(v) for v in levels] for col, levels in data["categorical"].items()
            }
        for key in ("positive_label", "negative_label"):
            if isinstance(data, dict) and key in data:
                data[key] = str(data[key])
        return data

    @property
    def feature_columns(self) -> list[str]:
        return [*self.numeric, *self.categorical]

    @property
    def key_columns(self) -> list[str]:
        return [self.id_column] + ([self.timestamp_column] if self.timestamp_column else [])

    @property
    def raw_columns(self) -> list[str]:
        return [*self.key_columns, *self.feature_columns, self.label_column]


class Split(_Strict):
    seed: int = 42
    test_size: float = Field(0.2, gt=0, lt=1)
    validation_size: float = Field(0.2, gt=0, lt=1)


class Prep(_Strict):
    feature_table_name: str = "customer_features"
    split: Split = Split()


ModelFamily = Literal[
    "hist_gradient_boosting", "gradient_boosting", "random_forest", "logistic_regression"
]


class Train(_Strict):
    seed: int = 42
    family: ModelFamily = "hist_gradient_boosting"
    hyperparameters: dict[str, dict[str, Any]] = {}
    decision_threshold: float = Field(0.5, gt=0, lt=1)

    @property
    def model_params(self) -> dict[str, Any]:
        return dict(self.hyperparameters.get(self.family, {}))


class Runtime(_Strict):
    threads: int = Field(1, ge=1)


class Tracking(_Strict):
    uri: str = "sqlite:///mlflow.db"
    experiment: str = "churn"


class Gates(_Strict):
    min_roc_auc: float | None = None
    max_log_loss: float | None = None
    min_recall: float | None = None
    min_precision: float | None = None


class DataChecks(_Strict):
    min_train_rows: int = 1000
    min_validation_rows: int = 200
    positive_rate: tuple[float, float] = (0.1, 0.5)
    max_missing_share: float = 0.05


class Leakage(_Strict):
    # A single feature that alone separates the labels this well is a leak, not a signal.
    max_single_feature_auc: float | None = Field(0.95, gt=0.5, le=1)
    # A validation ROC AUC above this is "too good to be true" for churn.
    max_validation_auc: float | None = Field(0.99, gt=0.5, le=1)
    # Permutation importance that names the culprit when the ceiling is broken.
    importance_repeats: int = Field(3, ge=1)
    importance_sample_size: int = Field(2000, ge=100)


BaselineModel = Literal["prior", "logistic_regression"]


class Baseline(_Strict):
    # The candidate's validation ROC AUC must exceed each baseline's by at least this.
    min_gain: float | None = 0.001
    models: list[BaselineModel] = ["prior", "logistic_regression"]
    # Baselines are fitted on at most this many training rows (a seeded sample): a yardstick
    # whose ROC AUC has settled long before that, at a fraction of the fit.
    sample_size: int = Field(100_000, ge=1000)


class Slices(_Strict):
    columns: list[str] = []
    # Numeric columns cut into bands at these edges: [0, 12, 24] -> [0, 12), [12, 24), [24, inf).
    bins: dict[str, list[float]] = {}
    # Slices with fewer rows, or fewer rows of either class, are reported but not scored.
    min_rows: int = Field(200, ge=1)
    min_class_rows: int = Field(20, ge=1)
    min_roc_auc: float | None = None
    max_roc_auc_gap: float | None = None

    @model_validator(mode="after")
    def _sorted_edges(self) -> Slices:
        for column, edges in self.bins.items():
            if not edges or sorted(set(edges)) != list(edges):
                raise ValueError(f"bins.{column} must be increasing, distinct edges")
        return self


class Fairness(_Strict):
    protected: list[str] = []
    # Largest gap between groups of a protected attribute (groups too small for
    # `slices.min_rows` / `min_class_rows` are left out of the comparison).
    max_statistical_parity_difference: float | None = None  # predicted-positive rate
    max_equal_opportunity_difference: float | None = None  # recall
    max_predictive_parity_difference: float | None = None  # precision


class Validate(_Strict):
    gates: Gates = Gates()
    data_checks: DataChecks = DataChecks()
    leakage: Leakage = Leakage()
    baseline: Baseline = Baseline()
    slices: Slices = Slices()
    fairness: Fairness = Fairness()


class ComparisonRule(_Strict):
    max_drop: float | None = Field(None, ge=0)
    max_increase: float | None = Field(None, ge=0)

    @model_validator(mode="after")
    def _exactly_one(self) -> ComparisonRule:
        if (self.max_drop is None) == (self.max_increase is None):
            raise ValueError("give exactly one of max_drop (higher is better) or max_increase (lower is better)")
        return self


class Registry(_Strict):
    model_name: str = "churn-classifier"
    comparison: dict[str, ComparisonRule] = {}


class Report(_Strict):
    markdown: Path = Path("report.md")
    assets_dir: Path = Path("report")
    drift_metrics: Path = Path("metrics/drift_vs_base.json")
    drift_sample_size: int = Field(20000, gt=0)
    top_drifted: int = Field(5, ge=1)
    highlight: dict[str, float] = {}


class Importance(_Strict):
    n_repeats: int = 3
    sample_size: int = 5000


class DriftSettings(_Strict):
    sample_size: int = 50000
    seed: int = 42
    drift_share: float = 0.5


class Evaluate(_Strict):
    calibration_bins: int = 10
    importance: Importance = Importance()
    drift: DriftSettings = DriftSettings()


class Refresh(_Strict):
    """`churn refresh`: the next raw snapshot from labelled predictions in the inference log."""

    # Labelled predictions scored in the `window_days` before --as-of (default now) are used.
    window_days: int = Field(90, gt=0)
    # Rows of the current snapshot dated at most this many days before the window's start
    # are kept beside them; 0 keeps none. See churn.data.refresh for how rows are dated.
    horizon_days: int = Field(365, ge=0)
    # Fewer labelled predictions than this in the window: refuse (a snapshot too small to train on).
    min_labelled_rows: int = Field(1000, gt=0)


# --- monitoring (`churn monitor`) ------------------------------------------------------


class MonitorBaseline(_Strict):
    # champion: the @champion's training set (drift) and validation set (calibration),
    # found through the md5s its registry version carries. file: a table you name.
    source: Literal["champion", "file"] = "champion"
    file: Path | None = None

    @model_validator(mode="after")
    def _file_given(self) -> MonitorBaseline:
        if self.source == "file" and self.file is None:
            raise ValueError("source: file needs file: <path of a .parquet or .csv baseline>")
        return self


class MonitorDrift(_Strict):
    numeric_bins: int = Field(50, ge=2, le=1000)
    # Up to this many rows on the smaller side a statistical test decides (KS, chi-squared,
    # drift when p < its threshold); above it a distance does (as evidently's defaults).
    test_max_rows: int = Field(1000, ge=0)
    wasserstein: float = Field(0.1, gt=0)
    jensenshannon: float = Field(0.1, gt=0)
    ks: float = Field(0.05, gt=0, lt=1)
    chisquare: float = Field(0.05, gt=0, lt=1)


class MonitorRetrain(_Strict):
    granularity: str = "1 day"
    last_n: int = Field(5, ge=1)
    min_violations: int = Field(3, ge=1)
    # A metric that is null (no labels, no estimate) never counts as a violation.
    max_drifted_share: float | None = Field(0.3, ge=0, le=1)
    max_estimated_roc_auc_drop: float | None = Field(0.05, ge=0)
    max_roc_auc_drop: float | None = Field(0.05, ge=0)
    max_positive_rate_shift: float | None = Field(0.1, ge=0)

    @model_validator(mode="after")
    def _k_of_n(self) -> MonitorRetrain:
        if self.min_violations > self.last_n:
            raise ValueError(f"min_violations ({self.min_violations}) cannot exceed last_n ({self.last_n})")
        return self


class MonitorPaths(_Strict):
    profile: Path = Path("data/monitoring/profile_metrics.parquet")
    drift: Path = Path("data/monitoring/drift_metrics.parquet")
    state_dir: Path = Path("data/monitoring/state")
    dashboard: Path = Path("reports/monitoring.html")
    drill_down: Path = Path("reports/monitoring_latest_drift.html")
    verdict: Path = Path("reports/monitor_verdict.json")


class Monitor(_Strict):
    granularities: list[str] = ["1 day", "1 week"]
    min_rows: int = Field(200, ge=1)
    slices: list[str] = []
    baseline: MonitorBaseline = MonitorBaseline()
    drift: MonitorDrift = MonitorDrift()
    retrain: MonitorRetrain = MonitorRetrain()
    paths: MonitorPaths = MonitorPaths()
    drill_down_sample: int = Field(20000, gt=0)  # rows per side fed to evidently

    @model_validator(mode="after")
    def _consistent(self) -> Monitor:
        # Granularity syntax and slice expressions are checked by `churn monitor` itself
        # (churn.monitoring.settings): importing that code here would make it a dependency
        # of every pipeline stage that loads this file.
        if not self.granularities:
            raise ValueError("granularities must name at least one window size, e.g. ['1 day']")
        if self.retrain.granularity not in self.granularities:
            raise ValueError(f"retrain.granularity {self.retrain.granularity!r} must be one of granularities")
        if len(set(self.slices)) != len(self.slices):
            raise ValueError("slices are listed more than once")
        return self


class SearchParam(_Strict):
    """One dimension of the `churn tune` search: a range (int when the bounds are ints)
    or a list of choices."""

    # int | float: pydantic keeps an int an int, so `low: 50` searches integers.
    low: int | float | None = None
    high: int | float | None = None
    step: int | float | None = None
    log: bool = False
    choices: list[Any] | None = None

    @property
    def integer(self) -> bool:
        bounds = [b for b in (self.low, self.high, self.step) if b is not None]
        return bool(bounds) and all(isinstance(b, int) for b in bounds)

    @model_validator(mode="after")
    def _range_or_choices(self) -> SearchParam:
        if self.choices is not None:
            if self.low is not None or self.high is not None or not self.choices:
                raise ValueError("give either choices (non-empty) or low and high")
        elif self.low is None or self.high is None or self.low >= self.high:
            raise ValueError("give low < high (or choices)")
        return self


class Tune(_Strict):
    trials: int = Field(30, ge=1)
    seed: int = 42
    # Validation metric to optimise: higher is better except log_loss and brier.
    metric: Literal["roc_auc", "pr_auc", "log_loss", "brier", "f1", "recall", "precision", "accuracy"] = "roc_auc"
    space: dict[str, dict[str, SearchParam]] = {}


class Params(_Strict):
    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)

    paths: Paths
    simulate: Simulate = Simulate()
    dataset: Dataset
    prep: Prep = Prep()
    train: Train = Train()
    runtime: Runtime = Runtime()
    registry: Registry = Registry()
    report: Report = Report()
    tracking: Tracking = Tracking()
    # "validate" is a BaseModel method name, so the section is read under an alias.
    validation: Validate = Field(Validate(), alias="validate")
    evaluate: Evaluate = Evaluate()
    refresh: Refresh = Refresh()
    monitor: Monitor = Monitor()
    tune: Tune = Tune()

    @model_validator(mode="after")
    def _evidence_columns_exist(self) -> Params:
        # Slices and protected attributes must be model features, caught at load time.
        features = set(self.dataset.feature_columns)
        slices, fairness = self.validation.slices, self.validation.fairness
        for key, columns in (("slices.columns", slices.columns), ("fairness.protected", fairness.protected)):
            unknown = [c for c in columns if c not in features]
            if unknown:
                raise ValueError(f"validate.{key} names {unknown}, which are not dataset feature columns")
        not_numeric = [c for c in slices.bins if c not in self.dataset.numeric]
        if not_numeric:
            raise ValueError(f"validate.slices.bins names {not_numeric}, which are not numeric dataset columns")
        return self


DEFAULT_PARAMS = Path("params.yaml")


def parse_params(raw: dict[str, Any], source: str = "params.yaml") -> Params:
    try:
        return Params.model_validate(raw)
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in err['loc'])}: {err['msg']}" for err in exc.errors()
        )
        raise ChurnError(f"{source} is invalid: {problems}. Fix these keys and rerun.") from None


@lru_cache(maxsize=8)
def _load(path: str) -> Params:
    file = Path(path)
    if not file.is_file():
        raise ChurnError(f"{file} not found: run from the project root, or pass --params.")
    try:
        # YAML 1.2, as DVC reads and rewrites it (`dvc exp run -S`): a bare No stays a string.
        raw = YAML(typ="safe", pure=True).load(file.read_text())
    except YAMLError as exc:
        raise ChurnError(f"{file} is not valid YAML: {exc}") from None
    if not isinstance(raw, dict):
        raise ChurnError(f"{file} must hold a mapping of sections (paths, dataset, ...).")
    return parse_params(raw, str(file))


def load_params(path: str | Path = DEFAULT_PARAMS) -> Params:
    return _load(str(path))

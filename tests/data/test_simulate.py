import re

import numpy as np
import pandas as pd
import pytest
from sklearn.ensemble import HistGradientBoostingClassifier
from sklearn.metrics import roc_auc_score
from sklearn.model_selection import train_test_split

from churn.config import DriftScenario
from churn.data.simulate import COLUMNS, simulate, write_snapshot
from churn.errors import ChurnError

N = 20_000
SEED = 42
DRIFT = DriftScenario(
    seed=7, price_increase=0.12, fiber_shift=0.15, month_to_month_shift=0.10, churn_logit_shift=0.4
)
REAL_HEADER = (
    "customerID,gender,SeniorCitizen,Partner,Dependents,tenure,PhoneService,MultipleLines,"
    "InternetService,OnlineSecurity,OnlineBackup,DeviceProtection,TechSupport,StreamingTV,"
    "StreamingMovies,Contract,PaperlessBilling,PaymentMethod,MonthlyCharges,TotalCharges,Churn"
)
YES_NO = {"Yes", "No"}
INTERNET_ADDONS = [
    "OnlineSecurity",
    "OnlineBackup",
    "DeviceProtection",
    "TechSupport",
    "StreamingTV",
    "StreamingMovies",
]
DOMAINS = {
    "gender": {"Female", "Male"},
    "Partner": YES_NO,
    "Dependents": YES_NO,
    "PhoneService": YES_NO,
    "MultipleLines": YES_NO | {"No phone service"},
    "InternetService": {"DSL", "Fiber optic", "No"},
    **{col: YES_NO | {"No internet service"} for col in INTERNET_ADDONS},
    "Contract": {"Month-to-month", "One year", "Two year"},
    "PaperlessBilling": YES_NO,
    "PaymentMethod": {
        "Electronic check",
        "Mailed check",
        "Bank transfer (automatic)",
        "Credit card (automatic)",
    },
    "Churn": YES_NO,
}


@pytest.fixture(scope="module")
def base() -> pd.DataFrame:
    return simulate(N, SEED)


@pytest.fixture(scope="module")
def drifted() -> pd.DataFrame:
    return simulate(N, SEED, DRIFT)


@pytest.fixture(params=["base", "drifted"])
def frame(request) -> pd.DataFrame:
    return request.getfixturevalue(request.param)


def share(mask: pd.Series) -> float:
    return float(mask.mean())


def churn_rate(df: pd.DataFrame) -> float:
    return share(df["Churn"] == "Yes")


def test_columns_are_the_real_header_in_order(base):
    assert ",".join(COLUMNS) == REAL_HEADER
    assert list(base.columns) == COLUMNS
    assert len(base) == N


@pytest.mark.parametrize("column", sorted(DOMAINS))
def test_text_columns_stay_in_their_domain(frame, column):
    values = set(frame[column].unique())
    assert values <= DOMAINS[column]
    # Every level occurs: a simulator that never emits one would break one-hot training.
    assert values == DOMAINS[column]


def test_numeric_columns_have_the_real_types_and_ranges(base):
    assert base["SeniorCitizen"].dtype.kind == "i"
    assert set(base["SeniorCitizen"].unique()) == {0, 1}
    assert base["tenure"].dtype.kind == "i"
    assert base["tenure"].between(0, 72).all()
    charges = base["MonthlyCharges"]
    assert charges.dtype == np.float64
    assert charges.between(18.25, 118.75).all()
    assert np.allclose(charges, charges.round(2), rtol=0, atol=1e-9)


def test_marginal_shares_resemble_the_real_table(base):
    def shares(column):
        return base[column].value_counts(normalize=True)

    assert share(base["SeniorCitizen"] == 1) == pytest.approx(0.16, abs=0.02)
    internet = shares("InternetService")
    assert internet["DSL"] == pytest.approx(0.34, abs=0.03)
    assert internet["Fiber optic"] == pytest.approx(0.44, abs=0.03)
    assert internet["No"] == pytest.approx(0.22, abs=0.03)
    contract = shares("Contract")
    assert contract["Month-to-month"] == pytest.approx(0.55, abs=0.03)
    assert contract["One year"] == pytest.approx(0.21, abs=0.03)
    assert contract["Two year"] == pytest.approx(0.24, abs=0.03)
    payment = shares("PaymentMethod")
    assert payment["Electronic check"] == pytest.approx(0.34, abs=0.03)
    for method in ("Mailed check", "Bank transfer (automatic)", "Credit card (automatic)"):
        assert payment[method] == pytest.approx(0.22, abs=0.03)


def test_services_drive_monthly_charges(base):
    by_internet = base.groupby("InternetService")["MonthlyCharges"].mean()
    assert by_internet["Fiber optic"] > by_internet["DSL"] > by_internet["No"]
    internet = base[base["InternetService"] != "No"]
    streams = internet.groupby("StreamingTV")["MonthlyCharges"].mean()
    assert streams["Yes"] > streams["No"] + 5


def test_structural_levels_appear_exactly_when_the_service_is_missing(frame):
    no_phone = frame["PhoneService"] == "No"
    assert ((frame["MultipleLines"] == "No phone service") == no_phone).all()
    no_internet = frame["InternetService"] == "No"
    for column in INTERNET_ADDONS:
        assert ((frame[column] == "No internet service") == no_internet).all(), column


def test_total_charges_is_blank_exactly_for_new_customers(frame):
    total = frame["TotalCharges"]
    new = frame["tenure"] == 0
    assert 0 < new.sum() < 0.01 * len(frame)
    assert (total[new] == " ").all()
    assert not (total[~new] == " ").any()
    # Shortest decimal text as in the real file: "1889.5", "108.15", never "1889.50".
    assert total[~new].str.fullmatch(r"\d+(\.\d?[1-9])?").all()
    assert frame.loc[new, "Churn"].eq("No").all()


def test_total_charges_is_about_tenure_times_monthly(frame):
    billed = frame[frame["tenure"] > 0]
    total = billed["TotalCharges"].astype(float)
    expected = billed["tenure"] * billed["MonthlyCharges"]
    ratio = total / expected
    assert ratio.between(0.8, 1.2).all()
    assert ratio.std() > 0.01  # not an exact product: past months had other prices
    first_bill = billed["tenure"] == 1
    assert np.allclose(total[first_bill], billed.loc[first_bill, "MonthlyCharges"])


def test_tenure_is_bimodal_and_longer_on_long_contracts(base):
    counts = base["tenure"].value_counts()
    middle = counts.loc[20:50].mean()
    assert counts[1] > 3 * middle
    assert counts[72] > 3 * middle
    by_contract = base.groupby("Contract")["tenure"].mean()
    assert by_contract["Month-to-month"] < by_contract["One year"] < by_contract["Two year"]


def test_customer_ids_are_unique_and_real_looking(frame):
    ids = frame["customerID"]
    assert ids.str.fullmatch(r"\d{4}-[A-Z]{5}").all()
    assert ids.is_unique


def test_drifted_customers_are_new_customers(base, drifted):
    assert not set(base["customerID"]) & set(drifted["customerID"])


def test_churn_rate_is_realistic(base):
    assert 0.25 <= churn_rate(base) <= 0.30


def test_churn_follows_the_known_drivers(base):
    def rate_by(column):
        return base.groupby(column)["Churn"].apply(lambda s: (s == "Yes").mean())

    contract = rate_by("Contract")
    assert contract["Month-to-month"] > 2 * contract["One year"] > 2 * contract["Two year"]
    internet = rate_by("InternetService")
    assert internet["Fiber optic"] > internet["DSL"] > internet["No"]
    payment = rate_by("PaymentMethod")
    assert payment["Electronic check"] == payment.max()
    assert rate_by("SeniorCitizen")[1] > rate_by("SeniorCitizen")[0]
    assert rate_by("PaperlessBilling")["Yes"] > rate_by("PaperlessBilling")["No"]
    assert rate_by("TechSupport")["No"] > rate_by("TechSupport")["Yes"]
    assert rate_by("OnlineSecurity")["No"] > rate_by("OnlineSecurity")["Yes"]
    short = base["tenure"].between(1, 6)
    long = base["tenure"] >= 48
    assert churn_rate(base[short]) > 3 * churn_rate(base[long])


def test_gradient_boosting_reaches_a_realistic_auc(base):
    features = base.drop(columns=["customerID", "Churn"])
    features["TotalCharges"] = pd.to_numeric(features["TotalCharges"].str.strip().replace("", "0"))
    X = pd.get_dummies(features, dtype=float)
    y = (base["Churn"] == "Yes").astype(int)
    X_train, X_test, y_train, y_test = train_test_split(
        X, y, test_size=0.2, stratify=y, random_state=0
    )
    model = HistGradientBoostingClassifier(random_state=0).fit(X_train, y_train)
    auc = roc_auc_score(y_test, model.predict_proba(X_test)[:, 1])
    assert 0.80 <= auc <= 0.90


def test_drifted_period_shifts_prices_mix_and_churn(base, drifted):
    assert drifted["MonthlyCharges"].mean() > 1.05 * base["MonthlyCharges"].mean()
    assert share(drifted["InternetService"] == "Fiber optic") > share(
        base["InternetService"] == "Fiber optic"
    ) + 0.05
    assert share(drifted["Contract"] == "Month-to-month") > share(
        base["Contract"] == "Month-to-month"
    ) + 0.02
    assert churn_rate(drifted) > churn_rate(base) + 0.03


def test_each_drift_knob_only_moves_what_it_names():
    calm = simulate(5000, SEED, DRIFT.model_copy(update={"price_increase": 0.0}))
    pricier = simulate(5000, SEED, DRIFT.model_copy(update={"price_increase": 0.3}))
    untouched = [c for c in COLUMNS if c not in ("MonthlyCharges", "TotalCharges")]
    pd.testing.assert_frame_equal(calm[untouched], pricier[untouched])
    assert (pricier["MonthlyCharges"] > calm["MonthlyCharges"]).all()


def test_no_drift_scenario_keeps_the_baseline_distribution():
    still = DriftScenario(
        seed=3, price_increase=0.0, fiber_shift=0.0, month_to_month_shift=0.0, churn_logit_shift=0.0
    )
    base, later = simulate(N, SEED), simulate(N, SEED, still)
    assert later["MonthlyCharges"].mean() == pytest.approx(base["MonthlyCharges"].mean(), rel=0.02)
    assert churn_rate(later) == pytest.approx(churn_rate(base), abs=0.015)


def test_snapshot_bytes_are_deterministic(tmp_path):
    first, second, other = tmp_path / "a.csv", tmp_path / "b.csv", tmp_path / "c.csv"
    write_snapshot(simulate(2000, SEED), first)
    write_snapshot(simulate(2000, SEED), second)
    write_snapshot(simulate(2000, SEED + 1), other)
    assert first.read_bytes() == second.read_bytes()
    assert first.read_bytes() != other.read_bytes()
    drifted = tmp_path / "d.csv"
    write_snapshot(simulate(2000, SEED, DRIFT), drifted)
    assert drifted.read_bytes() != first.read_bytes()


def test_snapshot_reads_back_as_the_real_file_would(tmp_path):
    df = simulate(3000, SEED)
    path = tmp_path / "raw" / "telco.csv"
    write_snapshot(df.iloc[:, ::-1], path)  # column order is fixed by the writer, not the caller
    text = path.read_text()
    assert text.splitlines()[0] == REAL_HEADER
    assert "\r" not in text
    assert re.search(r",0,[^\n]*, ,(Yes|No)\n", text)  # the blank TotalCharges cell
    back = pd.read_csv(path, dtype=str, keep_default_na=False)
    text_columns = [c for c in COLUMNS if c not in ("SeniorCitizen", "tenure", "MonthlyCharges")]
    pd.testing.assert_frame_equal(back[text_columns], df[text_columns].astype(str))
    assert np.allclose(back["MonthlyCharges"].astype(float), df["MonthlyCharges"])
    assert (back["tenure"].astype(int) == df["tenure"]).all()


@pytest.mark.parametrize(
    "call",
    [
        lambda: simulate(0, SEED),
        lambda: simulate(100, -1),
        lambda: simulate(100, SEED, DRIFT.model_copy(update={"fiber_shift": 1.5})),
        lambda: simulate(100, SEED, DRIFT.model_copy(update={"price_increase": -1.0})),
    ],
    ids=["no-rows", "negative-seed", "share-above-one", "prices-to-zero"],
)
def test_bad_settings_are_refused_with_a_clear_error(call):
    with pytest.raises(ChurnError):
        call()


def test_write_snapshot_refuses_a_frame_missing_columns(tmp_path):
    with pytest.raises(ChurnError, match="Churn"):
        write_snapshot(simulate(10, SEED).drop(columns="Churn"), tmp_path / "x.csv")
    assert not (tmp_path / "x.csv").exists()

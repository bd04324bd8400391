"""Seeded simulator of a telecom customer base in the schema of IBM's "Telco Customer Churn".

Same (n_customers, seed, drift) gives the same frame and the same CSV bytes.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
from numpy.typing import NDArray

from churn.config import DriftScenario
from churn.errors import ChurnError
from churn.io import write_csv

COLUMNS: list[str] = [
    "customerID",
    "gender",
    "SeniorCitizen",
    "Partner",
    "Dependents",
    "tenure",
    "PhoneService",
    "MultipleLines",
    "InternetService",
    "OnlineSecurity",
    "OnlineBackup",
    "DeviceProtection",
    "TechSupport",
    "StreamingTV",
    "StreamingMovies",
    "Contract",
    "PaperlessBilling",
    "PaymentMethod",
    "MonthlyCharges",
    "TotalCharges",
    "Churn",
]

MAX_TENURE = 72
MIN_CHARGE, MAX_CHARGE = 18.25, 118.75

# customerID is "dddd-LLLLL": a mixed-radix space of 10^4 x 26^5 codes.
_DIGITS = 10**4
_LETTERS = 26**5
_ID_SPACE = _DIGITS * _LETTERS
_FEISTEL_ROUNDS = 4
# Stream tags keep the ID permutation independent of the data draws for the same seed.
_ID_STREAM = 0x1D5
_DRIFT_ID_STREAM = 0xD1F7

_YES_NO = np.array(["No", "Yes"], dtype=object)
_GENDER = np.array(["Female", "Male"], dtype=object)
_NO_YES_PHONE = np.array(["No", "Yes", "No phone service"], dtype=object)
_NO_YES_INTERNET = np.array(["No", "Yes", "No internet service"], dtype=object)
_INTERNET = np.array(["DSL", "Fiber optic", "No"], dtype=object)
_CONTRACT = np.array(["Month-to-month", "One year", "Two year"], dtype=object)
_PAYMENT = np.array(
    ["Electronic check", "Mailed check", "Bank transfer (automatic)", "Credit card (automatic)"],
    dtype=object,
)
# ".05", ".1", "" ...: the cents part as the real file writes it, trailing zeros dropped.
_CENTS_SUFFIX = np.array([""] + [f".{cents:02d}".rstrip("0") for cents in range(1, 100)])
_DSL, _FIBER, _NONE = 0, 1, 2
_MTM, _ONE_YEAR, _TWO_YEAR = 0, 1, 2
_ELECTRONIC = 0

# Monthly list prices; they reproduce the real table's 18.25..118.75 range once noise is added.
_PRICE_PHONE, _PRICE_EXTRA_LINES = 20.0, 5.0
_PRICE_DSL, _PRICE_FIBER = 25.0, 50.0
_PRICE_SUPPORT_ADDON, _PRICE_STREAMING = 5.0, 10.0


def simulate(n_customers: int, seed: int, drift: DriftScenario | None = None) -> pd.DataFrame:
    """One row per customer, columns COLUMNS, values formatted as in the real CSV.

    With `drift`, a later period: same generative model, new customers, then the scenario's
    price, fiber, contract and churn shifts.
    """
    if isinstance(n_customers, bool) or not isinstance(n_customers, (int, np.integer)):
        raise ChurnError(f"n_customers must be an integer, got {n_customers!r}.")
    n = int(n_customers)
    if not 0 < n <= _ID_SPACE // 2:
        raise ChurnError(f"n_customers must be in 1..{_ID_SPACE // 2}, got {n}.")
    _check_seed(seed, "simulate.seed")
    if drift is not None:
        _check_drift(drift)

    # The drifted period mixes both seeds so its customers are new draws, not the baseline's.
    entropy = [seed] if drift is None else [seed, drift.seed]
    rng = np.random.default_rng(np.random.SeedSequence(entropy))
    price_increase = drift.price_increase if drift else 0.0
    fiber_shift = drift.fiber_shift if drift else 0.0
    mtm_shift = drift.month_to_month_shift if drift else 0.0
    logit_shift = drift.churn_logit_shift if drift else 0.0

    # Every draw below happens whatever the scenario, in a fixed order: changing one shift
    # then changes only the columns it touches, never the rest of the population.
    senior = rng.random(n) < 0.162
    male = rng.random(n) < 0.505
    partner = rng.random(n) < np.where(senior, 0.45, 0.485)
    dependents = rng.random(n) < np.where(partner, 0.58, 0.12) * np.where(senior, 0.35, 1.0)
    # Unobserved loyalty: pushes towards long contracts, add-ons and autopay and away from
    # churn, so part of the churn signal is only visible through its proxies.
    loyalty = rng.standard_normal(n)
    # Unobserved taste for media, so the two streaming add-ons come together.
    media = rng.standard_normal(n)

    contract = _categorical(
        rng,
        [
            np.zeros(n),
            -1.06 + 0.8 * loyalty + 0.3 * partner + 0.2 * dependents - 0.3 * senior,
            -1.41 + 1.5 * loyalty + 0.5 * partner + 0.4 * dependents - 0.6 * senior,
        ],
    )
    tenure = _tenure(rng, contract, loyalty)

    phone = rng.random(n) < 0.903
    internet = _categorical(
        rng,
        [
            np.zeros(n),
            0.13 + 1.0 * senior + 0.45 * (contract == _MTM) + 0.15 * loyalty,
            -0.17 - 1.5 * senior + 0.9 * (contract == _TWO_YEAR) - 0.3 * (contract == _MTM),
        ],
    )
    # In the real table every customer without phone service has DSL.
    internet = np.where(phone, internet, _DSL)
    to_fiber = (rng.random(n) < fiber_shift) & (internet != _FIBER)
    internet = np.where(to_fiber, _FIBER, internet)
    fiber = internet == _FIBER
    has_internet = internet != _NONE

    tenure_c = (tenure - 32.0) / 24.0
    extra_lines = phone & (
        rng.random(n) < _sigmoid(-0.35 + 0.7 * tenure_c + 0.8 * fiber + 0.2 * loyalty)
    )
    # Add-ons are drawn for everyone and masked by InternetService afterwards, so customers
    # the drift moves onto fiber get real Yes/No values, never "No internet service".
    addon_base = 0.35 * loyalty + 0.45 * tenure_c
    security = rng.random(n) < _sigmoid(0.11 - 1.35 * fiber + addon_base + 0.3 * loyalty)
    backup = rng.random(n) < _sigmoid(-0.3 + 0.15 * fiber + addon_base)
    protection = rng.random(n) < _sigmoid(-0.36 + 0.3 * fiber + addon_base)
    support = rng.random(n) < _sigmoid(0.07 - 1.2 * fiber + addon_base + 0.3 * loyalty)
    media_base = -0.76 + 1.3 * fiber + 1.4 * media + 0.3 * tenure_c
    streaming_tv = rng.random(n) < _sigmoid(media_base)
    streaming_movies = rng.random(n) < _sigmoid(media_base + 0.03)
    for addon in (security, backup, protection, support, streaming_tv, streaming_movies):
        addon &= has_internet

    paperless = rng.random(n) < _sigmoid(
        0.06 + 1.05 * fiber - 0.95 * ~has_internet + 0.35 * senior - 0.1 * loyalty
    )
    payment = _categorical(
        rng,
        [
            -0.67 + 0.8 * paperless + 0.35 * fiber + 0.75 * (contract == _MTM) + 0.3 * senior
            - 0.3 * loyalty,
            0.775 + 0.7 * ~has_internet - 0.55 * paperless - 0.6 * (tenure_c + 1.0),
            0.02 + 0.1 * loyalty + 0.25 * tenure_c,
            0.1 * loyalty + 0.25 * tenure_c,
        ],
    )

    # Long contracts expiring onto month-to-month keep their tenure: drift in the contract
    # mix, not in how long customers have been around.
    to_mtm = (rng.random(n) < mtm_shift) & (contract != _MTM)
    contract = np.where(to_mtm, _MTM, contract)

    list_price = (
        _PRICE_PHONE * phone
        + _PRICE_EXTRA_LINES * extra_lines
        + _PRICE_DSL * (internet == _DSL)
        + _PRICE_FIBER * fiber
        + _PRICE_SUPPORT_ADDON
        * (security.astype(np.int8) + backup + protection + support)
        + _PRICE_STREAMING * (streaming_tv.astype(np.int8) + streaming_movies)
    )
    price_noise = np.clip(rng.normal(0.0, 1.4, n), -3.75, 3.75)
    monthly = np.clip(list_price + price_noise, MIN_CHARGE, MAX_CHARGE) * (1.0 + price_increase)
    # The real table bills in multiples of 5 cents.
    monthly = np.round(np.round(monthly * 20.0) / 20.0, 2)

    # Past months were billed at other prices and discounts; the first bill is exact.
    billing_drift = np.clip(rng.normal(0.0, 0.06, n), -0.18, 0.18)
    billing_drift[tenure <= 1] = 0.0
    total = np.round(tenure * monthly * (1.0 + billing_drift) * 20.0) / 20.0

    logit = (
        0.25
        - 0.95 * (contract == _ONE_YEAR)
        - 2.0 * (contract == _TWO_YEAR)
        - 0.62 * np.log1p(tenure)
        + 0.8 * fiber
        - 0.55 * ~has_internet
        + 0.55 * (payment == _ELECTRONIC)
        + 0.3 * paperless
        + 0.4 * senior
        - 0.5 * security
        - 0.45 * support
        - 0.15 * backup
        - 0.1 * protection
        + 0.15 * (streaming_tv.astype(np.int8) + streaming_movies)
        - 0.12 * partner
        - 0.15 * dependents
        # Priced before the increase: the scenario's effect on churn is churn_logit_shift alone.
        + 0.012 * (monthly / (1.0 + price_increase) - 65.0)
        - 0.35 * loyalty
        # Unexplained churn (moves, competitor offers): keeps ROC AUC near the real ~0.85.
        + rng.normal(0.0, 1.1, n)
        + logit_shift
    )
    churn = rng.random(n) < _sigmoid(logit)
    # Customers with tenure 0 have not had a billing cycle to leave in (as in the real table).
    churn &= tenure > 0

    coded = {
        "gender": (_GENDER, male),
        "Partner": (_YES_NO, partner),
        "Dependents": (_YES_NO, dependents),
        "PhoneService": (_YES_NO, phone),
        "MultipleLines": (_NO_YES_PHONE, _structural_codes(extra_lines, phone)),
        "InternetService": (_INTERNET, internet),
        "OnlineSecurity": (_NO_YES_INTERNET, _structural_codes(security, has_internet)),
        "OnlineBackup": (_NO_YES_INTERNET, _structural_codes(backup, has_internet)),
        "DeviceProtection": (_NO_YES_INTERNET, _structural_codes(protection, has_internet)),
        "TechSupport": (_NO_YES_INTERNET, _structural_codes(support, has_internet)),
        "StreamingTV": (_NO_YES_INTERNET, _structural_codes(streaming_tv, has_internet)),
        "StreamingMovies": (_NO_YES_INTERNET, _structural_codes(streaming_movies, has_internet)),
        "Contract": (_CONTRACT, contract),
        "PaperlessBilling": (_YES_NO, paperless),
        "PaymentMethod": (_PAYMENT, payment),
        "Churn": (_YES_NO, churn),
    }
    text = {
        "customerID": _customer_ids(n, seed, drift),
        "TotalCharges": _format_total(total, tenure),
    }
    numeric = {
        "SeniorCitizen": senior.astype(np.int64),
        "tenure": tenure,
        "MonthlyCharges": monthly,
    }
    return _assemble(n, coded, text, numeric)


def write_snapshot(df: pd.DataFrame, path: str | Path) -> None:
    """Write the frame as the raw CSV snapshot, atomically and byte-deterministically."""
    missing = [c for c in COLUMNS if c not in df.columns]
    if missing:
        raise ChurnError(f"cannot write snapshot to {path}: columns {missing} are missing.")
    # Reordering copies every cell, so only frames not already in COLUMNS order pay for it.
    if list(df.columns) != COLUMNS:
        df = df[COLUMNS]
    write_csv(path, df)


def _check_seed(seed: object, name: str) -> None:
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
        raise ChurnError(f"{name} must be a non-negative integer, got {seed!r}.")


def _check_drift(drift: DriftScenario) -> None:
    _check_seed(drift.seed, "drift.seed")
    for name in ("fiber_shift", "month_to_month_shift"):
        share = getattr(drift, name)
        if not 0.0 <= share <= 1.0:
            raise ChurnError(f"drift.{name} is a share of customers: use 0..1, got {share}.")
    if not drift.price_increase > -1.0:
        raise ChurnError(f"drift.price_increase must be > -1, got {drift.price_increase}.")
    if not np.isfinite(drift.churn_logit_shift):
        raise ChurnError(f"drift.churn_logit_shift must be finite, got {drift.churn_logit_shift}.")


def _sigmoid(x: np.ndarray) -> np.ndarray:
    result: np.ndarray = 1.0 / (1.0 + np.exp(-x))
    return result


def _categorical(rng: np.random.Generator, utilities: list[np.ndarray]) -> np.ndarray:
    """Per-row draw from a multinomial logit: one uniform per row, no Python loop over rows."""
    # Utilities here stay within a few units, so exp needs no max-shift for stability.
    weights = [np.exp(u) for u in utilities]
    threshold = rng.random(len(weights[0])) * sum(weights)
    choice = np.zeros(len(threshold), dtype=np.intp)
    cumulative = np.zeros(len(threshold))
    for w in weights[:-1]:
        cumulative += w
        choice += threshold >= cumulative
    return choice


def _tenure(rng: np.random.Generator, contract: np.ndarray, loyalty: np.ndarray) -> np.ndarray:
    """Months 0..72: month-to-month piles up near 1 and two-year near 72, hence bimodal."""
    a = np.array([0.55, 1.3, 2.0])[contract] * np.exp(0.15 * loyalty)
    b = np.array([1.7, 0.95, 0.6])[contract]
    # Scaling past 72 before clipping reproduces the spike of customers at the maximum.
    months = np.minimum(np.ceil(rng.beta(a, b) * (MAX_TENURE + 1)), MAX_TENURE).astype(np.int64)
    months = np.maximum(months, 1)
    # A few signed-but-not-yet-billed customers, mostly on long contracts as in the real table.
    unbilled = rng.random(len(contract)) < np.array([0.0003, 0.002, 0.005])[contract]
    months[unbilled] = 0
    result: np.ndarray = months
    return result


def _structural_codes(flag: np.ndarray, applicable: np.ndarray) -> np.ndarray:
    """0 No, 1 Yes, 2 the structural level ("No internet service") where it does not apply."""
    return np.where(applicable, flag.view(np.int8), np.int8(2))


def _assemble(
    n: int,
    coded: dict[str, tuple[np.ndarray, np.ndarray]],
    text: dict[str, np.ndarray],
    numeric: dict[str, np.ndarray],
) -> pd.DataFrame:
    """The frame in COLUMNS order, its text columns written straight into one object block.

    Handing pandas separate object columns makes it consolidate them, copying every
    reference again: that alone took longer than simulating a million customers.
    """
    text_names = [c for c in COLUMNS if c not in numeric]
    block = np.empty((len(text_names), n), dtype=object)
    for row, name in enumerate(text_names):
        if name in coded:
            levels, codes = coded[name]
            np.take(levels, codes.view(np.int8) if codes.dtype == bool else codes, out=block[row])
        else:
            block[row] = text[name]
    frame = pd.DataFrame(block.T, columns=text_names, copy=False)
    for name in COLUMNS:
        if name in numeric:
            frame.insert(COLUMNS.index(name), name, numeric[name])
    return frame


def _format_total(total: np.ndarray, tenure: np.ndarray) -> np.ndarray:
    """Shortest decimal text ("1889.5", "108.15", "20"); a single blank before the first bill."""
    cents = np.round(total * 100.0).astype(np.int64)
    # Integer cents and a table of fraction suffixes: exact, and no per-value float repr.
    text = np.strings.add((cents // 100).astype(np.str_), _CENTS_SUFFIX[cents % 100])
    text = text.astype(object)
    text[tenure == 0] = " "
    return text


def _mix64(x: NDArray[np.uint64]) -> NDArray[np.uint64]:
    """splitmix64 finaliser: a cheap, well-spread hash of uint64 values."""
    x = (x ^ (x >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
    x = (x ^ (x >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
    return x ^ (x >> np.uint64(31))


def _customer_ids(n: int, seed: int, drift: DriftScenario | None) -> np.ndarray:
    """A keyed bijection of row numbers onto "dddd-LLLLL" codes: unique by construction."""
    keys = np.random.SeedSequence([seed, _ID_STREAM]).generate_state(_FEISTEL_ROUNDS, np.uint64)
    half = _ID_SPACE // 2
    index: NDArray[np.uint64] = np.arange(n, dtype=np.uint64)
    if drift is not None:
        # The same permutation on the other half of the code space: drifted IDs can never
        # collide with the baseline's, and the drift seed picks where in that half they start.
        offset = np.random.SeedSequence([seed, drift.seed, _DRIFT_ID_STREAM])
        start = int(offset.generate_state(1, np.uint64)[0]) % half
        index = np.uint64(half) + (index + np.uint64(start)) % np.uint64(half)
    radix_digits, radix_letters = np.uint64(_DIGITS), np.uint64(_LETTERS)
    digits: NDArray[np.uint64] = index % radix_digits
    letters: NDArray[np.uint64] = index // radix_digits
    # An unbalanced Feistel network on the mixed radix (10^4, 26^5): each round adds a keyed
    # hash of one half to the other modulo its own radix, which is invertible whatever the hash.
    with np.errstate(over="ignore"):
        for round_, key in enumerate(keys):
            if round_ % 2 == 0:
                letters = (letters + _mix64(digits ^ key) % radix_letters) % radix_letters
            else:
                digits = (digits + _mix64(letters ^ key) % radix_digits) % radix_digits

    # Spelled out as bytes in one (n, 10) array: no per-row string formatting.
    chars = np.empty((n, 10), dtype=np.uint8)
    for pos in range(4):
        chars[:, 3 - pos] = digits // np.uint64(10**pos) % np.uint64(10) + np.uint64(ord("0"))
    chars[:, 4] = ord("-")
    for pos in range(5):
        chars[:, 9 - pos] = letters // np.uint64(26**pos) % np.uint64(26) + np.uint64(ord("A"))
    return chars.view("S10").ravel().astype(str).astype(object)

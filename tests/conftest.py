"""Shared fixtures: the repository's params.yaml and a small, hand-built valid raw frame."""

from __future__ import annotations

import io
import os
from dataclasses import dataclass
from pathlib import Path

import pandas as pd
import pytest

from churn.config import load_params

REPO_ROOT = Path(__file__).resolve().parent.parent
PARAMS_FILE = REPO_ROOT / "params.yaml"

# Thirteen rows in the IBM Telco schema, as they appear in the raw CSV. Includes:
#   4472-LVYGI  tenure 0 with TotalCharges " " (not billed yet)
#   7469-LKBCI  no internet service (all six internet-dependent columns say so)
#   7590-VHVEG  no phone service (MultipleLines "No phone service")
#   both labels, and one senior citizen.
RAW_CSV = """\
customerID,gender,SeniorCitizen,Partner,Dependents,tenure,PhoneService,MultipleLines,InternetService,OnlineSecurity,OnlineBackup,DeviceProtection,TechSupport,StreamingTV,StreamingMovies,Contract,PaperlessBilling,PaymentMethod,MonthlyCharges,TotalCharges,Churn
7590-VHVEG,Female,0,Yes,No,1,No,No phone service,DSL,No,Yes,No,No,No,No,Month-to-month,Yes,Electronic check,29.85,29.85,No
5575-GNVDE,Male,0,No,No,34,Yes,No,DSL,Yes,No,Yes,No,No,No,One year,No,Mailed check,56.95,1889.5,No
3668-QPYBK,Male,0,No,No,2,Yes,No,DSL,Yes,Yes,No,No,No,No,Month-to-month,Yes,Mailed check,53.85,108.15,Yes
7795-CFOCW,Male,0,No,No,45,Yes,No,DSL,Yes,No,Yes,Yes,No,No,One year,No,Bank transfer (automatic),42.3,1840.75,No
9237-HQITU,Female,0,No,No,2,Yes,No,Fiber optic,No,No,No,No,No,No,Month-to-month,Yes,Electronic check,70.7,151.65,Yes
9305-CDSKC,Female,1,No,No,8,Yes,Yes,Fiber optic,No,No,Yes,No,Yes,Yes,Month-to-month,Yes,Electronic check,99.65,820.5,Yes
1452-KIOVK,Male,0,No,Yes,22,Yes,Yes,Fiber optic,No,Yes,No,No,Yes,No,Month-to-month,Yes,Credit card (automatic),89.1,1949.4,No
6713-OKOMC,Female,0,No,No,10,Yes,No,DSL,Yes,No,No,No,No,No,Month-to-month,No,Mailed check,29.75,301.9,No
7892-POOKP,Female,0,Yes,No,28,Yes,Yes,Fiber optic,No,No,Yes,Yes,Yes,Yes,Month-to-month,Yes,Electronic check,104.8,3046.05,Yes
6388-TABGU,Male,0,No,Yes,62,Yes,No,DSL,Yes,Yes,No,No,No,No,One year,No,Bank transfer (automatic),56.15,3487.95,No
9763-GRSKD,Male,0,Yes,Yes,13,Yes,No,DSL,Yes,No,No,No,No,No,Month-to-month,Yes,Mailed check,49.95,587.45,No
7469-LKBCI,Male,0,No,No,16,Yes,No,No,No internet service,No internet service,No internet service,No internet service,No internet service,No internet service,Two year,No,Credit card (automatic),18.95,326.8,No
4472-LVYGI,Female,0,Yes,Yes,0,Yes,No,DSL,Yes,No,Yes,Yes,Yes,No,Two year,Yes,Bank transfer (automatic),52.55, ,No
"""

TENURE_ZERO_ID = "4472-LVYGI"
NO_INTERNET_ID = "7469-LKBCI"
NO_PHONE_ID = "7590-VHVEG"


def read_raw_text(text: str) -> pd.DataFrame:
    """Parse CSV text exactly as churn.core.contract.read_raw_csv does."""
    return pd.read_csv(io.StringIO(text), dtype=str, keep_default_na=False, na_values=[""])


@pytest.fixture(autouse=True)
def _progress_environment_restored():
    """`churn --quiet` (progress.configure) sets CHURN_QUIET in the process environment so that
    the commands it starts stay quiet. A test that runs it in-process would leave every later
    test's subprocesses quiet: put the variables back as they were."""
    saved = {name: os.environ.get(name) for name in ("CHURN_QUIET", "CHURN_PROGRESS")}
    yield
    for name, value in saved.items():
        if value is None:
            os.environ.pop(name, None)
        else:
            os.environ[name] = value


@pytest.fixture(scope="session")
def params():
    return load_params(PARAMS_FILE)


@pytest.fixture(scope="session")
def dataset(params):
    return params.dataset


@pytest.fixture
def raw_frame() -> pd.DataFrame:
    """A fresh copy per test, so tests may modify it."""
    return read_raw_text(RAW_CSV)


@pytest.fixture(scope="session")
def raw_csv_text() -> str:
    """The CSV text behind `raw_frame`, for tests that go through files."""
    return RAW_CSV


@pytest.fixture(scope="session")
def special_ids() -> dict[str, str]:
    return {"tenure_zero": TENURE_ZERO_ID, "no_internet": NO_INTERNET_ID, "no_phone": NO_PHONE_ID}


# --- an S3 server (`rclone serve s3`, the services extra) -----------------------------------


@dataclass(frozen=True)
class S3Server:
    endpoint: str
    env: dict[str, str]  # what a client needs: keys, endpoint, region
    bucket: str  # an empty bucket made for the session

    def client(self):
        import boto3

        return boto3.client(
            "s3", endpoint_url=self.endpoint, region_name=self.env["AWS_DEFAULT_REGION"],
            aws_access_key_id=self.env["AWS_ACCESS_KEY_ID"], aws_secret_access_key=self.env["AWS_SECRET_ACCESS_KEY"],
        )

    def keys(self, prefix: str = "") -> list[str]:
        listed = self.client().list_objects_v2(Bucket=self.bucket, Prefix=prefix)
        return sorted(item["Key"] for item in listed.get("Contents", []))


@pytest.fixture(scope="session")
def s3_server(tmp_path_factory):
    """A real S3 server on a free loopback port, started the way `make services` starts it."""
    import secrets
    import socket

    from scripts import services

    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    layout = services.Layout(tmp_path_factory.mktemp("s3-server"))
    keys = {"s3_access_key": "test" + secrets.token_hex(6), "s3_secret_key": secrets.token_urlsafe(24)}
    record = services.start_s3(layout, port, keys)
    try:
        services.ensure_buckets(port, keys)
        endpoint = f"http://127.0.0.1:{port}"
        env = {
            "AWS_ACCESS_KEY_ID": keys["s3_access_key"], "AWS_SECRET_ACCESS_KEY": keys["s3_secret_key"],
            "AWS_ENDPOINT_URL": endpoint, "AWS_DEFAULT_REGION": services.REGION,
        }
        yield S3Server(endpoint, env, services.BUCKETS["data"])
    finally:
        services.stop(record)


@pytest.fixture
def s3(s3_server, monkeypatch) -> S3Server:
    """The S3 server, with this test's environment pointing every client at it."""
    for name, value in s3_server.env.items():
        monkeypatch.setenv(name, value)
    return s3_server

"""The model file is a byte-deterministic skops archive that only loads sklearn/numpy types."""

from __future__ import annotations

import io
import json
import math
import os
import subprocess
import sys
import textwrap
import zipfile
from pathlib import Path

import numpy as np
import pytest
import skops.io as sio
from sklearn.base import BaseEstimator, ClassifierMixin
from sklearn.preprocessing import FunctionTransformer

import churn
from churn.core.model_file import canonicalize, load_model, model_to_bytes
from churn.errors import ChurnError

# Executed both in this process and in fresh subprocesses, so all fit the same models.
BUILD_SRC = textwrap.dedent(
    """
    import numpy as np
    import pandas as pd
    from sklearn.compose import ColumnTransformer
    from sklearn.ensemble import (
        GradientBoostingClassifier, HistGradientBoostingClassifier, RandomForestClassifier,
    )
    from sklearn.impute import SimpleImputer
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import OneHotEncoder, StandardScaler

    FAMILIES = {
        "hgb": lambda: HistGradientBoostingClassifier(max_iter=5, random_state=0),
        "gb": lambda: GradientBoostingClassifier(n_estimators=3, random_state=0),
        "rf": lambda: RandomForestClassifier(n_estimators=3, random_state=0),
        "lr": lambda: LogisticRegression(max_iter=200),
    }

    def make_data(n=160):
        rng = np.random.default_rng(0)
        X = pd.DataFrame({
            "tenure": rng.integers(0, 72, n).astype(float),
            "charges": rng.normal(70.0, 20.0, n),
            "contract": rng.choice(["month", "one_year", "two_year"], n),
            "payment": rng.choice(["card", "bank", "check"], n),
        })
        X.loc[::7, "charges"] = np.nan
        X.loc[::11, "contract"] = np.nan
        y = (rng.random(n) < 0.3).astype(int)
        return X, y

    def make_pipeline(family):
        numeric = Pipeline([("impute", SimpleImputer(strategy="median")), ("scale", StandardScaler())])
        pre = ColumnTransformer(
            [
                ("numeric", numeric, ["tenure", "charges"]),
                ("categorical", OneHotEncoder(handle_unknown="ignore", sparse_output=False),
                 ["contract", "payment"]),
            ],
            remainder="drop",
            verbose_feature_names_out=False,
        )
        return Pipeline([("preprocess", pre), ("classifier", FAMILIES[family]())])

    def fit(family):
        X, y = make_data()
        return make_pipeline(family).fit(X, y)
    """
)
_ns: dict = {}
exec(BUILD_SRC, _ns)
FAMILIES, make_data, fit = _ns["FAMILIES"], _ns["make_data"], _ns["fit"]

# Each subprocess allocates a different amount of garbage first, so object ids differ
# even if address-space randomisation happened to line up; PYTHONHASHSEED differs too.
SUBPROCESS_MAIN = textwrap.dedent(
    """
    import sys
    from pathlib import Path
    import skops.io as sio
    from churn.core.model_file import model_to_bytes
    out, junk = Path(sys.argv[1]), int(sys.argv[2])
    keep = [object() for _ in range(junk)]
    objects = {family: fit(family) for family in FAMILIES}
    objects["set"] = {"words": {f"word{i}" for i in range(30)}}
    for name, obj in objects.items():
        (out / f"{name}.skops").write_bytes(model_to_bytes(obj))
        (out / f"{name}.raw.skops").write_bytes(sio.dumps(obj))
    """
)
SUBPROCESS_SETTINGS = [("0", 10), ("4242", 20_000)]  # (PYTHONHASHSEED, garbage objects)


def _schema(data: bytes) -> dict:
    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        return json.loads(archive.read("schema.json"))


def _node_ids(schema) -> set:
    ids = set()
    stack = [schema]
    while stack:
        item = stack.pop()
        if isinstance(item, dict):
            if isinstance(item.get("__loader__"), str):
                ids.add(item["__id__"])
            stack.extend(item.values())
        elif isinstance(item, list):
            stack.extend(item)
    return ids


@pytest.fixture(scope="module")
def fitted():
    return {family: fit(family) for family in FAMILIES}


def test_same_model_dumped_twice_gives_identical_bytes(fitted):
    for family, model in fitted.items():
        assert model_to_bytes(model) == model_to_bytes(model), family


@pytest.fixture(scope="module")
def subprocess_outputs(tmp_path_factory):
    """Archives written by two fresh interpreters, run side by side."""
    src_dir = str(Path(churn.__file__).resolve().parents[1])
    pythonpath = os.pathsep.join(filter(None, [src_dir, os.environ.get("PYTHONPATH")]))
    runs = []
    for seed, junk in SUBPROCESS_SETTINGS:
        out = tmp_path_factory.mktemp(f"hashseed{seed}")
        env = {**os.environ, "PYTHONHASHSEED": seed, "PYTHONPATH": pythonpath}
        proc = subprocess.Popen(
            [sys.executable, "-c", BUILD_SRC + SUBPROCESS_MAIN, str(out), str(junk)],
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        runs.append((proc, out))
    for proc, _ in runs:
        _, stderr = proc.communicate(timeout=300)
        assert proc.returncode == 0, stderr
    return [out for _, out in runs]


@pytest.mark.parametrize("family", list(FAMILIES))
def test_identically_fitted_models_in_separate_processes_give_identical_bytes(
    subprocess_outputs, fitted, family
):
    first, second = subprocess_outputs
    raw_a = (first / f"{family}.raw.skops").read_bytes()
    raw_b = (second / f"{family}.raw.skops").read_bytes()
    # The harness has teeth: plain skops archives of these models do differ.
    assert _schema(raw_a) != _schema(raw_b)
    canonical = (first / f"{family}.skops").read_bytes()
    assert canonical == (second / f"{family}.skops").read_bytes()
    # ... and equal the archive of the same model fitted in this (third) process.
    assert canonical == model_to_bytes(fitted[family])
    # Canonicalising is idempotent: the canonical archive is its own canonical form.
    assert canonicalize(canonical) == canonical


def test_sets_are_written_independently_of_hash_seed(subprocess_outputs):
    first, second = subprocess_outputs

    def items(schema):
        return [item["content"] for item in schema["content"]["words"]["content"]]

    raw_a = _schema((first / "set.raw.skops").read_bytes())
    raw_b = _schema((second / "set.raw.skops").read_bytes())
    assert items(raw_a) != items(raw_b)  # skops writes a set in hash order
    canonical = (first / "set.skops").read_bytes()
    assert canonical == (second / "set.skops").read_bytes()
    assert sio.loads(canonical, trusted=[]) == {"words": {f"word{i}" for i in range(30)}}


@pytest.mark.parametrize("family", list(FAMILIES))
def test_round_trip_predicts_identically(fitted, family):
    model = fitted[family]
    X, _ = make_data()
    loaded = load_model(model_to_bytes(model))
    assert type(loaded) is type(model)
    np.testing.assert_array_equal(loaded.predict_proba(X), model.predict_proba(X))
    np.testing.assert_array_equal(loaded.predict(X), model.predict(X))


def test_archive_layout_is_canonical(fitted):
    data = model_to_bytes(fitted["hgb"])
    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        infos = archive.infolist()
        names = [info.filename for info in infos]
        assert names == sorted(names)
        assert "schema.json" in names
        for info in infos:
            assert info.date_time == (1980, 1, 1, 0, 0, 0)
            assert info.external_attr >> 16 == 0o100644
            assert info.compress_type == zipfile.ZIP_STORED
        schema = json.loads(archive.read("schema.json"))
    ids, files = [], []

    def walk(obj):
        if isinstance(obj, dict):
            if isinstance(obj.get("__loader__"), str):
                ids.append(obj["__id__"])
                if "file" in obj:
                    files.append(obj["file"])
            for value in obj.values():
                walk(value)
        elif isinstance(obj, list):
            for value in obj:
                walk(value)

    walk(schema)
    assert min(ids) == 1 and max(ids) == len(set(ids))  # dense 1..n, no id() values
    assert sorted(set(files)) == [n for n in names if n != "schema.json"]


def test_shared_objects_stay_shared():
    shared_list = ["a", "b"]
    shared_array = np.arange(5.0)
    obj = {"x": shared_list, "y": shared_list, "p": shared_array, "q": shared_array, "s": {"k", "j"}}
    data = model_to_bytes(obj)
    loaded = sio.loads(data, trusted=sio.get_untrusted_types(data=data))
    assert loaded["x"] is loaded["y"]
    assert loaded["p"] is loaded["q"]
    np.testing.assert_array_equal(loaded["p"], shared_array)
    assert loaded["s"] == {"k", "j"}


def test_dict_with_mixed_key_types_keeps_its_keys_and_order():
    # Sorting schema keys would pair DictNode keys with the wrong key types.
    obj = {"b": 1, 2: "x", "a": None}
    loaded = sio.loads(model_to_bytes(obj), trusted=[])
    assert loaded == obj
    assert list(loaded) == ["b", 2, "a"]


def test_equal_immutable_values_give_equal_bytes_whether_or_not_they_are_one_object():
    # Whether two equal strings/floats are one object (interning, code constants, a
    # parsed params file) is an accident of the code path; it must not change the file.
    word = "churn_" + str(len(FAMILIES))
    same_object = {"a": word, "b": word, "c": 0.25}
    equal_objects = {"a": word, "b": "".join(["churn_", str(len(FAMILIES))]), "c": float("0.25")}
    assert equal_objects["b"] is not word and equal_objects == same_object
    assert model_to_bytes(same_object) == model_to_bytes(equal_objects)
    # (plain skops does tell them apart: one shared id versus two)
    assert len(_node_ids(_schema(sio.dumps(same_object)))) < len(_node_ids(_schema(sio.dumps(equal_objects))))


def test_load_model_from_a_path(tmp_path, fitted):
    target = tmp_path / "model.skops"
    target.write_bytes(model_to_bytes(fitted["lr"]))
    np.testing.assert_array_equal(
        load_model(target).predict_proba(make_data()[0]), fitted["lr"].predict_proba(make_data()[0])
    )
    assert load_model(str(target)) is not None


class HomemadeClassifier(ClassifierMixin, BaseEstimator):
    """A custom type that is not sklearn's or numpy's."""

    def fit(self, X, y):
        self.classes_ = np.unique(y)
        return self


def test_archive_with_custom_class_is_refused(tmp_path):
    data = sio.dumps(HomemadeClassifier().fit([[0], [1]], [0, 1]))
    with pytest.raises(ChurnError, match="HomemadeClassifier") as info:
        load_model(data)
    assert "not a model this project wrote" in str(info.value)
    path = tmp_path / "model.skops"
    path.write_bytes(data)
    with pytest.raises(ChurnError, match="not a model this project wrote"):
        load_model(path)


def test_sklearn_pipeline_calling_a_foreign_function_is_refused():
    X, y = make_data()
    model = FunctionTransformer(math.sqrt).fit(X[["tenure"]].to_numpy(), y)
    data = model_to_bytes(model)
    assert "math.sqrt" in sio.get_untrusted_types(data=data)
    with pytest.raises(ChurnError, match=r"math\.sqrt"):
        load_model(data)


def test_type_names_that_only_look_like_sklearn_are_refused():
    # A module called "sklearnx" is not sklearn: the trust check needs the dot.
    data = sio.dumps(HomemadeClassifier().fit([[0], [1]], [0, 1]))
    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        members = {name: archive.read(name) for name in archive.namelist()}
    schema = json.loads(members["schema.json"])
    schema["__module__"] = "sklearnx.evil"
    members["schema.json"] = json.dumps(schema).encode()
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for name, content in members.items():
            archive.writestr(name, content)
    with pytest.raises(ChurnError, match=r"sklearnx\.evil\.HomemadeClassifier"):
        load_model(buffer.getvalue())


def test_missing_file_is_reported(tmp_path):
    with pytest.raises(ChurnError, match=r"not found: run `dvc repro train` or `dvc pull`"):
        load_model(tmp_path / "nope.skops")


@pytest.mark.parametrize("garbage", [b"", b"definitely not a zip", b"PK\x03\x04" + b"\x00" * 40])
def test_garbage_is_not_a_valid_archive(tmp_path, garbage):
    with pytest.raises(ChurnError, match="is not a valid skops archive"):
        load_model(garbage)
    path = tmp_path / "model.skops"
    path.write_bytes(garbage)
    with pytest.raises(ChurnError, match="is not a valid skops archive"):
        load_model(path)


def test_zip_without_schema_is_not_a_valid_archive():
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("hello.txt", "hi")
    with pytest.raises(ChurnError, match="is not a valid skops archive"):
        load_model(buffer.getvalue())


def test_the_allow_list_refusal_names_every_foreign_type():
    import datetime
    from fractions import Fraction

    import skops.io as sio

    from churn.core.model_file import trusted_types_of

    data = sio.dumps([Fraction(1, 2), datetime.timedelta(1)])
    with pytest.raises(ChurnError) as info:
        trusted_types_of(data)
    assert str(info.value) == (
        "The model data contains types that will not be loaded: "
        "datetime.timedelta, fractions.Fraction, ConstructorFromReduceNode node. It is not a model "
        "this project wrote, so nothing in it was run. (A new model family or hyperparameter that "
        "needs a new type: add it to ALLOWED_TYPES in churn.core.model_file after review.)"
    )


def test_a_non_archive_is_refused_naming_the_error():
    from churn.core.model_file import trusted_types_of

    with pytest.raises(ChurnError) as info:
        trusted_types_of(b"not a zip")
    assert str(info.value).startswith("The model data is not a valid skops archive (BadZipFile: ")

def test_load_model_names_what_it_was_given(tmp_path):
    with pytest.raises(ChurnError) as info:
        load_model(b"not a zip")
    assert str(info.value).startswith("The model data is not a valid skops archive (BadZipFile: ")
    path = tmp_path / "model.skops"
    path.write_bytes(b"not a zip")
    with pytest.raises(ChurnError) as info:
        load_model(path)
    assert str(info.value).startswith(f"Model file {path} is not a valid skops archive (BadZipFile: ")
    with pytest.raises(ChurnError) as info:
        load_model(tmp_path)
    assert str(info.value) == f"Model file {tmp_path} is a directory, not a skops archive."


def test_an_allowed_archive_that_cannot_be_loaded_says_so_and_how_to_rebuild_it(tmp_path, fitted):
    with zipfile.ZipFile(io.BytesIO(model_to_bytes(fitted["lr"]))) as archive:
        members = {name: archive.read(name) for name in archive.namelist()}
    array = next(name for name in members if name.endswith(".npy"))
    members[array] = b"not an array"  # the schema (and its types) untouched
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for name, content in members.items():
            archive.writestr(name, content)
    path = tmp_path / "model.skops"
    path.write_bytes(buffer.getvalue())
    with pytest.raises(ChurnError) as info:
        load_model(path)
    message = str(info.value)
    assert message.startswith(f"Model file {path} is not a valid skops archive, or was written by an incompatible "
                              "skops/scikit-learn version (ValueError: ")
    assert message.endswith("). Run `dvc repro train` to rebuild it.")


def test_a_shared_reference_is_no_type_of_its_own():
    # skops writes a shared object again by id; older archives point back with a CachedNode,
    # which names no type: the allow-list admits it as the reference it is.
    from churn.core.model_file import archive_types, refused_types

    data = sio.dumps([np.arange(3.0)])
    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        members = {name: archive.read(name) for name in archive.namelist()}
    schema = json.loads(members["schema.json"])
    schema["content"].append({"__loader__": "CachedNode", "__id__": schema["content"][0]["__id__"]})
    members["schema.json"] = json.dumps(schema).encode()
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for name, content in members.items():
            archive.writestr(name, content)
    types, loaders = archive_types(buffer.getvalue())
    assert loaders == {"ListNode", "NdArrayNode", "CachedNode"}
    assert types == {"builtins.list", "numpy.ndarray"}
    assert refused_types(buffer.getvalue()) == []


def test_the_allow_list_readers_name_the_model_data_by_default():
    from churn.core.model_file import archive_types, refused_types

    for read in (archive_types, refused_types):
        with pytest.raises(ChurnError) as info:
            read(b"not a zip")
        assert str(info.value).startswith("The model data is not a valid skops archive (BadZipFile: ")


def test_an_archive_of_an_unknown_skops_protocol_is_not_a_valid_archive():
    from churn.core.model_file import trusted_types_of

    data = sio.dumps([np.arange(3.0)])
    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        members = {name: archive.read(name) for name in archive.namelist()}
    schema = json.loads(members["schema.json"])
    schema["protocol"] = 999  # every type allowed, but no skops can read it
    members["schema.json"] = json.dumps(schema).encode()
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for name, content in members.items():
            archive.writestr(name, content)
    with pytest.raises(ChurnError) as info:
        trusted_types_of(buffer.getvalue())
    assert str(info.value).startswith("The model data is not a valid skops archive (ValueError: ")
    assert "protocol 999" in str(info.value)


def test_a_type_only_skops_sees_is_refused_too(monkeypatch, fitted):
    # The allow-list reads the schema itself; should a skops version trust-check a type the
    # schema walk did not see, skops' own answer is held to the allow-list as well.
    from churn.core import model_file

    data = model_to_bytes(fitted["lr"])
    import skops.io

    monkeypatch.setattr(skops.io, "get_untrusted_types",
                        lambda data: ["numpy.ndarray", "evil.Thing", "os.system"])
    with pytest.raises(ChurnError) as info:
        model_file.trusted_types_of(data)
    assert str(info.value) == "The model data contains types that will not be loaded: evil.Thing, os.system."


# ------------------------------------------------ the allow-list and a crafted archive


def _family_models(params, raw_frame):
    """Every model family fitted with params.yaml's hyperparameters (and HGB with early
    stopping, which the full data switches on), on a small copy of the fixture rows."""
    import pandas as pd

    from churn.core.clean import clean_features, encode_labels
    from churn.core.contract import validate_raw
    from churn.training.pipeline import CLASSIFIERS, build_pipeline

    typed = validate_raw(raw_frame, params.dataset)
    X = pd.concat([clean_features(typed, params.dataset)[params.dataset.feature_columns]] * 8, ignore_index=True)
    y = pd.concat([encode_labels(typed, params.dataset)[params.dataset.label_column]] * 8, ignore_index=True)
    # params.yaml's hyperparameters with fewer trees: the count changes no type, only time.
    few = {"n_estimators": 3, "max_iter": 3}
    hyper = {
        family: {**values, **{k: v for k, v in few.items() if k in values and family != "logistic_regression"}}
        for family, values in params.train.hyperparameters.items()
    }
    hyper["hist_gradient_boosting+early_stopping"] = {**hyper["hist_gradient_boosting"], "early_stopping": True}
    variants = {}
    for name in [*CLASSIFIERS, "hist_gradient_boosting+early_stopping"]:
        family = name.split("+")[0]
        variants[name] = params.train.model_copy(
            update={"family": family, "hyperparameters": {family: hyper.get(name, hyper.get(family, {}))}}
        )
    return {name: build_pipeline(params.dataset, train).fit(X, y) for name, train in variants.items()}


def test_allow_list_is_exactly_what_the_four_model_families_produce(params, raw_frame):
    from churn.core.model_file import ALLOWED_LOADERS, ALLOWED_TYPES, archive_types

    produced: set[str] = set()
    for name, model in _family_models(params, raw_frame).items():
        data = model_to_bytes(model)
        types, loaders = archive_types(data)
        assert types <= ALLOWED_TYPES, f"{name} produces types outside the allow-list: {types - ALLOWED_TYPES}"
        assert loaders <= ALLOWED_LOADERS, f"{name} uses node kinds outside the allow-list: {loaders - ALLOWED_LOADERS}"
        assert load_model(data) is not None
        produced |= types
    # No stale or speculative entry: every allowed type is one some family needs.
    assert produced == ALLOWED_TYPES, f"allowed but never produced: {sorted(ALLOWED_TYPES - produced)}"
    assert not any(name.endswith(".") or name.count(".") < 1 for name in ALLOWED_TYPES)


def _crafted_archive(code: str) -> bytes:
    """A skops archive whose root calls numpy.testing._private.utils.runstring(code, {}) at
    load: the attack the prefix check let through."""

    def json_node(value: str) -> dict:
        return {"__class__": "str", "__module__": "builtins", "__loader__": "JsonNode",
                "content": json.dumps(value), "is_json": True, "__id__": 2}

    schema = {
        "__class__": "runstring",
        "__module__": "numpy.testing._private.utils",
        "__loader__": "ConstructorFromReduceNode",
        "content": {
            "__class__": "tuple", "__module__": "builtins", "__loader__": "TupleNode",
            "content": [
                json_node(code),
                {"__class__": "dict", "__module__": "builtins", "__loader__": "DictNode", "content": {},
                 "key_types": {"__class__": "list", "__module__": "builtins", "__loader__": "ListNode",
                               "content": [], "__id__": 4}, "__id__": 3},
            ],
            "__id__": 5,
        },
        "__id__": 1,
        # The format this skops writes, so the archive is loadable when trusted.
        "protocol": _schema(sio.dumps(0))["protocol"],
        "_skops_version": _schema(sio.dumps(0))["_skops_version"],
    }
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("schema.json", json.dumps(schema))
    return buffer.getvalue()


def test_crafted_code_running_archive_is_refused_and_runs_nothing(tmp_path):
    marker = tmp_path / "pwned"
    data = _crafted_archive(f"open({str(marker)!r}, 'w').write('ran')")
    # The archive is a real attack: trusting what skops reports runs the code...
    sio.loads(data, trusted=sio.get_untrusted_types(data=data))
    assert marker.read_text() == "ran"
    marker.unlink()
    # ...and load_model refuses it by name, before anything runs.
    path = tmp_path / "model.skops"
    path.write_bytes(data)
    for source in (data, path):
        with pytest.raises(ChurnError, match=r"numpy\.testing\._private\.utils\.runstring") as info:
            load_model(source)
        assert "ConstructorFromReduceNode node" in str(info.value)
        assert not marker.exists()

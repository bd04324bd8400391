"""The model file: a skops archive made byte-deterministic, so DVC sees equal models as equal.

`skops.io.dumps` is not byte-deterministic. Its ``schema.json`` names every serialised
object by ``id(obj)`` (the ``"__id__"`` of each node), the array files in the zip are
called ``<id>.npy`` (``<id>.npz`` for sparse matrices, ``<uuid4>.bin`` for bytes), and
every zip entry carries the current time. `model_to_bytes` rewrites such an archive into
a canonical one:

* Every node of ``schema.json`` (a dict with a string ``"__loader__"``) gets a small
  sequential ``"__id__"`` (1, 2, ... — skops ignores a falsy id) in document order.
  Nodes that shared an id keep sharing one, because the loader uses equal ids to restore
  shared references (``get_tree`` returns the first node seen with an id, and a
  ``CachedNode`` refers back to an earlier id). Leaf nodes of immutable values
  (``JsonNode``: str/int/float/bool/None; ``TypeNode``; ``FunctionNode``) are numbered by
  content instead, so whether two equal strings or floats happened to be one Python
  object (interning, code constants) does not change the bytes.
* Every ``"file"`` field is renamed to ``<n><suffix>`` in order of first appearance, and
  the archive member is renamed with it. Every member must be referenced, and no old id
  or file name may survive anywhere in the schema, else we refuse rather than write a
  file that is silently non-deterministic (a newer skops with a new id-bearing field).
* A ``SetNode``'s items (written in hash order, which depends on ``PYTHONHASHSEED``) are
  sorted by an id-free rendering of each item.
* The schema is written as compact JSON (fixed separators, ASCII). Key order is *kept*,
  not sorted: a ``DictNode`` stores its key types as a list parallel to the order of its
  ``content`` keys, so sorting keys would pair keys with the wrong types (``{"b": 1, 2: 0}``
  would no longer load) and reorder every restored dict. skops emits keys in an order
  fixed by its code and the objects' own insertion order, which is deterministic.
* The zip is rebuilt with members in sorted order, timestamp 1980-01-01 00:00:00, mode
  0644, Unix as creating system, and no compression (ZIP_STORED): deflate output can
  differ between zlib builds (zlib vs zlib-ng), stored bytes cannot.
"""

from __future__ import annotations

import hashlib
import io
import json
import zipfile
from importlib import import_module, metadata
from pathlib import Path, PurePosixPath
from types import ModuleType
from typing import Any

from churn.errors import ChurnError

SCHEMA = "schema.json"
ZIP_DATE_TIME = (1980, 1, 1, 0, 0, 0)
ZIP_FILE_MODE = 0o100644  # regular file, rw-r--r--
ZIP_SYSTEM_UNIX = 3

# Nodes whose value is immutable and has no child nodes: numbered by content, not identity.
_LEAF_LOADERS = frozenset({"JsonNode", "TypeNode", "FunctionNode"})


# ---------------------------------------------------------------- canonical archive


def _skops_io() -> ModuleType:
    """skops.io, imported when first needed: half a second that the train stage spends
    while its model fits (`tracking.preload`), and commands that never touch a model file
    do not spend at all."""
    return import_module("skops.io")


def _is_node(obj: Any) -> bool:
    return isinstance(obj, dict) and isinstance(obj.get("__loader__"), str)


def _format_error(message: str) -> ChurnError:
    return ChurnError(
        f"Cannot write a deterministic model file: {message} "
        f"(skops {metadata.version('skops')} writes a format churn.core.model_file does not know)."
    )


def _id_free(obj: Any, members: dict[str, bytes]) -> Any:
    """`obj` with ids dropped and file names replaced by a digest of the file's bytes."""
    if isinstance(obj, dict):
        node = _is_node(obj)
        out = {}
        for key, value in obj.items():
            if node and key == "__id__":
                continue
            if node and key == "file" and isinstance(value, str) and value in members:
                out[key] = "sha256:" + hashlib.sha256(members[value]).hexdigest()
            else:
                out[key] = _id_free(value, members)
        return out
    if isinstance(obj, list):
        return [_id_free(value, members) for value in obj]
    return obj


def _sort_sets(obj: Any, members: dict[str, bytes]) -> None:
    """Put the items of every SetNode in an order independent of hashing and ids."""
    if isinstance(obj, dict):
        for value in obj.values():
            _sort_sets(value, members)
        if _is_node(obj) and obj["__loader__"] == "SetNode" and isinstance(obj.get("content"), list):
            obj["content"].sort(
                key=lambda item: json.dumps(_id_free(item, members), sort_keys=True, ensure_ascii=True)
            )
    elif isinstance(obj, list):
        for value in obj:
            _sort_sets(value, members)


class _Renumberer:
    def __init__(self, members: dict[str, bytes]) -> None:
        self.members = members
        self.by_old_id: dict[Any, int] = {}
        self.by_leaf: dict[str, int] = {}
        self.files: dict[str, str] = {}
        self.next_id = 1  # 0 would be falsy, and skops only memoises truthy ids

    def _new_id(self) -> int:
        new = self.next_id
        self.next_id += 1
        return new

    def _renumber(self, node: dict[str, Any]) -> None:
        if "__id__" not in node:
            return
        old = node["__id__"]
        loader = node["__loader__"]
        if loader == "CachedNode":
            if old not in self.by_old_id:
                raise _format_error(f"a CachedNode refers to id {old!r}, which no earlier node has")
            node["__id__"] = self.by_old_id[old]
            return
        if loader in _LEAF_LOADERS:
            key = json.dumps({k: v for k, v in node.items() if k != "__id__"}, sort_keys=True, ensure_ascii=True)
            new = self.by_leaf.get(key)
            if new is None:
                new = self.by_leaf[key] = self.by_old_id.get(old) or self._new_id()
        else:
            new = self.by_old_id.get(old) or self._new_id()
        if self.by_old_id.setdefault(old, new) != new:
            raise _format_error(f"id {old!r} is used by nodes with different content")
        node["__id__"] = new

    def _rename_file(self, node: dict[str, Any]) -> None:
        name = node.get("file")
        if not isinstance(name, str):
            return
        if name not in self.members:
            raise _format_error(f"schema.json refers to file {name!r}, which the archive lacks")
        if name not in self.files:
            suffix = PurePosixPath(name).suffix
            self.files[name] = f"{len(self.files) + 1:05d}{suffix}"
        node["file"] = self.files[name]

    def walk(self, obj: Any) -> None:
        if isinstance(obj, dict):
            if _is_node(obj):
                self._renumber(obj)
                self._rename_file(obj)
            for value in obj.values():
                self.walk(value)
        elif isinstance(obj, list):
            for value in obj:
                self.walk(value)


def _leftovers(obj: Any, old_ids: set[object], old_files: set[str]) -> list[int | str]:
    """Old ids or file names still present anywhere in the rewritten schema."""
    found: list[int | str] = []
    stack: list[Any] = [obj]
    while stack:
        item = stack.pop()
        if isinstance(item, dict):
            stack.extend(item.keys())
            stack.extend(item.values())
        elif isinstance(item, list):
            stack.extend(item)
        elif isinstance(item, bool):
            continue
        elif (isinstance(item, int) and item in old_ids) or (isinstance(item, str) and item in old_files):
            found.append(item)
    return found


def _zip_info(name: str) -> zipfile.ZipInfo:
    info = zipfile.ZipInfo(name, date_time=ZIP_DATE_TIME)
    info.compress_type = zipfile.ZIP_STORED
    info.create_system = ZIP_SYSTEM_UNIX
    info.external_attr = ZIP_FILE_MODE << 16
    return info


def canonicalize(archive: bytes) -> bytes:
    """Rewrite a skops archive so that equal objects give equal bytes."""
    with zipfile.ZipFile(io.BytesIO(archive)) as source:
        members = {name: source.read(name) for name in source.namelist()}
    if SCHEMA not in members:
        raise _format_error("the archive has no schema.json")
    schema = json.loads(members.pop(SCHEMA))

    old_ids = set()
    stack = [schema]
    while stack:
        item = stack.pop()
        if isinstance(item, dict):
            if _is_node(item) and "__id__" in item and not isinstance(item["__id__"], bool):
                old_ids.add(item["__id__"])
            stack.extend(item.values())
        elif isinstance(item, list):
            stack.extend(item)

    _sort_sets(schema, members)
    renumberer = _Renumberer(members)
    renumberer.walk(schema)

    unreferenced = sorted(set(members) - set(renumberer.files))
    if unreferenced:
        raise _format_error(f"archive members {unreferenced} are not referenced by a 'file' field")
    # Small ints are legitimate content (new ids, slice bounds); old ids are id() values.
    # Re-canonicalising a canonical archive maps names and ids onto themselves.
    stale = _leftovers(
        schema,
        {i for i in old_ids if not (isinstance(i, int) and 0 <= i < renumberer.next_id)},
        set(members) - set(renumberer.files.values()),
    )
    if stale:
        raise _format_error(f"schema.json still holds ids or file names after renumbering: {stale[:5]}")

    out_members = {new: members[old] for old, new in renumberer.files.items()}
    out_members[SCHEMA] = json.dumps(schema, separators=(",", ":"), ensure_ascii=True).encode("ascii")

    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", compression=zipfile.ZIP_STORED) as target:
        for name in sorted(out_members):
            target.writestr(_zip_info(name), out_members[name])
    return buffer.getvalue()


def model_to_bytes(model: object) -> bytes:
    """The canonical skops archive of `model`: equal fitted models give equal bytes."""
    return canonicalize(_skops_io().dumps(model))


# ---------------------------------------------------------------- loading


def _read(path_or_bytes: str | Path | bytes) -> tuple[bytes, str]:
    if isinstance(path_or_bytes, (bytes, bytearray, memoryview)):
        return bytes(path_or_bytes), "The model data"
    path = Path(path_or_bytes)
    try:
        return path.read_bytes(), f"Model file {path}"
    except FileNotFoundError:
        raise ChurnError(f"Model file {path} not found: run `dvc repro train` or `dvc pull`.") from None
    except IsADirectoryError:
        raise ChurnError(f"Model file {path} is a directory, not a skops archive.") from None


# Every type a model of the four families (`churn.training.pipeline.CLASSIFIERS`) is
# made of, as "<module>.<name>", exactly: `tests/training/test_model_io.py` fits each family
# and checks that this set is what they produce, no more and no less. A prefix such as
# "numpy." would admit `numpy.testing._private.utils.runstring`, which runs any code.
ALLOWED_TYPES = frozenset({
    "builtins.dict", "builtins.list", "builtins.slice", "builtins.str", "builtins.tuple",
    "numpy.dtype", "numpy.float64", "numpy.int64", "numpy.ndarray", "numpy.uint64",
    "numpy.random._generator.Generator", "numpy.random.mtrand.RandomState",
    "sklearn._loss._loss.CyHalfBinomialLoss", "sklearn._loss.link.Interval",
    "sklearn._loss.link.LogitLink", "sklearn._loss.loss.HalfBinomialLoss",
    "sklearn.compose._column_transformer.ColumnTransformer", "sklearn.dummy.DummyClassifier",
    "sklearn.ensemble._forest.RandomForestClassifier", "sklearn.ensemble._gb.GradientBoostingClassifier",
    "sklearn.ensemble._hist_gradient_boosting.binning._BinMapper",
    "sklearn.ensemble._hist_gradient_boosting.gradient_boosting.HistGradientBoostingClassifier",
    "sklearn.ensemble._hist_gradient_boosting.predictor.TreePredictor",
    "sklearn.impute._base.SimpleImputer", "sklearn.linear_model._logistic.LogisticRegression",
    "sklearn.pipeline.Pipeline", "sklearn.preprocessing._data.StandardScaler",
    "sklearn.preprocessing._encoders.OneHotEncoder", "sklearn.preprocessing._label.LabelEncoder",
    "sklearn.tree._classes.DecisionTreeClassifier", "sklearn.tree._classes.DecisionTreeRegressor",
    "sklearn.tree._tree.Tree",
})
# The skops node kinds those types are written as. Others (FunctionNode, MethodNode,
# PartialNode, OperatorFuncNode, ConstructorFromReduceNode, ...) call something at load.
ALLOWED_LOADERS = frozenset({
    "CachedNode", "DTypeNode", "DictNode", "JsonNode", "ListNode", "LossNode", "NdArrayNode",
    "ObjectNode", "RandomGeneratorNode", "RandomStateNode", "SliceNode", "TreeNode",
    "TupleNode", "TypeNode",
})


def archive_types(data: bytes, what: str = "The model data") -> tuple[set[str], set[str]]:
    """(type names, node kinds) of every node in a skops archive's schema, read as data."""
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as archive:
            schema = json.loads(archive.read(SCHEMA))
    except Exception as exc:  # BadZipFile, KeyError (no schema.json), JSON errors
        raise ChurnError(f"{what} is not a valid skops archive ({type(exc).__name__}: {exc}).") from None
    types: set[str] = set()
    loaders: set[str] = set()
    stack = [schema]
    while stack:
        item = stack.pop()
        if isinstance(item, dict):
            loader = item.get("__loader__")
            if loader is not None:
                loaders.add(str(loader))
                if loader != "CachedNode":  # a back-reference by id: no type of its own
                    types.add(f"{item.get('__module__')}.{item.get('__class__')}")
            stack.extend(item.values())
        elif isinstance(item, list):
            stack.extend(item)
    return types, loaders


def refused_types(data: bytes, what: str = "The model data") -> list[str]:
    """The types and node kinds of an archive outside the allow-lists (empty: loadable)."""
    types, loaders = archive_types(data, what)
    return sorted(types - ALLOWED_TYPES) + sorted(f"{kind} node" for kind in loaders - ALLOWED_LOADERS)


def trusted_types_of(data: bytes, what: str = "The model data") -> list[str]:
    """The types to pass skops as trusted: only after every node passed the allow-lists.

    Raises ChurnError if the archive is not a skops archive, or holds anything else.
    """
    refused = refused_types(data, what)
    if refused:
        raise ChurnError(
            f"{what} contains types that will not be loaded: {', '.join(refused)}. "
            "It is not a model this project wrote, so nothing in it was run. (A new model "
            "family or hyperparameter that needs a new type: add it to ALLOWED_TYPES in "
            f"{__name__} after review.)"
        )
    try:
        untrusted: list[str] = _skops_io().get_untrusted_types(data=data)
    except Exception as exc:  # BadZipFile, KeyError (no schema.json), JSON, protocol errors
        raise ChurnError(f"{what} is not a valid skops archive ({type(exc).__name__}: {exc}).") from None
    # skops' own view must agree: it names nothing the allow-list does not hold.
    outside = [name for name in untrusted if name not in ALLOWED_TYPES]
    if outside:
        raise ChurnError(f"{what} contains types that will not be loaded: {', '.join(outside)}.")
    return untrusted


def load_model(path_or_bytes: str | Path | bytes) -> Any:  # a scikit-learn estimator: sklearn has no types
    """Load a model archive whose every node is of an allowed type (`ALLOWED_TYPES`)."""
    data, what = _read(path_or_bytes)
    trusted = trusted_types_of(data, what)
    try:
        return _skops_io().loads(data, trusted=trusted)
    except Exception as exc:
        raise ChurnError(
            f"{what} is not a valid skops archive, or was written by an incompatible "
            f"skops/scikit-learn version ({type(exc).__name__}: {exc}). "
            "Run `dvc repro train` to rebuild it."
        ) from None

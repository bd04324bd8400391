"""The registry tests' project cache (`CHURN_TEST_REGISTRY_CACHE`, used by `make mutation`)."""

from __future__ import annotations

import json

from . import conftest


def test_one_build_per_code_key_and_other_keys_left_alone(tmp_path, monkeypatch):
    builds = []

    def fake_build(path):
        builds.append(path.name)
        (path / "md5s.json").write_text(json.dumps({"base": path.name}))

    monkeypatch.setattr(conftest, "build_project", fake_build)
    monkeypatch.setattr(conftest, "code_key", lambda: "mutated-copy")
    first = conftest.cached_project(tmp_path)
    assert conftest.cached_project(tmp_path) == first and builds == ["mutated-copy"]

    monkeypatch.setattr(conftest, "code_key", lambda: "checkout")
    other = conftest.cached_project(tmp_path)
    assert other != first and builds == ["mutated-copy", "checkout"]
    assert json.loads((first / "md5s.json").read_text()) == {"base": "mutated-copy"}  # not rebuilt

    (other / "md5s.json").unlink()  # a build that was interrupted before its last file
    (other / "half-written").write_text("")
    assert conftest.cached_project(tmp_path) == other and builds[-1] == "checkout" and len(builds) == 3
    assert not (other / "half-written").exists()

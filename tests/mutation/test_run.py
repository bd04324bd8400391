"""The mutation-testing verdict: every in-scope mutant killed or reviewed as equivalent."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.mutation.run import EQUIVALENT, SCOPE, Equivalent, in_scope, judge, parse_results, patterns, read_equivalents

RESULTS = """\
    churn.registry.promotion.x_promote__mutmut_1: killed
    churn.registry.promotion.x_promote__mutmut_2: timeout
    churn.registry.promotion.x_rollback__mutmut_7: survived
    churn.validation.stage.x_run__mutmut_3: survived
    churn.core.model_file.x_canonicalize__mutmut_9: no tests
    churn.core.model_file.x_load_model__mutmut_4: no tests
"""


def diff(name: str) -> str:
    return {"churn.registry.promotion.x_rollback__mutmut_7": "        previous = None"}.get(name, "")


def test_survivors_in_scope_fail_and_out_of_scope_functions_do_not_count():
    verdict = judge(parse_results(RESULTS), [], diff)
    assert not verdict.passed
    named = [p for p in verdict.problems if "no mutant has a result" not in p]
    assert named == [
        "churn.core.model_file.x_load_model__mutmut_4: no tests",
        "churn.registry.promotion.x_rollback__mutmut_7: survived",
    ]
    # modules in scope without any result were not tested at all: that fails too
    assert "churn.core.contract: no mutant has a result (not run, or the module moved: update SCOPE)" in verdict.problems
    assert verdict.counts["churn.registry.promotion"] == {"total": 3, "killed": 2, "timeout": 1, "survived": 1}
    assert "churn.validation.stage" not in verdict.counts  # the validate stage is out of scope
    assert verdict.counts["churn.core.model_file"]["total"] == 1  # canonicalize() is out of scope


def every_module_killed(extra: str) -> str:
    return "".join(f"    {module}.x_load_model__mutmut_1: killed\n" for module in SCOPE) + extra


def test_a_reviewed_equivalent_is_excused_only_while_it_still_writes_that_line():
    results = every_module_killed("    churn.registry.promotion.x_rollback__mutmut_7: survived\n")
    entry = Equivalent("churn.registry.promotion.x_rollback__mutmut_7", "previous = None", "why")
    assert judge(parse_results(results), [entry], diff).passed
    moved = Equivalent(entry.name, "previous = current", "why")
    (problem,) = judge(parse_results(results), [moved], diff).problems
    assert "no longer does" in problem


@pytest.mark.parametrize("status", ["not checked", "no tests", "suspicious"])
def test_an_equivalent_entry_excuses_only_a_mutant_that_ran_and_survived(status):
    results = every_module_killed(f"    churn.registry.promotion.x_rollback__mutmut_7: {status}\n")
    entry = Equivalent("churn.registry.promotion.x_rollback__mutmut_7", "previous = None", "why")
    verdict = judge(parse_results(results), [entry], diff)
    assert verdict.problems == [f"churn.registry.promotion.x_rollback__mutmut_7: {status}"]
    assert verdict.counts["churn.registry.promotion"]["equivalent"] == 0


def test_stale_entries_fail():
    results = every_module_killed("    churn.registry.promotion.x_rollback__mutmut_7: killed\n")
    entries = [Equivalent("churn.registry.promotion.x_rollback__mutmut_7", "x", "why"),
               Equivalent("churn.registry.promotion.x_gone__mutmut_1", "x", "why")]
    problems = judge(parse_results(results), entries, diff).problems
    assert any("a test kills it now" in p for p in problems)
    assert any("not a mutant in scope" in p for p in problems)


def test_no_results_is_a_failure_not_a_pass():
    assert not judge({}, [], diff).passed


def test_the_reviewed_file_parses_and_names_only_mutants_in_scope():
    entries = read_equivalents()
    assert entries and all(in_scope(e.name) for e in entries), entries
    assert all(e.why.strip() for e in entries)


def test_a_malformed_entry_is_refused(tmp_path):
    bad = tmp_path / "equivalent.md"
    bad.write_text("- `churn.registry.promotion.x_promote__mutmut_1`: no mutated line given\n")
    with pytest.raises(SystemExit, match="expected"):
        read_equivalents(bad)
    assert EQUIVALENT.is_file()


def test_the_scope_matches_the_files_mutmut_mutates():
    import tomllib

    config = tomllib.loads((Path(__file__).resolve().parents[2] / "pyproject.toml").read_text())["tool"]["mutmut"]
    files = {path.removeprefix("src/").removesuffix(".py").replace("/", ".") for path in config["only_mutate"]}
    modules = {pattern.split(".x_")[0].removesuffix(".*") for pattern in patterns()}
    assert modules == files
    for path in config["only_mutate"]:
        assert (Path(__file__).resolve().parents[2] / path).is_file(), path


def test_a_mutant_that_only_deletes_a_line_is_named_by_what_it_removes():
    from tests.mutation.run import added_lines

    deletion = "--- a.py\n+++ a.py\n@@ -1,3 +1,2 @@\n     columns,\n-        strict=False,\n     coerce=False,\n"
    assert added_lines(deletion) == "without strict=False,"
    change = "--- a.py\n+++ a.py\n@@ -1 +1 @@\n-        coerce=False,\n+        coerce=None,\n"
    assert added_lines(change).splitlines() == ["        coerce=None,", "without coerce=False,"]


def test_every_function_in_scope_exists():
    import ast

    root = Path(__file__).resolve().parents[2] / "src"
    for module, functions in SCOPE.items():
        tree = ast.parse((root / (module.replace(".", "/") + ".py")).read_text())
        defined = {node.name for node in ast.walk(tree) if isinstance(node, ast.FunctionDef)}
        missing = [name for name in functions if name != "*" and name not in defined]
        assert not missing, f"{module}: {missing} (renamed or removed: update SCOPE)"

"""`make mutation`: run mutmut on the safety-critical code, then hold the result to account.

Every mutant in scope must be killed (a test fails; a timeout counts, the mutant hung the
tests) or be listed in equivalent.md beside this file with the mutated line and one line of
why. Anything else (survived, no test reaches it, not checked, suspicious) fails the run,
and so does an equivalent.md entry whose mutant no longer shows that line (the code moved:
review it again). mutmut runs from a copy of the tree in mutants/; see [tool.mutmut] in
pyproject.toml for the files it mutates and the tests it may run.

    python -m tests.mutation.run            # mutate, test, check (what `make mutation` does)
    python -m tests.mutation.run --check    # only check the results of the last run
"""

from __future__ import annotations

import argparse
import fnmatch
import re
import subprocess
import sys
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
EQUIVALENT = Path(__file__).with_name("equivalent.md")

# module -> functions in scope ("*": all of it). Only what decides whether a model ships or
# which data is accepted: the rest of these files (say, the model file's canonical writer)
# is tested, but not held to every mutant.
SCOPE: dict[str, tuple[str, ...]] = {
    "churn.validation.gates": ("*",),
    "churn.core.verdict": ("*",),
    "churn.registry.challenge": ("*",),
    "churn.registry.promotion": ("*",),
    "churn.core.contract": ("*",),
    "churn.core.model_file": ("_read", "archive_types", "refused_types", "trusted_types_of", "load_model"),
    "churn.monitoring.trigger": ("*",),
    "churn.validation.leakage": ("*",),
}
DETECTED = {"killed", "timeout", "caught by type check"}
ENTRY = re.compile(r"^- `(?P<name>[^`]+)` \u2014 `(?P<line>[^`]+)`: (?P<why>\S.*)$")


def patterns() -> list[str]:
    globs = []
    for module, functions in SCOPE.items():
        for function in functions:
            globs.append(f"{module}.*" if function == "*" else f"{module}.x_{function}__mutmut_*")
    return globs


def in_scope(name: str) -> bool:
    return any(fnmatch.fnmatchcase(name, pattern) for pattern in patterns())


def module_of(name: str) -> str:
    return next(module for module in SCOPE if name.startswith(module + "."))


@dataclass(frozen=True)
class Equivalent:
    name: str
    line: str
    why: str


def read_equivalents(path: Path = EQUIVALENT) -> list[Equivalent]:
    entries = []
    for number, text in enumerate(path.read_text().splitlines(), 1):
        if not text.startswith("- `"):
            continue
        match = ENTRY.match(text)
        if not match:
            raise SystemExit(f"{path.name}:{number}: expected - `mutant` \u2014 `mutated line`: why")
        entries.append(Equivalent(match["name"], match["line"], match["why"]))
    return entries


def parse_results(text: str) -> dict[str, str]:
    """`mutmut results --all true` lines ("    name: status") as {name: status}."""
    statuses = {}
    for line in text.splitlines():
        name, sep, status = line.strip().rpartition(": ")
        if sep and name.startswith("churn."):
            statuses[name] = status
    return statuses


@dataclass
class Verdict:
    counts: dict[str, Counter]
    problems: list[str]

    @property
    def passed(self) -> bool:
        return not self.problems


def judge(statuses: dict[str, str], equivalents: list[Equivalent], mutated_line) -> Verdict:
    """Hold every in-scope mutant to account. `mutated_line(name)` gives the mutant's diff."""
    counts: dict[str, Counter] = {module: Counter() for module in SCOPE}
    problems = []
    excused = {entry.name: entry for entry in equivalents}
    scoped = {name: status for name, status in statuses.items() if in_scope(name)}
    if not scoped:
        problems.append("no mutant in scope has a result: did mutmut run?")
    for name, status in sorted(scoped.items()):
        module = module_of(name)
        counts[module]["total"] += 1
        if status in DETECTED:
            counts[module]["killed"] += 1
            counts[module]["timeout"] += status == "timeout"
        elif name in excused and status == "survived":  # not run, or no test reaches it: not reviewed
            if excused[name].line not in mutated_line(name):
                problems.append(f"{name}: equivalent.md says it changes `{excused[name].line}`, it no longer does: review it again")
            else:
                counts[module]["equivalent"] += 1
        else:
            counts[module][status.replace(" ", "_")] += 1
            problems.append(f"{name}: {status}")
    for module, count in counts.items():
        if scoped and not count["total"]:
            problems.append(f"{module}: no mutant has a result (not run, or the module moved: update SCOPE)")
    for name in sorted(set(excused) - set(scoped)):
        problems.append(f"{name}: listed in equivalent.md but not a mutant in scope any more: remove or update it")
    for name in sorted(set(excused) & set(scoped)):
        if scoped[name] in DETECTED:
            problems.append(f"{name}: listed in equivalent.md but a test kills it now: remove it")
    return Verdict(counts, problems)


def table(verdict: Verdict) -> str:
    lines = [
        "| module | mutants | killed (of which timeouts) | equivalent | not accounted for |",
        "| --- | ---: | ---: | ---: | ---: |",
    ]
    totals: Counter = Counter()
    for module, count in verdict.counts.items():
        other = count["total"] - count["killed"] - count["equivalent"]
        lines.append(f"| `{module}` | {count['total']} | {count['killed']} ({count['timeout']}) | "
                     f"{count['equivalent']} | {other} |")
        totals.update(count)
    other = totals["total"] - totals["killed"] - totals["equivalent"]
    lines.append(f"| all | {totals['total']} | {totals['killed']} ({totals['timeout']}) | {totals['equivalent']} | {other} |")
    return "\n".join(lines)


def added_lines(diff: str) -> str:
    """What a mutant's diff changes: the lines it writes, then "without <line>" for each line
    it deletes (how an entry names a mutant that only removes code)."""
    lines = diff.splitlines()
    added = [line[1:] for line in lines if line.startswith("+") and not line.startswith("+++")]
    removed = [f"without {line[1:].strip()}" for line in lines if line.startswith("-") and not line.startswith("---")]
    return "\n".join(added + removed)


def mutmut(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([str(Path(sys.executable).with_name("mutmut")), *args], cwd=ROOT,
                          capture_output=True, text=True)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="only check the last run's results")
    parser.add_argument("--max-children", default="2")
    args = parser.parse_args(argv)
    if not args.check:
        run = subprocess.run([str(Path(sys.executable).with_name("mutmut")), "run", "--max-children",
                              args.max_children, *patterns()], cwd=ROOT)
        if run.returncode != 0:
            print(f"mutmut run failed (exit {run.returncode})", file=sys.stderr)
            return run.returncode
    results = mutmut("results", "--all", "true")
    if results.returncode != 0:
        print(results.stdout + results.stderr, file=sys.stderr)
        return results.returncode
    verdict = judge(parse_results(results.stdout), read_equivalents(), lambda name: added_lines(mutmut("show", name).stdout))
    summary = table(verdict)
    print(summary)
    (ROOT / "mutants").mkdir(exist_ok=True)
    (ROOT / "mutants" / "summary.md").write_text(summary + "\n")
    if verdict.problems:
        print("\nMutants neither killed nor reviewed as equivalent (kill them with a test, or add them to "
              f"{EQUIVALENT.relative_to(ROOT)} with the mutated line and why):")
        print("\n".join(f"  {problem}" for problem in verdict.problems))
        return 1
    print("\nEvery mutant in scope is killed or reviewed as equivalent.")
    return 0


if __name__ == "__main__":
    sys.exit(main())

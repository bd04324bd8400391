"""The CI/CD definitions: security lint, schemas, and that every command they call exists.

Covers `.github/workflows/*.yml` and `azure-pipelines.yml`:
- zizmor (offline) reports nothing of medium severity or above, and still catches a bad
  workflow (so a silent zizmor cannot pass this);
- both files validate against check-jsonschema's bundled vendor schemas;
- every `make <target>` and `churn <subcommand>` in a `run:`/`script:`/`bash:` step exists
  in the Makefile and in `churn.cli.build_parser()`;
- hygiene: actions pinned to a full commit SHA with a version comment, timeouts and
  permissions on every job, no `pull_request_target`, no persisted checkout credentials,
  no secrets outside the steps that need them, the promotion and fork-comment rules.
"""

from __future__ import annotations

import json
import os
import re
import shlex
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

REPO = Path(__file__).resolve().parents[2]
WORKFLOW_DIR = REPO / ".github" / "workflows"
WORKFLOWS = sorted([*WORKFLOW_DIR.glob("*.yml"), *WORKFLOW_DIR.glob("*.yaml")])
AZURE = REPO / "azure-pipelines.yml"
AZURE_MONITOR = REPO / "azure-pipelines.monitor.yml"
AZURE_PIPELINES = [AZURE, AZURE_MONITOR]
RETRAIN_PR = REPO / "scripts" / "retrain_pr.sh"
MAKEFILE = REPO / "Makefile"

# zizmor findings deliberately silenced with an inline `# zizmor: ignore[...]` comment, and why.
ALLOWED_ZIZMOR_IGNORES = {
    # The fork-comment workflow needs a write token for a PR whose run had none; it never
    # checks out or runs the PR's code and treats the artifact as data.
    ("pr-comment.yml", "dangerous-triggers"),
}


# Jobs that may write more than a PR comment, and what: the monitor's retraining job pushes
# one bot branch and opens its pull request (test_monitor_workflow checks how).
ALLOWED_WRITERS = {
    ("monitor.yml", "retrain"): {"contents", "pull-requests"},
}


# --------------------------------------------------------------------------- helpers


def _tool(name: str) -> str:
    beside_python = Path(sys.executable).parent / name
    found = str(beside_python) if beside_python.is_file() else shutil.which(name)
    if not found:
        pytest.skip(f"{name} is not installed (it comes with the dev extra in requirements.lock)")
    return found


def _run(*args: str, timeout: int = 120) -> subprocess.CompletedProcess:
    env = {**os.environ, "NO_COLOR": "1", "ZIZMOR_OFFLINE": "1"}
    return subprocess.run(args, cwd=REPO, capture_output=True, text=True, timeout=timeout, env=env)


def _load(path: Path) -> dict:
    return yaml.safe_load(path.read_text())


def _triggers(doc: dict) -> dict:
    # PyYAML reads the bare key `on` as the boolean True (YAML 1.1).
    on = doc.get("on", doc.get(True))
    if isinstance(on, str):
        return {on: None}
    if isinstance(on, list):
        return {name: None for name in on}
    return on or {}


def _jobs(path: Path) -> dict:
    return _load(path).get("jobs") or {}


def _steps(job: dict) -> list[dict]:
    return job.get("steps") or []


def _workflow(name: str) -> Path:
    path = WORKFLOW_DIR / name
    assert path.is_file(), f"missing workflow {path.relative_to(REPO)}"
    return path


def _rel(path: Path) -> str:
    return str(path.relative_to(REPO))


# ------------------------------------------------------ shell command extraction

_SHELL_KEYS = ("run", "script", "bash", "sh")
_REDIRECTS = {">", ">>", "<", "<<", "<<<", ">&", "<&", "&>", "&>>", ">|", "<>"}
_SEPARATORS = {";", ";;", "&", "&&", "|", "||", "|&", "(", ")"}
_PREFIX_WORDS = {
    "!", "{", "}", "if", "then", "else", "elif", "while", "until", "do",
    "time", "exec", "command", "builtin", "env", "nohup", "sudo",
}
_SKIP_COMMANDS = {"for", "case", "select", "function"}
_ASSIGNMENT = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*=")


def shell_scripts(node, where: str = "") -> Iterator[tuple[str, str]]:
    """(location, script) for every shell step in a parsed workflow or pipeline."""
    if isinstance(node, dict):
        for key, value in node.items():
            here = f"{where}/{key}" if where else str(key)
            if key in _SHELL_KEYS and isinstance(value, str):
                yield here, value
            else:
                yield from shell_scripts(value, here)
    elif isinstance(node, list):
        for index, item in enumerate(node):
            label = item.get("name") or item.get("displayName") if isinstance(item, dict) else None
            yield from shell_scripts(item, f"{where}[{label or index}]")


def _substitutions(word: str) -> Iterator[str]:
    """The bodies of `$( ... )` command substitutions inside one (quoted) word."""
    start = word.find("$(")
    while start != -1:
        depth, index = 0, start + 1
        while index < len(word):
            if word[index] == "(":
                depth += 1
            elif word[index] == ")":
                depth -= 1
                if depth == 0:
                    yield word[start + 2 : index]
                    break
            index += 1
        start = word.find("$(", index)


def simple_commands(script: str) -> Iterator[list[str]]:
    """Split a shell script into simple commands (lists of words), good enough for CI steps.

    Handles line continuations, quoting, `;`/`&&`/`||`/`|`/subshells, redirections,
    leading `VAR=value` assignments and keywords, and `$( ... )` substitutions.
    """
    script = re.sub(r"\\\r?\n", " ", script)
    for line in script.splitlines():
        lexer = shlex.shlex(line, posix=True, punctuation_chars=True)
        lexer.whitespace_split = True
        try:
            tokens = list(lexer)
        except ValueError as exc:  # unbalanced quotes: say where, do not guess
            raise AssertionError(f"cannot parse shell line {line!r}: {exc}") from exc
        words: list[str] = []
        skip_next = False
        for token in tokens:
            if skip_next:
                skip_next = False
                continue
            if token in _REDIRECTS:
                skip_next = True
                continue
            if token in _SEPARATORS or set(token) <= set(";&|()"):
                if words:
                    yield words
                words = []
                continue
            for inner in _substitutions(token):
                yield from simple_commands(inner)
            words.append(token)
        if words:
            yield words


def _command_words(words: list[str]) -> list[str]:
    index = 0
    while index < len(words) and (words[index] in _PREFIX_WORDS or _ASSIGNMENT.match(words[index])):
        index += 1
    rest = words[index:]
    if rest and rest[0] in _SKIP_COMMANDS:
        return []
    return rest


def invocations(script: str) -> Iterator[tuple[str, str]]:
    """("make", target) and ("churn", subcommand) for every call in a shell script."""
    for raw in simple_commands(script):
        words = _command_words(raw)
        if not words:
            continue
        program = words[0].rsplit("/", 1)[-1]
        args = words[1:]
        if (re.fullmatch(r"python[0-9.]*", program) and args[:1] == ["-m"] and len(args) > 1
                and args[1] in ("churn", "churn.cli")):
            program, args = "churn", args[2:]
        if program in ("make", "gmake"):
            yield from (("make", target) for target in _make_targets(args))
        elif program == "churn":
            sub = _churn_subcommand(args)
            if sub is not None:
                yield "churn", sub


def _make_targets(args: list[str]) -> Iterator[str]:
    takes_value = {"-C", "-f", "-o", "-W", "-I", "--directory", "--file", "--makefile"}
    index = 0
    while index < len(args):
        word = args[index]
        if word in takes_value:
            index += 2
            continue
        if word == "-j" and index + 1 < len(args) and args[index + 1].isdigit():
            index += 2
            continue
        if not word.startswith("-") and not _ASSIGNMENT.match(word):
            yield word
        index += 1


def _churn_subcommand(args: list[str]) -> str | None:
    index = 0
    while index < len(args):
        word = args[index]
        if word == "--params":
            index += 2
            continue
        if word.startswith("-"):
            index += 1
            continue
        return word
    return None


def makefile_targets() -> set[str]:
    targets = set()
    for line in MAKEFILE.read_text().splitlines():
        match = re.match(r"^([A-Za-z0-9_][A-Za-z0-9_.\-/]*)\s*:(?![:=])", line)
        if match:
            targets.add(match.group(1))
    return targets


def churn_subcommands() -> set[str]:
    import argparse

    from churn.cli import build_parser

    parser = build_parser()
    for action in parser._actions:  # argparse offers no public accessor for subparsers
        if isinstance(action, argparse._SubParsersAction):
            return set(action.choices)
    raise AssertionError("churn.cli.build_parser() has no subcommands")


def all_invocations() -> list[tuple[str, str, str, str]]:
    """(file, location, kind, name) for every make/churn call in every CI definition."""
    found = []
    for path in [*WORKFLOWS, *AZURE_PIPELINES]:
        for where, script in shell_scripts(_load(path)):
            for kind, name in invocations(script):
                found.append((_rel(path), where, kind, name))
    return found


# ------------------------------------------------------------------ the extractor


def test_extractor_reads_the_shapes_used_in_ci():
    script = "\n".join([
        "set -euo pipefail",
        'UV_CACHE_DIR="$(python -m pip cache dir)/uv" make install',
        "make -j 2 test-fast VERBOSE=1",
        ".venv/bin/churn gate || exit 1",
        "if [ -n \"$X\" ]; then .venv/bin/dvc repro; .venv/bin/churn --params p.yaml summary >> \"$GITHUB_STEP_SUMMARY\"; fi",
        "npx --yes @dvcorg/cml@0.20.4 comment update \\",
        "  --target=pr report.md",
        ".venv/bin/churn report \\",
        '  --base "origin/$BASE_REF"',
        'echo "the word make here is text" # make nothing',
        'version="$(churn which)"',
        "{ echo '```'; $PWD/.venv/bin/churn promote; } > out.md 2>&1",
        "python -m churn challenge",
        "env MLFLOW_TRACKING_URI=x churn ensure-data",
    ])
    assert list(invocations(script)) == [
        ("make", "install"),
        ("make", "test-fast"),
        ("churn", "gate"),
        ("churn", "summary"),
        ("churn", "report"),
        ("churn", "which"),
        ("churn", "promote"),
        ("churn", "challenge"),
        ("churn", "ensure-data"),
    ]


def test_extractor_finds_steps_in_both_formats():
    github = {"jobs": {"a": {"steps": [{"name": "x", "run": "make run"}, {"uses": "o/r@x"}]}}}
    azure = {"stages": [{"jobs": [{"steps": [{"script": "make test"}, {"bash": "churn gate"}]}]}]}
    assert [s for _, s in shell_scripts(github)] == ["make run"]
    assert [s for _, s in shell_scripts(azure)] == ["make test", "churn gate"]


def test_the_checks_below_catch_unknown_commands():
    bogus = list(invocations("make deploy-everything && .venv/bin/churn launch-rocket"))
    assert ("make", "deploy-everything") in bogus and "deploy-everything" not in makefile_targets()
    assert ("churn", "launch-rocket") in bogus and "launch-rocket" not in churn_subcommands()


# --------------------------------------------------------- commands that must exist


def test_ci_definitions_exist():
    names = {path.name for path in WORKFLOWS}
    assert {"pr.yml", "main.yml", "pr-comment.yml", "mutation.yml", "monitor.yml"} <= names, names
    assert all(path.is_file() for path in AZURE_PIPELINES)


def test_every_make_target_exists_in_the_makefile():
    targets = makefile_targets()
    assert {"install", "test", "run"} <= targets, targets
    missing = [f"{file}: {where}: make {name}" for file, where, kind, name in all_invocations()
               if kind == "make" and name not in targets]
    assert not missing, "make targets the CI calls but the Makefile lacks:\n" + "\n".join(missing)


def test_every_churn_subcommand_exists_in_the_cli():
    known = churn_subcommands()
    missing = [f"{file}: {where}: churn {name}" for file, where, kind, name in all_invocations()
               if kind == "churn" and name not in known]
    assert not missing, (
        "churn subcommands the CI calls but churn.cli.build_parser() lacks:\n" + "\n".join(missing)
    )


@pytest.mark.parametrize(
    ("file", "expected"),
    [
        (".github/workflows/pr.yml", {("make", "install"), ("make", "test"), ("make", "run"),
                                      ("churn", "ensure-data"), ("churn", "gate"), ("churn", "challenge"),
                                      ("churn", "report")}),
        (".github/workflows/main.yml", {("make", "install"), ("make", "test"), ("make", "run"),
                                        ("churn", "challenge"), ("churn", "promote"), ("churn", "summary")}),
        (".github/workflows/mutation.yml", {("make", "install"), ("make", "mutation")}),
        ("azure-pipelines.yml", {("make", "install"), ("make", "test"), ("make", "run"), ("churn", "gate"),
                                 ("churn", "report"), ("churn", "challenge"), ("churn", "promote")}),
        (".github/workflows/monitor.yml", {("make", "install"), ("churn", "monitor"), ("churn", "ensure-data"),
                                           ("churn", "refresh")}),
        ("azure-pipelines.monitor.yml", {("make", "install"), ("churn", "monitor"), ("churn", "ensure-data"),
                                         ("churn", "refresh")}),
    ],
)
def test_the_pipelines_call_the_stages(file, expected):
    called = {(kind, name) for f, _, kind, name in all_invocations() if f == file}
    assert expected <= called, f"{file} does not call {sorted(expected - called)}"


# ------------------------------------------------------------------ zizmor, schemas


def _zizmor_findings(*targets: str, persona: str = "regular") -> tuple[subprocess.CompletedProcess, list[dict]]:
    result = _run(_tool("zizmor"), "--offline", "--no-progress", "--format", "json",
                  "--persona", persona, "--min-severity", "medium", *targets)
    try:
        findings = json.loads(result.stdout or "[]")
    except json.JSONDecodeError:
        pytest.fail(f"zizmor did not print JSON (exit {result.returncode}):\n{result.stdout}\n{result.stderr}")
    return result, findings


def _describe(finding: dict) -> str:
    severity = finding.get("determinations", {}).get("severity", "?")
    places = []
    for location in finding.get("locations", []):
        path = location.get("symbolic", {}).get("key", {}).get("Local", {}).get("verbatim_path", "?")
        row = location.get("concrete", {}).get("location", {}).get("start_point", {}).get("row")
        places.append(f"{path}:{row + 1 if row is not None else '?'}")
    return f"[{severity}] {finding.get('ident')}: {finding.get('desc')} at {', '.join(places)}"


def test_zizmor_reports_nothing_medium_or_above():
    result, findings = _zizmor_findings(_rel(WORKFLOW_DIR))
    assert not findings, "zizmor findings:\n" + "\n".join(_describe(f) for f in findings)
    assert result.returncode == 0, result.stderr


def test_zizmor_auditor_persona_reports_nothing_medium_or_above():
    # The auditor persona adds pedantic audits, among them secrets-outside-env: every
    # secret must come from a GitHub environment, where branch rules and reviewers apply.
    result, findings = _zizmor_findings(_rel(WORKFLOW_DIR), persona="auditor")
    assert not findings, "zizmor --persona auditor findings:\n" + "\n".join(_describe(f) for f in findings)
    assert result.returncode == 0, result.stderr


def test_zizmor_auditor_catches_a_repository_level_secret(tmp_path):
    bad = tmp_path / "bad.yml"
    bad.write_text(
        "on: push\n"
        "permissions: {}\n"
        "jobs:\n"
        "  x:\n"
        "    runs-on: ubuntu-latest\n"
        "    permissions: {}\n"
        "    steps:\n"
        "      - run: make\n"
        "        env:\n"
        "          TOKEN: ${{ secrets.TOKEN }}\n"
    )
    _result, findings = _zizmor_findings(str(bad), persona="auditor")
    assert "secrets-outside-env" in {finding["ident"] for finding in findings}, findings


def test_zizmor_still_catches_a_bad_workflow(tmp_path):
    bad = tmp_path / "bad.yml"
    bad.write_text(
        "on: pull_request_target\n"
        "jobs:\n"
        "  x:\n"
        "    runs-on: ubuntu-latest\n"
        "    steps:\n"
        "      - uses: actions/checkout@v4\n"
        "        with:\n"
        "          ref: ${{ github.event.pull_request.head.sha }}\n"
        "      - run: echo \"${{ github.event.pull_request.title }}\"\n"
    )
    result, findings = _zizmor_findings(str(bad))
    idents = {finding["ident"] for finding in findings}
    assert result.returncode != 0 and {"template-injection", "dangerous-triggers"} <= idents, idents


def test_only_the_reviewed_zizmor_ignores():
    found = set()
    for path in WORKFLOWS:
        for match in re.finditer(r"zizmor:\s*ignore\[([^\]]+)\]", path.read_text()):
            found |= {(path.name, ident.strip()) for ident in match.group(1).split(",")}
    assert found <= ALLOWED_ZIZMOR_IGNORES, f"unreviewed zizmor ignores: {sorted(found - ALLOWED_ZIZMOR_IGNORES)}"


def test_workflows_match_the_github_schema():
    result = _run(_tool("check-jsonschema"), "--builtin-schema", "vendor.github-workflows",
                  *[_rel(path) for path in WORKFLOWS])
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.parametrize("azure", AZURE_PIPELINES, ids=lambda p: p.name)
def test_azure_pipeline_matches_its_schema(azure):
    # The bundled Azure schema has a branch-name pattern with the escape `\:`, which is
    # invalid in ECMAScript's unicode mode (check-jsonschema's default, via regress, crashes
    # on it); the non-unicode ECMAScript dialect reads the schema as its authors meant.
    result = _run(_tool("check-jsonschema"), "--regex-variant", "nonunicode",
                  "--builtin-schema", "vendor.azure-pipelines", _rel(azure))
    assert result.returncode == 0, result.stdout + result.stderr


# ------------------------------------------------------------------------- hygiene

_USES_LINE = re.compile(r"^\s*(?:-\s+)?uses:\s*(?P<ref>[^\s#]+)(?P<rest>.*)$")
_PINNED = re.compile(r"^[A-Za-z0-9_.-]+/[A-Za-z0-9_./-]+@[0-9a-f]{40}$")
_VERSION_COMMENT = re.compile(r"^\s+#\s*v\d+(\.\d+){0,2}\b")


def _uses(node) -> Iterator[str]:
    if isinstance(node, dict):
        for key, value in node.items():
            if key == "uses" and isinstance(value, str):
                yield value
            else:
                yield from _uses(value)
    elif isinstance(node, list):
        for item in node:
            yield from _uses(item)


@pytest.mark.parametrize("path", WORKFLOWS, ids=lambda p: p.name)
def test_actions_are_pinned_to_a_commit_with_its_version(path):
    lines = [(number, _USES_LINE.match(line)) for number, line in enumerate(path.read_text().splitlines(), 1)]
    lines = [(number, match) for number, match in lines if match]
    assert len(lines) == len(list(_uses(_load(path)))), "a `uses:` the line scan did not see"
    problems = []
    for number, match in lines:
        ref = match.group("ref").strip("'\"")
        if ref.startswith("./"):
            continue
        if not _PINNED.match(ref):
            problems.append(f"{path.name}:{number}: {ref} is not pinned to a 40-hex commit SHA")
        elif not _VERSION_COMMENT.match(match.group("rest")):
            problems.append(f"{path.name}:{number}: {ref} has no `# vX.Y.Z` version comment")
    assert not problems, "\n".join(problems)


@pytest.mark.parametrize("path", WORKFLOWS, ids=lambda p: p.name)
def test_permissions_timeouts_and_triggers(path):
    doc = _load(path)
    assert "pull_request_target" not in _triggers(doc), f"{path.name} uses pull_request_target"
    top = doc.get("permissions")
    assert top is not None, f"{path.name}: no top-level permissions"
    assert top == {} or top == "read-all" or (
        isinstance(top, dict) and set(top.values()) <= {"read", "none"}
    ), f"{path.name}: top-level permissions {top!r} are not read-only"
    for job_id, job in _jobs(path).items():
        assert "timeout-minutes" in job, f"{path.name}: job {job_id} has no timeout-minutes"
        assert "permissions" in job, f"{path.name}: job {job_id} has no permissions"
        writes = {scope for scope, level in (job["permissions"] or {}).items() if level == "write"}
        if (path.name, job_id) in ALLOWED_WRITERS:
            assert writes <= ALLOWED_WRITERS[(path.name, job_id)], f"{path.name}: job {job_id} writes {writes}"
            continue
        assert writes <= {"pull-requests"}, f"{path.name}: job {job_id} writes {writes}"
        if "pull-requests" in writes:
            scripts = " ".join(s for _, s in shell_scripts(job))
            assert re.search(r"\bcml(\.js\"?|@[\w.]+)? comment (update|create)", scripts), (
                f"{path.name}: job {job_id} may write to PRs but posts no comment"
            )


@pytest.mark.parametrize("path", WORKFLOWS, ids=lambda p: p.name)
def test_checkouts_do_not_persist_credentials(path):
    for job_id, job in _jobs(path).items():
        for step in _steps(job):
            if str(step.get("uses", "")).startswith("actions/checkout@"):
                assert (step.get("with") or {}).get("persist-credentials") is False, (
                    f"{path.name}: job {job_id} checks out with persisted credentials"
                )


@pytest.mark.parametrize("path", WORKFLOWS, ids=lambda p: p.name)
def test_secrets_only_where_needed(path):
    doc = _load(path)
    assert "secrets." not in json.dumps(doc.get("env") or {}), f"{path.name}: secrets in workflow-level env"
    for job_id, job in _jobs(path).items():
        assert "secrets." not in json.dumps(job.get("env") or {}), f"{path.name}: {job_id}: secrets in job-level env"
        for step in _steps(job):
            if "make test" in str(step.get("run", "")):
                assert "secrets." not in json.dumps(step), f"{path.name}: {job_id}: the test suite sees secrets"


@pytest.mark.parametrize("path", WORKFLOWS, ids=lambda p: p.name)
def test_no_expressions_inside_shell_scripts(path):
    # Values reach scripts through env: variables, never by `${{ }}` text substitution.
    offenders = [where for where, script in shell_scripts(_load(path)) if "${{" in script]
    assert not offenders, f"{path.name}: `${{{{ }}}}` inside run: {offenders}"


# ------------------------------------------------------------------ workflow design


def test_pr_workflow():
    path = _workflow("pr.yml")
    doc = _load(path)
    assert {"pull_request", "workflow_dispatch"} <= set(_triggers(doc))
    assert doc["concurrency"]["cancel-in-progress"] is True
    jobs = _jobs(path)
    assert jobs["train"]["needs"] == "test"
    steps = _steps(jobs["train"])
    checkout = next(s for s in steps if str(s.get("uses", "")).startswith("actions/checkout@"))
    assert checkout["with"]["fetch-depth"] == 0
    python = next(s for s in steps if str(s.get("uses", "")).startswith("actions/setup-python@"))
    assert python["with"] == {"python-version": "3.11", "cache": "pip", "cache-dependency-path": "requirements.lock"}
    runs = [str(s.get("run", "")) for s in steps]
    index = {name: next(i for i, r in enumerate(runs) if needle in r) for name, needle in (
        ("challenge", "churn challenge"), ("report", "churn report"),
        ("comment", "comment update"), ("fail", 'exit "$status"'),
    )}
    assert index["challenge"] < index["report"] < index["comment"] < index["fail"], index
    comment = steps[index["comment"]]
    assert "head.repo.full_name != github.repository" in jobs["train"]["env"]["IS_FORK"]
    assert "IS_FORK != 'true'" in comment["if"]
    assert '--watermark-title="churn pipeline report"' in comment["run"]
    assert 'report --base "origin/$BASE_REF"' in runs[index["report"]]
    uploads = [s for s in steps if str(s.get("uses", "")).startswith("actions/upload-artifact@")]
    assert {u["with"]["name"] for u in uploads} == {"pipeline-report", "pr-report"}
    report_paths = next(u for u in uploads if u["with"]["name"] == "pipeline-report")["with"]["path"]
    for needed in ("report.md", "report/", "reports/drift_report.html"):
        assert needed in report_paths


def test_pull_requests_cannot_poison_what_main_trusts():
    """PR jobs never push the run-cache, never register a model, log to their own
    experiment and get their (read-only) credentials from their own environment; the
    jobs that write the run-cache and the registry run in main-only environments."""
    pr = _jobs(_workflow("pr.yml"))
    for job_id, job in pr.items():
        scripts = "\n".join(s for _, s in shell_scripts(job))
        assert "dvc push" not in scripts, f"pr.yml: {job_id} pushes to the DVC remote"
        for raw in simple_commands(scripts):
            words = _command_words(raw)
            if not words or words[0].rsplit("/", 1)[-1] != "churn":
                continue
            if "challenge" in words:
                assert "--compare-only" in words, f"pr.yml: {job_id} may register: {words}"
            assert not {"promote", "rollback"} & set(words), f"pr.yml: {job_id} moves @champion: {words}"
        if "secrets." in json.dumps(job):
            assert job.get("environment") == "pr-review", f"pr.yml: {job_id} reads secrets outside pr-review"
    assert pr["train"]["env"]["MLFLOW_EXPERIMENT_NAME"] != "churn"
    main = _jobs(_workflow("main.yml"))
    assert main["train"]["environment"] == "main-train"
    assert main["deploy"]["environment"] == "model-registry"
    for job_id, job in main.items():
        scripts = "\n".join(s for _, s in shell_scripts(job))
        if "churn promote" in scripts or "churn rollback" in scripts:
            assert job.get("environment") == "model-registry", f"main.yml: {job_id} moves @champion outside Deploy"
    assert "MLFLOW_EXPERIMENT_NAME" not in json.dumps(main)


def test_pr_comment_workflow_never_runs_pr_code():
    path = _workflow("pr-comment.yml")
    doc = _load(path)
    trigger = _triggers(doc)
    assert set(trigger) == {"workflow_run"}
    assert trigger["workflow_run"]["workflows"] == [_load(_workflow("pr.yml"))["name"]]
    (job,) = _jobs(path).values()
    # The one checkout: this repository's default branch (the workflow_run context's
    # commit, never the PR's), sparse to the pinned CML install.
    for step in _steps(job):
        if str(step.get("uses", "")).startswith("actions/checkout@"):
            settings = step.get("with", {})
            assert settings.get("sparse-checkout") == ".github/cml", "checks out more than the CML lock"
            assert "ref" not in settings and "repository" not in settings, "checks out another commit"
    scripts = "\n".join(s for _, s in shell_scripts(job))
    assert ".venv" not in scripts and not list(invocations(scripts)), "runs project code"
    assert job["permissions"] == {"actions": "read", "pull-requests": "write"}
    assert "head_repository.full_name != github.repository" in job["if"]
    assert "^[1-9][0-9]{0,9}$" in scripts, "the PR number from the artifact is not validated"
    assert "RUN_HEAD_SHA" in scripts, "the PR is not matched to the run that made the artifact"
    assert "--no-publish" in scripts, "CML would upload local files named by an untrusted report"


def test_main_workflow():
    path = _workflow("main.yml")
    doc = _load(path)
    assert {"push", "workflow_dispatch"} <= set(_triggers(doc))
    assert _triggers(doc)["push"]["branches"] == ["main"]
    jobs = _jobs(path)
    assert jobs["train"]["needs"] == "test" and jobs["deploy"]["needs"] == "train"
    # An `if:` without a status function keeps the implicit success(); it must not widen that.
    condition = jobs["deploy"].get("if", "")
    assert not any(word in condition for word in ("always()", "failure()", "cancelled()")), condition
    assert "refs/heads/main" in condition, "only main may promote"
    assert jobs["deploy"]["concurrency"]["cancel-in-progress"] is False
    assert doc["concurrency"]["cancel-in-progress"] is False
    train = "\n".join(s for _, s in shell_scripts(jobs["train"]))
    assert "dvc repro --pull --allow-missing" in train and "dvc push --run-cache" in train
    deploy = [str(s.get("run", "")) for s in _steps(jobs["deploy"])]
    challenge = next(i for i, r in enumerate(deploy) if "churn challenge" in r)
    promote = next(i for i, r in enumerate(deploy) if "churn promote" in r)
    summary = next(i for i, r in enumerate(deploy) if "churn summary" in r)
    assert challenge < promote < summary
    assert any("No MLFLOW_TRACKING_URI secret" in r for r in deploy)


def test_azure_pipeline_stages():
    doc = _load(AZURE)
    stages = {stage["stage"]: stage for stage in doc["stages"]}
    assert list(stages) == ["Test", "Train", "Deploy"]
    assert stages["Train"]["dependsOn"] == "Test"
    assert stages["Deploy"]["dependsOn"] == "Train"
    condition = stages["Deploy"]["condition"]
    assert "succeeded()" in condition and "refs/heads/main" in condition
    for stage in stages.values():
        for job in stage["jobs"]:
            assert "timeoutInMinutes" in job, f"{stage['stage']}: job without timeoutInMinutes"
            tasks = [step.get("task") for step in job["steps"]]
            assert "UsePythonVersion@0" in tasks
    assert "MLFLOW_TRACKING_URI" in AZURE.read_text()


def test_mutation_workflow():
    path = _workflow("mutation.yml")
    doc = _load(path)
    triggers = _triggers(doc)
    assert {"schedule", "workflow_dispatch", "push"} <= set(triggers)
    (cron,) = [entry["cron"] for entry in triggers["schedule"]]
    assert len(cron.split()) == 5 and cron.split()[2:4] == ["*", "*"] and cron.split()[4] != "*", (
        f"not weekly: {cron}"
    )
    assert triggers["push"] == {"tags": ["v*"]}, "runs before a release (a version tag), on nothing else"
    assert doc["permissions"] == {}
    (job,) = _jobs(path).values()
    assert job["permissions"] == {"contents": "read"}
    scripts = "\n".join(s for _, s in shell_scripts(job))
    assert ("make", "mutation") in set(invocations(scripts))
    # The run must fail the job: no `|| true`, no continue-on-error on the mutation step.
    step = next(s for s in _steps(job) if "make mutation" in str(s.get("run", "")))
    assert "||" not in step["run"] and not step.get("continue-on-error")
    assert "secrets." not in path.read_text()


def test_monitor_workflow():
    path = _workflow("monitor.yml")
    doc = _load(path)
    triggers = _triggers(doc)
    assert set(triggers) == {"schedule", "workflow_dispatch"}
    assert triggers["schedule"] and all("cron" in entry for entry in triggers["schedule"])
    assert doc["concurrency"]["cancel-in-progress"] is False
    jobs = _jobs(path)
    assert set(jobs) == {"monitor", "retrain"}
    assert jobs["monitor"]["permissions"] == {"contents": "read"}
    monitor = [str(s.get("run", "")) for s in _steps(jobs["monitor"])]
    # The check's exit code decides: 1 = fired, 0 = quiet, anything else fails the run.
    check = next(r for r in monitor if "churn monitor --check" in r)
    assert "fired=true" in check and "fired=false" in check and 'exit "$status"' in check
    assert any(r.strip().endswith("churn monitor") for r in monitor)
    assert any("INFERENCE_LOG_URL" in r and "missing" in r for r in monitor), "an unconfigured monitor must fail"
    uploads = [s for s in _steps(jobs["monitor"]) if str(s.get("uses", "")).startswith("actions/upload-artifact@")]
    dashboard = next(u for u in uploads if "reports/monitoring.html" in u["with"]["path"])
    assert dashboard.get("if") == "${{ !cancelled() }}"

    retrain = jobs["retrain"]
    assert retrain["needs"] == "monitor"
    assert "needs.monitor.outputs.fired == 'true'" in retrain["if"] and "refs/heads/main" in retrain["if"]
    runs = [str(s.get("run", "")) for s in _steps(retrain)]
    refresh = next(i for i, r in enumerate(runs) if "churn refresh" in r)
    pr = next(i for i, r in enumerate(runs) if "scripts/retrain_pr.sh" in r)
    assert refresh < pr and "dvc push" in runs[refresh], "the snapshot must reach the remote before the PR"
    assert "RETRAIN_PR_TOKEN" in json.dumps(_steps(retrain)[pr])


def test_azure_monitor_pipeline():
    doc = _load(AZURE_MONITOR)
    assert doc["trigger"] == "none" and doc["pr"] == "none" and doc["schedules"]
    (job,) = doc["jobs"]
    assert "timeoutInMinutes" in job
    scripts = [step.get("bash", "") for step in job["steps"]]
    check = next(s for s in scripts if "churn monitor --check" in s)
    assert "FIRED]true" in check and 'exit "$status"' in check
    pr_step = next(step for step in job["steps"] if "scripts/retrain_pr.sh" in step.get("bash", ""))
    assert "churn refresh" in pr_step["bash"] and "dvc push" in pr_step["bash"]
    assert "eq(variables['FIRED'], 'true')" in pr_step["condition"] and "refs/heads/main" in pr_step["condition"]


def test_the_retraining_pr_script_pushes_only_its_own_branch():
    text = RETRAIN_PR.read_text()
    pushes = [line.strip() for line in text.splitlines() if line.strip().startswith("git push")]
    assert pushes == ['git push --quiet --force origin "HEAD:refs/heads/$branch"'], pushes
    assert 'branch="${RETRAIN_BRANCH:-monitor/retrain}"' in text
    assert 'git check-ref-format --branch "$branch"' in text


@pytest.mark.parametrize("name", ["pr.yml", "main.yml"])
def test_workflows_pass_the_s3_endpoint_variable_to_dvc_and_mlflow(name):
    """Non-AWS S3 (team mode): one variable, exported to every step that runs DVC or MLflow."""
    doc = _load(_workflow(name))
    assert doc["env"]["AWS_ENDPOINT_URL"] == "${{ vars.AWS_ENDPOINT_URL }}"
    for job_name, job in _jobs(_workflow(name)).items():
        assert "AWS_ENDPOINT_URL" not in job.get("env", {}), f"{job_name} overrides the endpoint"


def test_azure_pipeline_documents_the_s3_endpoint_variable():
    # A plain pipeline variable reaches every script as an environment variable on its own;
    # mapping it in `env:` would turn an undefined one into the literal text "$(AWS_ENDPOINT_URL)".
    text = AZURE.read_text()
    assert "AWS_ENDPOINT_URL" in text.split("trigger:")[0]
    assert "$(AWS_ENDPOINT_URL)" not in text

def test_azure_pull_requests_cannot_poison_main():
    stages = {stage["stage"]: stage for stage in _load(AZURE)["stages"]}
    train = "\n".join(s for _, s in shell_scripts(stages["Train"]))
    for raw in simple_commands(train):
        words = _command_words(raw)
        if words and words[0].rsplit("/", 1)[-1] == "churn" and "challenge" in words:
            assert "--compare-only" in words, f"Train may register: {words}"
    push = train.index("dvc push --run-cache")
    guard = train.rfind('if [ "$(Build.Reason)" != "PullRequest" ]', 0, push)
    assert guard != -1 and "fi" not in train[guard:push].split(), "PR builds push the run-cache"
    assert "MLFLOW_EXPERIMENT_NAME=churn-pr" in train


# ------------------------------------------------------------------ CML, pinned


CML_DIR = REPO / ".github" / "cml"


def test_cml_is_installed_from_a_pinned_commit_with_a_hash_for_every_dependency():
    install = (CML_DIR / "install.sh").read_text()
    commit = re.search(r"^CML_COMMIT=([0-9a-f]+)", install, re.M)
    assert commit and len(commit.group(1)) == 40, "CML is not pinned to a full commit SHA"
    assert "npm ci" in install and "--ignore-scripts" in install
    lock = json.loads((CML_DIR / "package-lock.json").read_text())
    assert lock["packages"][""]["name"] == "@dvcorg/cml"
    unpinned = [
        name for name, entry in lock["packages"].items()
        if name and not entry.get("link") and not str(entry.get("integrity", "")).startswith("sha512-")
    ]
    assert not unpinned, f"lockfile entries without a sha512 integrity: {unpinned[:5]}"


@pytest.mark.parametrize("path", WORKFLOWS, ids=lambda p: p.name)
def test_cml_runs_only_from_the_pinned_install(path):
    for job_id, job in _jobs(path).items():
        scripts = [script for _, script in shell_scripts(job)]
        joined = "\n".join(scripts)
        assert "npx" not in joined and "@dvcorg/cml" not in joined, f"{path.name}: {job_id} runs CML unpinned"
        posts = [i for i, script in enumerate(scripts) if re.search(r"\bcml\.js\"? comment", script)]
        installs = [i for i, script in enumerate(scripts) if "cml/install.sh" in script]
        if posts:
            assert installs and min(installs) < min(posts), f"{path.name}: {job_id} posts before installing CML"

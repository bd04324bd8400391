#!/usr/bin/env bash
# Open or update THE retraining pull request after `churn refresh` (monitor.yml and
# azure-pipelines.monitor.yml call this; it is plain git + GitHub CLI, so it runs the same
# on both).
#
#   scripts/retrain_pr.sh VERDICT_JSON [REFRESH_OUTPUT]
#
# VERDICT_JSON is `churn monitor --check`'s reports/monitor_verdict.json; its `reasons` make
# the title ("Retrain: <reasons>") and the body. REFRESH_OUTPUT (optional) is what
# `churn refresh` printed, quoted in the body. The .dvc files `churn refresh` changed are
# committed on one bot branch (RETRAIN_BRANCH, default monitor/retrain), rebuilt from the
# checked-out main each time and force-pushed, and one open pull request from it into
# RETRAIN_BASE (default main) is created or, when it exists, retitled and rewritten. The
# snapshot itself must already be in the team's DVC remote (the caller runs `dvc push`).
#
# Needs GH_TOKEN: a token that may push that branch and write pull requests. GitHub does
# not start workflows for pull requests opened with the workflow's own GITHUB_TOKEN, so give
# a GitHub App or fine-grained token (RETRAIN_PR_TOKEN) for the review workflow to run on it.
set -euo pipefail

verdict="${1:?usage: scripts/retrain_pr.sh VERDICT_JSON [REFRESH_OUTPUT]}"
refresh_output="${2:-}"
branch="${RETRAIN_BRANCH:-monitor/retrain}"
base="${RETRAIN_BASE:-main}"
python="${PYTHON:-python3}"

if [ -z "${GH_TOKEN:-}" ]; then
  echo "error: GH_TOKEN is not set: the retraining pull request needs a token that can push $branch and write pull requests" >&2
  exit 2
fi
git check-ref-format --branch "$branch" > /dev/null
git check-ref-format --branch "$base" > /dev/null
[ -f "$verdict" ] || { echo "error: $verdict not found: run \`churn monitor --check\` first" >&2; exit 2; }

mapfile -t changed < <(git status --porcelain -- '*.dvc' | sed -E 's/^.{3}//')
if [ "${#changed[@]}" -eq 0 ]; then
  echo "churn refresh changed no .dvc file: no pull request to open"
  exit 0
fi

# One line of reasons for the title, a list for the body; a verdict without reasons is an error.
reasons="$("$python" - "$verdict" <<'PY'
import json, sys
reasons = json.load(open(sys.argv[1])).get("reasons") or []
if not reasons:
    sys.exit(f"error: {sys.argv[1]} has no reasons: the retraining rule did not fire")
print("; ".join(str(r).replace("\n", " ") for r in reasons))
PY
)"
title="Retrain: $reasons"
if [ "${#title}" -gt 240 ]; then
  title="${title:0:237}..."
fi

body="$(mktemp)"
trap 'rm -f "$body"' EXIT
{
  echo "The monitor's retraining rule fired on the champion (\`churn monitor --check\`):"
  echo
  "$python" - "$verdict" <<'PY'
import json, sys
for reason in json.load(open(sys.argv[1])).get("reasons") or []:
    print(f"- {reason}")
PY
  echo
  echo "\`churn refresh\` built the next raw snapshot from labelled predictions in the inference log:"
  echo
  if [ -n "$refresh_output" ] && [ -f "$refresh_output" ]; then
    echo '```'
    cat "$refresh_output"
    echo '```'
  fi
  echo
  echo "Changed: ${changed[*]} (the snapshot is in the team DVC remote; its provenance is in the file's \`meta\`)."
  echo
  echo "This pull request goes through the review workflow (reproduce, gate, challenge, report)."
  echo "Merging it retrains on main and promotes the new model if it beats the champion."
} > "$body"

git config user.name "churn-monitor"
git config user.email "churn-monitor@users.noreply.github.com"
git switch --quiet -C "$branch"
git add -- "${changed[@]}"
{ echo "$title"; echo; cat "$body"; } | git commit --quiet -F -
gh auth setup-git
git push --quiet --force origin "HEAD:refs/heads/$branch"

number="$(gh pr list --head "$branch" --base "$base" --state open --json number --jq '.[0].number // empty')"
if [ -n "$number" ]; then
  gh pr edit "$number" --title "$title" --body-file "$body"
  echo "updated pull request #$number: $title"
else
  gh pr create --base "$base" --head "$branch" --title "$title" --body-file "$body"
  echo "opened a pull request: $title"
fi

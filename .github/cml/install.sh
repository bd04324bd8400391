#!/usr/bin/env bash
# Install CML (the PR-comment tool) with every byte pinned: its source by git commit, each
# of its npm dependencies by the sha512 recorded in package-lock.json beside this script
# (`npm ci` refuses any tarball whose hash differs, and any lockfile that does not match
# the package.json of that commit). `npx @dvcorg/cml@x.y.z` would pin the top package
# only and resolve its dependency ranges afresh on every run.
#
# The lockfile is upstream's v0.20.6 lockfile with `resolved`/`integrity` filled in for the
# entries it lists without them (npm's registry metadata for those exact versions).
#
#   .github/cml/install.sh DIR    ->  node DIR/bin/cml.js comment update ...
set -euo pipefail
CML_COMMIT=a3a66c74b218b08710f42bf599b066e37cb4cba7 # tag v0.20.6, CML's last release
CML_REPO=${CML_REPO:-https://github.com/iterative/cml}
target=${1:?usage: install.sh DIR}
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)

git init --quiet "$target"
git -C "$target" fetch --quiet --depth 1 "$CML_REPO" "$CML_COMMIT"
git -C "$target" -c advice.detachedHead=false checkout --quiet FETCH_HEAD
test "$(git -C "$target" rev-parse HEAD)" = "$CML_COMMIT"
cp "$here/package-lock.json" "$target/package-lock.json"
npm ci --prefix "$target" --omit=dev --ignore-scripts --no-audit --no-fund
node "$target/bin/cml.js" --version

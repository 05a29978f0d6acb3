#!/usr/bin/env bash
# The whole suite: setup, static checks, generated-file checks, unit, integration and end-to-end tests.
# Ends with one line `N passed, N failed` (static checks count as one test each; skipped and todo tests count as
# failed) and exits non-zero on any failure.
set -uo pipefail
cd "$(dirname "$0")/.."

bash hack/setup.sh test || { echo "setup failed"; echo "0 passed, 1 failed"; exit 1; }

passed=0
failed=0
check() {
  local name=$1
  shift
  if "$@"; then
    passed=$((passed + 1))
    echo "check ok: $name"
  else
    failed=$((failed + 1))
    echo "check FAILED: $name"
  fi
}

check "typecheck" npx tsc -p tsconfig.json --noEmit
check "eslint" npx eslint .
check "prettier" npx prettier --check --log-level warn .
check "import rules" npx tsx hack/check-imports.ts
check "generated CRDs and API reference (docs/reference) are current" npx tsx crds/generate.ts --check
check "generated protos are current" npx tsx proto/generate.ts --check
check "generated chart files are current" npx tsx helm/generate.ts --check
check "generated Argo CD health checks are current" npx tsx argocd/generate.ts --check

results=$(mktemp)
# --forceExit: a handle some test leaks must not hang CI until its time limit; failures are still failures.
NODE_OPTIONS=--experimental-vm-modules npx jest --selectProjects unit --forceExit --json --outputFile="$results.unit" 2>&1
unit_rc=$?
# Integration and end-to-end tests boot real QEMU guests under TCG on a 2-core machine: one file at a time.
NODE_OPTIONS=--experimental-vm-modules npx jest --selectProjects integration --runInBand --forceExit --json --outputFile="$results.int" 2>&1
int_rc=$?

# "passed failed skipped" of a jest --json result file; nothing (and a non-zero status) when jest crashed before
# writing it. Suites that failed to run count as failed tests; todo tests count as skipped.
summary() {
  node -e 'const r=JSON.parse(require("fs").readFileSync(process.argv[1],"utf8"));
console.log(r.numPassedTests, r.numFailedTests + r.numRuntimeErrorTestSuites, r.numPendingTests + r.numTodoTests)' \
    "$1" 2>/dev/null
}

# tally <run> <json file> <jest exit status>: adds one jest run to the totals; a skipped test, a crash without
# results and a failing exit without a failed test each count as failures, with a line saying why.
tally() {
  local run=$1 file=$2 rc=$3 counts p f s
  if ! counts=$(summary "$file") || [ -z "$counts" ]; then
    failed=$((failed + 1))
    echo "$run tests: jest exited with $rc and wrote no results (crashed?)"
    return
  fi
  read -r p f s <<<"$counts"
  passed=$((passed + p))
  failed=$((failed + f))
  if [ "$s" -gt 0 ]; then
    failed=$((failed + s))
    echo "$run tests: $s skipped tests: a skipped test hides a missing feature"
  fi
  if [ "$rc" -ne 0 ] && [ "$f" -eq 0 ]; then
    failed=$((failed + 1))
    echo "$run tests: jest exited with $rc without a failed test"
  fi
}
tally unit "$results.unit" "$unit_rc"
tally integration "$results.int" "$int_rc"
rm -f "$results" "$results.unit" "$results.int"

echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]

#!/usr/bin/env bash
# The whole suite: setup, static checks, generated-file checks, unit, integration and end-to-end tests.
# Ends with one line `N passed, N failed` (static checks count as one test each) and exits non-zero on any failure.
set -uo pipefail
cd "$(dirname "$0")/.."

bash hack/setup.sh || { echo "setup failed"; echo "0 passed, 1 failed"; exit 1; }

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
check "generated CRDs are current" npx tsx crds/generate.ts --check
check "generated protos are current" npx tsx proto/generate.ts --check

results=$(mktemp)
# --forceExit: a handle some test leaks must not hang CI until its time limit; failures are still failures.
NODE_OPTIONS=--experimental-vm-modules npx jest --selectProjects unit --forceExit --json --outputFile="$results.unit" 2>&1
unit_rc=$?
# Integration and end-to-end tests boot real QEMU guests under TCG on a 2-core machine: one file at a time.
NODE_OPTIONS=--experimental-vm-modules npx jest --selectProjects integration --runInBand --forceExit --json --outputFile="$results.int" 2>&1
int_rc=$?

count() { node -e 'const r=JSON.parse(require("fs").readFileSync(process.argv[1],"utf8"));console.log(r[process.argv[2]]+(process.argv[2]==="numFailedTests"?r.numRuntimeErrorTestSuites:0))' "$1" "$2" 2>/dev/null || echo 0; }
for f in "$results.unit" "$results.int"; do
  passed=$((passed + $(count "$f" numPassedTests)))
  failed=$((failed + $(count "$f" numFailedTests)))
done
[ "$unit_rc" -eq 0 ] || [ "$failed" -gt 0 ] || failed=$((failed + 1))
[ "$int_rc" -eq 0 ] || [ "$failed" -gt 0 ] || failed=$((failed + 1))
rm -f "$results" "$results.unit" "$results.int"

echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]

#!/usr/bin/env bash
# `npm run demo`: set up what is missing, then run the local-cluster live-migration demo (hack/demo/main.ts).
set -euo pipefail
cd "$(dirname "$0")/.."
bash hack/setup.sh
exec npx tsx hack/demo/main.ts "$@"

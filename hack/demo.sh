#!/usr/bin/env bash
# `npm run demo`: set up what the demo needs and is missing (hack/setup.sh demo), then run the live-migration demo
# on the local cluster (test/demo/main.ts).
# `npm run demo -- --down` only removes the cluster.
set -euo pipefail
cd "$(dirname "$0")/.."
case " $* " in
*" --down "*) ;;
*) bash hack/setup.sh demo ;;
esac
exec npx tsx test/demo/main.ts "$@"

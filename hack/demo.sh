#!/usr/bin/env bash
# `npm run demo`: set up what is missing, then run the live-migration demo on the local cluster (test/demo/main.ts).
# `npm run demo -- --down` only removes the cluster.
set -euo pipefail
cd "$(dirname "$0")/.."
case " $* " in
*" --down "*) ;;
*) bash hack/setup.sh ;;
esac
exec npx tsx test/demo/main.ts "$@"

#!/usr/bin/env bash
# Installs or builds what a command needs, by the project itself. Idempotent; a warm run takes seconds.
#   bash hack/setup.sh demo   what `npm run demo` and `npm run cluster` use: QEMU and the packages the test guest is
#                             built from, kube-apiserver, etcd and kubectl, the kernel-boot test guest
#   bash hack/setup.sh test   (the default; `npm test`, so CI through .ci/run, and `npm run setup`) all of the demo's,
#                             and what only tests use: helm, the kstatus checker, Prometheus, Lua 5.1, mmdebstrap
#                             (the image), kubelet, kube-scheduler, kube-controller-manager, containerd and the
#                             kubelet cluster's images, the test guest's bootable disk image
set -euo pipefail
cd "$(dirname "$0")/.."

profile=${1:-test}
case $profile in
demo | test) ;;
*)
  echo "setup: error: unknown profile '$profile' (demo or test)" >&2
  exit 2
  ;;
esac

export TERN_CACHE="${TERN_CACHE:-$HOME/.cache/tern}"
mkdir -p "$TERN_CACHE"

step() { printf 'setup: %s\n' "$*"; }
LOG_DIR=$TERN_CACHE/logs
mkdir -p "$LOG_DIR"
start=$(date +%s)

step "Debian packages for the $profile (QEMU >= 10 from bookworm-backports, kernel, busybox, ...)"
bash hack/install-packages.sh "$profile"

# The test daemons and the local cluster run their guests' QEMU as this user (--qemu-user), as the Helm chart runs it
# as a uid of its own: a system user without home or shell, created once.
if [ "$(id -u)" = 0 ] && ! id -u tern-qemu >/dev/null 2>&1; then
  step "user tern-qemu (the unprivileged user QEMU drops to)"
  useradd --system --user-group --no-create-home --home-dir /nonexistent --shell /usr/sbin/nologin tern-qemu
fi

# npm ci only when the installed packages are not the ones package-lock.json pins (compared by content: a fresh
# checkout's lock file is newer than node_modules without being different).
npm_current() {
  [ -f node_modules/.package-lock.json ] || return 1
  node -e '
const { readFileSync } = require("fs");
const want = JSON.parse(readFileSync("package-lock.json", "utf8")).packages;
const have = JSON.parse(readFileSync("node_modules/.package-lock.json", "utf8")).packages;
const stale = Object.entries(want).filter(([path, entry]) =>
  path !== "" && (have[path] ? have[path].version !== entry.version : !entry.optional));
process.exit(stale.length === 0 ? 0 : 1);'
}
if ! npm_current; then
  step "npm ci"
  npm ci --no-audit --no-fund >"$LOG_DIR/npm-ci.log" 2>&1 || {
    echo "setup: error: cannot install the npm dependencies with npm ci (full log: $LOG_DIR/npm-ci.log)" >&2
    exit 1
  }
fi

if [ "$profile" = demo ]; then
  step "kube-apiserver, etcd and kubectl in $TERN_CACHE/bin"
  bash hack/build-k8s.sh etcd kube-apiserver kubectl
  step "test guest in $TERN_CACHE/guest (kernel boot)"
  bash guest/build.sh
else
  step "kube-apiserver, kubelet, kube-scheduler, kube-controller-manager, etcd, kubectl, helm and the kstatus checker in $TERN_CACHE/bin"
  bash hack/build-k8s.sh
  step "the kubelet cluster's OCI images (pause, busybox) in $TERN_CACHE/images"
  bash test/kubelet-cluster/build-images.sh
  step "test guest in $TERN_CACHE/guest (kernel boot, and the bootable disk image)"
  bash guest/build.sh
  bash guest/build-disk.sh
fi
step "$profile ready in $(($(date +%s) - start)) s"

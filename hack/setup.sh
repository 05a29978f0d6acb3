#!/usr/bin/env bash
# Everything the tests and the demo need, installed or built by the project itself. Idempotent; a warm run takes seconds.
set -euo pipefail
cd "$(dirname "$0")/.."

export TERN_CACHE="${TERN_CACHE:-$HOME/.cache/tern}"
mkdir -p "$TERN_CACHE"

step() { printf 'setup: %s\n' "$*"; }
LOG_DIR=$TERN_CACHE/logs
mkdir -p "$LOG_DIR"

step "Debian packages (QEMU >= 10 from bookworm-backports, kernel, busybox, syslinux)"
bash hack/install-packages.sh

# The test daemons and the local cluster run their guests' QEMU as this user (--qemu-user), as the Helm chart runs it
# as a uid of its own: a system user without home or shell, created once.
if [ "$(id -u)" = 0 ] && ! id -u tern-qemu >/dev/null 2>&1; then
  step "user tern-qemu (the unprivileged user QEMU drops to)"
  useradd --system --user-group --no-create-home --home-dir /nonexistent --shell /usr/sbin/nologin tern-qemu
fi

if [ ! -d node_modules ] || [ package-lock.json -nt node_modules/.package-lock.json ]; then
  step "npm ci"
  npm ci --no-audit --no-fund >"$LOG_DIR/npm-ci.log" 2>&1 || {
    echo "setup: error: cannot install the npm dependencies with npm ci (full log: $LOG_DIR/npm-ci.log)" >&2
    exit 1
  }
fi

step "kube-apiserver, kubelet, kube-scheduler, kube-controller-manager, etcd, kubectl, helm and the kstatus checker in $TERN_CACHE/bin"
bash hack/build-k8s.sh

step "the kubelet cluster's OCI images (pause, busybox) in $TERN_CACHE/images"
bash test/kubelet-cluster/build-images.sh

step "test guest in $TERN_CACHE/guest (kernel boot, and the bootable disk image)"
bash guest/build.sh
bash guest/build-disk.sh

#!/usr/bin/env bash
# Installs the Debian packages of a setup profile (hack/setup.sh): `demo` or `test` (default: everything the tests
# need). Idempotent: does nothing when all are present.
# QEMU comes from bookworm-backports: Debian 12's own QEMU 7.2 corrupts guests during TCG live migration.
# apt-get's output goes to logs under $TERN_CACHE/logs; a failure prints one line that points at its log.
set -euo pipefail

QEMU_MIN_MAJOR=10
# What the demo and the local cluster need: the test guest is built from busybox-static, the kernel, kmod, xz-utils,
# cpio, gzip and gcc (its agent); iproute2 makes the cluster's network namespaces; openssl its certificates.
DEMO_PACKAGES=(busybox-static linux-image-amd64 kmod xz-utils cpio gzip iproute2 openssl gcc libc6-dev make)
# What only the tests need on top:
# syslinux ... faketime: the bootable disk image of the test guest (guest/build-disk.sh).
# prometheus: the chart's alert rules and dashboard queries are checked against it (and promtool); the tests start
# their own server on a free loopback port (the package's service, where systemd starts one, is not used).
# lua5.1: the Argo CD health checks (argocd/) run in the interpreter Argo CD embeds (Lua 5.1) by
# test/integration/gitops/.
# containerd ... iptables: the kubelet cluster's nodes (test/harness/kubelet-cluster.ts;
# docs/kubelet-cluster.md): Debian 12's containerd 1.6 and runc 1.1 serve kubelet 1.37 (its last release that falls
# back to the configured cgroup driver for a runtime without the RuntimeConfig call), the CNI bridge/host-local/loopback
# plugins (/usr/lib/cni), and iptables (the portmap plugin's hostPort rules; kube-proxy later). The packages' services
# are not used (no systemd here; the harness starts one containerd per node with its own config).
# tcpdump: bench:switchover captures the guests' bridge to split the client's gap after the resume
# (test/bench/switchover/network.ts; without it the bench skips the capture figures).
TEST_PACKAGES=(syslinux syslinux-common mtools dosfstools fdisk faketime prometheus lua5.1
  containerd runc containernetworking-plugins iptables tcpdump)
# mmdebstrap (tests only): the image's Debian root filesystem (hack/image/, npm run image); the backport bootstraps
# trixie as the image's digests were taken with (its version is part of the cached Debian layer's key).
case ${1:-test} in
demo) PACKAGES=("${DEMO_PACKAGES[@]}") BACKPORTS_PACKAGES=(qemu-system-x86 qemu-utils) ;;
test) PACKAGES=("${DEMO_PACKAGES[@]}" "${TEST_PACKAGES[@]}") BACKPORTS_PACKAGES=(qemu-system-x86 qemu-utils mmdebstrap) ;;
*) echo "setup: error: install-packages.sh: unknown profile '$1' (demo or test)" >&2 && exit 2 ;;
esac
LOG_DIR=${TERN_CACHE:-$HOME/.cache/tern}/logs

die() {
  echo "setup: error: $*" >&2
  exit 1
}

# logged <log name> <error line> <command...>: runs the command with its output in the log.
logged() {
  local log=$LOG_DIR/$1.log what=$2
  shift 2
  "$@" >"$log" 2>&1 || die "$what (full log: $log)"
}

qemu_ok() {
  command -v qemu-system-x86_64 >/dev/null || return 1
  local major
  major=$(qemu-system-x86_64 --version | sed -n 's/^QEMU emulator version \([0-9]*\)\..*/\1/p')
  [ "${major:-0}" -ge "$QEMU_MIN_MAJOR" ]
}

packages_ok() {
  local p
  for p in "${PACKAGES[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || return 1
  done
}

if qemu_ok && packages_ok && command -v mmdebstrap >/dev/null; then
  exit 0
fi

if [ "$(id -u)" -ne 0 ]; then
  die "cannot install the missing Debian packages without root; install as root: ${PACKAGES[*]} ${BACKPORTS_PACKAGES[*]} (from bookworm-backports)"
fi

codename=$(. /etc/os-release && echo "${VERSION_CODENAME:-bookworm}")
sources=/etc/apt/sources.list.d/tern-backports.sources
if [ ! -f "$sources" ]; then
  cat >"$sources" <<SRC
Types: deb
URIs: http://deb.debian.org/debian
Suites: ${codename}-backports
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg
SRC
fi

export DEBIAN_FRONTEND=noninteractive
mkdir -p "$LOG_DIR"
logged apt-get-update "cannot update the Debian package lists with apt-get update" \
  apt-get update
logged apt-get-install "cannot install the Debian packages ${PACKAGES[*]}" \
  apt-get install -y --no-install-recommends "${PACKAGES[@]}"
logged apt-get-install-backports "cannot install ${BACKPORTS_PACKAGES[*]} from ${codename}-backports" \
  apt-get install -y --no-install-recommends -t "${codename}-backports" "${BACKPORTS_PACKAGES[@]}"

if ! qemu_ok; then
  die "cannot find QEMU >= ${QEMU_MIN_MAJOR} after installing it, found: $(qemu-system-x86_64 --version | head -1)"
fi
echo "packages: $(qemu-system-x86_64 --version | head -1)"

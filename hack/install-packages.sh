#!/usr/bin/env bash
# Installs the Debian packages Tern's tests, guests and demo need. Idempotent: does nothing when all are present.
# QEMU comes from bookworm-backports: Debian 12's own QEMU 7.2 corrupts guests during TCG live migration.
set -euo pipefail

QEMU_MIN_MAJOR=10
PACKAGES=(busybox-static linux-image-amd64 kmod xz-utils cpio gzip iproute2 openssl gcc libc6-dev make)
BACKPORTS_PACKAGES=(qemu-system-x86 qemu-utils)

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

if qemu_ok && packages_ok; then
  exit 0
fi

if [ "$(id -u)" -ne 0 ]; then
  echo "hack/install-packages.sh: missing Debian packages and not root; install as root: ${PACKAGES[*]} ${BACKPORTS_PACKAGES[*]} (from bookworm-backports)" >&2
  exit 1
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
apt-get update -qq
apt-get install -y -qq --no-install-recommends "${PACKAGES[@]}" >/dev/null
apt-get install -y -qq --no-install-recommends -t "${codename}-backports" "${BACKPORTS_PACKAGES[@]}" >/dev/null

if ! qemu_ok; then
  echo "hack/install-packages.sh: QEMU >= ${QEMU_MIN_MAJOR} is required, found: $(qemu-system-x86_64 --version | head -1)" >&2
  exit 1
fi
echo "packages: $(qemu-system-x86_64 --version | head -1)"

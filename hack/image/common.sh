# Shared by hack/image/build.sh (npm run image) and hack/image/lock.sh (npm run image:lock): the Debian release,
# archive and packages of the image's root filesystem, and the one mmdebstrap invocation both use.
# shellcheck shell=bash

SUITE=trixie
MIRROR=http://deb.debian.org/debian
SECURITY_MIRROR=http://deb.debian.org/debian-security
KEYRING=/usr/share/keyrings/debian-archive-keyring.gpg
# TERN_IMAGE_LOCK: another lock file (the image test builds with a refreshed copy when the archive has moved on).
LOCK_FILE=${TERN_IMAGE_LOCK:-hack/image/packages.lock}

# What the programs run at run time, on top of Debian's essential set (dash, coreutils, grep, util-linux's
# prlimit, libc-bin's getent, ...): Node.js for the bundles; QEMU and its firmware (SeaBIOS for disk boot, the
# iPXE option ROMs of the guests' NICs); qemu-img and qemu-io (disk headers, io_uring probe, local-disk copies);
# iproute2 (`ip`: taps and bridges); ca-certificates (Debian's Node.js reads the system CA bundle at start and
# warns on every start without it). Their dependencies follow; recommended packages are not installed.
RUNTIME_PACKAGES=(nodejs qemu-system-x86 qemu-utils seabios ipxe-qemu iproute2 util-linux ca-certificates)

# Documentation, manuals and translations are left out (copyright files stay).
DPKG_OPTIONS=(
  'path-exclude=/usr/share/man/*'
  'path-exclude=/usr/share/info/*'
  'path-exclude=/usr/share/locale/*'
  'path-exclude=/usr/share/lintian/*'
  'path-exclude=/usr/share/doc/*'
  'path-include=/usr/share/doc/*/copyright'
)

die() {
  echo "image: error: $*" >&2
  exit 1
}

# The lock no longer matches the archive (exit status 3, which the image test recognises).
die_stale_lock() {
  echo "image: error: $*" >&2
  exit 3
}

require_tools() {
  [ "$(id -u)" -eq 0 ] || die "building the image's root filesystem needs root (mmdebstrap --mode=root)"
  command -v mmdebstrap >/dev/null ||
    die "mmdebstrap is not installed: run bash hack/install-packages.sh (or apt-get install -t bookworm-backports mmdebstrap)"
  [ -f "$KEYRING" ] || die "$KEYRING is missing: apt-get install debian-archive-keyring"
}

# debian_rootfs <target dir> <log file> <mmdebstrap option...>: a Debian $SUITE root filesystem with the essential
# set and the given --include packages, in root mode (apt and dpkg run chrooted into <target dir>).
# SOURCE_DATE_EPOCH, when set, is used by mmdebstrap and the maintainer scripts for the dates they write.
debian_rootfs() {
  local target=$1 log=$2
  shift 2
  local dpkg_options=() option
  for option in "${DPKG_OPTIONS[@]}"; do dpkg_options+=(--dpkgopt="$option"); done
  mmdebstrap --mode=root --variant=essential --format=directory --keyring="$KEYRING" \
    "${dpkg_options[@]}" \
    --customize-hook='rm -f "$1/etc/resolv.conf" "$1/etc/hostname"' \
    "$@" \
    "$SUITE" "$target" \
    "deb $MIRROR $SUITE main" \
    "deb $MIRROR $SUITE-updates main" \
    "deb $SECURITY_MIRROR $SUITE-security main" \
    >"$log" 2>&1
}

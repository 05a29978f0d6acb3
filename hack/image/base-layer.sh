#!/usr/bin/env bash
# The image's Debian layer (hack/image/build.sh runs it): the root filesystem of exactly the packages in
# hack/image/packages.lock, bootstrapped by mmdebstrap, as a reproducible tarball.
#
#   bash hack/image/base-layer.sh OUT_DIR     writes OUT_DIR/layer.tar.gz and OUT_DIR/diff-id (sha256 of the tar)
#
# Reproducible: the versions are pinned (checked against the archive before anything is installed, and against
# the installed system after); every date mmdebstrap and the maintainer scripts write comes from the lock's
# base-epoch (SOURCE_DATE_EPOCH), and the tar is written in a fixed order, with numeric owners and every newer
# mtime clamped to base-epoch, and compressed without a name or time in the gzip header.
set -euo pipefail
cd "$(dirname "$0")/../.."
# shellcheck source=hack/image/common.sh
source hack/image/common.sh
require_tools

out=${1:?usage: base-layer.sh OUT_DIR}
[ -f "$LOCK_FILE" ] || die "$LOCK_FILE is missing: run npm run image:lock"
epoch=$(sed -n 's/^base-epoch \([0-9][0-9]*\)$/\1/p' "$LOCK_FILE")
[ -n "$epoch" ] || die "$LOCK_FILE has no base-epoch line: run npm run image:lock"
grep '=' "$LOCK_FILE" | grep -v '^#' | LC_ALL=C sort >"$out/pins"
[ -s "$out/pins" ] || die "$LOCK_FILE lists no packages: run npm run image:lock"

work=$(mktemp -d /tmp/tern-image-base.XXXXXX)
trap 'rm -rf "$work"' EXIT
cp "$out/pins" "$work/pins"
root=$work/rootfs
log=$out/mmdebstrap.log

# Setup hook (before apt downloads anything): with the archive's current package lists, every pinned version must
# still be there; then apt is told to take exactly those versions (the essential set included).
cat >"$work/pin-hook.sh" <<'HOOK'
set -eu
root=$1 pins=$2 missing=$3
APT_CONFIG=$MMDEBSTRAP_APT_CONFIG apt-get update -qq
APT_CONFIG=$MMDEBSTRAP_APT_CONFIG apt-cache madison $(sed 's/=.*//' "$pins") |
  awk -F'|' '{ gsub(/ /, "", $1); gsub(/ /, "", $2); print $1 "=" $2 }' | LC_ALL=C sort -u >"$pins.available"
LC_ALL=C comm -23 "$pins" "$pins.available" >"$missing"
[ ! -s "$missing" ] || exit 1
while IFS='=' read -r name version; do
  printf 'Package: %s\nPin: version %s\nPin-Priority: 1001\n\n' "$name" "$version"
done <"$pins" >"$root/etc/apt/preferences.d/tern-lock"
HOOK

echo "image: Debian layer: bootstrapping $(wc -l <"$work/pins") pinned packages of $SUITE (log: $log)"
if ! SOURCE_DATE_EPOCH=$epoch debian_rootfs "$root" "$log" \
  --include="$(paste -sd, "$work/pins")" \
  --setup-hook="sh $work/pin-hook.sh \"\$1\" $work/pins $work/missing" \
  --customize-hook='rm -f "$1/etc/apt/preferences.d/tern-lock"' \
  --customize-hook='find "$1/var/log" -type f -delete'; then
  if [ -s "$work/missing" ]; then
    echo "image: error: the Debian archive no longer has these pinned versions (a point release or security update" >&2
    echo "replaced them):" >&2
    sed 's/^/  /' "$work/missing" >&2
    die_stale_lock "refresh the lock with npm run image:lock, rebuild with npm run image, and commit $LOCK_FILE"
  fi
  die "mmdebstrap failed (log: $log)"
fi

# What was installed must be the lock, exactly: nothing newer, nothing more (a dependency the lock lacks).
dpkg-query --admindir="$root/var/lib/dpkg" -W -f='${db:Status-Abbrev} ${Package}=${Version}\n' |
  awk '$1 == "ii" { print $2 }' | LC_ALL=C sort >"$work/installed"
if ! diff -u "$work/pins" "$work/installed" >"$work/lock.diff"; then
  cat "$work/lock.diff" >&2
  die_stale_lock "the installed packages differ from $LOCK_FILE (above: - pinned, + installed): run npm run image:lock"
fi

# Device nodes are the runtime's business (it mounts /dev): the layer keeps the empty directory only.
(cd "$root" && find . -mindepth 1 -path './dev/*' -prune -o -printf '%P\0' | LC_ALL=C sort -z) >"$work/files"
tar --create --file="$work/layer.tar" --directory="$root" --no-recursion --null --verbatim-files-from \
  --files-from="$work/files" --format=gnu --numeric-owner --mtime="@$epoch" --clamp-mtime
echo "sha256:$(sha256sum "$work/layer.tar" | cut -d' ' -f1)" >"$out/diff-id"
gzip -n -c "$work/layer.tar" >"$out/layer.tar.gz"
echo "image: Debian layer: $(du -m "$work/layer.tar" | cut -f1) MiB, $(du -m "$out/layer.tar.gz" | cut -f1) MiB compressed"

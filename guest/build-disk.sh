#!/usr/bin/env bash
# Builds a bootable disk image of the tern test guest from installed Debian packages (syslinux, syslinux-common,
# mtools, dosfstools, fdisk, faketime) and the kernel-boot guest of guest/build.sh:
#   $TERN_CACHE/guest/boot.raw   raw disk: an MBR with syslinux's boot code, one bootable FAT partition holding the
#                                 same vmlinuz + initramfs.img as the kernel-boot guest, syslinux and its config
# The firmware (SeaBIOS) runs the MBR, syslinux loads the kernel with the command line below. No loop mounts: the
# partition is formatted, filled and made bootable inside the image file (mkfs.vfat --offset, mtools, syslinux).
# Idempotent and reproducible (fixed volume id, disk id and timestamps); does nothing when boot.raw is newer than
# every input. Prints the path.
set -euo pipefail

PATH="$PATH:/usr/sbin:/sbin" # sfdisk, mkfs.vfat
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
out="${TERN_CACHE:-$HOME/.cache/tern}/guest"

# The kernel command line of the test guest (test/fixtures/test-guest.ts: the kernel-boot guest gets the same words,
# console=ttyS0 from the daemon). A disk-booted guest cannot be given another one: it is part of the image.
CMDLINE='console=ttyS0 panic=-1 tern.wss_mib=16'
IMAGE_MIB=32          # the kernel is 8 MiB, the initramfs 1.5 MiB
PART_START=2048       # sectors: the partition starts at 1 MiB
FIXED_DATE='2000-01-01 00:00:00' # FAT cannot store 1970; UTC (TZ below)
export TZ=UTC MTOOLS_SKIP_CHECK=1

mbr=/usr/lib/syslinux/mbr/mbr.bin
for tool in syslinux mcopy sfdisk mkfs.vfat faketime; do
  command -v "$tool" >/dev/null ||
    { echo "guest/build-disk.sh: $tool not found (packages: syslinux syslinux-common mtools dosfstools fdisk faketime)" >&2; exit 1; }
done
[[ -f "$mbr" ]] || { echo "guest/build-disk.sh: $mbr not found (package: syslinux-common)" >&2; exit 1; }

# The kernel and initramfs, rebuilt first when they are out of date.
bash "$here/build.sh" >/dev/null
kernel="$out/vmlinuz" initrd="$out/initramfs.img"
inputs=("$here/build-disk.sh" "$kernel" "$initrd" "$mbr" "$(command -v syslinux)")

up_to_date() {
  local input
  [[ -f "$out/boot.raw" ]] || return 1
  for input in "${inputs[@]}"; do
    [[ "$out/boot.raw" -nt "$input" ]] || return 1
  done
}

if ! up_to_date; then
  stage="$(mktemp -d)"
  trap 'rm -rf "$stage"' EXIT
  image="$stage/boot.raw"
  sectors=$((IMAGE_MIB * 2048))

  truncate -s "${IMAGE_MIB}M" "$image"
  # One bootable FAT16 (LBA) partition over the rest of the disk; a fixed disk identifier.
  printf 'label: dos\nlabel-id: 0x7465726e\nunit: sectors\n\nstart=%d, type=e, bootable\n' "$PART_START" |
    sfdisk --quiet --no-reread --no-tell-kernel "$image"
  dd if="$mbr" of="$image" bs=440 count=1 conv=notrunc status=none
  # -h: the sectors before the partition (where the boot sector believes it lives); --invariant: volume id 1234-ABCD
  # and no time-based fields; the last argument is the size in KiB.
  mkfs.vfat -F 16 -n TERNBOOT -h "$PART_START" --invariant --offset "$PART_START" \
    "$image" $(((sectors - PART_START) / 2)) >/dev/null

  files="$stage/files"
  mkdir -p "$files"
  cp "$kernel" "$files/vmlinuz"
  cp "$initrd" "$files/initramfs.img"
  # SERIAL: syslinux also talks on ttyS0, so the console log shows that the loader ran.
  cat >"$files/syslinux.cfg" <<CFG
SERIAL 0 115200
DEFAULT tern
PROMPT 0
TIMEOUT 0
LABEL tern
  LINUX /vmlinuz
  INITRD /initramfs.img
  APPEND $CMDLINE
CFG
  touch -d "$FIXED_DATE" "$files"/*
  part="$image@@$((PART_START * 512))"
  # -m keeps the (fixed) modification times; files go in sorted order, so the directory is the same every time.
  for f in initramfs.img syslinux.cfg vmlinuz; do mcopy -m -i "$part" "$files/$f" "::$f"; done
  # syslinux's files get the fixed date too (mtools stamps them with the current time; faketime stops the clock).
  faketime -f "$FIXED_DATE" syslinux --install --offset $((PART_START * 512)) "$image"

  mv "$image" "$out/boot.raw"
fi

echo "$out/boot.raw"

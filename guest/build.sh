#!/usr/bin/env bash
# Builds the tern test guest from installed Debian packages (linux-image-amd64, busybox-static, gcc):
#   $TERN_CACHE/guest/vmlinuz        the kernel of the installed linux-image-amd64 (bzImage, as shipped)
#   $TERN_CACHE/guest/vmlinux        the same kernel uncompressed (ELF with a PVH entry point): QEMU's -kernel
#                                    boots it directly, skipping the XZ decompression that costs ~5 s under TCG
#   $TERN_CACHE/guest/initramfs.img  cpio.gz: busybox, virtio modules, /init, the agent
# Idempotent and reproducible (fixed mtimes/owners, sorted cpio, gzip -n); does nothing when outputs are
# newer than every input. Prints the three paths.
set -euo pipefail

PATH="$PATH:/usr/sbin:/sbin" # modinfo
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
out="${TERN_CACHE:-$HOME/.cache/tern}/guest"
mkdir -p "$out"

kver="$(dpkg-query -W -f='${Depends}' linux-image-amd64 | sed -n 's/^linux-image-\([^ ,]*\).*/\1/p')"
[[ -n "$kver" ]] || { echo "guest/build.sh: linux-image-amd64 is not installed" >&2; exit 1; }
kernel="/boot/vmlinuz-$kver"
busybox=/bin/busybox
dpkg-query -W -f='${Status}' busybox-static 2>/dev/null | grep -q 'install ok installed' ||
  { echo "guest/build.sh: busybox-static is not installed" >&2; exit 1; }
for tool in gcc cpio gzip xz modinfo; do
  command -v "$tool" >/dev/null || { echo "guest/build.sh: $tool not found (packages: gcc libc6-dev cpio gzip xz-utils kmod)" >&2; exit 1; }
done

inputs=("$here/build.sh" "$here/init" "$here/agent/agent.c" "$kernel" "$busybox")

# Decompresses the kernel payload embedded in a bzImage (the approach of the kernel's scripts/extract-vmlinux).
extract_vmlinux() {
  local image="$1" dest="$2" pair magic tool offset
  for pair in '\xfd7zXZ\x00:xz -dc --single-stream' '\x28\xb5\x2f\xfd:zstd -qdc' '\x1f\x8b\x08:gzip -dc'; do
    magic="${pair%%:*}" tool="${pair#*:}"
    for offset in $(LC_ALL=C grep -obUaP "$magic" "$image" | cut -d: -f1); do
      tail -c "+$((offset + 1))" "$image" | $tool >"$dest" 2>/dev/null || true
      if [[ "$(head -c 4 "$dest" | od -An -c | tr -d ' ')" == '177ELF' ]]; then return 0; fi
    done
  done
  echo "guest/build.sh: cannot extract an ELF kernel from $image" >&2
  return 1
}

up_to_date() {
  local target="$1" input
  [[ -f "$target" ]] || return 1
  for input in "${inputs[@]}"; do
    [[ "$target" -nt "$input" ]] || return 1
  done
}

if ! up_to_date "$out/vmlinuz" || ! up_to_date "$out/vmlinux" || ! up_to_date "$out/initramfs.img"; then
  stage="$(mktemp -d)"
  trap 'rm -rf "$stage"' EXIT
  root="$stage/root"
  mkdir -p "$root"/{bin,dev,proc,sys,lib/modules}

  cp "$busybox" "$root/bin/busybox"
  for applet in sh mount insmod ip cat echo poweroff head sync sleep tr; do ln -s busybox "$root/bin/$applet"; done
  install -m 0755 "$here/init" "$root/init"
  gcc -static -O2 -Wall -Wextra -s -Wl,--build-id=none -o "$root/agent" "$here/agent/agent.c"

  # Modules needed for virtio-net, virtio-pci and virtio-serial, and for the ACPI power button (a graceful stop),
  # with their dependencies in load order.
  # A driver built into this kernel has no module file and is skipped.
  declare -A seen=()
  order=()
  add_module() {
    local name="$1" dep deps
    [[ -n "${seen[$name]:-}" ]] && return
    seen[$name]=1
    modinfo -k "$kver" -F filename "$name" >/dev/null 2>&1 || return 0
    deps="$(modinfo -k "$kver" -F depends "$name")"
    for dep in ${deps//,/ }; do add_module "$dep"; done
    order+=("$name")
  }
  for m in virtio_pci virtio_net virtio_console virtio_blk evdev button; do add_module "$m"; done
  for m in "${order[@]}"; do
    f="$(modinfo -k "$kver" -F filename "$m")"
    case "$f" in
      *.ko.xz) xz -dc "$f" >"$root/lib/modules/$m.ko" ;;
      *.ko.zst) zstd -qdc "$f" >"$root/lib/modules/$m.ko" ;;
      *) cp "$f" "$root/lib/modules/$m.ko" ;;
    esac
    echo "$m" >>"$root/lib/modules/load-order"
  done
  touch "$root/lib/modules/load-order"

  find "$root" -exec touch -h -d @0 {} +
  (cd "$root" && find . -mindepth 1 | LC_ALL=C sort | cpio --quiet -o -H newc -R 0:0 --reproducible) |
    gzip -9n >"$stage/initramfs.img"
  mv "$stage/initramfs.img" "$out/initramfs.img"
  extract_vmlinux "$kernel" "$stage/vmlinux"
  mv "$stage/vmlinux" "$out/vmlinux"
  cp "$kernel" "$stage/vmlinuz"
  mv "$stage/vmlinuz" "$out/vmlinuz"
fi

echo "$out/vmlinuz"
echo "$out/vmlinux"
echo "$out/initramfs.img"

#!/usr/bin/env bash
# Builds the two OCI image archives the kubelet cluster imports into each node's containerd (no registry is
# reachable): the pod sandbox image tern.local/pause:3.10 (Kubernetes' own pause.c from the k8s.io/kubernetes
# module hack/k8s/apiserver pins, linked statically) and tern.local/busybox:test (Debian's static busybox with a
# few applet links). Each is one gzip layer with sorted entries, uid/gid 0 and mtime 0, so a rebuild gives the
# same digest. Idempotent: an archive that exists is kept.
# Output: ${TERN_CACHE:-$HOME/.cache/tern}/images/{pause,busybox}.oci.tar
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
OUT=${TERN_CACHE:-$HOME/.cache/tern}/images
mkdir -p "$OUT"

die() {
  echo "build-images: error: $*" >&2
  exit 1
}

sha() { sha256sum "$1" | cut -d' ' -f1; }

# oci_archive <rootfs dir> <image name> <entrypoint JSON array> <archive>
oci_archive() {
  local rootfs=$1 name=$2 entrypoint=$3 archive=$4 work layer diff_id layer_digest config config_digest manifest
  work=$(mktemp -d)
  mkdir -p "$work/blobs/sha256"
  tar --sort=name --owner=0 --group=0 --numeric-owner --mtime=@0 --format=posix \
    --pax-option=exthdr.name=%d/PaxHeaders/%f,delete=atime,delete=ctime -C "$rootfs" -cf "$work/layer.tar" .
  diff_id=$(sha "$work/layer.tar")
  gzip -n -9 <"$work/layer.tar" >"$work/layer.tar.gz"
  layer_digest=$(sha "$work/layer.tar.gz")
  mv "$work/layer.tar.gz" "$work/blobs/sha256/$layer_digest"
  config=$work/config.json
  printf '{"architecture":"amd64","os":"linux","config":{"Entrypoint":%s,"Env":["PATH=/bin"]},"rootfs":{"type":"layers","diff_ids":["sha256:%s"]}}' \
    "$entrypoint" "$diff_id" >"$config"
  config_digest=$(sha "$config")
  mv "$config" "$work/blobs/sha256/$config_digest"
  manifest=$work/manifest.json
  printf '{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","config":{"mediaType":"application/vnd.oci.image.config.v1+json","digest":"sha256:%s","size":%d},"layers":[{"mediaType":"application/vnd.oci.image.layer.v1.tar+gzip","digest":"sha256:%s","size":%d}]}' \
    "$config_digest" "$(stat -c %s "$work/blobs/sha256/$config_digest")" \
    "$layer_digest" "$(stat -c %s "$work/blobs/sha256/$layer_digest")" >"$manifest"
  local manifest_digest manifest_size
  manifest_digest=$(sha "$manifest")
  manifest_size=$(stat -c %s "$manifest")
  mv "$manifest" "$work/blobs/sha256/$manifest_digest"
  echo '{"imageLayoutVersion":"1.0.0"}' >"$work/oci-layout"
  # ctr import names the image after io.containerd.image.name.
  printf '{"schemaVersion":2,"manifests":[{"mediaType":"application/vnd.oci.image.manifest.v1+json","digest":"sha256:%s","size":%d,"platform":{"architecture":"amd64","os":"linux"},"annotations":{"io.containerd.image.name":"%s","org.opencontainers.image.ref.name":"%s"}}]}' \
    "$manifest_digest" "$manifest_size" "$name" "${name##*:}" >"$work/index.json"
  rm -f "$work/layer.tar"
  tar --sort=name --owner=0 --group=0 --numeric-owner --mtime=@0 -C "$work" -cf "$archive.tmp" oci-layout index.json blobs
  mv -f "$archive.tmp" "$archive"
  rm -rf "$work"
  echo "build-images: $name -> $archive (manifest sha256:$manifest_digest)"
}

build_pause() {
  local archive=$OUT/pause.oci.tar src rootfs
  [[ -f $archive ]] && return 0
  command -v gcc >/dev/null || die "gcc not found (npm run setup installs it)"
  # The module hack/k8s/apiserver pins (downloaded if the module cache lacks it).
  src=$(cd "$ROOT/hack/k8s/apiserver" && GOTOOLCHAIN=local go mod download -json k8s.io/kubernetes |
    sed -n 's/^\t"Dir": "\(.*\)",$/\1/p')/build/pause/linux/pause.c
  [[ -f $src ]] || die "$src not found (cannot download the k8s.io/kubernetes module?)"
  rootfs=$(mktemp -d)
  gcc -Os -static -Wall -Werror -DVERSION=v3.10-tern -o "$rootfs/pause" "$src"
  strip "$rootfs/pause"
  oci_archive "$rootfs" tern.local/pause:3.10 '["/pause"]' "$archive"
  rm -rf "$rootfs"
}

build_busybox() {
  local archive=$OUT/busybox.oci.tar rootfs applet
  [[ -f $archive ]] && return 0
  [[ -x /bin/busybox ]] || die "/bin/busybox not found (Debian's busybox-static; npm run setup installs it)"
  rootfs=$(mktemp -d)
  mkdir -p "$rootfs/bin" "$rootfs/tmp" "$rootfs/proc" "$rootfs/sys" "$rootfs/dev" "$rootfs/etc"
  cp /bin/busybox "$rootfs/bin/busybox"
  for applet in sh cat echo ls sleep hostname ip id mount grep head wc true false env; do
    ln -s busybox "$rootfs/bin/$applet"
  done
  oci_archive "$rootfs" tern.local/busybox:test '["/bin/sh"]' "$archive"
  rm -rf "$rootfs"
}

build_pause
build_busybox

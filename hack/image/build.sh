#!/usr/bin/env bash
# `npm run image`: the Tern image, built without Docker: an OCI image archive with two layers, Debian (the packages
# pinned in hack/image/packages.lock: Node.js, QEMU and its firmware, iproute2; hack/image/base-layer.sh) and the
# app (the production build of `npm run build` in /app). docs/install.md describes it.
#
#   npm run image [-- --no-cache]
#
# Writes $TERN_CACHE/image/tern-<tag>.oci.tar (an OCI image layout as a tar: `ctr images import` loads it) and
# prints its reference and manifest digest. The Debian layer is cached under $TERN_CACHE/image/base/, keyed by
# the lock and the scripts that make it; --no-cache builds it again. Environment: TERN_IMAGE_REPOSITORY (default
# tern), TERN_IMAGE_TAG (default the version in package.json), TERN_IMAGE_SOURCE (the source label; default the
# git remote "origin", if any).
# Reproducible: the same commit (and lock) gives the same digest; the app layer's times and the image's creation
# time are the commit's time (SOURCE_DATE_EPOCH).
set -euo pipefail
cd "$(dirname "$0")/../.."
# shellcheck source=hack/image/common.sh
source hack/image/common.sh

no_cache=false
for arg in "$@"; do
  case $arg in
    --no-cache) no_cache=true ;;
    *) die "unknown argument $arg (usage: npm run image [-- --no-cache])" ;;
  esac
done
require_tools
started=$(date +%s)

export TERN_CACHE="${TERN_CACHE:-$HOME/.cache/tern}"
out_dir=$TERN_CACHE/image
mkdir -p "$out_dir"

version=$(node -p 'require("./package.json").version')
tag=${TERN_IMAGE_TAG:-$version}
repository=${TERN_IMAGE_REPOSITORY:-tern}
# The full reference the kubelet asks the runtime for: `tern` is docker.io/library/tern.
case $repository in
  */*) first=${repository%%/*} ;;
  *) first= ;;
esac
if [ -z "$first" ]; then
  ref=docker.io/library/$repository:$tag
elif [[ $first == *.* || $first == *:* || $first == localhost ]]; then
  ref=$repository:$tag
else
  ref=docker.io/$repository:$tag
fi
revision=$(git rev-parse HEAD)
[ -z "$(git status --porcelain)" ] || revision=$revision-dirty
source_url=${TERN_IMAGE_SOURCE:-$(git remote get-url origin 2>/dev/null || true)}
SOURCE_DATE_EPOCH=$(git log -1 --format=%ct)
export SOURCE_DATE_EPOCH

work=$(mktemp -d /tmp/tern-image.XXXXXX)
trap 'rm -rf "$work"' EXIT

# The Debian layer, cached by what makes it.
base_key=$(
  {
    cat "$LOCK_FILE" hack/image/common.sh hack/image/base-layer.sh
    mmdebstrap --version
    tar --version | head -1
    gzip --version | head -1
  } | sha256sum | cut -c1-16
)
base=$out_dir/base/$base_key
if $no_cache || [ ! -f "$base/diff-id" ]; then
  rm -rf "$base"
  mkdir -p "$base.partial"
  bash hack/image/base-layer.sh "$base.partial"
  mv "$base.partial" "$base"
  # Layers of older locks or scripts are not used again.
  find "$out_dir/base" -mindepth 1 -maxdepth 1 ! -name "$base_key" -exec rm -rf {} +
else
  echo "image: Debian layer: cached ($base)"
fi

# The app layer: the production build under /app, owned by root, readable by all, every time the commit's.
mkdir -p "$work/app-root"
npx tsx hack/build-dist.ts --out "$work/app-root/app"
(cd "$work/app-root" && find app -print0 | LC_ALL=C sort -z) >"$work/app-files"
tar --create --file="$work/app.tar" --directory="$work/app-root" --no-recursion --null --verbatim-files-from \
  --files-from="$work/app-files" --format=gnu --numeric-owner --owner=0 --group=0 --mode='u=rwX,go=rX' \
  --mtime="@$SOURCE_DATE_EPOCH"
app_diff_id="sha256:$(sha256sum "$work/app.tar" | cut -d' ' -f1)"
gzip -n -c "$work/app.tar" >"$work/app.tar.gz"

labels=(
  --label "org.opencontainers.image.title=tern"
  --label "org.opencontainers.image.description=Tern: QEMU virtual machines on Kubernetes, live-migrated"
  --label "org.opencontainers.image.version=$version"
  --label "org.opencontainers.image.revision=$revision"
  --label "dev.tern.debian-lock=sha256:$(sha256sum "$LOCK_FILE" | cut -d' ' -f1)"
)
[ -z "$source_url" ] || labels+=(--label "org.opencontainers.image.source=$source_url")
layout=$work/layout
digest=$(npx tsx hack/image/oci-layout.ts --layout "$layout" --ref "$ref" --created "$SOURCE_DATE_EPOCH" \
  --layer "$base/layer.tar.gz" --diff-id "$(cat "$base/diff-id")" \
  --history "Debian $SUITE: $(grep -c = "$LOCK_FILE") pinned packages (mmdebstrap)" \
  --layer "$work/app.tar.gz" --diff-id "$app_diff_id" --history "/app: npm run build (hack/build-dist.ts)" \
  --env PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin --workdir /app "${labels[@]}")

archive=$out_dir/tern-$tag.oci.tar
(cd "$layout" && find . -mindepth 1 -printf '%P\0' | LC_ALL=C sort -z) >"$work/layout-files"
tar --create --file="$archive.partial" --directory="$layout" --no-recursion --null --verbatim-files-from \
  --files-from="$work/layout-files" --format=gnu --numeric-owner --owner=0 --group=0 --mode='u=rwX,go=rX' \
  --mtime="@$SOURCE_DATE_EPOCH"
mv "$archive.partial" "$archive"
echo "$digest" >"$archive.digest"
echo "image: $ref@$digest"
echo "image: $archive ($(du -m "$archive" | cut -f1) MiB, revision $revision, $(($(date +%s) - started)) s)"

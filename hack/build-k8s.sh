#!/usr/bin/env bash
# Builds the real kube-apiserver, kubectl and etcd used by the integration tests, kubelet, kube-scheduler and
# kube-controller-manager for the kubelet cluster (test/harness/kubelet-cluster.ts), the helm CLI that lints and
# renders helm/tern, and the kstatus checker (hack/k8s/kstatus/main.go: sigs.k8s.io/cli-utils' kstatus, which the
# GitOps tests run on Tern's objects), from the Go module proxy. The pinned versions live in the consumer modules
# hack/k8s/apiserver, hack/k8s/etcd, hack/k8s/helm and hack/k8s/kstatus (go.mod + go.sum); bump them there (go mod
# tidy) and here together. Idempotent: a binary that already reports the expected version is not rebuilt.
# Usage: build-k8s.sh [BINARY...] (default: all). Output: ${TERN_CACHE:-$HOME/.cache/tern}/bin/{kube-apiserver,
# kubelet,kube-scheduler,kube-controller-manager,kubectl,etcd,helm,kstatus}.
set -euo pipefail

K8S_VERSION=v1.37.2
ETCD_VERSION=v3.6.16
HELM_VERSION=v3.22.0
CLI_UTILS_VERSION=v0.37.2

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
CACHE=${TERN_CACHE:-$HOME/.cache/tern}
BIN=$CACHE/bin
LOG_DIR=$CACHE/logs
mkdir -p "$BIN" "$LOG_DIR"

export GOTOOLCHAIN=local CGO_ENABLED=0

die() {
  echo "build-k8s: error: $*" >&2
  exit 1
}

# Prints "<major>.<minor>" of the local Go toolchain, or nothing when there is none.
go_minor_version() {
  command -v go >/dev/null 2>&1 || return 0
  go env GOVERSION 2>/dev/null | sed -n 's/^go\([0-9]*\.[0-9]*\).*/\1/p'
}

require_go() {
  local v
  v=$(go_minor_version)
  [[ -n $v ]] || die "no Go toolchain found (need go >= 1.26 on PATH, e.g. /usr/local/go/bin)"
  [[ ${v%%.*} -gt 1 || ${v#*.} -ge 26 ]] || die "Go $v found, but go >= 1.26 is required (GOTOOLCHAIN=local)"
}

# version_ok <binary> <command...>: the cached binary exists and its version output contains the wanted version.
version_ok() {
  local bin=$1 want=$2 out
  shift 2
  [[ -x $BIN/$bin ]] || return 1
  # Captured, not piped into grep -q: with pipefail, grep quitting early would fail the pipeline via SIGPIPE.
  out=$("$BIN/$bin" "$@" 2>/dev/null || true)
  [[ $out == *"$want"* ]]
}

# Downloads a consumer module's dependencies; on failure prints one line pointing at the full log.
download_modules() {
  local module=$1 log=$LOG_DIR/go-mod-download-$1.log start
  start=$(date +%s)
  if ! (cd "$ROOT/hack/k8s/$module" && go mod download) >"$log" 2>&1; then
    die "cannot download the Go modules for hack/k8s/$module (module proxy $(go env GOPROXY) unreachable?); full log: $log"
  fi
  echo "build-k8s: Go modules for hack/k8s/$module ready in $(($(date +%s) - start)) s"
}

# build <binary> <module dir> <package> <ldflags>: builds into a temporary file first, so an interrupted build
# never leaves a half-written binary that the version check would then trust.
build() {
  local bin=$1 module=$2 pkg=$3 ldflags=$4 log=$LOG_DIR/build-$1.log start
  start=$(date +%s)
  echo "build-k8s: building $bin (log: $log) ..."
  if ! (cd "$ROOT/hack/k8s/$module" &&
    go build -trimpath -buildvcs=false -ldflags "$ldflags" -o "$BIN/.$bin.tmp" "$pkg") >"$log" 2>&1; then
    rm -f "$BIN/.$bin.tmp"
    die "building $bin failed; full log: $log"
  fi
  mv -f "$BIN/.$bin.tmp" "$BIN/$bin"
  echo "build-k8s: built $bin in $(($(date +%s) - start)) s"
}

k8s_ldflags() {
  local minor=${K8S_VERSION#v1.} flags='-s -w' p
  minor=${minor%%.*}
  # The module zip has no git-archive substitution, so without these /version would report v0.0.0-master.
  for p in k8s.io/component-base/version k8s.io/client-go/pkg/version; do
    flags+=" -X $p.gitVersion=$K8S_VERSION -X $p.gitMajor=1 -X $p.gitMinor=$minor -X $p.gitTreeState=clean"
    flags+=" -X $p.gitCommit=unknown -X $p.buildDate=1970-01-01T00:00:00Z"
  done
  echo "$flags"
}

# Like helm's own Makefile: the version, and the Kubernetes version that `helm template` and `helm lint` assume
# (taken from the client-go that helm is built with).
helm_ldflags() {
  local client_go major minor flags p
  # client-go v0.N.x belongs to Kubernetes 1.N
  client_go=$(cd "$ROOT/hack/k8s/helm" && go list -f '{{.Version}}' -m k8s.io/client-go)
  client_go=${client_go#v}
  major=$((${client_go%%.*} + 1))
  minor=${client_go#*.}
  minor=${minor%%.*}
  flags="-s -w -X helm.sh/helm/v3/internal/version.version=$HELM_VERSION"
  for p in helm.sh/helm/v3/pkg/lint/rules helm.sh/helm/v3/pkg/chartutil; do
    flags+=" -X $p.k8sVersionMajor=$major -X $p.k8sVersionMinor=$minor"
  done
  echo "$flags"
}

# The binaries to build, as arguments (default: all of them); `hack/setup.sh demo` asks for etcd, kube-apiserver and
# kubectl only. kubelet, kube-scheduler and kube-controller-manager are the kubelet cluster's
# (test/harness/kubelet-cluster.ts).
K8S_SERVERS=(kube-apiserver kubelet kube-scheduler kube-controller-manager)
ALL=(etcd "${K8S_SERVERS[@]}" kubectl helm kstatus)
(($# > 0)) || set -- "${ALL[@]}"
need_etcd=0 need_kubectl=0 need_helm=0 need_kstatus=0
servers=()
for want in "$@"; do
  case $want in
  etcd) version_ok etcd "etcd Version: ${ETCD_VERSION#v}" --version || need_etcd=1 ;;
  kube-apiserver | kubelet | kube-scheduler | kube-controller-manager)
    version_ok "$want" "Kubernetes $K8S_VERSION" --version || servers+=("$want")
    ;;
  kubectl) version_ok kubectl "Client Version: $K8S_VERSION" version --client || need_kubectl=1 ;;
  helm) version_ok helm "Version:\"$HELM_VERSION\"" version || need_helm=1 ;;
  kstatus) version_ok kstatus "sigs.k8s.io/cli-utils $CLI_UTILS_VERSION" --version || need_kstatus=1 ;;
  *) die "unknown binary '$want' (one of: ${ALL[*]})" ;;
  esac
done
need_servers=${#servers[@]}

if ((need_etcd + need_servers + need_kubectl + need_helm + need_kstatus == 0)); then
  echo "build-k8s: $* up to date in $BIN"
  exit 0
fi

require_go
# The consumer modules must pin the same versions as this script (bump both together).
((need_servers + need_kubectl == 0)) || grep -qE "^\s*k8s.io/kubernetes $K8S_VERSION( //.*)?$" "$ROOT/hack/k8s/apiserver/go.mod" ||
  die "hack/k8s/apiserver/go.mod does not require k8s.io/kubernetes $K8S_VERSION"
((need_etcd == 0)) || grep -qE "^\s*go.etcd.io/etcd/server/v3 $ETCD_VERSION( //.*)?$" "$ROOT/hack/k8s/etcd/go.mod" ||
  die "hack/k8s/etcd/go.mod does not require go.etcd.io/etcd/server/v3 $ETCD_VERSION"
((need_helm == 0)) || grep -qE "^\s*helm.sh/helm/v3 $HELM_VERSION( //.*)?$" "$ROOT/hack/k8s/helm/go.mod" ||
  die "hack/k8s/helm/go.mod does not require helm.sh/helm/v3 $HELM_VERSION"
((need_kstatus == 0)) || grep -qE "^\s*sigs.k8s.io/cli-utils $CLI_UTILS_VERSION( //.*)?$" "$ROOT/hack/k8s/kstatus/go.mod" ||
  die "hack/k8s/kstatus/go.mod does not require sigs.k8s.io/cli-utils $CLI_UTILS_VERSION"

if ((need_etcd)); then
  download_modules etcd
  build etcd etcd go.etcd.io/etcd/server/v3 '-s -w'
  version_ok etcd "etcd Version: ${ETCD_VERSION#v}" --version || die "$BIN/etcd does not report $ETCD_VERSION"
fi

if ((need_servers + need_kubectl)); then
  download_modules apiserver
  for b in "${servers[@]}"; do
    # kubelet too builds with CGO_ENABLED=0 (as upstream's release builds do).
    build "$b" apiserver "k8s.io/kubernetes/cmd/$b" "$(k8s_ldflags)"
    version_ok "$b" "Kubernetes $K8S_VERSION" --version || die "$BIN/$b does not report $K8S_VERSION"
  done
  if ((need_kubectl)); then
    build kubectl apiserver k8s.io/kubernetes/cmd/kubectl "$(k8s_ldflags)"
    version_ok kubectl "Client Version: $K8S_VERSION" version --client || die "$BIN/kubectl does not report $K8S_VERSION"
  fi
fi

if ((need_helm)); then
  download_modules helm
  build helm helm helm.sh/helm/v3/cmd/helm "$(helm_ldflags)"
  version_ok helm "Version:\"$HELM_VERSION\"" version || die "$BIN/helm does not report $HELM_VERSION"
fi

if ((need_kstatus)); then
  download_modules kstatus
  build kstatus kstatus . '-s -w'
  version_ok kstatus "sigs.k8s.io/cli-utils $CLI_UTILS_VERSION" --version ||
    die "$BIN/kstatus does not report cli-utils $CLI_UTILS_VERSION"
fi

echo "build-k8s: $* ready in $BIN"

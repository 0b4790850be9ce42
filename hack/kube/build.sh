#!/usr/bin/env bash
# Build the test control plane (embedded etcd, kube-apiserver and kube-controller-manager in one binary) and the
# newest KubeRay operator listed in kuberay-versions, once per machine, cached by version under
# ${LLMOPS_CACHE:-$HOME/.cache/llmops}. A cached binary is reused while its sources are unchanged.
# Usage: hack/kube/build.sh [all|kube|kuberay|kserve]
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
cache="${LLMOPS_CACHE:-$HOME/.cache/llmops}"
what="${1:-all}"

command -v go >/dev/null || { echo "build.sh: Go is not installed (https://go.dev/dl/)" >&2; exit 1; }

# Prints the sources' digest, so a changed main.go or go.sum rebuilds under the same version.
sources_digest() {
	(cd "$here" && cat go.mod go.sum *.go | sha256sum | cut -c1-16)
}

# build_once DIR BINARY DIGEST COMMAND...: run COMMAND (which writes DIR/BINARY.new) unless DIR/BINARY is current.
build_once() {
	local dir=$1 bin=$2 digest=$3
	shift 3
	mkdir -p "$dir"
	exec 9>"$dir/.lock"
	flock 9
	if [ -x "$dir/$bin" ] && [ "$(cat "$dir/.digest" 2>/dev/null)" = "$digest" ]; then
		echo "reusing $dir/$bin"
		return
	fi
	echo "building $dir/$bin (cold: about 10-15 minutes on 2 cores)" >&2
	local start=$SECONDS
	"$@"
	mv -f "$dir/$bin.new" "$dir/$bin"
	echo "$digest" >"$dir/.digest"
	echo "built $dir/$bin in $((SECONDS - start)) s"
	exec 9>&-
}

build_kube() {
	local version minor
	version=$(cd "$here" && go list -m -f '{{.Version}}' k8s.io/kubernetes)
	minor=${version#v1.}
	minor=${minor%%.*}
	local pkg=k8s.io/component-base/version
	local ldflags="-s -w -X $pkg.gitVersion=$version -X $pkg.gitMajor=1 -X $pkg.gitMinor=$minor"
	ldflags+=" -X $pkg.gitTreeState=clean -X $pkg.buildDate=$(date -u +%Y-%m-%dT%H:%M:%SZ)"
	local dir="$cache/kube/$version"
	build_once "$dir" kube "$(sources_digest)" \
		bash -c 'cd "$1" && go build -trimpath -ldflags "$2" -o "$3" .' _ "$here" "$ldflags" "$dir/kube.new"
}

# Only the newest listed operator runs in the tests; every listed version's CRDs come from the Go module cache.
build_kuberay() {
	local v dir
	for v in $(grep -v '^#' "$here/kuberay-versions" | tail -n 1); do
		dir="$cache/kuberay/$v"
		build_once "$dir" ray-operator "$v" bash -c \
			'cd / && GOFLAGS= GOBIN="$1" go install -trimpath -ldflags "-s -w" "github.com/ray-project/kuberay/ray-operator@$2" && mv "$1/ray-operator" "$1/ray-operator.new"' \
			_ "$dir" "$v"
	done
}

# KServe's CRDs only: the schema tests read them from the Go module cache, offline.
download_kserve() {
	local v
	v=$(grep -v '^#' "$here/kserve-version" | tail -n 1)
	(cd "$here" && GOFLAGS=-mod=mod go mod download "github.com/kserve/kserve@$v")
	echo "KServe $v in the Go module cache"
}

case "$what" in
all) build_kube && build_kuberay && download_kserve ;;
kube) build_kube ;;
kuberay) build_kuberay ;;
kserve) download_kserve ;;
*) echo "usage: $0 [all|kube|kuberay|kserve]" >&2; exit 2 ;;
esac

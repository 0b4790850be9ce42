#!/usr/bin/env bash
# Pin k8s.io/kubernetes to one release and replace each staging module it points at ./staging/
# with the matching v0.<minor>.<patch> release, reading the list from the release's own go.mod.
# Usage: hack/kube/pin-kubernetes.sh v1.36.3
set -euo pipefail
cd "$(dirname "$0")"
version="${1:?usage: $0 v1.MINOR.PATCH}"
staging="v0.${version#v1.}"

gomod=$(go mod download -json "k8s.io/kubernetes@${version}" | sed -n 's/^[[:space:]]*"GoMod": "\(.*\)",$/\1/p')
[ -f "$gomod" ] || { echo "no go.mod for k8s.io/kubernetes@${version}" >&2; exit 1; }

modules=$(sed -n 's#^[[:space:]]*\(k8s\.io/[^[:space:]]*\) => \./staging/.*#\1#p' "$gomod")
[ -n "$modules" ] || { echo "no staging replaces in $gomod" >&2; exit 1; }

# Drop earlier k8s.io replaces so a module removed upstream does not linger.
for old in $(go mod edit -json | sed -n 's#^[[:space:]]*"Path": "\(k8s\.io/[^"]*\)",*$#\1#p' | sort -u); do
	go mod edit -dropreplace="$old" 2>/dev/null || true
done
for m in $modules; do
	go mod edit -replace="${m}=${m}@${staging}"
done
go mod edit -require="k8s.io/kubernetes@${version}"
go mod tidy
echo "pinned k8s.io/kubernetes ${version}; $(echo "$modules" | wc -l) staging modules at ${staging}"

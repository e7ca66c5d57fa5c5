#!/usr/bin/env bash
# Build runnel-franz (test/go: franz-go, the Go Kafka client) into .cache/go-clients/ (git-ignored).
# Modules come from the Go module proxy into .cache/go/mod, checked against go.sum
# (-mod=readonly: the build never edits go.mod or go.sum). Idempotent and quick: nothing is built
# when the binary's stamp matches the hash of the sources, go.mod and go.sum. Concurrent runs (two
# test files at once) wait for each other on a lock. Prints the binary's path on the last line.
#
#   test/go/build.sh
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
root="$(cd "$here/../.." && pwd)"
out="$root/.cache/go-clients"
bin="$out/runnel-franz"

if ! command -v go >/dev/null; then
  echo "build.sh: 'go' is missing; install Go 1.21 or newer (Debian: apt-get install golang-go; .ci/run does)" >&2
  exit 2
fi
mkdir -p "$out"
exec 9>"$out/.lock"
flock 9

stamp="$(cat "$here/go.mod" "$here/go.sum" "$here"/*.go | sha256sum | cut -d' ' -f1)"
if [ -x "$bin" ] && [ "$(cat "$bin.stamp" 2>/dev/null || true)" = "$stamp" ]; then
  echo "$bin"
  exit 0
fi

# Modules under .cache (fetched from the proxy by every new clone); the build cache stays Go's own
# (~/.cache/go-build), so a second clone on the same machine does not compile the standard library again.
# -modcacherw: Go makes its module cache read-only, which would stop a non-root `rm -rf .cache` or
# `git clean -fdX` from deleting it.
export GOMODCACHE="$root/.cache/go/mod" GOPATH="$root/.cache/go/path"
export GOFLAGS="-mod=readonly -modcacherw -buildvcs=false"
# go.mod's go line names the Go that franz-go needs; an older go fetches that toolchain from the
# module proxy (a Go toolchain is published there as a module) instead of failing.
export GOTOOLCHAIN="${RUNNEL_GOTOOLCHAIN:-auto}"
start=$SECONDS
if ! (cd "$here" && go build -trimpath -o "$bin.tmp" .) >"$out/build.log" 2>&1; then
  echo "build.sh: could not build runnel-franz (is the Go module proxy reachable? GOPROXY=$(go env GOPROXY)). go said:" >&2
  tail -n 20 "$out/build.log" >&2
  exit 3
fi
mv "$bin.tmp" "$bin"
echo "$stamp" >"$bin.stamp"
echo "build.sh: built runnel-franz in $((SECONDS - start)) s" >&2
echo "$bin"

#!/usr/bin/env bash
# Fetch the Apache Kafka Java client and its runtime dependencies from Maven Central into
# .cache/java-clients/<version>/libs (git-ignored) and compile RunnelInterop.java next to them.
# Idempotent: the download is skipped once libs/.complete exists, the compile once the stamp
# matches the source's hash. Prints the classpath on the last line of stdout.
#
#   test/java/fetch-clients.sh [kafka-clients version]
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
version="${1:-4.3.1}"
dir="$(cd "$here/../.." && pwd)/.cache/java-clients/$version"
libs="$dir/libs"
classes="$dir/classes"

# shellcheck source=maven-fetch.sh
. "$here/maven-fetch.sh"
require_tools fetch-clients java javac mvn
# slf4j-nop keeps the client's logging off stdout, which carries the machine-checked lines.
fetch_jars fetch-clients "$dir" "org.apache.kafka:kafka-clients:$version and its dependencies" \
  "$(dep org.apache.kafka kafka-clients "$version")" "$(dep org.slf4j slf4j-nop 1.7.36)"

stamp="$(sha256sum "$here/RunnelInterop.java" | cut -d' ' -f1)"
if [ "$(cat "$classes/.stamp" 2>/dev/null || true)" != "$stamp" ]; then
  rm -rf "$classes"
  mkdir -p "$classes"
  javac -nowarn -XDsuppressNotes -d "$classes" -cp "$libs/*" "$here/RunnelInterop.java"
  echo "$stamp" >"$classes/.stamp"
fi

echo "$classes:$libs/*"

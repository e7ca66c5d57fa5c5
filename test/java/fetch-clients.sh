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

for tool in java javac mvn; do
  if ! command -v "$tool" >/dev/null; then
    echo "fetch-clients: '$tool' is missing; install a JDK 17+ and Maven (Debian: apt-get install openjdk-17-jdk-headless maven)" >&2
    exit 2
  fi
done

if [ ! -f "$libs/.complete" ]; then
  mkdir -p "$dir"
  # slf4j-nop keeps the client's logging off stdout, which carries the machine-checked lines.
  cat >"$dir/pom.xml" <<POM
<?xml version="1.0" encoding="UTF-8"?>
<project xmlns="http://maven.apache.org/POM/4.0.0">
  <modelVersion>4.0.0</modelVersion>
  <groupId>dev.runnel.test</groupId>
  <artifactId>java-clients-$version</artifactId>
  <version>1</version>
  <packaging>pom</packaging>
  <dependencies>
    <dependency><groupId>org.apache.kafka</groupId><artifactId>kafka-clients</artifactId><version>$version</version></dependency>
    <dependency><groupId>org.slf4j</groupId><artifactId>slf4j-nop</artifactId><version>1.7.36</version></dependency>
  </dependencies>
</project>
POM
  rm -rf "$libs"
  if ! mvn -q -B -f "$dir/pom.xml" dependency:copy-dependencies -DoutputDirectory="$libs" -DincludeScope=runtime >"$dir/mvn.log" 2>&1; then
    echo "fetch-clients: could not fetch org.apache.kafka:kafka-clients:$version and its dependencies with Maven" >&2
    echo "(is Maven Central, https://repo.maven.apache.org, reachable from here?). Maven said:" >&2
    grep -m 3 'ERROR' "$dir/mvn.log" >&2 || tail -n 30 "$dir/mvn.log" >&2
    exit 3
  fi
  touch "$libs/.complete"
fi

stamp="$(sha256sum "$here/RunnelInterop.java" | cut -d' ' -f1)"
if [ "$(cat "$classes/.stamp" 2>/dev/null || true)" != "$stamp" ]; then
  rm -rf "$classes"
  mkdir -p "$classes"
  javac -nowarn -XDsuppressNotes -d "$classes" -cp "$libs/*" "$here/RunnelInterop.java"
  echo "$stamp" >"$classes/.stamp"
fi

echo "$classes:$libs/*"

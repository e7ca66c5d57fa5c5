#!/usr/bin/env bash
# Fetch Apache Kafka's own command-line tools (kafka-topics, kafka-reassign-partitions,
# kafka-leader-election, kafka-consumer-groups, kafka-configs) and their runtime dependencies
# from Maven Central into .cache/kafka-tools/<version>/libs (git-ignored), so the tests can run
# them against Runnel without a Kafka install. Most tools live in the kafka-tools jar; the
# kafka_2.13 (core) jar is fetched too because kafka-configs' main class, kafka.admin.ConfigCommand,
# is still Scala code in core in Kafka 4.x.
# Idempotent: the download is skipped once libs/.complete exists. Prints how long the fetch took
# on stderr and the classpath on the last line of stdout.
#
#   test/java/fetch-tools.sh [kafka version]
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
version="${1:-4.3.1}"
dir="$(cd "$here/../.." && pwd)/.cache/kafka-tools/$version"
libs="$dir/libs"

for tool in java mvn; do
  if ! command -v "$tool" >/dev/null; then
    echo "fetch-tools: '$tool' is missing; install a JDK 17+ and Maven (Debian: apt-get install openjdk-17-jdk-headless maven)" >&2
    exit 2
  fi
done

if [ ! -f "$libs/.complete" ]; then
  started=$(date +%s)
  mkdir -p "$dir"
  # slf4j-nop keeps the tools' logging (e.g. AdminClient config dumps) off stdout, which the tests parse.
  cat >"$dir/pom.xml" <<POM
<?xml version="1.0" encoding="UTF-8"?>
<project xmlns="http://maven.apache.org/POM/4.0.0">
  <modelVersion>4.0.0</modelVersion>
  <groupId>dev.runnel.test</groupId>
  <artifactId>kafka-tools-$version</artifactId>
  <version>1</version>
  <packaging>pom</packaging>
  <dependencies>
    <dependency><groupId>org.apache.kafka</groupId><artifactId>kafka-tools</artifactId><version>$version</version></dependency>
    <dependency><groupId>org.apache.kafka</groupId><artifactId>kafka_2.13</artifactId><version>$version</version></dependency>
    <dependency><groupId>org.apache.kafka</groupId><artifactId>kafka-clients</artifactId><version>$version</version></dependency>
    <dependency><groupId>org.slf4j</groupId><artifactId>slf4j-nop</artifactId><version>1.7.36</version></dependency>
  </dependencies>
</project>
POM
  rm -rf "$libs"
  if ! mvn -q -B -f "$dir/pom.xml" dependency:copy-dependencies -DoutputDirectory="$libs" -DincludeScope=runtime >"$dir/mvn.log" 2>&1; then
    echo "fetch-tools: could not fetch org.apache.kafka:kafka-tools:$version (and kafka_2.13) with Maven" >&2
    echo "(is Maven Central, https://repo.maven.apache.org, reachable from here?). Maven said:" >&2
    grep -m 3 'ERROR' "$dir/mvn.log" >&2 || tail -n 30 "$dir/mvn.log" >&2
    exit 3
  fi
  touch "$libs/.complete"
  echo "fetch-tools: fetched Kafka $version tools ($(ls "$libs" | wc -l) jars) in $(( $(date +%s) - started )) s" >&2
fi

echo "$libs/*"

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

# shellcheck source=maven-fetch.sh
. "$here/maven-fetch.sh"
require_tools fetch-tools java mvn
if [ ! -f "$libs/.complete" ]; then
  started=$(date +%s)
  # slf4j-nop keeps the tools' logging (e.g. AdminClient config dumps) off stdout, which the tests parse.
  fetch_jars fetch-tools "$dir" "org.apache.kafka:kafka-tools:$version (and kafka_2.13)" \
    "$(dep org.apache.kafka kafka-tools "$version")" "$(dep org.apache.kafka kafka_2.13 "$version")" \
    "$(dep org.apache.kafka kafka-clients "$version")" "$(dep org.slf4j slf4j-nop 1.7.36)"
  echo "fetch-tools: fetched Kafka $version tools ($(ls "$libs" | wc -l) jars) in $(( $(date +%s) - started )) s" >&2
fi

echo "$libs/*"

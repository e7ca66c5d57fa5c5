# Shared by fetch-clients.sh and fetch-tools.sh (sourced, not run): fetch Maven artifacts and their
# runtime dependencies into a git-ignored folder once.

# require_tools <caller> <tool>...: exits 2 with an install hint when one is missing.
require_tools() {
  local caller="$1"; shift
  local tool
  for tool in "$@"; do
    if ! command -v "$tool" >/dev/null; then
      echo "$caller: '$tool' is missing; install a JDK 17+ and Maven (Debian: apt-get install openjdk-17-jdk-headless maven)" >&2
      exit 2
    fi
  done
}

# fetch_jars <caller> <dir> <what> <dependency>...: copies the dependencies (each a Maven
# <dependency> element) and everything they need at runtime into <dir>/libs, unless
# <dir>/libs/.complete says an earlier run did; exits 3 naming <what> when Maven fails.
fetch_jars() {
  local caller="$1" dir="$2" what="$3"; shift 3
  local libs="$dir/libs"
  [ -f "$libs/.complete" ] && return 0
  mkdir -p "$dir"
  {
    echo '<?xml version="1.0" encoding="UTF-8"?>'
    echo '<project xmlns="http://maven.apache.org/POM/4.0.0">'
    echo "  <modelVersion>4.0.0</modelVersion><groupId>dev.runnel.test</groupId><artifactId>$(basename "$(dirname "$dir")")-$(basename "$dir")</artifactId>"
    echo '  <version>1</version><packaging>pom</packaging>'
    echo '  <dependencies>'
    printf '    %s\n' "$@"
    echo '  </dependencies>'
    echo '</project>'
  } >"$dir/pom.xml"
  rm -rf "$libs"
  if ! mvn -q -B -f "$dir/pom.xml" dependency:copy-dependencies -DoutputDirectory="$libs" -DincludeScope=runtime >"$dir/mvn.log" 2>&1; then
    echo "$caller: could not fetch $what with Maven" >&2
    echo "(is Maven Central, https://repo.maven.apache.org, reachable from here?). Maven said:" >&2
    grep -m 3 'ERROR' "$dir/mvn.log" >&2 || tail -n 30 "$dir/mvn.log" >&2
    exit 3
  fi
  touch "$libs/.complete"
}

# dep <groupId> <artifactId> <version>: one <dependency> element.
dep() { echo "<dependency><groupId>$1</groupId><artifactId>$2</artifactId><version>$3</version></dependency>"; }

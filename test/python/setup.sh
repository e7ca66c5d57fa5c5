#!/usr/bin/env bash
# Create the Python venv for runnel_ck.py (confluent-kafka-python, whose manylinux wheel bundles
# librdkafka) under .cache/python-clients/venv (git-ignored), installing requirements.txt from PyPI
# as wheels only (nothing is compiled). Idempotent and quick: nothing is installed when the venv's
# stamp matches the hash of requirements.txt and the Python version. Concurrent runs wait for each
# other on a lock. Prints the venv's python on the last line.
#
#   test/python/setup.sh
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
root="$(cd "$here/../.." && pwd)"
out="$root/.cache/python-clients"
venv="$out/venv"
python="${RUNNEL_PYTHON:-python3}"

if ! command -v "$python" >/dev/null; then
  echo "setup.sh: '$python' is missing; install Python 3.9 or newer with venv (Debian: apt-get install python3-venv; .ci/run does)" >&2
  exit 2
fi
mkdir -p "$out"
exec 9>"$out/.lock"
flock 9

stamp="$( (cat "$here/requirements.txt"; "$python" --version) | sha256sum | cut -d' ' -f1)"
if [ -x "$venv/bin/python" ] && [ "$(cat "$venv/.stamp" 2>/dev/null || true)" = "$stamp" ]; then
  echo "$venv/bin/python"
  exit 0
fi

start=$SECONDS
if ! "$python" -m venv --clear "$venv" >"$out/setup.log" 2>&1; then
  echo "setup.sh: '$python -m venv' failed (Debian: apt-get install python3-venv). It said:" >&2
  tail -n 5 "$out/setup.log" >&2
  exit 2
fi
if ! "$venv/bin/pip" install --disable-pip-version-check --no-input -q --only-binary=:all: -r "$here/requirements.txt" >>"$out/setup.log" 2>&1; then
  echo "setup.sh: pip could not install test/python/requirements.txt (is PyPI reachable from here?). pip said:" >&2
  tail -n 20 "$out/setup.log" >&2
  exit 3
fi
echo "$stamp" >"$venv/.stamp"
echo "setup.sh: installed $(grep -v '^#' "$here/requirements.txt" | tr '\n' ' ')in $((SECONDS - start)) s" >&2
echo "$venv/bin/python"

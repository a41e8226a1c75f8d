#!/usr/bin/env bash
# `make test-servers`: the whole suite (cargo unit and integration tests,
# the cluster suite, the client examples, the Python client) against each
# server of tools/servers.sh, one after the other, then a summary.
#
#   tools/test-servers.sh [NAME ...]     default: every server
#
# RL_MODULE must point at the built module (the Makefile sets it).
set -uo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
cd "$ROOT"
: "${RL_MODULE:?set RL_MODULE to the built module}"
export RL_MODULE
names=${*:-$(tools/servers.sh names)}
# The Python suite per server leaves out its web-app runs (several uvicorn
# or gunicorn workers under load, the Flask-Limiter and SlowAPI apps, the
# login example) and the grammar comparison with limits (the module's
# grammar is the same code on every server); make test runs them on Redis
# 7.0. They test the HTTP glue, and the module behaviour they lean on is
# covered on every server by the rest of the suite and the cargo tests.
PY_PER_SERVER="--ignore=tests/test_multiworker.py --ignore=tests/test_concurrency_multiworker.py --ignore=tests/test_frameworks.py --ignore=tests/test_login_app.py --ignore=tests/test_grammar_parity.py"
summary=()
failed=0
for name in $names; do
  bin=$(tools/servers.sh path "$name") || exit 1
  version=$("$bin" --version | head -n 1)
  echo
  echo "=== $name: $bin"
  echo "=== $version"
  start=$(date +%s)
  result=pass
  export RL_REDIS_SERVER=$bin
  for step in \
    "cargo test --release" \
    "cargo test --release --test cluster -- --ignored --nocapture --test-threads=1" \
    "bash examples/run.sh" \
    "env RL_SKIP_STATIC=1 clients/python/run-tests.sh -q $PY_PER_SERVER"; do
    echo "--- $name: $step"
    if ! $step; then
      result="FAIL ($step)"
      failed=1
      break
    fi
  done
  summary+=("$(printf '%-8s %-4s %4ss  %s' "$name" "${result%% *}" "$(( $(date +%s) - start ))" "$version")")
  [ "$result" = pass ] || summary+=("         $result")
done
echo
echo "=== test-servers summary"
printf '%s\n' "${summary[@]}"
exit $failed

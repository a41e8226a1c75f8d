#!/usr/bin/env bash
# Coverage-guided fuzzing of the pure core with cargo-fuzz (libFuzzer + ASan).
#
#   tools/fuzz.sh [SECONDS_PER_TARGET] [TARGET...]
#
# Runs each target (default: all three) for SECONDS_PER_TARGET (default 60),
# one after the other, starting from the seeds in fuzz/corpus/<target> and
# growing fuzz/work/<target> (not tracked). Prints executions per target.
# A finding is saved under fuzz/artifacts/<target>/ and fails the run.
#
# Needs cargo-fuzz (installed here if missing). Only a stable toolchain is
# required: RUSTC_BOOTSTRAP=1 lets it accept cargo-fuzz's -Z flags.
set -euo pipefail
cd "$(dirname "$0")/../fuzz"

SECS=${1:-${FUZZ_SECS:-60}}
shift || true
TARGETS=("$@")
[ ${#TARGETS[@]} -gt 0 ] || TARGETS=(limit_grammar arg_parser state_decoder)
RSS_MB=${FUZZ_RSS_MB:-2048}

if ! cargo fuzz --version >/dev/null 2>&1; then
  echo "Installing cargo-fuzz..."
  cargo install cargo-fuzz --locked
fi
export RUSTC_BOOTSTRAP=1

# Release build with debug assertions and overflow checks (cargo-fuzz's default).
mkdir -p work
if ! cargo fuzz build >work/build.log 2>&1; then
  cat work/build.log
  exit 1
fi

status=0
summary=""
for t in "${TARGETS[@]}"; do
  mkdir -p "work/$t"
  log="work/$t.log"
  echo "== fuzzing $t for ${SECS}s (log: fuzz/$log)"
  if cargo fuzz run "$t" "work/$t" "corpus/$t" -- \
      -max_total_time="$SECS" -rss_limit_mb="$RSS_MB" -timeout=10 \
      -print_final_stats=1 >"$log" 2>&1; then
    result=ok
  else
    result="FINDING (see fuzz/$log and fuzz/artifacts/$t/)"
    status=1
  fi
  execs=$(grep -E '^stat::number_of_executed_units' "$log" | awk '{print $2}' | tail -n 1)
  cov=$(grep -E '#[0-9]+.*cov: ' "$log" | tail -n 1 | sed -E 's/.*cov: ([0-9]+).*/\1/')
  corpus=$(find "work/$t" -type f | wc -l)
  line="$t: ${SECS}s, ${execs:-?} executions, coverage ${cov:-?} edges, corpus ${corpus} inputs, $result"
  echo "$line"
  summary+="$line"$'\n'
done
echo
echo "== fuzz summary"
printf '%s' "$summary"
exit $status

#!/usr/bin/env bash
# The comparison of docs/algorithms.md: the same sequence of hits through
# RL.HIT and through the Python `limits` library (5.8) on one private
# redis-server with the module. Needs python3 with venv; installs
# limits==5.8.* and redis-py into examples/.venv.
#
#   examples/compare-limits.sh
set -euo pipefail
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
need python3 "install Python 3 with venv"
VENV=$EXAMPLES_DIR/.venv
[ -x "$VENV/bin/python" ] || python3 -m venv "$VENV"
"$VENV/bin/python" -c 'import limits, redis, sys; sys.exit(not limits.__version__.startswith("5.8."))' 2>/dev/null ||
  "$VENV/bin/pip" install -q -r "$EXAMPLES_DIR/python/requirements.txt" 'limits==5.8.*'
start_server
"$VENV/bin/python" "$EXAMPLES_DIR/compare_limits.py"

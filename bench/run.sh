#!/usr/bin/env bash
# Damselfly vs Redis side-by-side benchmark.  See bench/README.md.
#
#   bench/run.sh [--quick] [--threads 1,2] [--out FILE] [--big] [--growth] ...
#   bench/run.sh --help            # all options
#
# Environment: DAMSELFLY_BIN (default target/release/damselfly in the repo),
#              REDIS_SERVER, REDIS_BENCHMARK (default: from PATH).
#
# The orchestration (starting/stopping servers, parsing redis-benchmark,
# reading /proc, the pipelined loader, markdown output) lives in bench/bench.py
# (Python 3, standard library only).  Servers are stopped on every exit path,
# and are also killed by the kernel (PR_SET_PDEATHSIG) if the driver itself
# is killed.
set -euo pipefail

script_dir=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
repo_root=$(cd "$script_dir/.." && pwd)

# bench.py records "$BENCH_PROG" plus its arguments (shell-quoted) as the exact
# command line, and resolves user-given relative paths against BENCH_ORIG_CWD.
export BENCH_ORIG_CWD=$PWD
export BENCH_PROG=$0

cd "$repo_root"

for tool in python3 "${REDIS_SERVER:-redis-server}" "${REDIS_BENCHMARK:-redis-benchmark}" git; do
    if ! command -v "$tool" >/dev/null 2>&1; then
        echo "run.sh: error: required tool '$tool' not found in PATH" >&2
        exit 2
    fi
done
if [[ ! -r /proc/self/stat ]]; then
    echo "run.sh: error: /proc is required (Linux only)" >&2
    exit 2
fi

# Belt and braces: bench.py cleans up its own servers; this trap reports
# abnormal exits.  (Not exec'd so that the trap stays in place.)
py_pid=
on_signal() {
    trap - INT TERM HUP
    if [[ -n $py_pid ]]; then kill -TERM "$py_pid" 2>/dev/null || true; wait "$py_pid" 2>/dev/null || true; fi
    echo "run.sh: interrupted" >&2
    exit 130
}
trap on_signal INT TERM HUP

python3 "$script_dir/bench.py" "$@" &
py_pid=$!
set +e
wait "$py_pid"
rc=$?
set -e
if [[ $rc -ne 0 ]]; then
    echo "run.sh: benchmark FAILED (exit $rc)" >&2
fi
exit "$rc"

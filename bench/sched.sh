#!/usr/bin/env bash
# Where a server's threads spend a redis-benchmark run: per thread, time on a CPU, time
# runnable but waiting for one (the run queue), and context switches, from
# /proc/PID/task/TID/{schedstat,status}; plus redis-benchmark's latency line. No perf needed.
#
#   bench/sched.sh [--redis] [--threads T] [--test get] [-P 1] [-n 200000] [-d 16]
#                  [--repeat 3] [--env VAR=VALUE]...
#
# Example (the figures in BENCHMARKS.md, "Two threads at -P 1 on two cores"):
#   bench/sched.sh --threads 2 --test get -P 1 -n 200000 --repeat 3
#   bench/sched.sh --threads 1 --test get -P 1 -n 200000 --repeat 3
#   bench/sched.sh --redis --test get -P 1 -n 200000 --repeat 3
#
# The server (DAMSELFLY_BIN, default target/release/damselfly; or redis-server) gets a free
# port on 127.0.0.1 and is warmed with 200k pipelined SETs over the same keyspace first.
set -euo pipefail

repo_root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
bin=${DAMSELFLY_BIN:-$repo_root/target/release/damselfly}
redis=0 threads=1 test=get pipeline=1 requests=200000 size=16 repeat=3
envs=()
while [[ $# -gt 0 ]]; do
    case $1 in
        --redis) redis=1 ;;
        --threads) threads=$2; shift ;;
        --test) test=$2; shift ;;
        -P) pipeline=$2; shift ;;
        -n) requests=$2; shift ;;
        -d) size=$2; shift ;;
        --repeat) repeat=$2; shift ;;
        --env) envs+=("$2"); shift ;;
        -h|--help) sed -n 2,15p "$0"; exit 0 ;;
        *) echo "sched.sh: unknown argument '$1' (see --help)" >&2; exit 2 ;;
    esac
    shift
done
for tool in redis-benchmark python3; do
    command -v "$tool" >/dev/null || { echo "sched.sh: '$tool' not found" >&2; exit 2; }
done

port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
if [[ $redis == 1 ]]; then
    env "${envs[@]}" redis-server --port "$port" --bind 127.0.0.1 --save "" --appendonly no >/dev/null 2>&1 &
    label=redis
else
    env "${envs[@]}" "$bin" --port "$port" --bind 127.0.0.1 --proactor_threads "$threads" --logtostderr >/dev/null 2>&1 &
    label="damselfly T=$threads"
fi
pid=$!
trap 'kill "$pid" 2>/dev/null || true; wait "$pid" 2>/dev/null || true' EXIT
for _ in $(seq 100); do
    redis-cli -p "$port" ping >/dev/null 2>&1 && break
    sleep 0.05
done
redis-benchmark -p "$port" -c 50 -n 200000 -r 1000000 -t set -P 16 -d "$size" -q >/dev/null 2>&1

# One line per thread: tid comm run_ns wait_ns voluntary+involuntary switches.
snapshot() {
    for t in /proc/"$pid"/task/*; do
        read -r run wait _ < "$t/schedstat"
        sw=$(awk '/ctxt_switches/ {s += $2} END {print s}' "$t/status")
        echo "$(basename "$t") $(tr ' ' _ < "$t/comm") $run $wait $sw"
    done | sort
}

echo "$label: redis-benchmark -c 50 -n $requests -r 1000000 -t $test -P $pipeline -d $size ${envs[*]:-}"
for rep in $(seq "$repeat"); do
    before=$(snapshot)
    lat=$(redis-benchmark -p "$port" -c 50 -n "$requests" -r 1000000 -t "$test" -P "$pipeline" \
            -d "$size" --precision 3 2>&1 | tr '\r' '\n' \
          | awk '/throughput summary/ {rps = $3} /avg +min/ {getline; print "rps " rps "  avg/min/p50/p95/p99/max " $1 "/" $2 "/" $3 "/" $4 "/" $5 "/" $6}')
    after=$(snapshot)
    echo "run $rep: $lat"
    join <(echo "$before") <(echo "$after") | awk '
        { run = ($7 - $3) / 1e6; wait = ($8 - $4) / 1e6; sw = $9 - $5
          if (run < 1) next
          tr += run; tw += wait; ts += sw
          printf "  %-16s on CPU %7.1f ms  waiting for CPU %7.1f ms  switches %6d\n", $2, run, wait, sw }
        END { printf "  %-16s on CPU %7.1f ms  waiting for CPU %7.1f ms  switches %6d\n", "all threads", tr, tw, ts }'
done

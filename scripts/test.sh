#!/usr/bin/env bash
# Runs every test of the project. Installs what the tests need first (redis-server and
# redis-tools from Debian: the oracle for the differential tests, and redis-cli for tests/tools.rs), so this works on a fresh
# Debian machine. Usage: scripts/test.sh
set -euo pipefail
cd "$(dirname "$0")/.."

if ! command -v redis-server >/dev/null 2>&1 || ! command -v redis-benchmark >/dev/null 2>&1 \
    || ! command -v redis-cli >/dev/null 2>&1; then
    echo "== installing redis-server and redis-tools (the differential oracle)"
    SUDO=""
    if [ "$(id -u)" -ne 0 ]; then SUDO="sudo"; fi
    $SUDO apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq redis-server redis-tools >/dev/null
fi
echo "== $(redis-server --version)"

echo "== building damselfly (release)"
cargo build --release --bin damselfly
export DAMSELFLY_BIN="$PWD/target/release/damselfly"

echo "== cargo test (unit, black-box, differential)"
cargo test --workspace --release --no-fail-fast

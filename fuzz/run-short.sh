#!/usr/bin/env bash
# Runs every fuzz target for a short while (FUZZ_SECONDS, default 30) and fails on the first
# crash. cargo-fuzz wants a nightly compiler; RUSTC_BOOTSTRAP=1 lets the stable one accept
# the -Z flags it passes. Installs cargo-fuzz when it is missing.
#
#   fuzz/run-short.sh                     # every target, 30 s each
#   FUZZ_SECONDS=600 fuzz/run-short.sh stomp_decoder
set -euo pipefail

cd "$(dirname "$0")"
seconds="${FUZZ_SECONDS:-30}"
export RUSTC_BOOTSTRAP=1
# Its own target dir unless the caller chose one: fuzz builds use other flags than the workspace.
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$PWD/target}"

if ! cargo fuzz --version >/dev/null 2>&1; then
    echo "installing cargo-fuzz"
    cargo install cargo-fuzz --locked
fi

if [ "$#" -gt 0 ]; then
    targets=("$@")
else
    mapfile -t targets < <(cargo fuzz list)
fi

# Debug assertions make integer overflow a crash; the workspace forbids unsafe code, so the
# address sanitizer would only slow the search down.
flags=(--release --debug-assertions --sanitizer none)
cargo fuzz build "${flags[@]}"

for target in "${targets[@]}"; do
    mkdir -p "corpus/$target"
    if [ -d "seeds/$target" ]; then
        cp -n "seeds/$target"/* "corpus/$target/" 2>/dev/null || true
    fi
    echo "fuzzing $target for ${seconds} s"
    cargo fuzz run "${flags[@]}" "$target" "corpus/$target" -- \
        -max_total_time="$seconds" -timeout=10 -rss_limit_mb=2048 -max_len=65536 \
        -print_final_stats=1
done
echo "fuzzing: ${#targets[@]} targets ran clean for ${seconds} s each"

#!/usr/bin/env bash
# Fuzzes every decoder of bytes a peer sends us, one target after another.
#
#   rust/core/fuzz/run.sh [SECONDS_PER_TARGET] [TARGET...]
#
# SECONDS_PER_TARGET defaults to 75: nine targets, over ten minutes in all. With
# no TARGET, every target in Cargo.toml runs. Each one starts from and grows
# corpus/<target>/; afterwards that directory is minimized (libFuzzer's
# set-cover merge), keeping the hand-made `seed-*` files, so it stays small
# enough to commit. A crash leaves its input in artifacts/<target>/ and makes
# the script exit 1 after the other targets have run. Replay one (from the
# repository root) with
#   cargo fuzz run --fuzz-dir rust/core/fuzz -s none TARGET \
#       rust/core/fuzz/artifacts/TARGET/crash-…
#
# Needs cargo-fuzz (`cargo install cargo-fuzz`) and works on stable Rust:
# with no sanitizer (`-s none`) libFuzzer needs no nightly flag. Overflow
# checks and debug assertions are on. Environment:
#   FUZZ_TOOLCHAIN   rustup toolchain (default: stable)
#   FUZZ_SANITIZER   none (default) | address (needs a nightly toolchain)
#   FUZZ_BUILD_JOBS  parallel rustc jobs for the build (default: 1)
#   CARGO_TARGET_DIR build directory (default: ~/.cache/mosaik-fuzz-target,
#                    outside the repo so the workspace build's lock is free)
set -euo pipefail

fuzz_dir="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
seconds="${1:-75}"
shift || true
toolchain="${FUZZ_TOOLCHAIN:-stable}"
sanitizer="${FUZZ_SANITIZER:-none}"
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/mosaik-fuzz-target}"
export CARGO_BUILD_JOBS="${FUZZ_BUILD_JOBS:-1}"

if ! cargo fuzz --version >/dev/null 2>&1; then
    echo "cargo-fuzz is missing: cargo install cargo-fuzz" >&2
    exit 2
fi

targets=("$@")
if [ ${#targets[@]} -eq 0 ]; then
    mapfile -t targets < <(cd "$fuzz_dir" && cargo "+$toolchain" fuzz list --fuzz-dir "$fuzz_dir")
fi

fuzz=(cargo "+$toolchain" fuzz)
common=(--fuzz-dir "$fuzz_dir" --target-dir "$CARGO_TARGET_DIR" -s "$sanitizer" --debug-assertions)
for target in "${targets[@]}"; do
    "${fuzz[@]}" build "${common[@]}" "$target"
done

logs="$CARGO_TARGET_DIR/logs"
mkdir -p "$logs"
summary=()
failed=0
for target in "${targets[@]}"; do
    corpus="$fuzz_dir/corpus/$target"
    mkdir -p "$corpus"
    log="$logs/$target.log"
    echo "== $target: ${seconds}s (log: $log)"
    status=ok
    if ! "${fuzz[@]}" run "${common[@]}" "$target" "$corpus" -- \
        -max_total_time="$seconds" -timeout=10 -print_final_stats=1 >"$log" 2>&1; then
        status=CRASH
        failed=1
        grep -E "panicked at|ERROR: libFuzzer|SUMMARY|Test unit written" "$log" | head -5 || true
    fi
    execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -1)
    rate=$(sed -n 's/^stat::average_exec_per_sec: *//p' "$log" | tail -1)

    # Minimize: keep the seeds, then the smallest set of grown inputs that
    # covers the same features (libFuzzer's set-cover merge).
    merged="$(mktemp -d)"
    cp "$corpus"/seed-* "$merged"/ 2>/dev/null || true
    if "${fuzz[@]}" run "${common[@]}" "$target" "$merged" "$corpus" -- -set_cover_merge=1 \
        >"$logs/$target.merge.log" 2>&1; then
        find "$corpus" -mindepth 1 -delete
        cp "$merged"/* "$corpus"/
    fi
    rm -rf "$merged"
    summary+=("$(printf '%-18s %-6s %12s execs %8s execs/s %5s inputs' \
        "$target" "$status" "${execs:-?}" "${rate:-?}" "$(find "$corpus" -type f | wc -l)")")
done

echo
echo "== fuzzed ${#targets[@]} targets, ${seconds}s each (sanitizer: $sanitizer, toolchain: $toolchain)"
printf '%s\n' "${summary[@]}"
exit "$failed"

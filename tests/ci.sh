#!/usr/bin/env bash
# tests/ci.sh - the whole test sequence, from the repository root or anywhere:
#   1. libFuzzer (clang, ASan + UBSan) on the checkpoint loader, the tokenizer loader and the
#      encoder, L2C_FUZZ_SECONDS each (default 60) from seed corpora made by the generator;
#      any finding fails, and its input is left in build-fuzz/artifacts;
#   2. the whole ctest suite in an ASan + UBSan build (every llama2cl run inside the tests is
#      sanitized too; test_cpu_leaks checks the CPU path with leak detection on);
#   3. the normal Release build and its ctest suite, last, so that its summary ends the output.
# Build directories: build-fuzz, build-asan, and $L2C_CI_BUILD (default build) for step 3.
# The real models are looked for in $LLAMA2CL_MODELS (default ../shared/models); tests that need
# them report skipped without them.
set -euo pipefail
cd "$(dirname "$0")/.."

fuzz_seconds=${L2C_FUZZ_SECONDS:-60}
release_dir=${L2C_CI_BUILD:-build}
jobs=${L2C_CI_JOBS:-2}
models=${LLAMA2CL_MODELS:-../shared/models}
start=$SECONDS

stage() {
    echo
    echo "=== $1 (at $((SECONDS - start)) s)"
}

# ------------------------------------------------------------------------------------------------
# 1. fuzzing

stage "libFuzzer build (build-fuzz)"
cmake -S . -B build-fuzz -DCMAKE_C_COMPILER=clang -DL2C_FUZZ=ON -DL2C_NATIVE=OFF \
    -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
cmake --build build-fuzz -j"$jobs" --target fuzz_checkpoint fuzz_tokenizer fuzz_encode make_corpus

rm -rf build-fuzz/corpus build-fuzz/artifacts
mkdir -p build-fuzz/artifacts
real_tokenizer=()
if [ -r "$models/tok512.bin" ]; then real_tokenizer=("$models/tok512.bin"); fi
build-fuzz/tests/fuzz/make_corpus build-fuzz/corpus "${real_tokenizer[@]}"

for target in checkpoint tokenizer encode; do
    stage "fuzz_$target for $fuzz_seconds s"
    if ! LLAMA2CL_MODELS="$models" build-fuzz/tests/fuzz/fuzz_$target \
            -max_total_time="$fuzz_seconds" -timeout=10 -rss_limit_mb=2048 \
            -artifact_prefix="build-fuzz/artifacts/$target-" -print_final_stats=1 \
            "build-fuzz/corpus/$target" 2>build-fuzz/fuzz_$target.log; then
        tail -n 60 build-fuzz/fuzz_$target.log
        echo "fuzz_$target found a failing input: replay it with" \
             "build-fuzz/tests/fuzz/fuzz_$target build-fuzz/artifacts/$target-*" >&2
        exit 1
    fi
    grep -E "^(Done|stat::number_of_executed_units)" build-fuzz/fuzz_$target.log || true
done

# ------------------------------------------------------------------------------------------------
# 2. sanitizers

stage "ASan + UBSan build (build-asan)"
cmake -S . -B build-asan -DL2C_SANITIZE=ON -DL2C_NATIVE=OFF -DCMAKE_BUILD_TYPE=RelWithDebInfo \
    -DCMAKE_C_FLAGS="-fsanitize=float-cast-overflow -fno-sanitize-recover=all" >/dev/null
cmake --build build-asan -j"$jobs"

stage "ctest under ASan + UBSan"
# Leak detection stays off for the suite as a whole: with PoCL's worker threads alive at exit,
# LeakSanitizer's stop-the-world fails now and then ("LeakSanitizer has encountered a fatal
# error", about one device run in ten here), which would make CI flaky. test_cpu_leaks turns it
# on for the CPU path's command line, where it is deterministic.
ASAN_OPTIONS=detect_leaks=0:detect_stack_use_after_return=1 \
UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
    ctest --test-dir build-asan --output-on-failure

# ------------------------------------------------------------------------------------------------
# 3. the Release build

stage "Release build ($release_dir)"
cmake -S . -B "$release_dir" -DCMAKE_BUILD_TYPE=Release >/dev/null
cmake --build "$release_dir" -j"$jobs"

stage "ctest, Release"
ctest --test-dir "$release_dir" --output-on-failure

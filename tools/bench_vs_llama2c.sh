#!/usr/bin/env bash
# bench_vs_llama2c.sh - decoding speed of llama2cl's CPU backend against llama2.c's run.c (fp32)
# and runq.c (Q8_0) on random models of the stories110M shape, measured alternately in one run
# so that both see the same machine load; also checks that both print the same text.
#
# usage: tools/bench_vs_llama2c.sh LLAMA2C_DIR [BUILD_DIR] [REPETITIONS] [STEPS]
#   LLAMA2C_DIR  a checkout of karpathy/llama2.c; its run and runq are used when present, else
#                built there from run.c and runq.c with gcc -Ofast -fopenmp -march=native
#   BUILD_DIR    llama2cl's build directory (default: build beside this script's folder)
#   REPETITIONS  alternations of the four programs (default 5)
#   STEPS        positions per run, -n (default 256)
# SHAPE=stories15M picks another shape; KEEP=1 keeps the generated files. Nothing is downloaded.
set -euo pipefail

llama2c=${1:?usage: $0 LLAMA2C_DIR [BUILD_DIR] [REPETITIONS] [STEPS]}
build=${2:-$(cd "$(dirname "$0")/.." && pwd)/build}
reps=${3:-5}
steps=${4:-256}
shape=${SHAPE:-stories110M}

# llama2.c's programs, built as its Makefile's "runfast"/"runomp" targets build them
for prog in run runq; do
    if [ ! -x "$llama2c/$prog" ]; then
        echo "building $llama2c/$prog" >&2
        gcc -Ofast -fopenmp -march=native "$llama2c/$prog.c" -lm -o "$llama2c/$prog"
    fi
done
for tool in l2c-gen llama2cl; do
    [ -x "$build/$tool" ] || { echo "$build/$tool is missing: build llama2cl first" >&2; exit 1; }
done

# the models and a tokenizer for their vocabulary
work=$(mktemp -d "${TMPDIR:-/tmp}/bench-vs-llama2c-XXXXXX")
[ "${KEEP:-0}" = 1 ] || trap 'rm -rf "$work"' EXIT
"$build/l2c-gen" --shape "$shape" --tokenizer "$work/tok.bin" -o "$work/f32.bin" >&2
"$build/l2c-gen" --shape "$shape" --format v2 -o "$work/q80.bin" >&2
cat "$work/f32.bin" "$work/q80.bin" > /dev/null # into the page cache

# one run: prints its "achieved tok/s"; the generated text goes to $work/NAME.txt
args=(-z "$work/tok.bin" -t 1.0 -p 0.9 -s 42 -n "$steps" -i "Once upon a time")
run_one() { # name program...
    local name=$1
    shift
    "$@" "${args[@]}" > "$work/$name.txt" 2> "$work/$name.err"
    awk '/achieved tok\/s/ {print $3}' "$work/$name.err"
}

echo "# $shape, $steps positions, $reps alternations, $(nproc) cores, OMP_NUM_THREADS=${OMP_NUM_THREADS:-default}"
echo "# rep  run.c  llama2cl-fp32  runq.c  llama2cl-q8  (tok/s)"
for r in $(seq 1 "$reps"); do
    a=$(run_one run "$llama2c/run" "$work/f32.bin")
    b=$(run_one l2c_f32 "$build/llama2cl" --cpu "$work/f32.bin")
    c=$(run_one runq "$llama2c/runq" "$work/q80.bin")
    d=$(run_one l2c_q8 "$build/llama2cl" --cpu "$work/q80.bin")
    echo "$r $a $b $c $d"
done | tee "$work/times.txt"

# the text: llama2cl's CPU path computes what run.c and runq.c compute as llama2.c's "make run"
# builds them (gcc -O3); -Ofast lets the compiler change their arithmetic, so their text may
# differ from that of the plain builds, which are built here for the comparison
gcc -O3 "$llama2c/run.c" -lm -o "$work/run_O3"
gcc -O3 "$llama2c/runq.c" -lm -o "$work/runq_O3"
run_one run_O3 "$work/run_O3" "$work/f32.bin" > /dev/null
run_one runq_O3 "$work/runq_O3" "$work/q80.bin" > /dev/null
same() { cmp -s "$work/$1.txt" "$work/$2.txt" && echo "identical" || echo "different"; }
echo "# text of llama2cl --cpu vs gcc -O3 builds: fp32 $(same run_O3 l2c_f32)," \
     "Q8_0 $(same runq_O3 l2c_q8); vs the -Ofast builds: fp32 $(same run l2c_f32)," \
     "Q8_0 $(same runq l2c_q8)"

# medians, and the median of the per-alternation ratios
awk '
function median(v, n,   i, j, t) {
    for (i = 2; i <= n; i++) for (j = i; j > 1 && v[j - 1] > v[j]; j--) {
        t = v[j]; v[j] = v[j - 1]; v[j - 1] = t
    }
    return n % 2 ? v[(n + 1) / 2] : (v[n / 2] + v[n / 2 + 1]) / 2
}
!/^#/ { n++; a[n] = $2; b[n] = $3; c[n] = $4; d[n] = $5; rf[n] = $3 / $2; rq[n] = $5 / $4 }
END {
    printf "fp32: run.c %.2f tok/s, llama2cl %.2f tok/s, ratio llama2cl/run.c %.3f (median of per-alternation ratios)\n", median(a, n), median(b, n), median(rf, n)
    printf "Q8_0: runq.c %.2f tok/s, llama2cl %.2f tok/s, ratio llama2cl/runq.c %.3f\n", median(c, n), median(d, n), median(rq, n)
}' "$work/times.txt"

#!/usr/bin/env bash
# bench_vs_llama2c.sh - decoding speed of llama2cl's CPU backend against llama2.c's run.c (fp32)
# and runq.c (Q8_0) on random models of the stories110M shape, measured alternately in one run
# so that both see the same machine load; also compares the texts they print.
#
# usage: tools/bench_vs_llama2c.sh LLAMA2C_DIR [BUILD_DIR] [REPETITIONS] [STEPS]
#   LLAMA2C_DIR  a checkout of karpathy/llama2.c; its run and runq are used when present, else
#                built there from run.c and runq.c with gcc -Ofast -fopenmp -march=native
#   BUILD_DIR    llama2cl's build directory (default: build beside this script's folder)
#   REPETITIONS  alternations of the four programs (default 5)
#   STEPS        positions per run, -n (default 256)
# SHAPE=stories15M picks another shape; MAX_LOAD=P (default 10) runs an alternation again when
# other processes took more than P% of all CPUs during it; KEEP=1 keeps the generated files.
# Linux only (/proc/stat). Nothing is downloaded.
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

# the CPU seconds the machine has been busy, and in all, from /proc/stat
tick=$(getconf CLK_TCK)
machine_clock() {
    awk -v t="$tick" '/^cpu / {
        busy = $2 + $3 + $4 + $7 + $8 + $9
        printf "%.2f %.2f", busy / t, (busy + $5 + $6) / t
    }' /proc/stat
}

# one run: prints its "achieved tok/s" and the share of the machine (%) that other processes
# took meanwhile; the generated text goes to $work/NAME.txt. Sampling at temperature 1 without
# top-p keeps the sampler's cost small beside the forward pass (top-p sorts nearly the whole
# vocabulary of a random model at every step), and avoids greedy decoding, which stops at once
# on these models.
args=(-z "$work/tok.bin" -t 1.0 -p 0 -s 42 -n "$steps" -i "Once upon a time")
run_one() { # name program...
    local name=$1 before after
    shift
    before=$(machine_clock)
    TIMEFORMAT='%U %S'
    { time "$@" "${args[@]}" > "$work/$name.txt" 2> "$work/$name.err"; } 2> "$work/$name.time"
    after=$(machine_clock)
    local rate others
    rate=$(awk '/achieved tok\/s/ {print $3}' "$work/$name.err")
    others=$(echo "$before $after $(cat "$work/$name.time")" |
             awk '{o = ($3 - $1 - $5 - $6) / ($4 - $2) * 100; printf "%.0f", o < 0 ? 0 : o}')
    echo "$rate $others"
}

# alternations, llama2.c's program first in odd ones and llama2cl first in even ones; one
# during which other processes took more than MAX_LOAD% of the machine in any of its four runs
# is run again, up to 10 times
max_load=${MAX_LOAD:-10}
echo "# $shape, $steps positions, $reps alternations, $(nproc) cores," \
     "OMP_NUM_THREADS=${OMP_NUM_THREADS:-default}, MAX_LOAD=$max_load%"
echo "# rep  run.c  llama2cl-fp32  runq.c  llama2cl-q8  (tok/s)  others% during each"
for r in $(seq 1 "$reps"); do
    for attempt in $(seq 1 10); do
        if [ $((r % 2)) = 1 ]; then
            read -r a la < <(run_one run "$llama2c/run" "$work/f32.bin")
            read -r b lb < <(run_one l2c_f32 "$build/llama2cl" --cpu "$work/f32.bin")
            read -r c lc < <(run_one runq "$llama2c/runq" "$work/q80.bin")
            read -r d ld < <(run_one l2c_q8 "$build/llama2cl" --cpu "$work/q80.bin")
        else
            read -r b lb < <(run_one l2c_f32 "$build/llama2cl" --cpu "$work/f32.bin")
            read -r a la < <(run_one run "$llama2c/run" "$work/f32.bin")
            read -r d ld < <(run_one l2c_q8 "$build/llama2cl" --cpu "$work/q80.bin")
            read -r c lc < <(run_one runq "$llama2c/runq" "$work/q80.bin")
        fi
        worst=$(printf '%s\n' "$la" "$lb" "$lc" "$ld" | sort -n | tail -1)
        [ "$worst" -le "$max_load" ] && break
        echo "# (alternation $r measured again: others took $worst%)"
    done
    echo "$r $a $b $c $d  $la $lb $lc $ld"
done | tee "$work/times.txt"

# the text: for Q8_0, llama2cl's CPU path computes what runq.c computes as llama2.c's
# "make run" builds it (gcc -O3), built here for the comparison, so the texts must be the same;
# -Ofast lets the compiler change runq.c's arithmetic. For fp32 the dot products' terms are
# summed in another order (as -Ofast does for run.c too); sampling a random model's nearly flat
# distribution can turn on such last-bit differences, so the fp32 texts may differ
gcc -O3 "$llama2c/run.c" -lm -o "$work/run_O3"
gcc -O3 "$llama2c/runq.c" -lm -o "$work/runq_O3"
run_one run_O3 "$work/run_O3" "$work/f32.bin" > /dev/null
run_one runq_O3 "$work/runq_O3" "$work/q80.bin" > /dev/null
same() { cmp -s "$work/$1.txt" "$work/$2.txt" && echo "identical" || echo "different"; }
echo "# text: llama2cl Q8_0 vs runq.c -O3: $(same runq_O3 l2c_q8); vs runq.c -Ofast:" \
     "$(same runq l2c_q8); llama2cl fp32 vs run.c -O3: $(same run_O3 l2c_f32), vs run.c" \
     "-Ofast: $(same run l2c_f32); run.c -Ofast vs -O3: $(same run run_O3)"

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
    printf "fp32: run.c %.2f tok/s, llama2cl %.2f tok/s, llama2cl/run.c %.3f\n",
        median(a, n), median(b, n), median(rf, n)
    printf "Q8_0: runq.c %.2f tok/s, llama2cl %.2f tok/s, llama2cl/runq.c %.3f\n",
        median(c, n), median(d, n), median(rq, n)
    print "(medians; the ratio is the median of the per-alternation ratios)"
}' "$work/times.txt"

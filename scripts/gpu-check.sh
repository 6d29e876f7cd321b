#!/usr/bin/env bash
# The CUDA check: isdet on a real GPU, prepared here, run there, in one go.
#
#   scripts/gpu-check.sh prepare [--dest DIR]
#       On a machine with cargo (no GPU needed): builds `xtask` and the
#       device test (`fast_path`) with `--features cuda` in release mode,
#       strips them and puts them in DIR (default .gpu/bin; the build in
#       .gpu/target, CUDA 13.0 from PyPI in .gpu/venv), and packs DIR as
#       DIR.tar.xz, small enough to carry to a GPU machine that has no Rust
#       toolchain.
#   scripts/gpu-check.sh run [--device cuda|cpu] [--bin DIR] [--xtask FILE]
#                            [--out DIR] [--steps N] [--bench PRESET:BATCH,…]
#                            [--skip CHECK,…]
#       On the GPU machine (--bin: the folder or the .tar.xz of prepare):
#       runs the checks and writes DIR/gpu-check.json
#       (default DIR: gpu-check) and DIR/gpu-check.log. `--device cpu`
#       runs the same checks on the CPU (how CI exercises this script, with
#       a few steps, one bench setting and device-parity skipped).
#       `--steps` sizes the short run (default 64 steps); `--bench` the
#       settings benched (default tiny:16,tiny:32,small:16,small:32).
#
# The checks, in order (each one's outcome and seconds in the JSON):
#   1. device-parity: the detector and the classifier, one batch, forward,
#      objective and every gradient on the device against the fast CPU
#      path (crates/detector/tests/fast_path.rs with ISDET_TEST_DEVICE;
#      tolerance 1e-3 of the largest magnitude off the CPU).
#   2. train: a short synth run on the device; its training loss must fall.
#   3. resume: the same run stopped with Ctrl-C after its first
#      checkpoint, then resumed by the same command, finishes all its steps.
#   4. bench: `xtask bench train-step` on the device, tiny and small
#      presets at batch 16 and 32 (96 px); the reports go in the JSON.
#
# Exit status: 0 every check passed; 1 a check failed; 2 bad arguments;
# 3 no GPU (`--device cuda` where nvidia-smi sees none: nothing was run,
# and the JSON says so).
#
# `prepare` installs nvcc, the headers and the link libraries of CUDA 13.0
# from PyPI into .gpu/venv itself: 13.0 is the GPU driver's version here,
# and a newer nvcc writes PTX an older driver cannot load. It needs cargo,
# python3, a C compiler (for the stub libcuda) and the package registries.
# See docs/detector.md.

set -uo pipefail

usage() {
    sed -n '2,/^$/p' "$0" | sed 's/^# \{0,1\}//'
}

die_usage() {
    echo "gpu-check: $1" >&2
    echo "usage: scripts/gpu-check.sh prepare [--dest DIR] | run [--device cuda|cpu] [--bin DIR] [--xtask FILE] [--out DIR] [--steps N] [--bench PRESET:BATCH,…] [--skip CHECK,…] (--help for more)" >&2
    exit 2
}

ROOT=$(cd "$(dirname "$0")/.." && pwd)

# --- prepare ---------------------------------------------------------------

# CUDA 13.0's compiler, headers and link libraries from PyPI, in .gpu/venv
# (nothing is installed outside the repository). 13.0 is the GPU driver's
# version here: a newer nvcc writes PTX the driver cannot load.
CUDA_WHEELS=("nvidia-cuda-nvcc==13.0.*" "nvidia-nvvm==13.0.*" "nvidia-cuda-crt==13.0.*"
    "nvidia-cuda-runtime==13.0.*" "nvidia-cuda-cccl==13.0.*" "nvidia-cuda-nvrtc==13.0.*"
    "nvidia-cublas==13.0.*" "nvidia-curand")

# Puts nvcc on PATH and points cudarc's build (candle links the CUDA
# libraries dynamically) at .gpu/cuda-root, a folder of the link names it
# asks for: the PyPI libraries, and a stub libcuda.so, since the driver's
# libcuda exists only on the GPU machine (the real one is loaded there).
cuda_toolkit() {
    local venv=.gpu/venv
    if [ ! -x "$venv/bin/pip" ]; then
        python3 -m venv "$venv" || return 1
    fi
    "$venv/bin/pip" install --quiet "${CUDA_WHEELS[@]}" || return 1
    local cu13
    cu13=$(echo "$ROOT"/$venv/lib/python3*/site-packages/nvidia/cu13)
    [ -x "$cu13/bin/nvcc" ] || { echo "gpu-check: no nvcc in $cu13/bin" >&2; return 1; }
    export PATH="$cu13/bin:$PATH"
    local root=.gpu/cuda-root/lib64 lib
    mkdir -p "$root"
    for lib in cublas cublasLt curand nvrtc cudart; do
        local found
        found=$(ls "$cu13"/lib/lib$lib.so.* 2>/dev/null | grep -v alt | head -1)
        [ -n "$found" ] || { echo "gpu-check: no lib$lib in $cu13/lib" >&2; return 1; }
        ln -sf "$found" "$root/lib$lib.so"
    done
    cuda_stub "$root" || return 1
    export CUDA_ROOT="$ROOT/.gpu/cuda-root"
    export LIBRARY_PATH="$ROOT/$root${LIBRARY_PATH:+:$LIBRARY_PATH}"
    nvcc --version | tail -1
}

# A libcuda.so (soname libcuda.so.1) defining every driver function
# cudarc's bindings declare, for linking only.
cuda_stub() {
    local dir=$1 bindings
    bindings=$(ls -d "${CARGO_HOME:-$HOME/.cargo}"/registry/src/*/cudarc-0.19.*/src/driver/sys/mod.rs 2>/dev/null | tail -1)
    if [ -z "$bindings" ]; then
        cargo fetch >/dev/null || return 1
        bindings=$(ls -d "${CARGO_HOME:-$HOME/.cargo}"/registry/src/*/cudarc-0.19.*/src/driver/sys/mod.rs | tail -1)
    fi
    grep -oE '^\s+fn cu[A-Za-z0-9_]+\(' "$bindings" | sed -E 's/^\s+fn (cu[A-Za-z0-9_]+)\(/void \1(void) {}/' \
        | sort -u >"$dir/cuda_stub.c"
    [ -s "$dir/cuda_stub.c" ] || { echo "gpu-check: no driver functions found in $bindings" >&2; return 1; }
    cc -shared -fPIC -Wl,-soname,libcuda.so.1 -o "$dir/libcuda.so" "$dir/cuda_stub.c"
}

prepare() {
    local dest=".gpu/bin"
    while [ $# -gt 0 ]; do
        case "$1" in
            --dest) [ $# -ge 2 ] || die_usage "--dest needs a folder"; dest=$2; shift 2 ;;
            *) die_usage "prepare: unknown argument '$1'" ;;
        esac
    done
    command -v cargo >/dev/null || { echo "gpu-check: prepare needs cargo" >&2; exit 1; }
    cd "$ROOT" || exit 1
    cuda_toolkit || exit 1
    # The GPU machines here are Hopper (compute capability 9.0) with a
    # CUDA 13.0 driver: cudarc's bindings must not ask for a newer API.
    export CUDA_COMPUTE_CAP=${CUDA_COMPUTE_CAP:-90}
    export CUDARC_CUDA_VERSION=${CUDARC_CUDA_VERSION:-13000}
    local features=(--release --workspace --features xtask/cuda)
    # A target folder of its own: the CUDA features would otherwise
    # rebuild the CPU build's candle.
    export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-.gpu/target}
    cargo build "${features[@]}" --bin xtask || exit 1
    local test_exe
    test_exe=$(cargo test "${features[@]}" --test fast_path --no-run --message-format=json \
        | python3 -c '
import json, sys
for line in sys.stdin:
    m = json.loads(line)
    if m.get("reason") == "compiler-artifact" and m.get("executable") and m["target"]["name"] == "fast_path":
        print(m["executable"])
') || exit 1
    [ -n "$test_exe" ] || { echo "gpu-check: no fast_path test executable was built" >&2; exit 1; }
    mkdir -p "$dest"
    cp "$CARGO_TARGET_DIR/release/xtask" "$dest/xtask"
    cp "$test_exe" "$dest/fast_path"
    strip "$dest/xtask" "$dest/fast_path" || exit 1
    # The kernels' PTX is text: xz takes the pair from ~115 MB to ~14 MB,
    # well inside what the device tool carries.
    local pack="$dest.tar.xz"
    tar -C "$(dirname "$dest")" -cJf "$pack" "$(basename "$dest")" || exit 1
    du -sh "$dest"/* "$pack"
    echo "carry $pack; on the GPU machine: scripts/gpu-check.sh run --bin $pack"
}

# --- run -------------------------------------------------------------------

DEVICE=cuda
BIN=""
XTASK=""
OUT=gpu-check
STEPS=64
BENCH="tiny:16,tiny:32,small:16,small:32"
SKIP=""
ALL_CHECKS="device-parity train resume bench"
CHECKS=()      # one JSON object per check
FAILED=0

parse_run_args() {
    while [ $# -gt 0 ]; do
        case "$1" in
            --device)
                [ $# -ge 2 ] || die_usage "--device needs cuda or cpu"
                case "$2" in cuda | cpu) DEVICE=$2 ;; *) die_usage "--device $2: expected cuda or cpu" ;; esac
                shift 2 ;;
            --bin) [ $# -ge 2 ] || die_usage "--bin needs a folder"; BIN=$2; shift 2 ;;
            --xtask) [ $# -ge 2 ] || die_usage "--xtask needs a file"; XTASK=$2; shift 2 ;;
            --out) [ $# -ge 2 ] || die_usage "--out needs a folder"; OUT=$2; shift 2 ;;
            --steps)
                [ $# -ge 2 ] || die_usage "--steps needs a number"
                [[ "$2" =~ ^[1-9][0-9]*$ ]] || die_usage "--steps $2: expected a positive whole number"
                STEPS=$2; shift 2 ;;
            --bench)
                [ $# -ge 2 ] || die_usage "--bench needs PRESET:BATCH,…"
                [[ "$2" =~ ^((tiny|small):[1-9][0-9]*)(,(tiny|small):[1-9][0-9]*)*$ ]] \
                    || die_usage "--bench $2: expected PRESET:BATCH,… (tiny or small, e.g. tiny:16,small:32)"
                BENCH=$2; shift 2 ;;
            --skip)
                [ $# -ge 2 ] || die_usage "--skip needs CHECK,…"
                local check
                for check in ${2//,/ }; do
                    [[ " $ALL_CHECKS " == *" $check "* ]] \
                        || die_usage "--skip $check: expected one of: $ALL_CHECKS"
                done
                SKIP=" ${2//,/ } "; shift 2 ;;
            *) die_usage "run: unknown argument '$1'" ;;
        esac
    done
    XTASK_GIVEN=0
    if [ -z "$XTASK" ]; then
        XTASK=${BIN:-.gpu/bin}/xtask
    else
        XTASK_GIVEN=1
    fi
}

log() {
    echo "[$(date +%H:%M:%S)] $*" | tee -a "$LOG"
}

# record NAME STATUS SECONDS DETAIL: one check's outcome.
record() {
    CHECKS+=("$(python3 -c 'import json, sys
print(json.dumps({"name": sys.argv[1], "status": sys.argv[2],
                  "seconds": round(float(sys.argv[3]), 1), "detail": sys.argv[4]}))' "$1" "$2" "$3" "$4")")
    [ "$2" != failed ] || FAILED=1
    log "$1: $2 ($4)"
}

# Runs check NAME with FUNCTION unless --skip names it.
maybe() {
    if [[ "$SKIP" == *" $1 "* ]]; then
        record "$1" skipped 0 "--skip"
    else
        "$2"
    fi
}

now() { date +%s.%N; }
since() { python3 -c "import sys; print(float(sys.argv[2]) - float(sys.argv[1]))" "$1" "$(now)"; }

# write_json STATUS GPU_JSON BENCH_JSON
write_json() {
    local checks
    checks=$(printf '%s\n' "${CHECKS[@]+"${CHECKS[@]}"}")
    STATUS=$1 GPU=$2 BENCH=$3 CHECKS_LINES=$checks DEVICE=$DEVICE python3 - "$OUT/gpu-check.json" <<'EOF'
import json, os, sys
doc = {
    "status": os.environ["STATUS"],
    "device": os.environ["DEVICE"],
    "gpu": json.loads(os.environ["GPU"]),
    "checks": [json.loads(l) for l in os.environ["CHECKS_LINES"].splitlines() if l.strip()],
    "bench": json.loads(os.environ["BENCH"]),
}
tmp = sys.argv[1] + ".tmp"
with open(tmp, "w") as f:
    json.dump(doc, f, indent=1)
os.replace(tmp, sys.argv[1])
EOF
}

# The CUDA libraries the build links (cuBLAS, cuRAND, NVRTC, the runtime) from the
# nvidia-* packages of this machine's Python (the GPU machine's PyTorch
# brings them); the driver's libcuda is on the system path.
cuda_libraries() {
    local dirs
    dirs=$(python3 - <<'EOF'
import glob, os, site
roots = site.getsitepackages() + [site.getusersitepackages()]
print(":".join(sorted({d for r in roots for d in glob.glob(os.path.join(r, "nvidia", "*", "lib"))})))
EOF
)
    [ -z "$dirs" ] || export LD_LIBRARY_PATH="$dirs${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
    log "CUDA libraries from: ${dirs:-none found in the packages of python3}"
}

# The GPU as nvidia-smi names it (JSON), or null.
gpu_info() {
    local line
    line=$(nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader 2>/dev/null | head -1) || line=""
    if [ -z "$line" ]; then
        echo null
        return
    fi
    python3 -c 'import json, sys
name, driver, memory = [p.strip() for p in sys.argv[1].split(",")]
print(json.dumps({"name": name, "driver": driver, "memory": memory}))' "$line"
}

check_parity() {
    local start
    start=$(now)
    local cmd
    if [ -n "$BIN" ] && [ -x "$BIN/fast_path" ]; then
        cmd=("$BIN/fast_path" --test-threads 1)
    elif command -v cargo >/dev/null; then
        local features=()
        [ "$DEVICE" = cuda ] && features=(--features xtask/cuda)
        cmd=(cargo test --workspace "${features[@]+"${features[@]}"}" --test fast_path -- --test-threads 1)
    else
        record device-parity failed "$(since "$start")" "no fast_path test binary in --bin and no cargo"
        return
    fi
    if (cd "$ROOT" && ISDET_TEST_DEVICE=$DEVICE "${cmd[@]}") >>"$LOG" 2>&1; then
        record device-parity passed "$(since "$start")" "fast CPU path vs $DEVICE: objective, gradients, outputs"
    else
        record device-parity failed "$(since "$start")" "fast CPU path vs $DEVICE disagree or the test failed (see the log)"
    fi
}

# The short synth run of checks 2 and 3: small enough for a CPU in CI,
# long enough (STEPS steps, evaluated every STEPS/4) for the loss to fall.
train_args() {
    # 64 scenes at batch 8: 8 steps an epoch.
    local epochs=$(( (STEPS + 7) / 8 ))
    echo --config specs/synth-base.toml --quiet \
        --set "device=\"$DEVICE\"" --set data.train=64 --set data.val=32 \
        --set data.size=64 --set batch_size=8 --set "epochs=$epochs" \
        --set "eval.every=$(( STEPS / 4 > 0 ? STEPS / 4 : 1 ))" --set eval.batch_size=32 \
        --set "checkpoint_every=$(( STEPS / 4 > 0 ? STEPS / 4 : 1 ))" --set lr.warmup_steps=4
}

check_train() {
    local start dir
    start=$(now)
    dir="$WORK/train"
    # shellcheck disable=SC2046
    if ! "$XTASK" train $(train_args) --out "$dir" >>"$LOG" 2>&1; then
        record train failed "$(since "$start")" "xtask train failed (see the log)"
        return
    fi
    local verdict
    verdict=$(python3 - "$dir" <<'EOF'
import json, sys
lines = [json.loads(l) for l in open(sys.argv[1] + "/metrics.jsonl")]
losses = [l["train_loss"] for l in lines if l.get("train_loss") is not None]
if len(losses) < 2:
    print("failed: fewer than two training losses logged")
elif not all(x == x and abs(x) != float("inf") for x in losses):
    print(f"failed: a training loss is not finite: {losses}")
elif losses[-1] < losses[0]:
    print(f"passed: training loss {losses[0]:.4f} -> {losses[-1]:.4f} over {lines[-1]['step']} steps")
else:
    print(f"failed: training loss did not fall: {losses[0]:.4f} -> {losses[-1]:.4f}")
EOF
)
    record train "${verdict%%:*}" "$(since "$start")" "${verdict#*: }"
}

check_resume() {
    local start dir pid
    start=$(now)
    dir="$WORK/resume"
    # shellcheck disable=SC2046
    "$XTASK" train $(train_args) --out "$dir" >>"$LOG" 2>&1 &
    pid=$!
    # Stop it (as Ctrl-C does) once its first checkpoint is written.
    for _ in $(seq 1 600); do
        [ -f "$dir/checkpoint/state.json" ] && break
        kill -0 "$pid" 2>/dev/null || break
        sleep 0.1
    done
    kill -INT "$pid" 2>/dev/null
    wait "$pid"
    local first=$?
    if [ -f "$dir/summary.json" ]; then
        record resume failed "$(since "$start")" "the run finished before it could be stopped (exit $first); raise --steps"
        return
    fi
    if [ "$first" -ne 130 ]; then
        record resume failed "$(since "$start")" "stopping the run: exit $first, expected 130 (see the log)"
        return
    fi
    # shellcheck disable=SC2046
    if ! "$XTASK" train $(train_args) --out "$dir" >>"$LOG" 2>&1; then
        record resume failed "$(since "$start")" "the resumed run failed (see the log)"
        return
    fi
    local verdict
    verdict=$(python3 - "$dir" "$WORK/train" <<'EOF'
import json, sys
resumed = json.load(open(sys.argv[1] + "/summary.json"))
whole = json.load(open(sys.argv[2] + "/summary.json"))
if resumed["steps"] != whole["steps"] or resumed["backward"] != whole["backward"]:
    print(f"failed: resumed run ended at {resumed['steps']} steps, {resumed['backward']} backward; "
          f"the whole run at {whole['steps']}, {whole['backward']}")
else:
    print(f"passed: stopped after a checkpoint, resumed to {resumed['steps']} steps; "
          f"AP {resumed['AP']:.4f} vs {whole['AP']:.4f} without the stop")
EOF
)
    record resume "${verdict%%:*}" "$(since "$start")" "${verdict#*: }"
}

# Prints the bench reports as one JSON array.
check_bench() {
    local start reports=() status=passed
    start=$(now)
    local steps=$(( STEPS < 10 ? STEPS : 10 )) setting
    for setting in ${BENCH//,/ }; do
        local out
        if out=$("$XTASK" bench train-step --device "$DEVICE" --preset "${setting%%:*}" \
            --batch "${setting#*:}" --size 96 --steps "$steps" --json 2>>"$LOG"); then
            reports+=("$out")
            echo "$out" >>"$LOG"
        else
            status=failed
        fi
    done
    BENCH_JSON=$(printf '%s\n' "${reports[@]+"${reports[@]}"}" | python3 -c '
import json, sys
print(json.dumps([json.loads(l) for l in sys.stdin if l.strip()]))')
    record bench "$status" "$(since "$start")" "$(printf '%s\n' "${reports[@]+"${reports[@]}"}" | python3 -c '
import json, sys
rs = [json.loads(l) for l in sys.stdin if l.strip()]
print("; ".join("%s b%d: %.1f ms" % (r["preset"], r["batch"], r["train_step_ms_median"]) for r in rs) or "no report")')"
}

run() {
    parse_run_args "$@"
    mkdir -p "$OUT" || exit 1
    OUT=$(cd "$OUT" && pwd)
    LOG="$OUT/gpu-check.log"
    : >"$LOG"
    WORK="$OUT/work"
    rm -rf "$WORK"
    mkdir -p "$WORK"
    BENCH_JSON="[]"
    local gpu
    gpu=$(gpu_info)
    log "gpu-check on $DEVICE; GPU: $gpu"
    if [ "$DEVICE" = cuda ] && [ "$gpu" = null ]; then
        log "no GPU: nvidia-smi sees none; nothing was run"
        write_json no_gpu "$gpu" "[]"
        exit 3
    fi
    # Paths as given, before the checks move to the repository root; a
    # packed --bin (what prepare writes) is unpacked into the work folder.
    if [ -n "$BIN" ] && [ -f "$BIN" ]; then
        python3 -c 'import sys, tarfile; tarfile.open(sys.argv[1]).extractall(sys.argv[2])' \
            "$BIN" "$WORK/bin" || { log "cannot unpack $BIN"; write_json error "$gpu" "[]"; exit 1; }
        BIN=$(ls -d "$WORK"/bin/*/ | head -1)
        [ "$XTASK_GIVEN" = 1 ] || XTASK="$BIN/xtask"
    fi
    [ -z "$BIN" ] || [ ! -d "$BIN" ] || BIN=$(cd "$BIN" && pwd)
    [ ! -f "$XTASK" ] || XTASK=$(cd "$(dirname "$XTASK")" && pwd)/$(basename "$XTASK")
    if [ ! -x "$XTASK" ]; then
        log "no xtask binary at $XTASK (scripts/gpu-check.sh prepare, or --xtask FILE)"
        write_json error "$gpu" "[]"
        exit 1
    fi
    cd "$ROOT" || exit 1
    if [ "$DEVICE" = cuda ]; then
        cuda_libraries
        local missing
        missing=$(ldd "$XTASK" 2>/dev/null | grep "not found" | awk '{print $1}' | tr '\n' ' ')
        if [ -n "$missing" ]; then
            log "the CUDA build needs libraries this machine does not have: $missing"
            write_json error "$gpu" "[]"
            exit 1
        fi
    fi
    maybe device-parity check_parity
    maybe train check_train
    if [[ "$SKIP" == *" train "* ]]; then
        record resume skipped 0 "needs the train check's run"
    else
        maybe resume check_resume
    fi
    maybe bench check_bench
    local status=passed
    [ "$FAILED" -eq 0 ] || status=failed
    write_json "$status" "$gpu" "$BENCH_JSON"
    log "gpu-check $status; $OUT/gpu-check.json"
    [ "$FAILED" -eq 0 ]
}

case "${1:-}" in
    prepare) shift; prepare "$@" ;;
    run) shift; run "$@" ;;
    -h | --help) usage ;;
    "") die_usage "expected a command: prepare or run" ;;
    *) die_usage "unknown command '$1'" ;;
esac

#!/usr/bin/env bash
# The GPU check (issue 16): every backend at W = 7.8 / 4 / 1 s on the htdemucs-size architecture
# (random weights), batches 2 and 4, and the cold and warm first start of torch.compile, written as
# one JSON and printed as the `stemd bench --only backends` table.
#
# It installs nothing. It runs with the machine's own Python and PyTorch (PyTorch 2.11 + Triton +
# CUDA on the GPU machine); stemd runs from this checkout, and the pure-Python packages stemd needs
# that such a machine lacks come from .gpu_deps/ when it is there (carry it; build it on a machine
# with the project's venv with: benchmarks/gpu_check.sh --prepare).
#
#   benchmarks/gpu_check.sh                      # on the GPU: about 7 minutes, JSON under $OUT
#   benchmarks/gpu_check.sh --device cpu --size small --windows 0.5 --backends torch-fp32 --runs 2
#                                                # dry run on a CPU (what the tests do)
#
# Options: --device (cuda), --size (htdemucs | small), --budget-s (400: rows that would not fit are
# listed as skipped, so the whole run stays under 8 minutes), --first-start BACKEND (cuda:
# compile-reduce-overhead-fp16; cpu: none); anything else goes to `python -m stemd.benchmarks.backends`.
# Environment: PYTHON (python3), OUT (benchmarks/results), TORCHINDUCTOR_CACHE_DIR (a fresh folder,
# so the first start is a cold one).
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
PYTHON=${PYTHON:-python3}
DEPS=(demucs demucs_onnx einops julius tqdm yaml)

if [[ "${1:-}" == "--prepare" ]]; then
    site=$("$ROOT/.venv/bin/python" -c "import demucs, pathlib; print(pathlib.Path(demucs.__file__).parent.parent)")
    rm -rf "$ROOT/.gpu_deps" && mkdir -p "$ROOT/.gpu_deps"
    for package in "${DEPS[@]}"; do cp -r "$site/$package" "$ROOT/.gpu_deps/"; done
    find "$ROOT/.gpu_deps" -depth \( -name __pycache__ -exec rm -rf {} + \) -o \( -name "*.so" -delete \)
    du -sh "$ROOT/.gpu_deps"
    exit 0
fi

device=cuda size=htdemucs budget=400 first_start="" passthrough=()
while (($#)); do
    case "$1" in
        --device) device=$2; shift 2 ;;
        --size) size=$2; shift 2 ;;
        --budget-s) budget=$2; shift 2 ;;
        --first-start) first_start=$2; shift 2 ;;
        *) passthrough+=("$1"); shift ;;
    esac
done
[[ -z "$first_start" && "$device" == cuda* ]] && first_start=compile-reduce-overhead-fp16

# stemd maps its sub-packages onto top-level folders (pyproject's package-dir); without installing,
# a folder of links gives Python the same `stemd.*` layout.
shadow=$(mktemp -d -t stemd-gpu-check-XXXXXX)
trap 'rm -rf "$shadow"' EXIT
mkdir "$shadow/stemd"
ln -s "$ROOT"/stemd/* "$shadow/stemd/"
for sub in engines daemon control benchmarks; do ln -s "$ROOT/$sub" "$shadow/stemd/$sub"; done
export PYTHONPATH="$shadow:$ROOT/.gpu_deps${PYTHONPATH:+:$PYTHONPATH}"
export TORCHINDUCTOR_CACHE_DIR=${TORCHINDUCTOR_CACHE_DIR:-$shadow/inductor}
export HF_HUB_OFFLINE=1

echo "== gpu check: device $device, size $size, budget ${budget} s, first start: ${first_start:-none}"
"$PYTHON" - "$device" <<'EOF'
import importlib.util, sys
missing = [m for m in ("torch", "numpy", "demucs", "demucs_onnx", "einops") if importlib.util.find_spec(m) is None]
if missing:
    sys.exit(f"missing Python packages: {', '.join(missing)} (carry .gpu_deps: benchmarks/gpu_check.sh --prepare)")
import torch
print(f"== torch {torch.__version__}, CUDA {torch.version.cuda}, python {sys.version.split()[0]}")
if sys.argv[1].startswith("cuda"):
    if not torch.cuda.is_available():
        sys.exit("device cuda asked for, but torch sees no GPU")
    print(f"== {torch.cuda.get_device_name()}, triton: {importlib.util.find_spec('triton') is not None}")
EOF

OUT=${OUT:-$ROOT/benchmarks/results}
mkdir -p "$OUT"
json="$OUT/gpu-check-$device-$size-$(date -u +%Y-%m-%d).json"
args=(--device "$device" --size "$size" --budget-s "$budget" --runs 100 --json "$json"
      --note "benchmarks/gpu_check.sh on $(hostname), $(date -u +%FT%TZ)")
[[ -n "$first_start" ]] && args+=(--first-start "$first_start")
started=$SECONDS
# The budget skips rows that would not fit; the hard stop is for a hang (the JSON so far stays).
status=0
timeout -k 10 $((budget + 60)) "$PYTHON" -m stemd.benchmarks.backends "${args[@]}" "${passthrough[@]}" || status=$?
echo "== wrote $json in $((SECONDS - started)) s (exit $status)"
exit $status

#!/usr/bin/env bash
# Build .venv-bench for benchmarks/conversion_coverage.py: timm needs torchvision, and PyPI's torchvision
# does not load beside the main venv's torch 2.13.0. This venv holds torch 2.14.1 + torchvision 0.29.1 +
# timm and reuses every other package (edgekd, onnx, litert-torch, tensorflow, onnx2tf) from .venv through
# a site .pth, so the main venv's torch is never touched and nothing is installed twice.
set -euo pipefail
cd "$(dirname "$0")/.."
MAIN=.venv
BENCH=.venv-bench
PY=${PYTHON:-python3.11}
[ -x "$MAIN/bin/python" ] || { echo "error: $MAIN missing: run make install first" >&2; exit 1; }
[ -x "$BENCH/bin/python" ] || "$PY" -m venv "$BENCH"
MAIN_SITE=$("$MAIN/bin/python" -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')
BENCH_SITE=$("$BENCH/bin/python" -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')
# torch/torchvision/timm (with torch's own deps: the 2.14.1 wheel on this disk is a CUDA build that needs
# the nvidia-* libraries to import, and runs on the CPU) shadow the main venv's; the rest comes from .venv.
"$BENCH/bin/pip" install -q "torch==2.14.1" "torchvision==0.29.1"
# timm's other deps (huggingface_hub, safetensors, pyyaml) come from .venv: a newer hub here would break
# the main venv's transformers (<4.58 wants huggingface_hub<1.0).
"$BENCH/bin/pip" install -q --no-deps "timm==1.0.29"
echo "import site; site.addsitedir('$(realpath "$MAIN_SITE")')" > "$BENCH_SITE/zz_edgekd_main.pth"
"$BENCH/bin/python" -c 'import torch, torchvision, timm, edgekd; print("bench env ok: torch", torch.__version__, "torchvision", torchvision.__version__, "timm", timm.__version__)'

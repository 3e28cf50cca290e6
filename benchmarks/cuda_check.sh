#!/usr/bin/env bash
# `--device cuda` end to end, on a machine with an NVIDIA GPU and a CUDA build of torch: a short
# search with its confirmation (generated data), its best configurations and report, and a
# calibration; then the cost-model tests under that machine's torch.  Packages the machine lacks
# may be given as wheels in .whl/ (installed into /tmp/site).  Results go to $OUT (default
# /tmp/cuda-check).  Usage: bash benchmarks/cuda_check.sh
set -euo pipefail
cd "$(dirname "$0")/.."
OUT=${OUT:-/tmp/cuda-check}
mkdir -p "$OUT"
if compgen -G ".whl/*.whl" >/dev/null; then
  python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl
  export PYTHONPATH=/tmp/site:$PWD
else
  export PYTHONPATH=$PWD
fi
export PYTHONUNBUFFERED=1
step() { echo "[cuda-check] $1: $(date +%T)"; }
python3 -c "import torch; print('torch', torch.__version__, 'cuda', torch.cuda.is_available(), torch.cuda.get_device_name(0))"
step "search"
python3 -m ulsam_nas search studies/default.yaml --data synthetic --images 512 --epochs 1 --trials 3 \
  --device cuda --storage "$OUT/cuda.journal" --study-name cuda-check --quiet
step "best"
python3 -m ulsam_nas best --storage "$OUT/cuda.journal" --study-name cuda-check -o "$OUT/best.md"
cat "$OUT/best.md"
step "report"
python3 -m ulsam_nas report --storage "$OUT/cuda.journal" --study-name cuda-check --out "$OUT/report" --json
step "calibrate"
python3 -m ulsam_nas calibrate studies/default.yaml --data synthetic --images 512 --epochs 1 \
  --architectures 4 --seeds 1 --device cuda --storage "$OUT/calibration.journal" --out "$OUT/calibration" --quiet
step "tests under this torch"
python3 -m pytest -q -p no:cacheprovider tests/test_readme.py tests/test_table.py tests/test_backbones.py \
  tests/test_mobilenet_v3_resnet.py tests/test_output_paths.py -x 2>&1 | tail -15 || true
step "done"

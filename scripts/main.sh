#!/usr/bin/env bash
# The main job, end to end on embedded defaults: set up .venv, make sure Fashion-MNIST is
# installed (Debian's dataset-fashion-mnist, installed here when run as root), run the canonical
# study studies/default.yaml (12 search trials under a 15 MMAC budget, then 12 fresh paired
# confirmation seeds for the best and the reference; 27–36 minutes on 2 cores; a rerun
# resumes and returns at once), print the best configurations with each one's latency on this
# machine under PyTorch eager and ONNX Runtime (predicted from this machine's latency tables,
# measured in seconds on first use; also written to reports/default-best.md) and write the
# study's report (Pareto plots, tables, index.html) into reports/default/.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/_venv.sh
phase "data"
if [ -z "${ULSAM_NAS_DATA:-}" ] && [ ! -f /usr/share/datasets/fashion-mnist/train-images-idx3-ubyte.gz ]; then
  if [ "$(id -u)" = 0 ]; then
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq dataset-fashion-mnist >/dev/null
  else
    echo "Fashion-MNIST is missing: run 'sudo apt-get install -y dataset-fashion-mnist' (or set ULSAM_NAS_DATA)" >&2
    exit 2
  fi
fi
phase "search"
ulsam-nas search studies/default.yaml
phase "best"
ulsam-nas best studies/default.yaml --latency torch,onnxruntime -o reports/default-best.md
cat reports/default-best.md
phase "report"
ulsam-nas report studies/default.yaml
phase "done"

#!/usr/bin/env bash
# The main job, end to end on embedded defaults: set up .venv, then print the ULSAM paper's
# attention-overhead table (Markdown) and write it to reports/overhead.md.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/_venv.sh
phase "table"
ulsam-nas table -o reports/overhead.md
cat reports/overhead.md
phase "done"

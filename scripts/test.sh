#!/usr/bin/env bash
# Set up .venv with the development tools, then lint, type-check and run every test.
# Extra arguments go to pytest (e.g. scripts/test.sh -m "not tracer").
set -euo pipefail
cd "$(dirname "$0")/.."
EXTRAS=dev,pg source scripts/_venv.sh
# The LaTeX tables are compiled with pdflatex (tests/latex_compile.py); as root, install it.
if ! command -v pdflatex >/dev/null && [ "$(id -u)" = 0 ]; then
  phase "texlive"
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
    texlive-latex-base texlive-latex-recommended >/dev/null \
    || echo "[test] could not install texlive; the LaTeX compile tests will skip" >&2
fi
phase "ruff"
ruff check .
ruff format --check .
phase "mypy"
mypy
phase "pytest"
python -m pytest -q "$@"
phase "done"

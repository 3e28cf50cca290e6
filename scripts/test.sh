#!/usr/bin/env bash
# Set up .venv with the development tools, then lint, type-check and run every test.
# Extra arguments go to pytest (e.g. scripts/test.sh -m "not tracer").
set -euo pipefail
cd "$(dirname "$0")/.."
EXTRAS=dev,pg source scripts/_venv.sh
phase "ruff"
ruff check .
ruff format --check .
phase "mypy"
mypy
phase "pytest"
python -m pytest -q "$@"
phase "done"

# Sourced by main.sh and test.sh: create or reuse .venv and install the project into it.
# Re-installs only when pyproject.toml or scripts/constraints.txt changed since the last install
# (a stamp holds their hash).  Also puts the pinned ultralytics-thop into its own folder,
# $VENV/counters/ultralytics-thop, outside site-packages (see below).
set -euo pipefail
PYTHON=${PYTHON:-python3}
VENV=${VENV:-.venv}
phase_start=$(date +%s)
phase() {  # phase NAME: report how long the previous phase took
  local now; now=$(date +%s)
  [ -n "${current_phase:-}" ] && echo "[phase] ${current_phase}: $((now - phase_start)) s" >&2
  current_phase=$1; phase_start=$now
}
phase "set-up"
if [ ! -x "$VENV/bin/python" ]; then
  "$PYTHON" -m venv "$VENV"
fi
stamp="$VENV/.ulsam-nas-installed"
want="$(cat pyproject.toml scripts/constraints.txt | sha256sum | cut -d' ' -f1) ${EXTRAS:-}"
# This machine's pip configuration warns about absent local mirrors; those lines are noise.
quiet_pip() { "$VENV/bin/python" -m pip "$@" --quiet --disable-pip-version-check 2> >(grep -v "^WARNING: Location" >&2); }
if [ ! -f "$stamp" ] || [ "$(cat "$stamp")" != "$want" ]; then
  quiet_pip install --upgrade pip
  # pyproject.toml takes a range of torch; the tested build is pinned here (the small CPU
  # build on these machines' disk, not a multi-GB CUDA one), and so are the other versions that
  # the README's figures were measured with.
  quiet_pip install -e ".${EXTRAS:+[$EXTRAS]}" --constraint scripts/constraints.txt
  echo "$want" > "$stamp"
fi
# ultralytics-thop (the maintained thop, a counter of `ulsam-nas verify` and `explain`) installs
# the import name `thop`, as the frozen thop of the dev extra does, so the two cannot share
# site-packages: it goes into a folder of its own (its dependencies, torch and numpy, are the
# venv's), which only the process that runs it puts on sys.path (ulsam_nas/verify/tracers.py).
# Pinned because its counting rules change between releases; without it verify says so in a line.
ULTRALYTICS_THOP=2.2.3
counters="$VENV/counters/ultralytics-thop"
if [ ! -d "$counters/ultralytics_thop-$ULTRALYTICS_THOP.dist-info" ]; then
  rm -rf "$counters"
  quiet_pip install --no-deps --target "$counters" "ultralytics-thop==$ULTRALYTICS_THOP" \
    || echo "[set-up] could not install ultralytics-thop $ULTRALYTICS_THOP; verify will leave it out" >&2
fi
export PATH="$PWD/$VENV/bin:$PATH"

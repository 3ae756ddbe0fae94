#!/usr/bin/env bash
# Creates the virtual environment (once) and installs into it the locked dependencies
# (requirements/, see its README) and the project, in editable mode. It installs again only
# when the lock files or pyproject.toml change; a dev install also serves base.
# Usage: scripts/bootstrap.sh [base|dev]   "dev" adds the test tools.
# Environment: PYTHON, the interpreter (default python3); VENV, the environment's folder
# (default .venv; a relative path is taken from the repository's root).
set -euo pipefail
cd "$(dirname "$0")/.."
kind="${1:-base}"
case "$kind" in
    base | dev) ;;
    *) echo "usage: scripts/bootstrap.sh [base|dev]" >&2; exit 2 ;;
esac
python="${PYTHON:-python3}"
venv="${VENV:-.venv}"
if ! "$python" -c 'import sys; sys.exit(sys.version_info < (3, 11))' 2>/dev/null; then
    echo "passqr-scanner needs Python 3.11 or newer ($python is $("$python" --version 2>&1))" >&2
    exit 1
fi
version() { "$1" -c 'import sys; print("%d.%d" % sys.version_info[:2])' 2>/dev/null; }
want_version="$(version "$python")"
if [ -f "$venv/pyvenv.cfg" ] && [ "$(version "$venv/bin/python" || true)" != "$want_version" ]; then
    echo "Recreating $venv for Python $want_version ($python)" >&2
    "$python" -m venv --clear "$venv"
elif [ ! -x "$venv/bin/python" ]; then
    "$python" -m venv "$venv"
fi

# What is installed is named by the lock files' and pyproject.toml's content.
key() {
    cat requirements/installer.txt "requirements/$1.txt" pyproject.toml | sha256sum | cut -d' ' -f1
}
stamp="$venv/.passqr-installed"
if [ -f "$stamp" ] && grep -qxF "$kind $(key "$kind")" "$stamp"; then
    exit 0
fi
if [ -f "$stamp" ]; then
    echo "Updating passqr-scanner's dependencies in $venv" \
        "(requirements/ or pyproject.toml changed)…" >&2
else
    echo "Installing passqr-scanner's dependencies into $venv (first run: a few minutes)…" >&2
fi
rm -f "$stamp"
pip=("$venv/bin/python" -m pip --disable-pip-version-check install --quiet)
# The pinned pip and setuptools first, so that what follows is built with pinned tools only.
"${pip[@]}" --require-hashes -r requirements/installer.txt
"${pip[@]}" --require-hashes --no-build-isolation -r "requirements/$kind.txt"
"${pip[@]}" --no-deps --no-build-isolation -e .
if ! "$venv/bin/python" -m pip --disable-pip-version-check check >/dev/null; then
    "$venv/bin/python" -m pip --disable-pip-version-check check >&2 || true
    echo "requirements/$kind.txt does not satisfy pyproject.toml: run scripts/lock" >&2
    exit 1
fi
echo "$kind $(key "$kind")" >"$stamp"
if [ "$kind" = dev ]; then
    # dev.txt holds every pin of base.txt, at the same version (scripts/lock checks it).
    echo "base $(key base)" >>"$stamp"
fi

#!/usr/bin/env bash
# Create .venv and install Quartermaster with its pinned dependencies (skipped when up to date).
set -euo pipefail
cd "$(dirname "$0")/.."

python=${PYTHON:-}
if [ -z "$python" ]; then
  for candidate in python3.11 python3.12 python3.13 python3; do
    if command -v "$candidate" >/dev/null 2>&1; then python=$candidate; break; fi
  done
fi
"$python" -c 'import sys; sys.exit(sys.version_info < (3, 11))' ||
  { echo "bootstrap: Python 3.11 or newer is required (found $("$python" --version))" >&2; exit 1; }

# Debian packages the PDF documents need (Pango, HarfBuzz, Noto fonts; poppler for the tests).
scripts/ensure-documents.sh

stamp=.venv/.installed
wanted=$(cat pyproject.toml constraints.txt | sha256sum | cut -d' ' -f1)
if [ ! -f "$stamp" ] || [ "$(cat "$stamp")" != "$wanted" ]; then
  echo "bootstrap: installing into .venv (first run takes a minute)…" >&2
  [ -x .venv/bin/python ] || "$python" -m venv .venv
  .venv/bin/python -m pip install -q --upgrade pip >&2
  .venv/bin/python -m pip install -q -c constraints.txt -e ".[dev]" >&2
  echo "$wanted" > "$stamp"
fi

# The message catalogues (core/locale/*/django.po → .mo), with Babel: no system gettext needed.
# Every run, not only after an install: a .po edited since is compiled again (cheap when not).
.venv/bin/python -m quartermaster.core.catalogues

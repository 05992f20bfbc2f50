#!/usr/bin/env bash
# Print the path of a Chromium for the back-office screenshot test, installing Debian's package
# when it is missing (needs root). Fails loudly: the screenshot test never skips for want of it.
#
#   QM_CHROMIUM   use this browser instead
set -euo pipefail

if [ -n "${QM_CHROMIUM:-}" ]; then
  echo "$QM_CHROMIUM"
  exit 0
fi

if ! command -v chromium >/dev/null; then
  if [ "$(id -u)" != 0 ]; then
    echo "ensure-chromium: chromium not found and not root: install the 'chromium' package" >&2
    exit 1
  fi
  echo "ensure-chromium: installing Chromium (Debian package)…" >&2
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq >&2
  apt-get install -y -qq chromium >&2
fi
command -v chromium

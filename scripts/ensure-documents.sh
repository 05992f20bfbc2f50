#!/usr/bin/env bash
# Install the Debian packages the document engine (quartermaster.documents) stands on, when missing
# (needs root): Pango and HarfBuzz, which WeasyPrint loads to lay out and shape text; the Noto
# fonts (fonts-noto-core carries Noto Sans Tamil and Noto Sans, Serif in fonts-noto-core too);
# fontconfig, through which Pango finds them; and poppler-utils, whose pdftotext and pdftoppm
# the tests use to read the PDFs back. Fails loudly: a PDF without its fonts renders Tamil as
# boxes, and the document tests never skip for want of them.
set -euo pipefail

packages=(libpango-1.0-0 libpangoft2-1.0-0 libharfbuzz0b libharfbuzz-subset0 fontconfig fonts-noto-core poppler-utils)

installed() { dpkg-query -W -f='${Status}' "$1" 2>/dev/null | grep -q 'install ok installed'; }

if ! command -v dpkg-query >/dev/null; then
  echo "ensure-documents: not a Debian system; install Pango, HarfBuzz, fontconfig, Noto Sans Tamil and poppler's tools by hand" >&2
  exit 0
fi

missing=()
for package in "${packages[@]}"; do
  installed "$package" || missing+=("$package")
done
[ ${#missing[@]} -eq 0 ] && exit 0

if [ "$(id -u)" != 0 ]; then
  echo "ensure-documents: missing Debian packages and not root: apt-get install ${missing[*]}" >&2
  exit 1
fi
echo "ensure-documents: installing ${missing[*]} (Debian packages)…" >&2
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq >&2
apt-get install -y -qq --no-install-recommends "${missing[@]}" >&2

#!/usr/bin/env bash
# Install everything the test suite needs (Chromium for the report test, the Debian Reference
# for the corpus tests, the package with its test extra) and run the whole suite. Used by the README and by .ci/run.
set -euo pipefail
cd "$(dirname "$0")/.."

if ! command -v chromium >/dev/null 2>&1; then
  SUDO=""; [ "$(id -u)" -ne 0 ] && SUDO="sudo"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq chromium chromium-driver >/dev/null
fi

# Japanese glyphs for the ja report in the browser tests and screenshots (without a CJK font
# Chromium draws boxes); the page itself names the font families (llmplan.i18n.FONT_FAMILY).
if ! fc-list 2>/dev/null | grep -qi "Noto Sans CJK"; then
  SUDO=""; [ "$(id -u)" -ne 0 ] && SUDO="sudo"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq fonts-noto-cjk >/dev/null
fi

# The Debian Reference in three languages: the corpus tests' real parallel documents.
if [ ! -f /usr/share/debian-reference/debian-reference.fr.txt.gz ]; then
  SUDO=""; [ "$(id -u)" -ne 0 ] && SUDO="sudo"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq debian-reference-en debian-reference-ja debian-reference-fr >/dev/null
fi

python3 -m venv .venv
.venv/bin/python -m pip install -q --upgrade pip
.venv/bin/python -m pip install -q -e '.[test]'

export PREFECT_SERVER_ANALYTICS_ENABLED=false
[ -n "${PREFECT_HOME:-}" ] || { PREFECT_HOME="$(mktemp -d)"; export PREFECT_HOME; }
exec .venv/bin/python -m pytest -p no:cacheprovider "$@"

#!/usr/bin/env bash
# Build the documentation site (mkdocs-material + mkdocstrings) into site/, failing on
# any warning: a broken link or anchor, a page missing from the nav, a docstring that
# does not parse. Safe to re-run; `.venv/bin/mkdocs serve` previews it live.
set -euo pipefail
cd "$(dirname "$0")/.."
[ -x .venv/bin/python ] || bash scripts/setup.sh
.venv/bin/python -m pip install --quiet -e '.[docs]'
NO_MKDOCS_2_WARNING=1 .venv/bin/mkdocs build --strict --site-dir "${SITE_DIR:-site}"

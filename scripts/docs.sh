#!/usr/bin/env bash
# Build the documentation site (mkdocs-material + mkdocstrings) into site/, failing on
# any warning: a broken link or anchor, a page missing from the nav, a docstring that
# does not parse. Then check the built HTML (scripts/check_site.py): no raw Sphinx roles
# and the architecture diagram wired to the local mermaid script. Safe to re-run;
# `.venv/bin/mkdocs serve` previews it live (after one run of this script).
set -euo pipefail
cd "$(dirname "$0")/.."
[ -x .venv/bin/python ] || bash scripts/setup.sh
.venv/bin/python -m pip install --quiet -e '.[docs]'

# Mermaid (the diagrams) is vendored from the npm package at build time, so the site
# renders them offline: mkdocs-material loads its CDN copy only when none is on the page.
MERMAID_VERSION=11.12.0
vendor=docs/assets/vendor
if [ "$(cat "$vendor/mermaid.version" 2>/dev/null)" != "$MERMAID_VERSION" ]; then
    command -v npm >/dev/null || { echo "npm is needed to vendor mermaid (apt-get install npm)" >&2; exit 1; }
    work=$(mktemp -d)
    trap 'rm -rf "$work"' EXIT
    (cd "$work" && npm pack --silent "mermaid@$MERMAID_VERSION" >/dev/null)
    tar -xzf "$work"/mermaid-*.tgz -C "$work" package/dist/mermaid.min.js package/LICENSE
    mkdir -p "$vendor"
    cp "$work/package/dist/mermaid.min.js" "$vendor/mermaid.min.js"
    cp "$work/package/LICENSE" "$vendor/mermaid.LICENSE"
    echo "$MERMAID_VERSION" > "$vendor/mermaid.version"
fi

site="${SITE_DIR:-site}"
NO_MKDOCS_2_WARNING=1 .venv/bin/mkdocs build --strict --site-dir "$site"
.venv/bin/python scripts/check_site.py "$site"

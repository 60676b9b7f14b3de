"""Check the built documentation site (run by scripts/docs.sh after `mkdocs build`).

- no raw Sphinx roles (``:meth:`x```, ``:class:`y```...) left in any page: docstrings
  use the mkdocstrings/autorefs cross-reference syntax;
- every page with a Mermaid diagram loads the vendored mermaid script, which is in the
  site, so diagrams render without internet.

Usage: python scripts/check_site.py [SITE_DIR]   (exit status 1 on a problem)
"""

from __future__ import annotations

import re
import sys
from pathlib import Path

ROLE = re.compile(r":(?:meth|class|func|attr|mod|exc|data|obj|ref|py:\w+):(?:`|<code>)")
MERMAID_SCRIPT = "assets/vendor/mermaid.min.js"
SCRIPT_SRC = re.compile(r'<script src="([^"]*mermaid\.min\.js)"')


def check(site: Path) -> list[str]:
    problems: list[str] = []
    pages = sorted(site.rglob("*.html"))
    if not pages:
        return [f"no HTML pages under {site}"]
    diagrams = 0
    for page in pages:
        html = page.read_text(encoding="utf-8")
        name = page.relative_to(site)
        problems += [f"{name}: raw Sphinx role {m.group(0)!r}" for m in ROLE.finditer(html)]
        if 'class="mermaid"' not in html:
            continue
        diagrams += 1
        sources = SCRIPT_SRC.findall(html)
        local = [s for s in sources if s.endswith(MERMAID_SCRIPT) and "://" not in s]
        if not local:
            problems.append(f"{name}: a Mermaid diagram but no local {MERMAID_SCRIPT} script")
        for src in local:
            if not (page.parent / src).resolve().is_file():
                problems.append(f"{name}: {src} is not in the site")
    if diagrams == 0:
        problems.append("no page has a Mermaid diagram (the architecture page should)")
    script = site / MERMAID_SCRIPT
    if script.is_file() and script.stat().st_size < 100_000:
        problems.append(f"{MERMAID_SCRIPT} is too small to be mermaid")
    return problems


def main() -> int:
    site = Path(sys.argv[1] if len(sys.argv) > 1 else "site")
    problems = check(site)
    for problem in problems:
        print(f"docs check: {problem}", file=sys.stderr)
    if not problems:
        print(f"docs check: {site}: no raw roles; diagrams load the local mermaid script")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())

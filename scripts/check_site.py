"""Check the built documentation site (run by scripts/docs.sh after `mkdocs build`).

- no raw Sphinx roles (``:meth:`x```, ``:class:`y```...) left in any page: docstrings
  use the mkdocstrings/autorefs cross-reference syntax;
- every page with a Mermaid diagram loads the vendored mermaid script, which is in the
  site, so diagrams render without internet;
- when `chromium` is installed (apt-get install chromium; optional): the architecture
  page, served on loopback with every other host unreachable, really renders its
  diagram (the `<pre class="mermaid">` source is replaced by the drawn diagram), and a
  screenshot is saved as SITE_DIR/../site-check/architecture.png.

Usage: python scripts/check_site.py [SITE_DIR]   (exit status 1 on a problem)
"""

from __future__ import annotations

import functools
import http.server
import re
import shutil
import subprocess
import sys
import threading
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


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: object) -> None:
        pass


def check_in_browser(site: Path, page: str = "architecture/") -> list[str]:
    """Render ``page`` in headless Chromium, offline; [] when it drew its diagram."""
    browser = shutil.which("chromium") or shutil.which("chromium-browser")
    if browser is None:
        print("docs check: chromium not installed: the in-browser render check is skipped")
        return []
    handler = functools.partial(_QuietHandler, directory=str(site))
    with http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler) as server:
        threading.Thread(target=server.serve_forever, daemon=True).start()
        url = f"http://127.0.0.1:{server.server_address[1]}/{page}"
        shots = site.resolve().parent / "site-check"
        shots.mkdir(exist_ok=True)
        shot = shots / "architecture.png"
        common = [
            browser,
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE 127.0.0.1",  # offline
            "--virtual-time-budget=15000",
        ]
        try:
            dom = subprocess.run(
                [*common, "--dump-dom", url], capture_output=True, text=True, timeout=120
            ).stdout
            subprocess.run(
                [
                    *common,
                    "--window-size=1200,1400",
                    f"--screenshot={shots / 'architecture.png'}",
                    url,
                ],
                capture_output=True,
                timeout=120,
            )
        finally:
            server.shutdown()
    if '<pre class="mermaid"' in dom or '<div class="mermaid"' not in dom:
        return [f"{page}: the Mermaid diagram did not render offline in Chromium"]
    print(f"docs check: {page} renders its diagram offline (screenshot: {shot})")
    return []


def main() -> int:
    site = Path(sys.argv[1] if len(sys.argv) > 1 else "site")
    problems = check(site)
    problems += check_in_browser(site)
    for problem in problems:
        print(f"docs check: {problem}", file=sys.stderr)
    if not problems:
        print(f"docs check: {site}: no raw roles; diagrams load the local mermaid script")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())

"""Locating the third-party conformance data in ``../shared/conformance``.

The data is never copied into the project; tests that need it skip with a clear
reason when it is absent (CI has it).
"""

from __future__ import annotations

import os
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]


def conformance_dir() -> Path | None:
    """The conformance folder, from ``$LLMFAST_CONFORMANCE_DIR`` or beside the repo."""
    configured = os.environ.get("LLMFAST_CONFORMANCE_DIR")
    candidates = [Path(configured)] if configured else []
    candidates.append(REPO_ROOT.parent / "shared" / "conformance")
    for candidate in candidates:
        if (candidate / "check_sse.py").is_file():
            return candidate
    return None


def stream_cases() -> list[str]:
    """Names (``openai_chat_text``...) of the provider stream transcripts present."""
    folder = conformance_dir()
    if folder is None:
        return []
    return sorted(
        p.name[: -len(".expected.json")] for p in (folder / "streams").glob("*.expected.json")
    )

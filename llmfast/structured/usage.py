"""Usage summed over the attempts of one call (re-asks, tool-loop steps).

Kept for its import path; the function lives in [`llmfast.usage`][llmfast.usage].
"""

from __future__ import annotations

from llmfast.usage import add_usage

__all__ = ["add_usage"]

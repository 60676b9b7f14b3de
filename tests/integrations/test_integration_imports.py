"""The optional integrations stay optional: ``import llmfast`` and every core module
import neither pydantic-ai, LangChain nor the openai SDK (checked in a fresh
interpreter, where nothing is imported yet), and the pydantic-ai integration brings
no provider SDK."""

from __future__ import annotations

import json
import subprocess
import sys

FOREIGN = ("pydantic_ai", "langchain_core", "langchain", "openai")

CHILD = r"""
import importlib, json, pkgutil, sys

import llmfast
import llmfast.integrations

NOT_CORE = ("llmfast.integrations.", "llmfast.openai")  # built on the client, never core
imported, missing = [], []


def walk(package):
    # pkgutil.walk_packages would import every package to descend into it, the
    # integrations too: descend by hand, skipping them before they are imported.
    for info in pkgutil.iter_modules(package.__path__, package.__name__ + "."):
        name = info.name
        if name.startswith(NOT_CORE) or name.rsplit(".", 1)[-1] == "__main__":
            continue
        try:
            module = importlib.import_module(name)
        except ModuleNotFoundError as exc:  # an optional extra this environment lacks
            if (exc.name or "").startswith("llmfast"):
                raise
            missing.append(f"{name}: {exc.name}")
            continue
        imported.append(name)
        if info.ispkg:
            walk(module)


walk(llmfast)
for name in ("Client", "SyncClient", "ChatStream", "Output"):
    getattr(llmfast, name)  # the lazily exported names too
foreign = sorted(
    m for m in sys.modules if m.split(".")[0] in FOREIGN
)
import llmfast.integrations.pydantic_ai

after = sorted(m for m in sys.modules if m.split(".")[0] in FOREIGN)
print(json.dumps(
    {"imported": imported, "missing": missing, "foreign": foreign, "after_pydantic_ai": after}
))
"""


def _run(code: str) -> dict[str, list[str]]:
    done = subprocess.run(
        [sys.executable, "-c", f"FOREIGN = {FOREIGN!r}\n{code}"],
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    result: dict[str, list[str]] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


def test_the_core_imports_no_integration_dependency() -> None:
    result = _run(CHILD)
    assert result["foreign"] == [], result["foreign"]
    imported = set(result["imported"])
    # the walk really covered the core (a rename would otherwise make this vacuous)
    assert {"llmfast.client", "llmfast.layers.retry", "llmfast.backends.openai"} <= imported
    assert "llmfast.testing.server" in imported
    assert result["missing"] == [], result["missing"]
    # and the pydantic-ai integration brings pydantic-ai alone: no provider SDK
    assert {name.split(".")[0] for name in result["after_pydantic_ai"]} == {"pydantic_ai"}

"""The blocking client in a plain script: chat, stream, embed, threads and a batch.

``SyncClient`` runs llmfast's async client on a private event loop in a background
thread, so it needs no ``asyncio`` in your code and also works inside Jupyter or an
async web framework. Runs against the provider configured in the environment
(``LLMFAST_BASE_URL`` or ``OPENAI_BASE_URL``, with ``OPENAI_API_KEY`` and
``LLMFAST_MODEL``); with none configured, it starts llmfast's built-in local server
(``llmfast serve-mock``) and says so.

    python examples/sync_script.py
"""

from __future__ import annotations

import os
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from contextlib import ExitStack

from llmfast.sync import SyncClient


def start_local_server(stack: ExitStack) -> str:
    """Start ``llmfast serve-mock`` in a subprocess; return its URL."""
    proc = subprocess.Popen(
        [sys.executable, "-m", "llmfast", "serve-mock"], stdout=subprocess.PIPE, text=True
    )
    stack.enter_context(proc)  # at the end: close its stdout, wait for it...
    stack.callback(proc.terminate)  # ...after stopping it
    assert proc.stdout is not None
    line = proc.stdout.readline()  # "llmfast mock server listening on http://..."
    return line.rsplit(" ", 1)[-1].strip()


def main() -> None:
    with ExitStack() as stack:
        configured = any(
            os.environ.get(name)
            for name in ("LLMFAST_BASE_URL", "OPENAI_BASE_URL", "OPENAI_API_KEY")
        )
        if configured:
            client = SyncClient(model=os.environ.get("LLMFAST_MODEL", "gpt-4o-mini"))
            print("Using the configured provider")
        else:
            url = start_local_server(stack)
            client = SyncClient(base_url=url, model="mock-model")
            print(f"No provider configured: using llmfast's built-in local server at {url}")
        stack.enter_context(client)

        reply = client.chat("Say hello to llmfast in five words.", max_tokens=20)
        print(f"chat   -> {reply.text!r}")

        print("stream -> ", end="", flush=True)
        with client.stream("Count from one to five, please.", max_tokens=40) as stream:
            for text in stream.text_deltas():
                print(text, end="", flush=True)
        print(f"  [finish_reason={stream.completion.finish_reason}]")

        if not configured or os.environ.get("LLMFAST_EMBED_MODEL"):
            model = os.environ.get("LLMFAST_EMBED_MODEL", "mock-embed")
            vectors = client.embed(["fast", "robust"], model=model).vectors
            print(f"embed  -> {len(vectors)} vectors of {len(vectors[0])} floats")

        with ThreadPoolExecutor(max_workers=8) as pool:  # one client, shared by threads
            texts = list(pool.map(lambda i: client.chat(f"Echo {i}", max_tokens=5).text, range(16)))
        print(f"threads-> 16 calls from 8 threads, first: {texts[0]!r}")

        results = list(client.map([f"Name a colour, {i}" for i in range(50)], max_tokens=5))
        failed = sum(not r.ok for r in results)
        print(f"map    -> {len(results)} results in input order, {failed} failed")


if __name__ == "__main__":
    main()

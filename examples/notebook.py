# %% [markdown]
# # llmfast in a notebook
#
# Open this file in Jupyter (via jupytext), VS Code or PyCharm, which run `# %%` cells,
# or run it as a script: `python examples/notebook.py`. It uses `SyncClient`, which
# works the same in a plain script and inside Jupyter's running event loop (no
# `nest_asyncio`): the async client runs on a private loop in a background thread.
#
# In a notebook, top-level `await` with the async client works too:
# `async with llmfast.Client(...) as client: reply = await client.chat("hi")`.

# %%
# Setup: the provider configured in the environment (LLMFAST_BASE_URL or
# OPENAI_BASE_URL, with OPENAI_API_KEY and LLMFAST_MODEL), else llmfast's built-in
# local server, started in a subprocess (`llmfast serve-mock`).
import atexit
import os
import subprocess
import sys
import tempfile

from llmfast.sync import SyncClient

configured = any(
    os.environ.get(name) for name in ("LLMFAST_BASE_URL", "OPENAI_BASE_URL", "OPENAI_API_KEY")
)
if configured:
    client = SyncClient(model=os.environ.get("LLMFAST_MODEL", "gpt-4o-mini"))
    print("Using the configured provider")
else:
    server = subprocess.Popen(
        [sys.executable, "-m", "llmfast", "serve-mock", "--latency", "0.005"],
        stdout=subprocess.PIPE,
        text=True,
    )
    assert server.stdout is not None
    atexit.register(server.stdout.close)  # at exit, last: stop it, wait, close the pipe
    atexit.register(server.wait)
    atexit.register(server.terminate)
    url = server.stdout.readline().rsplit(" ", 1)[-1].strip()
    client = SyncClient(base_url=url, model="mock-model")
    print(f"No provider configured: using llmfast's built-in local server at {url}")

# %%
# One call.
reply = client.chat("Give me a one-line fun fact about octopuses.", max_tokens=60)
print(reply.text)
print(reply.usage)

# %%
# Streaming: text arrives as it is generated. Interrupting the cell (or `break`)
# closes the stream and its connection.
with client.stream("Tell me a very short story about a lighthouse.", max_tokens=120) as s:
    for text in s.text_deltas():
        print(text, end="", flush=True)
print()
print("finish reason:", s.completion.finish_reason)

# %%
# A batch over many prompts: 16 in flight at once, a progress bar (when tqdm is
# installed: `pip install 'llmfast[progress]'`), and a checkpoint. If the kernel dies
# half-way, run the cell again: finished items are read back, only the rest are sent.
checkpoint = os.path.join(tempfile.gettempdir(), "llmfast-notebook-example.jsonl")
prompts = [f"Summarize item {i} in five words." for i in range(200)]
results = list(client.map(prompts, concurrency=16, checkpoint=checkpoint, max_tokens=20))
print(f"{sum(r.ok for r in results)} of {len(results)} succeeded")
print(results[0].index, results[0].text)

# %%
# Run it again: everything comes from the checkpoint.
again = list(client.map(prompts, concurrency=16, checkpoint=checkpoint, max_tokens=20))
print(f"{sum(r.resumed for r in again)} of {len(again)} resumed from the checkpoint")

# %%
# Failures are results too: inspect them instead of losing the whole batch.
failed = [r for r in results if not r.ok]
print(f"{len(failed)} failed", *(f"#{r.index}: {r.error}" for r in failed[:5]), sep="\n")

# %%
# Done: close the client (its connections and its background thread) and remove the
# checkpoint.
client.close()
os.remove(checkpoint)
print("closed:", client.closed)

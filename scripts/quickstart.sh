#!/usr/bin/env bash
# The main job: set up, then run the quickstart (against the configured provider,
# or llmfast's built-in local server when none is configured).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
.venv/bin/python examples/quickstart.py

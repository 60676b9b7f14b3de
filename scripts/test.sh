#!/usr/bin/env bash
# The test command: set up, lint, type-check, then the test suite.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
.venv/bin/ruff check llmfast tests benchmarks examples
.venv/bin/ruff format --check llmfast tests benchmarks examples
.venv/bin/mypy
.venv/bin/python -X importtime -c "import llmfast" 2> .importtime.log
tail -n 1 .importtime.log
.venv/bin/python -m pytest -q "$@"

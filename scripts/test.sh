#!/usr/bin/env bash
# The test command: set up (the venv, and the system programs the tests run:
# scripts/system-packages.sh), lint, type-check, then the test suite. Skipped tests are
# listed at the end with their reasons.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
bash scripts/system-packages.sh
.venv/bin/ruff check llmfast tests benchmarks examples
.venv/bin/ruff format --check llmfast tests benchmarks examples
.venv/bin/mypy
.venv/bin/python -X importtime -c "import llmfast" 2> .importtime.log
tail -n 1 .importtime.log
.venv/bin/python -m pytest -q "$@"  # -ra (pyproject): skips listed with reasons

#!/usr/bin/env bash
# The integrations at the LOWEST versions their ranges allow. scripts/test.sh runs the
# suite against the latest releases; this runs the integration tests in a separate venv
# (.venv-min) where every requirement of the integration extras (`pydantic-ai`,
# `langchain`) and the integration packages of the `test` extra (openai, anthropic,
# langchain*, pydantic-ai*) is installed at its `>=` lower bound (`pkg==lower`), read from
# pyproject.toml. Prints how long it took. Honours $PYTHON (default python3).
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-python3}
started=$(date +%s)
if [ ! -x .venv-min/bin/python ]; then
    "$PYTHON" -m venv .venv-min
fi
py=.venv-min/bin/python
$py -m pip install --quiet --upgrade pip
$py -m pip install --quiet packaging  # to read the requirements below
$py -c 'import tomllib' 2>/dev/null || $py -m pip install --quiet tomli

# Which extras exist, then the lowest allowed version of each integration requirement.
read -r extras pins < <($py - <<'EOF'
import re
try:
    import tomllib
except ImportError:  # Python 3.10
    import tomli as tomllib
from packaging.requirements import Requirement

with open("pyproject.toml", "rb") as f:
    groups = tomllib.load(f)["project"]["optional-dependencies"]
INTEGRATIONS = ("pydantic-ai", "langchain")
IN_TEST = re.compile(r"^(openai|anthropic|langchain.*|pydantic-ai.*)$")
extras = [name for name in INTEGRATIONS if name in groups]
wanted = [r for name in extras for r in groups[name]]
wanted += [r for r in groups.get("test", []) if IN_TEST.match(Requirement(r).name.lower())]
pins = {}
for text in wanted:
    req = Requirement(text)
    lows = [s.version for s in req.specifier if s.operator == ">="]
    if lows:
        extra = f"[{','.join(sorted(req.extras))}]" if req.extras else ""
        pins[req.name.lower()] = f"{req.name}{extra}=={lows[0]}"
print(",".join(["test", *extras]), " ".join(sorted(pins.values())))
EOF
)
echo "extras: $extras"
echo "lowest: $pins"
$py -m pip install --quiet -e ".[$extras]"
# shellcheck disable=SC2086  # one argument per requirement
$py -m pip install --quiet $pins
$py -m pip list --format=freeze 2>/dev/null | grep -iE '^(openai|anthropic|langchain[a-z-]*|pydantic-ai[a-z-]*)==' || true

dirs=()
for dir in tests/integrations tests/facade tests/gateway; do
    [ -d "$dir" ] && dirs+=("$dir")
done
status=0
$py -m pytest -q -p no:cacheprovider "${dirs[@]}" "$@" || status=$?
echo "test_min_versions: $(($(date +%s) - started)) s"
exit "$status"

"""Under CI=true a test skipped for a missing redis-server or nginx fails."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parent.parent

pytest_plugins = ["pytester"]

SKIPPING = """
import pytest

def test_needs_redis():
    pytest.skip("redis-server is not installed (apt-get install redis-server)")

def test_needs_nginx():
    pytest.skip("nginx is not installed (apt-get install nginx-light)")

def test_truly_optional():
    pytest.skip("../shared/conformance absent")
"""


@pytest.mark.parametrize(("ci", "failed", "skipped"), [("true", 2, 1), ("", 0, 3)])
def test_a_missing_system_program_fails_only_under_ci(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch, ci: str, failed: int, skipped: int
) -> None:
    monkeypatch.setenv("CI", ci)
    monkeypatch.setenv(
        "PYTHONPATH", os.pathsep.join([str(REPO_ROOT), os.environ.get("PYTHONPATH", "")])
    )
    pytester.makepyfile(test_skips=SKIPPING)
    result = pytester.runpytest("-p", "tests.ci_skips", "-p", "no:asyncio")
    result.assert_outcomes(failed=failed, skipped=skipped)

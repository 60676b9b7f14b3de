"""The gateway's configuration: a bad file is refused at start, naming the line and
the reason; a good one builds what it says."""

from __future__ import annotations

from pathlib import Path

import pytest

from llmfast.gateway import GatewayConfigError, key_digest, load_config, parse_config
from llmfast.gateway.tenants import Tenants

GOOD = """
[server]
listen = "127.0.0.1:4000"

[models.fast]
coalesce = true
cache = { ttl = 60 }
retry = { max_attempts = 2 }

[[models.fast.deployments]]
provider = "openai"
base_url = "http://127.0.0.1:9/v1"
model = "a"

[[models.fast.deployments]]
provider = "anthropic"
base_url = "http://127.0.0.1:9"
api_key_env = "UPSTREAM_KEY"
model = "b"
priority = 1

[keys.team-a]
key_env = "TEAM_A_KEY"
models = ["fast"]
rpm = 10
"""


def test_a_good_file_gives_the_typed_config() -> None:
    config = parse_config(GOOD)
    fast = config.models["fast"]
    assert [d.provider for d in fast.deployments] == ["openai", "anthropic"]
    assert fast.coalesce is True
    assert config.keys["team-a"].rpm == 10
    assert config.server.listen == "127.0.0.1:4000"


def test_load_config_reads_a_file(tmp_path: Path) -> None:
    path = tmp_path / "gateway.toml"
    path.write_text(GOOD)
    assert load_config(path).models["fast"].deployments[1].model == "b"
    with pytest.raises(GatewayConfigError, match="cannot read it"):
        load_config(tmp_path / "missing.toml")


@pytest.mark.parametrize(
    ("change", "line", "reason"),
    [
        (('provider = "anthropic"', 'provider = "antropic"'), 16, "unknown provider 'antropic'"),
        (("priority = 1", "priority = 1\nprioritty = 2"), 21, "unknown field `prioritty`"),
        (('api_key_env = "UPSTREAM_KEY"', 'api_key_env = "NOT_SET_ANYWHERE"'), 18, "NOT_SET"),
        (('models = ["fast"]', 'models = ["slow"]'), 24, "unknown model 'slow'"),
        (("rpm = 10", 'rpm = "ten"'), 25, "Expected `int | null`, got `str`"),
        (('listen = "127.0.0.1:4000"', 'listen = "localhost"'), 3, "HOST:PORT"),
        (('model = "b"', ""), 15, "missing required field `model`"),
        (("retry = { max_attempts = 2 }", "retry = 0"), 8, "at least 1 attempt"),
        (("coalesce = true", "coalesce = true\nidle_timeout = 0"), 7, "idle_timeout must be > 0"),
        (('key_env = "TEAM_A_KEY"', 'key_sha256 = "abc"'), 23, "64 hex digits"),
    ],
)
def test_a_bad_file_names_the_line_and_the_reason(
    change: tuple[str, str], line: int, reason: str
) -> None:
    text = GOOD.replace(*change)
    with pytest.raises(GatewayConfigError) as caught:
        parse_config(text, source="gateway.toml")
    message = str(caught.value)
    assert message.startswith(f"gateway.toml:{line}: "), message
    assert reason in message


def test_toml_syntax_errors_name_the_line() -> None:
    with pytest.raises(GatewayConfigError, match=r"gateway.toml: .*line 3"):
        parse_config('[server]\nlisten = "x:1"\nbroken = \n', source="gateway.toml")


def test_at_least_one_model() -> None:
    with pytest.raises(GatewayConfigError, match="models"):
        parse_config('[server]\nlisten = "127.0.0.1:1"\n')


def test_keys_are_found_by_digest_only(monkeypatch: pytest.MonkeyPatch) -> None:
    digest = key_digest("vk-secret")
    text = GOOD.replace('key_env = "TEAM_A_KEY"', f'key_sha256 = "{digest}"')
    tenants = Tenants(parse_config(text))
    tenant = tenants.identify({"Authorization": "Bearer vk-secret"})
    assert tenant is not None
    assert tenant.name == "team-a"
    assert tenants.identify({"x-api-key": "vk-secret"}) == tenant
    assert tenants.identify({"Authorization": "Bearer vk-secre"}) is None
    assert tenants.identify({"Authorization": "Basic vk-secret"}) is None
    assert tenants.identify({}) is None
    assert "vk-secret" not in repr(tenant)

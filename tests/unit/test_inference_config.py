"""Configuration: the recipe's defaults parse, bad values are refused naming their key, MODEL_DIR fallback."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml
from edgeml_inference.config import KEYS, AppConfig
from edgeml_inference.exceptions import ConfigInvalid

RECIPE = Path(__file__).resolve().parents[2] / "recipes" / "com.edgeml.Inference.yaml"


def recipe_defaults() -> dict[str, Any]:
    recipe = yaml.safe_load(RECIPE.read_text())
    defaults: dict[str, Any] = recipe["ComponentConfiguration"]["DefaultConfiguration"]
    return defaults


def test_recipe_defaults_parse_and_every_recipe_key_is_known() -> None:
    defaults = recipe_defaults()
    config = AppConfig.from_mapping(defaults)
    assert config.mode == defaults["Mode"]
    assert config.max_batch == defaults["MaxBatch"]
    unknown = set(defaults) - set(KEYS) - {"accessControl"}
    assert not unknown, f"recipe keys the app ignores: {unknown}"


@pytest.mark.parametrize(
    ("key", "value"),
    [
        ("Mode", "sometimes"),
        ("MaxBatch", 0),
        ("MaxBatch", "eight"),
        ("ConfidenceThreshold", 1.5),
        ("ExecutionProviders", ["CPU", "TPU"]),
        ("ExecutionProviders", []),
        ("IoTCoreQos", 2),
        ("ResultsTopic", "results/#"),
        ("HttpPort", 80),
        ("HealthIntervalS", True),
    ],
)
def test_a_bad_value_is_refused_naming_its_key(key: str, value: Any) -> None:
    with pytest.raises(ConfigInvalid) as raised:
        AppConfig.from_mapping({**recipe_defaults(), key: value})
    assert raised.value.key == key
    assert key in str(raised.value)


def test_numbers_given_as_strings_are_accepted() -> None:
    config = AppConfig.from_mapping(
        {"MaxBatch": "16", "ConfidenceThreshold": "0.25", "ExecutionProviders": "CUDA,CPU"}
    )
    assert (config.max_batch, config.confidence_threshold) == (16, 0.25)
    assert config.execution_providers == ("CUDA", "CPU")


def test_empty_model_directory_falls_back_to_model_dir_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MODEL_DIR", "/greengrass/v2/packages/artifacts-unarchived/m/1.0.0/linux-amd64")
    assert AppConfig.from_mapping({"ModelDirectory": ""}).model_root().endswith("linux-amd64")
    assert AppConfig.from_mapping({"ModelDirectory": "/models/x"}).model_root() == "/models/x"


def test_iot_core_topic_gets_the_thing_name(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AWS_IOT_THING_NAME", "core-7")
    config = AppConfig.from_mapping({"IoTCoreTopic": "edgeml/{iot:thingName}/inference/results"})
    assert config.iot_core_route() == ("edgeml/core-7/inference/results", 1)

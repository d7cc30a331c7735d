"""`edgeml config from-stack` against moto CloudFormation (loopback server): stacks whose outputs carry the
keys the synthesized templates write become the CLI's configuration file; bad input changes nothing."""

from __future__ import annotations

import io
import json
import sys
import uuid
from contextlib import redirect_stderr, redirect_stdout
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from unittest.mock import patch

import boto3
import pytest
import typer
from infra_kit import Synthesized

from edgeml.cli import run_app
from edgeml.config.cli import app as config_app
from edgeml.config.outputs import BY_KEY
from edgeml.twin.cloud.motoserver import MotoServer

# Values a deployment would give each output (JSON outputs as the stacks encode them).
VALUES = {
    "ArtifactsBucket": "edgeml-artifacts-123456789012-us-east-1",
    "AccessLogBucket": "edgeml-access-logs-123456789012-us-east-1",
    "NeoKeyPrefix": "edgeml/neo",
    "ParentThingGroup": "edgeml-fleet",
    "RingThingGroups": json.dumps({"canary": "edgeml-ring-canary", "fleet": "edgeml-ring-fleet"}),
    "CoreDevicePolicy": "edgeml-core-device",
    "TokenExchangeRoleArn": "arn:aws:iam::123456789012:role/Edgeml-Fleet-TokenExchangeRole",
    "TokenExchangeRoleAlias": "edgeml-token-exchange-role-alias",
    "ResultsStream": "edgeml-results",
    "CaptureBucket": "edgeml-captures-123456789012-us-east-1",
    "CaptureKeyPrefix": "captures",
    "MetricNamespace": "EdgeML/Inference",
    "HealthAlarms": json.dumps({"ErrorRate": "edgeml-health-ErrorRate"}),
    "HealthRules": json.dumps(["edgeml_health_requests"]),
    "NeoRoleArn": "arn:aws:iam::123456789012:role/Edgeml-Compile-NeoRole",
}


def create_stack(name: str, outputs: dict[str, str]) -> None:
    """A stack with one resource moto deploys and the given literal outputs."""
    template = {
        "Resources": {"Topic": {"Type": "AWS::SNS::Topic"}},
        "Outputs": {key: {"Value": value} for key, value in outputs.items()},
    }
    boto3.client("cloudformation").create_stack(StackName=name, TemplateBody=json.dumps(template))


@dataclass
class Run:
    returncode: int
    stdout: str
    stderr: str


def edgeml(server: MotoServer, *args: str) -> Run:
    """`edgeml ARGS` in this process through the CLI's own runner (exit codes, one-line errors); the
    `aws` fixture has pointed boto3 at the loopback moto server."""
    root = typer.Typer()
    root.add_typer(config_app, name="config")
    stdout, stderr = io.StringIO(), io.StringIO()
    code = 0
    with patch.object(sys, "argv", ["edgeml", *args]), redirect_stdout(stdout), redirect_stderr(stderr):
        try:
            run_app(root)
        except SystemExit as exit_:
            code = int(exit_.code or 0)
    return Run(code, stdout.getvalue(), stderr.getvalue())


@pytest.fixture()
def stacks(aws: MotoServer, synthesized: Synthesized) -> dict[str, str]:
    """One moto stack per synthesized stack, carrying the output keys that stack writes."""
    names = {}
    suffix = uuid.uuid4().hex[:8]
    for part, template in synthesized.templates.items():
        keys = list(template.to_json().get("Outputs", {}))
        name = f"Edgeml-{part}-{suffix}"
        create_stack(name, {key: VALUES[key] for key in keys})
        names[part] = name
    return names


def test_from_stack_writes_every_output_into_the_config(
    aws: MotoServer, stacks: dict[str, str], tmp_path: Path
) -> None:
    config = tmp_path / "config.json"
    run = edgeml(aws, "config", "from-stack", *stacks.values(), "--config", str(config))
    assert run.returncode == 0, run.stderr
    written = json.loads(config.read_text())
    assert written["format"] == "edgeml.config/1"
    assert (written["region"], written["account"]) == ("us-east-1", "123456789012")
    assert written["stacks"] == list(stacks.values())
    for key, value in VALUES.items():
        field = BY_KEY[key].field
        assert written[field] == (json.loads(value) if BY_KEY[key].json else value), key
    shown = edgeml(aws, "config", "show", "--config", str(config), "--json")
    assert shown.returncode == 0 and json.loads(shown.stdout) == written


def test_a_later_run_for_one_stack_keeps_what_the_others_wrote(
    aws: MotoServer, stacks: dict[str, str], tmp_path: Path
) -> None:
    config = tmp_path / "config.json"
    assert edgeml(aws, "config", "from-stack", stacks["Artifacts"], "--config", str(config)).returncode == 0
    assert edgeml(aws, "config", "from-stack", stacks["Fleet"], "--config", str(config)).returncode == 0
    written = json.loads(config.read_text())
    assert written["artifacts_bucket"] == VALUES["ArtifactsBucket"]
    assert written["token_exchange_role_alias"] == VALUES["TokenExchangeRoleAlias"]
    assert written["results_stream"] is None  # the Results stack was never read
    assert written["stacks"] == sorted([stacks["Artifacts"], stacks["Fleet"]])


@pytest.mark.parametrize(
    ("case", "message"),
    [
        ("missing", "error: stack Nope-{suffix} does not exist in us-east-1"),
        ("foreign", "not an edgeml configuration"),
        ("no-outputs", "has none of the edgeml outputs"),
        ("bad-json", "output RingThingGroups is not JSON"),
    ],
)
def test_bad_input_is_one_line_and_leaves_the_file_as_it_was(
    aws: MotoServer, stacks: dict[str, str], tmp_path: Path, case: str, message: str
) -> None:
    config = tmp_path / "config.json"
    suffix = uuid.uuid4().hex[:8]
    names: list[str] = [stacks["Artifacts"]]
    before: Any = None
    if case == "missing":
        names.append(f"Nope-{suffix}")
    elif case == "foreign":
        config.write_text('{"theirs": true}\n')
        before = config.read_text()
    elif case == "no-outputs":
        create_stack(f"Other-{suffix}", {"Something": "else"})
        names = [f"Other-{suffix}"]
    elif case == "bad-json":
        create_stack(f"Broken-{suffix}", {"RingThingGroups": "canary,fleet"})
        names = [f"Broken-{suffix}"]
    run = edgeml(aws, "config", "from-stack", *names, "--config", str(config))
    assert run.returncode == 1
    lines = run.stderr.strip().splitlines()
    assert len(lines) == 1 and message.format(suffix=suffix) in lines[0], run.stderr
    assert "Traceback" not in run.stderr
    if before is None:
        assert not config.exists()
    else:
        assert config.read_text() == before


def test_show_without_a_config_says_how_to_make_one(aws: MotoServer, tmp_path: Path) -> None:
    run = edgeml(aws, "config", "show", "--config", str(tmp_path / "none.json"))
    assert run.returncode == 1
    assert "no configuration yet (run `edgeml config from-stack STACK...`)" in run.stderr

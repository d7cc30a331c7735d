"""The synthesized templates pass cfn-lint; the stacks write every output the CLI reads; the settings
refuse bad values naming the key; `cdk synth` through the pinned npm CLI works offline."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from edgeml_infra.settings import SettingsError, parse
from infra_kit import INFRA, REGION, Synthesized

from edgeml.config.outputs import ALL_OUTPUTS, BY_KEY

REPO = INFRA.parent


def test_cfn_lint_passes_on_every_template(synthesized: Synthesized) -> None:
    """Errors and warnings in the stacks' region, as the `cfn-lint` command reports by default
    (informational I* rules are opt-in)."""
    from cfnlint.api import lint

    templates = sorted(synthesized.outdir.glob("*.template.json"))
    assert len(templates) == 5
    for path in templates:
        matches = [m for m in lint(path.read_text(), regions=[REGION]) if m.rule.id[0] in "EW"]
        assert not matches, f"{path.name}: " + "; ".join(str(m) for m in matches)


def test_stacks_write_every_output_the_cli_reads_and_nothing_it_does_not(synthesized: Synthesized) -> None:
    written: dict[str, str] = {}
    for part, template in synthesized.templates.items():
        for key in template.to_json().get("Outputs", {}):
            assert key in BY_KEY, f"{part} writes {key}, which edgeml config does not read"
            assert key not in written, f"{key} written by {written[key]} and {part}"
            written[key] = part
    assert set(written) == {output.key for output in ALL_OUTPUTS}


def test_ring_output_names_each_ring_group(synthesized: Synthesized) -> None:
    outputs = synthesized.json("Fleet")["Outputs"]
    rings = json.loads(outputs["RingThingGroups"]["Value"])
    assert rings == {ring: f"edgeml-ring-{ring}" for ring in synthesized.settings.rings}


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        ({"rings": []}, "edgeml.rings: at least one ring is needed"),
        ({"rings": ["canary", "canary"]}, "edgeml.rings: ring names repeat"),
        ({"rings": ["Canary"]}, "edgeml.rings: 'Canary' must be"),
        ({"prefix": "EdgeML"}, "edgeml.prefix: 'EdgeML' must be"),
        ({"metricNamespace": "AWS/IoT"}, "edgeml.metricNamespace: 'AWS/IoT' is not a custom"),
        ({"logRetentionDays": 31}, "edgeml.logRetentionDays: 31 is not one of"),
        ({"thresholds": {"maxErrorRate": 2}}, "edgeml.thresholds.maxErrorRate: 2 must be a number in 0..1"),
        ({"region": "mars-1"}, "edgeml.region: 'mars-1' is not an AWS region name"),
        ({"ringz": ["a"]}, "edgeml.ringz: unknown key"),
    ],
)
def test_settings_refuse_bad_values_naming_the_key(raw: dict[str, object], message: str) -> None:
    with pytest.raises(SettingsError, match="^" + message.replace("(", r"\(").replace(".", r"\.")):
        parse(raw)


def test_settings_rename_every_resource_with_the_prefix_and_rings() -> None:
    settings = parse({"prefix": "acme-ml", "rings": ["one", "two"]})
    assert settings.stack_name("Fleet") == "AcmeMl-Fleet"
    assert [settings.ring_group(r) for r in settings.rings] == ["acme-ml-ring-one", "acme-ml-ring-two"]
    assert settings.rule_prefix == "acme_ml_health"  # IoT rule names allow [a-zA-Z0-9_] only
    assert settings.bucket_name("artifacts", "123456789012", "ap-southeast-2") == (
        "acme-ml-artifacts-123456789012-ap-southeast-2"
    )


@pytest.mark.slow
def test_app_entry_point_reports_a_bad_context_on_one_line(tmp_path: Path) -> None:
    env = {
        **os.environ,
        "CDK_CONTEXT_JSON": json.dumps({"edgeml": {"rings": []}}),
        "CDK_OUTDIR": str(tmp_path),
    }
    run = subprocess.run(
        [sys.executable, "app.py"], cwd=INFRA, env=env, capture_output=True, text=True, timeout=120
    )
    assert run.returncode == 1
    assert run.stderr.strip().splitlines()[-1] == "error: edgeml.rings: at least one ring is needed"


def installed_cdk() -> Path | None:
    """The CLI scripts/_cdk.sh installed (scripts/test installs it before pytest runs)."""
    explicit = os.environ.get("EDGEML_CDK")
    if explicit:
        return Path(explicit)
    home = os.environ.get("EDGEML_CDK_HOME") or os.path.join(
        os.environ.get("XDG_CACHE_HOME") or os.path.expanduser("~/.cache"), "edgeml", "aws-cdk-2.1148.1"
    )
    path = Path(home) / "node_modules" / ".bin" / "cdk"
    return path if path.exists() else None


@pytest.mark.slow
def test_cdk_synth_through_the_pinned_npm_cli_offline(tmp_path: Path) -> None:
    if shutil.which("node") is None:
        pytest.skip("node is not installed: the aws-cdk CLI cannot run here")
    cdk = installed_cdk()
    if cdk is None:
        pytest.skip("aws-cdk 2.1148.1 is not installed: run scripts/_cdk.sh (scripts/test does)")
    venv_bin = str(Path(sys.executable).parent)
    env = {
        **os.environ,
        "PATH": venv_bin + os.pathsep + os.environ.get("PATH", ""),  # cdk.json runs `python app.py`
        "JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION": "18,19,20,21,22",
        "JSII_SILENCE_WARNING_DEPRECATED_NODE_VERSION": "1",
        "NODE_NO_WARNINGS": "1",
        "CDK_DISABLE_VERSION_CHECK": "1",
        "AWS_EC2_METADATA_DISABLED": "true",
    }
    out = tmp_path / "cdk.out"
    run = subprocess.run(
        [str(cdk), "synth", "--quiet", "--no-notices", "--no-version-reporting", "-o", str(out)],
        cwd=INFRA,
        env=env,
        capture_output=True,
        text=True,
        timeout=240,
    )
    assert run.returncode == 0, run.stderr[-4000:]
    assert "end-of-life" not in run.stderr + run.stdout and "!!!!" not in run.stderr
    names = sorted(p.name for p in out.glob("*.template.json"))
    assert names == [
        f"Edgeml-{part}.template.json" for part in ("Artifacts", "Compile", "Fleet", "Health", "Results")
    ]
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["version"].split(".")[0].isdigit()

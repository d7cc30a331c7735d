"""cdk-nag AwsSolutions: the app synthesises with no unacknowledged finding, and every acknowledgement
answers a finding that exists (a synth with the acknowledgements switched off reports exactly them)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import edgeml_infra.nag as nag
import pytest
from infra_kit import Synthesized


def acknowledged(synthesized: Synthesized) -> dict[tuple[str, str], str]:
    """(construct path, finding id) -> reason, from the templates' cdk_nag Metadata."""
    found = {}
    for part, template in synthesized.templates.items():
        for body in template.to_json()["Resources"].values():
            for rule in body.get("Metadata", {}).get("cdk_nag", {}).get("rules_to_suppress", []):
                found[(part, rule["id"])] = rule["reason"]
    return found


@pytest.fixture(scope="module")
def unacknowledged_findings(tmp_path_factory: pytest.TempPathFactory) -> Iterator[set[tuple[str, str]]]:
    """The findings of a synth whose acknowledgements are switched off (the report of a failed synth)."""
    import json

    from infra_kit import synthesize

    original = nag.Validations
    outdir = tmp_path_factory.mktemp("cdk.out.unacknowledged")

    class NoAcknowledgements:
        def __init__(self, scope: Any) -> None:
            self.real = original.of(scope)

        def acknowledge(self, *rules: Any) -> None:
            pass

        def add_plugins(self, *plugins: Any) -> None:
            self.real.add_plugins(*plugins)

    class Patched:
        @staticmethod
        def of(scope: Any) -> NoAcknowledgements:
            return NoAcknowledgements(scope)

    nag.Validations = Patched  # type: ignore[assignment,misc]
    try:
        with pytest.raises(RuntimeError, match="ValidationFailed"):
            synthesize(outdir)
    finally:
        nag.Validations = original  # type: ignore[misc]
    report = json.loads((outdir / "validation-report.json").read_text())
    findings = set()
    for plugin in report["pluginReports"]:
        for violation in plugin["violations"]:
            for construct in violation["violatingConstructs"]:
                findings.add((construct["constructPath"].split("/")[0].split("-")[-1], violation["ruleName"]))
    yield findings


def test_app_passes_aws_solutions_with_nothing_left_to_report(synthesized: Synthesized) -> None:
    report = synthesized.report()
    assert report["pluginReports"] == [] or all(p["violations"] == [] for p in report["pluginReports"])


def test_every_acknowledgement_answers_a_real_finding_with_a_reason(
    synthesized: Synthesized, unacknowledged_findings: set[tuple[str, str]]
) -> None:
    acknowledgements = {
        key: reason for key, reason in acknowledged(synthesized).items() if key[1].startswith("AwsSolutions-")
    }
    assert set(acknowledgements) == unacknowledged_findings
    for (part, finding), reason in acknowledgements.items():
        assert finding.startswith("AwsSolutions-IAM5[Resource::"), finding  # only wildcard resources
        assert len(reason) > 60, f"{part} {finding}: reason too thin: {reason!r}"

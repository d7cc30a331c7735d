"""What the infra tests share: the CDK app synthesised in-process with cdk-nag on, and its templates.

Stacks get a concrete environment (account 123456789012, eu-west-1) as `cdk deploy` would give them.
"""

from __future__ import annotations

import json
import os
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

os.environ.setdefault("JSII_SILENCE_WARNING_DEPRECATED_NODE_VERSION", "1")
os.environ.setdefault("JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION", "18,19,20,21,22")

INFRA = Path(__file__).resolve().parents[2] / "infra"
if str(INFRA) not in sys.path:
    sys.path.insert(0, str(INFRA))

from aws_cdk import App  # noqa: E402
from aws_cdk.assertions import Template  # noqa: E402
from edgeml_infra.application import EdgemlStacks, build, cdk_json_context  # noqa: E402
from edgeml_infra.settings import Settings, from_context  # noqa: E402

ACCOUNT = "123456789012"
REGION = "eu-west-1"


@dataclass
class Synthesized:
    settings: Settings
    stacks: EdgemlStacks
    templates: dict[str, Template]  # by stack part: Artifacts, Fleet, Results, Health, Compile
    outdir: Path

    def json(self, part: str) -> dict[str, Any]:
        document: dict[str, Any] = self.templates[part].to_json()
        return document

    def report(self) -> dict[str, Any]:
        report: dict[str, Any] = json.loads((self.outdir / "validation-report.json").read_text())
        return report


def synthesize(outdir: Path, context: dict[str, Any] | None = None) -> Synthesized:
    merged = cdk_json_context()
    merged.update(context or {})
    app = App(context=merged, outdir=str(outdir))
    settings = from_context(app.node.try_get_context)
    settings = Settings(**{**vars(settings), "account": ACCOUNT, "region": REGION})
    stacks = build(app, settings)
    app.synth()
    parts = ("Artifacts", "Fleet", "Results", "Health", "Compile")
    templates = {part: Template.from_stack(getattr(stacks, part.lower())) for part in parts}
    return Synthesized(settings, stacks, templates, outdir)

#!/usr/bin/env python3
"""The edgeml CDK app: `cdk synth` / `cdk deploy --all` from this folder (docs/infra.md)."""

from __future__ import annotations

import sys
from pathlib import Path

from aws_cdk import App

from edgeml.errors import EdgemlError

sys.path.insert(0, str(Path(__file__).resolve().parent))

from edgeml_infra.application import build
from edgeml_infra.settings import SettingsError, from_context


def main() -> None:
    app = App()
    try:
        settings = from_context(app.node.try_get_context)
        build(app, settings)
    except (SettingsError, EdgemlError) as error:  # EdgemlError: a rollout spec that does not load
        print(f"error: {error}", file=sys.stderr)
        sys.exit(1)
    app.synth()


if __name__ == "__main__":
    main()

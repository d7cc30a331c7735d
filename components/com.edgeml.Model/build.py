"""gdk custom build hook of the model component: stage a packaged version into greengrass-build/.

gdk runs this in the component folder (`gdk component build`). It takes the output of
`edgeml model package --out <dir>` (default: <repo>/build/model, or $EDGEML_MODEL_PACKAGE), picks the
version in $EDGEML_MODEL_VERSION or the highest one, verifies each zip against the recipe's digest and
writes greengrass-build/recipes/<Name>-<version>.yaml and greengrass-build/artifacts/<Name>/<version>/.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parent.parent


def main() -> int:
    try:
        from edgeml.model.stage import stage_component
    except ImportError:  # gdk's python3 without edgeml installed: use the repository's sources
        sys.path.insert(0, str(REPO / "src"))
        from edgeml.model.stage import stage_component
    from edgeml.errors import EdgemlError

    config = json.loads((HERE / "gdk-config.json").read_text(encoding="utf-8"))
    [component] = config["component"]
    package_dir = Path(os.environ.get("EDGEML_MODEL_PACKAGE", REPO / "build" / "model"))
    try:
        staged = stage_component(
            package_dir, component, HERE / "greengrass-build", os.environ.get("EDGEML_MODEL_VERSION")
        )
    except EdgemlError as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    print(f"staged {staged.component} {staged.version}: {len(staged.artifacts)} artifacts")
    return 0


if __name__ == "__main__":
    sys.exit(main())

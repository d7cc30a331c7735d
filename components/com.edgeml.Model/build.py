"""gdk custom build hook of a model component: stage a packaged version into greengrass-build/.

gdk runs `custom_build_command` in the component folder (`gdk component build`), so the project is the
current folder: its gdk-config.json names the component and the version. This takes the output of
`edgeml model package --out <dir>` ($EDGEML_MODEL_PACKAGE, else --package DIR, else <repo>/build/model:
the environment overrides what gdk-config.json's command says, as $EDGEML_MODEL_VERSION does its version),
stages gdk-config's version ($EDGEML_MODEL_VERSION overrides it; the highest packaged version when
gdk-config says NEXT_PATCH), verifies each zip against the recipe's digest and writes
greengrass-build/artifacts/<Name>/<version>/ plus the recipe twice: recipes/<Name>-<version>.yaml and
recipes/<recipe file name>, the file `gdk component publish` reads back (gdk/commands/component/
transformer/PublishRecipeTransformer.py: gg_build_recipes_dir / recipe_file.name, the project's
recipe.json/recipe.yaml with symlinks resolved). gdk publish uploads artifacts/<Name>/<gdk-config
version>/, so a project publishable by gdk names the packaged version in gdk-config.json
(`edgeml build --model-package DIR` writes it).

It needs edgeml: installed in gdk's `python3`, or the repository's src/ two folders up. Every failure
is one line on stderr and exit 1.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent.parent
_SEMVER = re.compile(r"^\d+\.\d+\.\d+$")


def _fail(message: str) -> int:
    print(f"error: {message}", file=sys.stderr)
    return 1


def _gdk_recipe_name(project: Path) -> str | None:
    """recipe.json or recipe.yaml of the project, symlinks resolved, as gdk's GDKProject finds it."""
    found = [project / name for name in ("recipe.json", "recipe.yaml") if (project / name).exists()]
    return found[0].resolve().name if len(found) == 1 else None


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--package", help="output folder of `edgeml model package --out`")
    args = parser.parse_args(argv)
    project = Path.cwd()
    try:
        from edgeml.model.stage import stage_component
    except ImportError:  # gdk's python3 without edgeml installed: use the repository's sources
        if not (REPO / "src" / "edgeml").is_dir():
            return _fail(
                f"the model build needs edgeml: run it in the repository checkout ({REPO / 'src'} is "
                "missing) or with edgeml installed in the python3 gdk runs"
            )
        sys.path.insert(0, str(REPO / "src"))
        from edgeml.model.stage import stage_component
    from edgeml.errors import EdgemlError

    try:
        config = json.loads((project / "gdk-config.json").read_text(encoding="utf-8"))
        [(component, settings)] = config["component"].items()
        configured = str(settings["version"])
    except (OSError, ValueError, KeyError, TypeError) as error:
        return _fail(f"{project / 'gdk-config.json'}: not a gdk project configuration ({error})")
    package_dir = Path(
        os.environ.get("EDGEML_MODEL_PACKAGE") or args.package or REPO / "build" / "model"
    ).absolute()
    if not (package_dir / "recipes").is_dir():
        return _fail(
            f"{package_dir}: no packaged model here; run `edgeml model package ... --out {package_dir}` "
            "first (or point --package / EDGEML_MODEL_PACKAGE at its output)"
        )
    wanted = os.environ.get("EDGEML_MODEL_VERSION") or (configured if _SEMVER.match(configured) else None)
    build_dir = project / "greengrass-build"
    try:
        staged = stage_component(package_dir, component, build_dir, wanted)
    except EdgemlError as error:
        return _fail(str(error))
    recipe_name = _gdk_recipe_name(project)
    if recipe_name and recipe_name != staged.recipe.name:
        shutil.copyfile(staged.recipe, build_dir / "recipes" / recipe_name)
    if staged.version != configured:
        print(
            f"warning: staged {component} {staged.version}, but gdk-config.json says {configured}: "
            f"`gdk component publish` would publish {configured}, `edgeml publish` {staged.version}",
            file=sys.stderr,
        )
    print(f"staged {staged.component} {staged.version}: {len(staged.artifacts)} artifacts")
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""`edgeml build`: gdk 1.6.2's greengrass-build layout and zip excludes, byte-stable zips, custom builds."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest
import yaml

from edgeml.components.build import build_project, find_projects
from edgeml.components.errors import BuildFailed, UnknownComponent
from edgeml.components.gdkconfig import load_gdk_config
from edgeml.components.recipe import load_recipe

ROOT = Path(__file__).resolve().parents[2]
MAIN = "from edgeml.cli import main; main()"


def _copy_project(tmp: Path, name: str) -> Path:
    """A copy of components/<name>/ and its recipe, laid out as in the repository (recipe.yaml symlink)."""
    (tmp / "recipes").mkdir(exist_ok=True)
    shutil.copyfile(ROOT / "recipes" / f"{name}.yaml", tmp / "recipes" / f"{name}.yaml")
    project = tmp / "components" / name
    shutil.copytree(
        ROOT / "components" / name,
        project,
        symlinks=True,
        ignore=shutil.ignore_patterns("greengrass-build", "zip-build", "__pycache__"),
    )
    return project


@pytest.fixture()
def runtime(tmp_path: Path) -> Path:
    project = _copy_project(tmp_path, "com.edgeml.Runtime")
    (project / "edgeml_runtime" / "__pycache__").mkdir()
    (project / "edgeml_runtime" / "__pycache__" / "installer.cpython-311.pyc").write_bytes(b"\0")
    (project / "tests").mkdir()
    (project / "tests" / "test_x.py").write_text("")
    (project / ".env").write_text("SECRET=1")
    (project / "greengrass-build" / "stale").mkdir(parents=True)
    return project


def _names(zip_path: Path) -> list[str]:
    with zipfile.ZipFile(zip_path) as archive:
        return archive.namelist()


def test_zip_build_writes_gdks_layout(runtime: Path) -> None:
    result = build_project(runtime)

    build = runtime / "greengrass-build"
    assert result.component == "com.edgeml.Runtime" and result.version == "NEXT_PATCH"
    assert sorted(p.relative_to(build).as_posix() for p in build.rglob("*") if p.is_file()) == [
        "artifacts/com.edgeml.Runtime/NEXT_PATCH/com.edgeml.Runtime.zip",
        "recipes/com.edgeml.Runtime.yaml",
    ]
    names = _names(result.artifacts[0])
    assert "edgeml_runtime/installer.py" in names and "requirements/linux-aarch64.txt" in names
    for left_out in ("gdk-config.json", "recipe.yaml", ".env", "tests/test_x.py", "greengrass-build/"):
        assert left_out not in names
    assert not any("__pycache__" in name for name in names)

    recipe = load_recipe(result.recipe)
    recipe.validate()
    assert recipe.data["ComponentVersion"] == "NEXT_PATCH"  # resolved by publish, as with gdk
    assert recipe.data["ComponentPublisher"] == "edgeml"
    uris = {a["Uri"] for m in recipe.data["Manifests"] for a in m["Artifacts"]}
    assert uris == {"s3://BUCKET_NAME/COMPONENT_NAME/COMPONENT_VERSION/com.edgeml.Runtime.zip"}
    assert (
        recipe.data["ComponentConfiguration"]
        == yaml.safe_load((ROOT / "recipes" / "com.edgeml.Runtime.yaml").read_text())[
            "ComponentConfiguration"
        ]
    )


def test_zips_are_byte_identical_across_builds(runtime: Path, tmp_path: Path) -> None:
    first = build_project(runtime).artifacts[0].read_bytes()
    for path in runtime.rglob("*"):
        os.utime(path, (1_700_000_000, 1_700_000_000), follow_symlinks=False)
    assert build_project(runtime).artifacts[0].read_bytes() == first


def test_without_options_gdks_default_excludes_apply(runtime: Path) -> None:
    config = json.loads((runtime / "gdk-config.json").read_text())
    del config["component"]["com.edgeml.Runtime"]["build"]["options"]
    (runtime / "gdk-config.json").write_text(json.dumps(config))
    names = _names(build_project(runtime).artifacts[0])
    assert ".env" not in names and "tests/test_x.py" not in names
    # gdk drops the recipe by its resolved name and keeps __pycache__: why gdk-config lists excludes.
    assert "recipe.yaml" in names
    assert "edgeml_runtime/__pycache__/installer.cpython-311.pyc" in names


def test_every_zip_project_in_the_repository_builds(tmp_path: Path) -> None:
    zip_projects = [p for p in find_projects(ROOT / "components") if load_gdk_config(p).build_system == "zip"]
    assert {p.name for p in zip_projects} >= {"com.edgeml.Runtime", "com.edgeml.Inference"}
    for project in zip_projects:
        result = build_project(_copy_project(tmp_path, project.name))
        assert [p.name for p in result.artifacts] == [f"{project.name}.zip"]
        load_recipe(result.recipe).validate()


def test_an_artifact_the_zip_does_not_make_is_an_error(runtime: Path) -> None:
    recipe_path = runtime.parent.parent / "recipes" / "com.edgeml.Runtime.yaml"
    recipe_path.write_text(
        recipe_path.read_text().replace("COMPONENT_VERSION/com.edgeml.Runtime.zip", "x/other.zip")
    )
    with pytest.raises(
        BuildFailed, match=r"artifact s3://BUCKET_NAME/COMPONENT_NAME/x/other\.zip is not produced"
    ):
        build_project(runtime)


def _custom_project(tmp_path: Path, script: str) -> Path:
    project = tmp_path / "components" / "Custom"
    project.mkdir(parents=True)
    config = {
        "component": {
            "com.example.Custom": {
                "author": "me",
                "version": "NEXT_PATCH",
                "build": {"build_system": "custom", "custom_build_command": ["python3", "build.py"]},
                "publish": {"bucket": "b", "region": "us-east-1"},
            }
        },
        "gdk_version": "1.6.2",
    }
    (project / "gdk-config.json").write_text(json.dumps(config))
    (project / "recipe.yaml").write_text(
        "RecipeFormatVersion: '2020-01-25'\nComponentName: com.example.Custom\n"
    )
    (project / "build.py").write_text(script)
    return project


def test_custom_build_runs_the_command_in_the_folder(tmp_path: Path) -> None:
    project = _custom_project(
        tmp_path,
        "import pathlib, sys\n"
        "b = pathlib.Path('greengrass-build')\n"
        "assert (b / 'recipes').is_dir() and (b / 'artifacts/com.example.Custom/NEXT_PATCH').is_dir()\n"
        "(b / 'recipes/com.example.Custom-1.2.3.yaml').write_text("
        "'RecipeFormatVersion: \"2020-01-25\"\\nComponentName: com.example.Custom\\n'\n"
        "'ComponentVersion: 1.2.3\\n')\n"
        "(b / 'artifacts/com.example.Custom/1.2.3').mkdir(parents=True)\n"
        "(b / 'artifacts/com.example.Custom/1.2.3/a.zip').write_bytes(b'x')\n"
        "pathlib.Path('python.txt').write_text(sys.executable)\n",
    )
    result = build_project(project)
    assert (result.component, result.version) == ("com.example.Custom", "1.2.3")
    assert [p.name for p in result.artifacts] == ["a.zip"]
    # `python3` in custom_build_command is the interpreter that runs edgeml (an activated venv).
    assert Path((project / "python.txt").read_text()).parent == Path(sys.executable).parent


def test_custom_build_failure_names_the_command(tmp_path: Path) -> None:
    project = _custom_project(tmp_path, "raise SystemExit(3)\n")
    with pytest.raises(
        BuildFailed, match=r"com\.example\.Custom: custom build command `python3 build\.py` exited 3"
    ):
        build_project(project)


def test_cli_builds_named_components_and_rejects_unknown_ones(runtime: Path) -> None:
    components = runtime.parent
    env = {**os.environ, "COLUMNS": "300"}
    ok = subprocess.run(
        [sys.executable, "-c", MAIN, "build", "--components-dir", str(components), "com.edgeml.Runtime"],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
        check=False,
    )
    assert ok.returncode == 0, ok.stderr
    assert "built com.edgeml.Runtime NEXT_PATCH" in ok.stdout
    assert (runtime / "greengrass-build" / "recipes" / "com.edgeml.Runtime.yaml").is_file()

    bad = subprocess.run(
        [sys.executable, "-c", MAIN, "build", "--components-dir", str(components), "com.example.Nope"],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
        check=False,
    )
    assert bad.returncode == 1
    assert bad.stderr.strip() == (
        f"error: component 'com.example.Nope': no gdk project in {components} (known: com.edgeml.Runtime)"
    )
    with pytest.raises(UnknownComponent):
        find_projects(components / "missing")


def _set_options(project: Path, options: dict[str, object] | None) -> None:
    config = json.loads((project / "gdk-config.json").read_text())
    [settings] = config["component"].values()
    if options is None:
        settings["build"].pop("options", None)
    else:
        settings["build"]["options"] = options
    (project / "gdk-config.json").write_text(json.dumps(config))


def _copied_alone(project: Path, tmp_path: Path, folder: str) -> Path:
    """Just the component folder copied elsewhere (links resolved), as a user copies a gdk project."""
    alone = tmp_path / "elsewhere" / folder
    shutil.copytree(project, alone, symlinks=False, ignore=shutil.ignore_patterns("greengrass-build"))
    return alone


@pytest.mark.parametrize(("zip_name", "expected"), [("", "com.edgeml.Runtime.zip"), ("rt", "rt.zip")])
def test_zip_name_names_the_zip_whatever_the_folder(
    runtime: Path, tmp_path: Path, zip_name: str, expected: str
) -> None:
    # gdk/build_system/Zip.py: zip_name "" is the component name; unset, the current folder's name.
    alone = _copied_alone(runtime, tmp_path, "my-copy")
    _set_options(alone, {"zip_name": zip_name, "excludes": ["**/test*"]})
    if zip_name:  # the recipe must name the artifact the build makes
        recipe = alone / "recipe.yaml"
        recipe.write_text(recipe.read_text().replace("/com.edgeml.Runtime.zip", f"/{expected}"))
    result = build_project(alone)
    assert [path.name for path in result.artifacts] == [expected]


def test_without_zip_name_a_copied_folder_zips_under_its_own_name(runtime: Path, tmp_path: Path) -> None:
    alone = _copied_alone(runtime, tmp_path, "my-copy")
    _set_options(alone, {"excludes": ["**/test*"]})
    with pytest.raises(BuildFailed, match=r"is not produced by the zip build \(it makes my-copy\.zip\)"):
        build_project(alone)


def test_options_without_excludes_exclude_only_gdks_fixed_entries(runtime: Path) -> None:
    # gdk: no options -> its default excludes; options present without "excludes" -> none at all.
    _set_options(runtime, {"zip_name": ""})
    result = build_project(runtime)
    names = _names(result.artifacts[0])
    assert ".env" in names and "tests/test_x.py" in names and "gdk-config.json" not in names
    # gdk leaves out recipe_file.name with the link resolved (com.edgeml.Runtime.yaml), not the link
    # recipe.yaml itself: that is why the committed excludes name recipe.yaml.
    assert "recipe.yaml" in names


@pytest.mark.parametrize("folder", ["com.edgeml.Inference", "com.edgeml.Runtime"])
def test_every_zip_project_builds_from_a_copy_of_just_its_folder(tmp_path: Path, folder: str) -> None:
    # The committed gdk-config sets zip_name "", so the zip is <ComponentName>.zip wherever the folder is.
    alone = tmp_path / "copied-elsewhere"
    shutil.copytree(ROOT / "components" / folder, alone, ignore=shutil.ignore_patterns("greengrass-build"))
    result = build_project(alone)
    assert [path.name for path in result.artifacts] == [f"{folder}.zip"]

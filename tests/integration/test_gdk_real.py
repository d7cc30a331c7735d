"""Real gdk 1.6.2 on our component projects: build in the checkout and in a lone copy, config validation
that accepts exactly what gdk accepts, and `gdk component publish` of a packaged model version to the
cloud twin (GreengrassV2 and S3 on loopback).

gdk is not on PyPI: scripts/_venv.sh installs it from ../shared/tools/gdk-1.6.2-py3-none-any.whl (built from
the aws-greengrass-gdk-cli v1.6.2 tag) when that wheel exists; a user installs it from the GitHub tag.
Without it every test here skips, saying so.

gdk asks GitHub for its latest version on every command (gdk/CLIParser.py main -> cli_version_check);
the tests send that through a closed loopback proxy so nothing leaves the machine (gdk then carries on).
"""

from __future__ import annotations

import importlib
import json
import os
import shutil
import subprocess
import sys
import zipfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest
import yaml

from edgeml.components.build import build_project
from edgeml.components.errors import GdkConfigInvalid
from edgeml.components.gdkconfig import load_gdk_config
from edgeml.components.recipe import load_recipe
from edgeml.components.schema import CONFIG_SCHEMA, RECIPE_SCHEMA, load_schema
from edgeml.model.package import PackageRequest, package

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO / "tests" / "unit"))
from model_testkit import variants_dir  # noqa: E402

GDK = Path(sys.executable).with_name("gdk")
gdk_configuration: Any
try:
    gdk_configuration = importlib.import_module("gdk.common.configuration")
except ImportError:  # pragma: no cover - depends on the environment
    gdk_configuration = None

pytestmark = pytest.mark.skipif(
    gdk_configuration is None or not GDK.is_file(),
    reason="real gdk 1.6.2 is not installed (pip install the wheel in ../shared/tools, or "
    "git+https://github.com/aws-greengrass/aws-greengrass-gdk-cli.git@v1.6.2)",
)
COMPONENTS = sorted(path.parent.name for path in (REPO / "components").glob("*/gdk-config.json"))
MODEL = "com.edgeml.model.Digits"
REGION = "us-east-1"
ACCOUNT = "123456789012"  # moto's account


def _gdk_env(extra: dict[str, str] | None = None) -> dict[str, str]:
    env = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(("AWS_", "EDGEML_")) and key not in ("HTTP_PROXY", "HTTPS_PROXY", "NO_PROXY")
    }
    env.update(
        {
            "PATH": os.pathsep.join([str(GDK.parent), env.get("PATH", "")]),  # python3 = this venv's
            "HTTPS_PROXY": "http://127.0.0.1:9",  # gdk's GitHub version check fails at once
            "NO_PROXY": "127.0.0.1,localhost",
            "GDK_EXCLUDES_WARN_IGNORE": "true",
            # Any AWS call not pointed at a loopback server fails on a closed port, never reaching AWS.
            "AWS_ENDPOINT_URL": "http://127.0.0.1:9",
            "AWS_ACCESS_KEY_ID": "testing",
            "AWS_SECRET_ACCESS_KEY": "testing",
        }
    )
    env.update(extra or {})
    return env


def _gdk(project: Path, *args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(GDK), "component", *args],
        cwd=project,
        env=env or _gdk_env(),
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def _checkout(root: Path) -> Path:
    """components/ and recipes/ as in the repository (recipe.yaml links), src/ linked, a packaged model."""
    root.mkdir(parents=True)
    shutil.copytree(REPO / "recipes", root / "recipes")
    shutil.copytree(
        REPO / "components",
        root / "components",
        symlinks=True,
        ignore=shutil.ignore_patterns("greengrass-build", "zip-build", "__pycache__"),
    )
    for generated in (root / "components").glob("*"):  # keep only the committed projects
        if generated.name not in COMPONENTS:
            shutil.rmtree(generated)
    (root / "src").symlink_to(REPO / "src", target_is_directory=True)
    version = load_gdk_config(root / "components" / "com.edgeml.Model").version
    variants = variants_dir(root / "build" / "variants")
    package(PackageRequest(variants, MODEL.rsplit(".", 1)[-1], version, "models-b", root / "build" / "model"))
    return root


@pytest.fixture(scope="module")
def checkout(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return _checkout(tmp_path_factory.mktemp("gdk") / "checkout")


def _zip_names(path: Path) -> list[str]:
    with zipfile.ZipFile(path) as archive:
        return sorted(name for name in archive.namelist() if not name.endswith("/"))


def _built(project: Path) -> tuple[dict[str, Any], dict[str, list[str] | bytes]]:
    """The built recipe (gdk's file name) and each artifact: a zip's file list, else its bytes."""
    config = load_gdk_config(project)
    recipe = load_recipe(project / "greengrass-build" / "recipes" / config.recipe_file.name).data
    artifacts: dict[str, list[str] | bytes] = {}
    for path in sorted((project / "greengrass-build" / "artifacts").rglob("*")):
        if path.is_file():
            key = path.relative_to(project / "greengrass-build").as_posix()
            artifacts[key] = (
                _zip_names(path) if path.suffix == ".zip" and "model" not in key else path.read_bytes()
            )
    return recipe, artifacts


@pytest.mark.slow
@pytest.mark.parametrize("folder", COMPONENTS)
def test_gdk_builds_every_component_in_the_checkout_as_edgeml_build_does(checkout: Path, folder: str) -> None:
    project = checkout / "components" / folder
    shutil.rmtree(project / "greengrass-build", ignore_errors=True)
    result = _gdk(project, "build")
    assert result.returncode == 0, result.stdout + result.stderr
    by_gdk = _built(project)
    shutil.rmtree(project / "greengrass-build")
    build_project(project)
    assert _built(project) == by_gdk  # same recipe, same artifact paths, same zip contents


@pytest.mark.slow
@pytest.mark.parametrize("folder", COMPONENTS)
def test_gdk_builds_a_copy_of_just_the_folder(checkout: Path, tmp_path: Path, folder: str) -> None:
    # A user copies one project out of the repository: links resolved, no recipes/ or src/ beside it.
    alone = tmp_path / "somewhere-else"
    shutil.copytree(
        checkout / "components" / folder,
        alone,
        ignore=shutil.ignore_patterns("greengrass-build", "zip-build"),
    )
    env = _gdk_env({"EDGEML_MODEL_PACKAGE": str(checkout / "build" / "model")})
    result = _gdk(alone, "build", env=env)
    assert result.returncode == 0, result.stdout + result.stderr
    config = load_gdk_config(alone)
    recipe, artifacts = _built(alone)
    assert recipe["ComponentName"] == config.component
    built_dir = f"artifacts/{config.component}/{config.version}/"
    uris = {a["Uri"].rsplit("/", 1)[-1] for m in recipe["Manifests"] for a in m.get("Artifacts", [])}
    assert uris and {key[len(built_dir) :] for key in artifacts if key.startswith(built_dir)} == uris


@pytest.mark.slow
def test_the_model_build_without_a_package_says_so_in_one_line(checkout: Path, tmp_path: Path) -> None:
    alone = tmp_path / "model"
    shutil.copytree(
        checkout / "components" / "com.edgeml.Model", alone, ignore=shutil.ignore_patterns("greengrass-*")
    )
    env = _gdk_env({"EDGEML_MODEL_PACKAGE": str(tmp_path / "not-packaged")})
    result = _gdk(alone, "build", env=env)
    assert result.returncode != 0
    [line] = [line for line in result.stderr.splitlines() if line.startswith("error: ")]
    assert "no packaged model here; run `edgeml model package" in line  # gdk adds its own traceback after


def test_our_gdk_schemas_are_the_ones_inside_gdk() -> None:
    static = Path(gdk_configuration.__file__).resolve().parents[1] / "static"
    assert load_schema(CONFIG_SCHEMA) == json.loads((static / "config_schema.json").read_text())
    assert load_schema(RECIPE_SCHEMA) == json.loads((static / "recipe_schema.json").read_text())


def _config(**changes: Any) -> dict[str, Any]:
    settings: dict[str, Any] = {
        "author": "a",
        "version": "NEXT_PATCH",
        "build": {"build_system": "zip"},
        "publish": {"bucket": "b", "region": "eu-west-1"},
    }
    for path, value in changes.items():
        node = settings
        *parents, leaf = path.split("__")
        for part in parents:
            node = node.setdefault(part, {})
        if value is None:
            node.pop(leaf, None)
        else:
            node[leaf] = value
    return {"component": {"com.example.C": settings}, "gdk_version": "1.6.2"}


CONFIG_CASES = {
    "zip_name empty": _config(build__options={"zip_name": ""}),
    "zip_name and excludes": _config(build__options={"zip_name": "x", "excludes": ["**/t*"]}),
    "no publish region": _config(publish__region=None),
    "region gdk has no list for": _config(publish__region="mars-north-1"),
    "no bucket": _config(publish__bucket=None),
    "publish options": _config(publish__options={"file_upload_args": {"ACL": "private"}}),
    "custom command string": _config(build={"build_system": "custom", "custom_build_command": "make"}),
    "custom without command": _config(build={"build_system": "custom"}),
    "unknown build system": _config(build__build_system="make"),
    "zip option unknown": _config(build__options={"zip": True}),
    "exact version": _config(version="1.2.3"),
    "version not semver": _config(version="1.2"),
    "no author": _config(author=None),
    "older gdk": {**_config(), "gdk_version": "1.0.0"},
    "newer gdk": {**_config(), "gdk_version": "1.7.0"},
    "gdk version junk": {**_config(), "gdk_version": "1.6.2x"},
    "two components": {"component": {**_config()["component"], "c.D": {}}, "gdk_version": "1.6.2"},
}


def _gdk_accepts(document: dict[str, Any]) -> bool:
    try:
        gdk_configuration.validate_cli_version(document)
        gdk_configuration.validate_configuration(document)
    except Exception:  # gdk raises jsonschema's, packaging's or a bare Exception
        return False
    return True


@pytest.mark.parametrize("case", sorted(CONFIG_CASES))
def test_gdk_config_validation_accepts_exactly_what_gdk_accepts(tmp_path: Path, case: str) -> None:
    document = CONFIG_CASES[case]
    (tmp_path / "gdk-config.json").write_text(json.dumps(document))
    try:
        load_gdk_config(tmp_path)
        ours = True
    except GdkConfigInvalid:
        ours = False
    assert ours == _gdk_accepts(document)


def test_the_config_cases_cover_both_answers() -> None:
    answers = [_gdk_accepts(document) for document in CONFIG_CASES.values()]
    assert answers.count(True) >= 5 and answers.count(False) >= 5


@pytest.fixture()
def cloud_twin(tmp_path: Path) -> Iterator[Any]:
    endpoint_module = importlib.import_module("edgeml.twin.cloud.endpoint")
    endpoint = endpoint_module.CloudEndpoint(tmp_path / "twin", persist_moto=False).start()
    try:
        yield endpoint
    finally:
        endpoint.stop()


def _twin_env(cloud_twin: Any) -> dict[str, str]:
    from edgeml.twin.cloud.motoserver import TWIN_CREDENTIALS

    return {**TWIN_CREDENTIALS, "AWS_ENDPOINT_URL": cloud_twin.endpoint_url}


@pytest.mark.slow
def test_edgeml_publishes_the_model_to_the_cloud_twin_once(checkout: Path, cloud_twin: Any) -> None:
    from edgeml.components.errors import PublishFailed
    from edgeml.components.publish import publish_project
    from edgeml.twin.cloud.motoserver import pointed_at

    project = checkout / "components" / "com.edgeml.Model"
    version = load_gdk_config(project).version
    build_project(project)
    twin = _twin_env(cloud_twin)
    with pointed_at(twin):
        published = publish_project(project, bucket="edgeml-twin")
        assert published.version == version
        greengrass = boto3.client("greengrassv2")
        assert greengrass.describe_component(arn=published.arn)["componentVersion"] == version
        s3 = boto3.client("s3")
        before = {o["Key"]: o["ETag"] for o in s3.list_objects_v2(Bucket="edgeml-twin")["Contents"]}
        # The same version again is refused before anything is uploaded (gdk would overwrite the
        # artifacts first and devices would then fail with ARTIFACT_CHECKSUM_MISMATCH).
        with pytest.raises(PublishFailed, match=f"{MODEL} {version} already exists in GreengrassV2"):
            publish_project(project, bucket="edgeml-twin")
        after = {o["Key"]: o["ETag"] for o in s3.list_objects_v2(Bucket="edgeml-twin")["Contents"]}
        assert after == before


@pytest.mark.slow
def test_gdk_publishes_the_model_with_the_version_it_was_packaged_as(checkout: Path, cloud_twin: Any) -> None:
    from edgeml.twin.cloud.motoserver import pointed_at

    project = checkout / "components" / "com.edgeml.Model"
    version = load_gdk_config(project).version
    package_dir = checkout / "build" / "model"
    packaged = yaml.safe_load((package_dir / "recipes" / f"{MODEL}-{version}.yaml").read_text())
    assert _gdk(project, "build").returncode == 0
    twin = _twin_env(cloud_twin)
    result = _gdk(project, "publish", "--bucket", "gdk-published", env=_gdk_env(twin))
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-2000:]

    with pointed_at(twin):
        greengrass, s3 = boto3.client("greengrassv2"), boto3.client("s3")
        arn = (
            f"arn:aws:greengrass:{twin['AWS_DEFAULT_REGION']}:{ACCOUNT}:components:{MODEL}:versions:{version}"
        )
        recipe = yaml.safe_load(greengrass.get_component(arn=arn, recipeOutputFormat="YAML")["recipe"])
        assert (recipe["ComponentName"], recipe["ComponentVersion"]) == (MODEL, version)
        # The service computes the digests from the uploaded objects: the packaged zips, unchanged.
        digests = {m["Name"]: m["Artifacts"][0]["Digest"] for m in packaged["Manifests"]}
        assert {m["Name"]: m["Artifacts"][0]["Digest"] for m in recipe["Manifests"]} == digests
        for manifest in recipe["Manifests"]:
            [artifact] = manifest["Artifacts"]
            file_name = f"{manifest['Name']}.zip"
            assert artifact["Uri"] == f"s3://gdk-published/{MODEL}/{version}/{file_name}"
            body = s3.get_object(Bucket="gdk-published", Key=f"{MODEL}/{version}/{file_name}")["Body"].read()
            assert body == (package_dir / "artifacts" / MODEL / version / file_name).read_bytes()


@pytest.mark.slow
def test_gdk_builds_the_projects_written_for_your_own_model(checkout: Path, tmp_path: Path) -> None:
    from edgeml.components.modelproject import write_model_projects

    out = tmp_path / "defects-model"
    package(PackageRequest(variants_dir(tmp_path / "variants"), "Defects", "1.4.0", "models-b", out))
    written = write_model_projects(checkout / "components", out)
    for project in (written.model_project, written.app_project):
        result = _gdk(project, "build")
        assert result.returncode == 0, result.stdout + result.stderr
        by_gdk = _built(project)
        shutil.rmtree(project / "greengrass-build")
        build_project(project)
        assert _built(project) == by_gdk
    assert (written.model_project / "greengrass-build" / "artifacts" / written.model / "1.4.0").is_dir()

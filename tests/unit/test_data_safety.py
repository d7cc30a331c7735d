"""Nothing half-written, nothing overwritten, no traceback: `edgeml model ...` as a user runs it (issue 8).

Every bad input is refused with one line before any work, and a failure at any later step (registration
included) leaves --out exactly as it was, with no staging folder beside it.
"""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Callable
from pathlib import Path

import onnx
import pytest
from model_testkit import tiny_onnx, variants_dir, write_card

from edgeml import cli
from edgeml.twin.cloud.motoserver import MotoServer


def _snapshot(root: Path) -> dict[str, bytes]:
    files = sorted(path for path in root.rglob("*") if path.is_file())
    return {str(path.relative_to(root)): path.read_bytes() for path in files}


def _fails(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], *args: str | Path) -> str:
    """Runs `edgeml ARGS` in-process; it must exit 1 with one `error:` line on stderr and no traceback."""
    monkeypatch.setattr(sys, "argv", ["edgeml", *map(str, args)])
    with pytest.raises(SystemExit) as exited:
        cli.main()
    captured = capsys.readouterr()
    assert exited.value.code == 1, captured.err
    [line] = captured.err.strip().splitlines()
    assert line.startswith("error: ") and "Traceback" not in captured.err
    return line


def _package_args(variants: Path, out: Path, *extra: str) -> list[str | Path]:
    return ["model", "package", variants, "--name", "Safe", "--bucket", "safe-models", "--out", out, *extra]


def test_register_with_the_endpoint_down_leaves_nothing_in_out(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    # conftest points AWS_ENDPOINT_URL at a closed loopback port; one attempt, no retries
    monkeypatch.setenv("AWS_MAX_ATTEMPTS", "1")
    variants, out = variants_dir(tmp_path / "variants"), tmp_path / "build"
    recipe_file = tmp_path / "recipes" / "com.edgeml.model.Safe.yaml"
    args = _package_args(variants, out, "--register", "--recipe-file", str(recipe_file))
    line = _fails(monkeypatch, capsys, *args)
    assert "AWS call failed: EndpointConnectionError" in line
    assert not out.exists() and not recipe_file.exists()
    assert sorted(path.name for path in tmp_path.iterdir()) == ["variants"]  # no staging folder left


def test_register_with_no_region_is_refused_before_packaging(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    for name in ("AWS_DEFAULT_REGION", "AWS_REGION"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "no-config"))
    variants, out = variants_dir(tmp_path / "variants"), tmp_path / "build"
    (out / "recipes").mkdir(parents=True)
    (out / "recipes" / "earlier.yaml").write_text("kept: true\n")
    before = _snapshot(out)
    line = _fails(monkeypatch, capsys, *_package_args(variants, out, "--register"))
    assert "NoRegionError" in line
    assert _snapshot(out) == before


def test_digits_checks_its_bucket_before_replacing_the_variants(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], repo_root: Path
) -> None:
    variants = variants_dir(tmp_path / "digits-variants")  # an earlier compile the user keeps
    before = _snapshot(variants)
    args: list[str | Path] = ["model", "digits", "--bucket", "My_Bucket", "--variants", variants,
                              "--out", tmp_path / "model", "--source", repo_root / "models/digits/model.onnx"]
    line = _fails(monkeypatch, capsys, *args)
    assert line.startswith("error: --bucket 'My_Bucket': not a valid S3 bucket name")
    assert _snapshot(variants) == before
    assert not (tmp_path / "model").exists()


def test_digits_checks_its_recipe_file_before_replacing_the_variants(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], repo_root: Path
) -> None:
    variants = variants_dir(tmp_path / "digits-variants")
    before = _snapshot(variants)
    recipe = tmp_path / "recipe.yaml"
    recipe.write_text("not: [a recipe\n")
    args: list[str | Path] = ["model", "digits", "--bucket", "safe-models", "--variants", variants,
                              "--out", tmp_path / "model", "--recipe-file", recipe,
                              "--source", repo_root / "models/digits/model.onnx"]
    line = _fails(monkeypatch, capsys, *args)
    assert f"{recipe}: cannot read ComponentVersion" in line
    assert _snapshot(variants) == before
    assert recipe.read_text() == "not: [a recipe\n"


def test_a_file_system_refusal_is_one_line(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    source = tiny_onnx(tmp_path / "tiny.onnx")
    out = "/proc/edgeml/out"
    line = _fails(monkeypatch, capsys, "model", "compile", source, "-t", "cpu-fp32", "--out", out)
    assert line == "error: /proc/edgeml: No such file or directory"  # procfs takes no new folders


@pytest.mark.parametrize("command", ["compile", "package", "digits"])
def test_out_naming_an_existing_file_is_one_line_and_the_file_is_kept(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], command: str
) -> None:
    taken = tmp_path / "taken"
    taken.write_text("my file\n")
    source = tiny_onnx(tmp_path / "src" / "tiny.onnx")
    choices: dict[str, list[str | Path]] = {
        "compile": ["model", "compile", source, "-t", "cpu-fp32", "--out", taken],
        "package": _package_args(variants_dir(tmp_path / "variants"), taken),
        "digits": ["model", "digits", "--bucket", "safe-models", "--out", taken,
                   "--variants", tmp_path / "v"],
    }
    args = choices[command]
    line = _fails(monkeypatch, capsys, *args)
    assert f"--out {taken}: exists and is not a directory" in line
    assert taken.read_text() == "my file\n"
    assert not (tmp_path / "v").exists()


def _invalid_graph(path: Path) -> Path:
    """Parses as ONNX (onnx.load accepts it) but its Gemm reads a tensor no node produces."""
    model = onnx.load(str(tiny_onnx(path)))
    model.graph.node[1].input[0] = "nowhere"
    onnx.save(model, str(path))
    return path


def _unknown_operator(path: Path) -> Path:
    model = onnx.load(str(tiny_onnx(path)))
    model.graph.node[1].op_type = "NoSuchOp"
    onnx.save(model, str(path))
    return path


@pytest.mark.parametrize("make", [_invalid_graph, _unknown_operator])
@pytest.mark.parametrize("target", ["cpu-fp32", "cpu-opt"])
def test_a_graph_onnx_runtime_cannot_run_is_refused_for_every_target(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str],
    make: Callable[[Path], Path], target: str,
) -> None:
    source = make(tmp_path / "broken.onnx")
    out = tmp_path / "variants"
    line = _fails(monkeypatch, capsys, "model", "compile", source, "-t", target, "--out", out)
    assert f"{source}: does not load and run in ONNX Runtime (" in line
    assert not out.exists()


def test_package_refuses_a_variant_changed_since_compile(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    source = tiny_onnx(tmp_path / "src" / "tiny.onnx")
    write_card(source.parent)
    variants, out = tmp_path / "variants", tmp_path / "build"
    monkeypatch.setattr(sys, "argv", ["edgeml", "model", "compile", str(source), "-t", "cpu-fp32", "--out",
                                      str(variants)])
    cli.main()
    capsys.readouterr()
    recorded = json.loads((variants / "variants.json").read_text())["variants"][0]["files"]
    assert list(recorded) == ["cpu-fp32.onnx"]

    (variants / "cpu-fp32.onnx").write_bytes(b"junk")
    line = _fails(monkeypatch, capsys, *_package_args(variants, out))
    assert "variant cpu-fp32: cpu-fp32.onnx changed since compile (sha256 differs)" in line
    assert not out.exists()


def test_package_refuses_a_file_added_to_a_neo_variant(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    variants, out = variants_dir(tmp_path / "variants"), tmp_path / "build"
    (variants / "rasp4b" / "extra.so").write_bytes(b"\x7fELF")
    line = _fails(monkeypatch, capsys, *_package_args(variants, out))
    assert "variant rasp4b: rasp4b/extra.so was not written by compile" in line
    assert not out.exists()


@pytest.mark.parametrize(
    ("option", "value", "expected"),
    [
        ("--bucket", "Neo_Bucket", "--bucket 'Neo_Bucket': not a valid S3 bucket name"),
        ("--role-arn", "ARN", "--role-arn 'ARN': not an IAM role ARN"),
        ("--compiler-options", "{gpu-code: sm_72}", "--compiler-options '{gpu-code: sm_72}': not JSON"),
    ],
)
def test_neo_options_are_checked_before_any_aws_call(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], option: str,
    value: str, expected: str,
) -> None:
    # No region and a closed endpoint: reaching AWS would fail differently, so the check is local.
    monkeypatch.delenv("AWS_DEFAULT_REGION", raising=False)
    options = {"--bucket": "neo-models", "--role-arn": "arn:aws:iam::123456789012:role/neo",
               "--compiler-options": '{"dtype": "float32"}', option: value}
    source = tiny_onnx(tmp_path / "tiny.onnx")
    args: list[str | Path] = ["model", "compile", source, "--neo", "-t", "rasp4b", "--out", tmp_path / "out"]
    line = _fails(monkeypatch, capsys, *args, *[item for pair in options.items() for item in pair])
    assert expected in line
    assert not (tmp_path / "out").exists()


def test_a_registered_package_is_moved_in_only_after_registration(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    moto_server: MotoServer,
) -> None:
    """The success path: registration against the moto twin, then the package is in --out."""
    env = moto_server.env()
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    variants, out = variants_dir(tmp_path / "variants"), tmp_path / "build"
    monkeypatch.setattr(sys, "argv", ["edgeml", *map(str, _package_args(variants, out, "--register"))])
    cli.main()
    assert (out / "recipes" / "com.edgeml.model.Safe-1.0.0.yaml").is_file()
    assert "registered in edgeml-model-Safe" in capsys.readouterr().err
    assert sorted(os.listdir(tmp_path)) == ["build", "variants"]

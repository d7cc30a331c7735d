"""How `edgeml` ends and what it prints, run as a user runs it (a subprocess, no TTY): exit 1 with one
`error:` line, 2 for usage errors, 130 with `interrupted` on Ctrl-C; nothing cut at 80 or 100 columns."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
from pathlib import Path

from model_testkit import tiny_onnx, variants_dir
from rich.console import Console

from edgeml.console import folding_table

MAIN = "from edgeml.cli import main; main()"


def _env(**extra: str) -> dict[str, str]:
    env = {key: value for key, value in os.environ.items() if key not in ("COLUMNS", "TERMINAL_WIDTH")}
    return {**env, **extra}


def _edgeml(*args: str | Path, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", MAIN, *map(str, args)],
        capture_output=True, text=True, timeout=120, env=_env(**env), check=False,
    )


def test_ctrl_c_during_registration_exits_130_and_leaves_no_staging(tmp_path: Path) -> None:
    """SIGINT while the Model Registry call is in flight (to a loopback server that never answers)."""
    variants, out = variants_dir(tmp_path / "variants"), tmp_path / "build"
    with socket.create_server(("127.0.0.1", 0)) as server:
        server.settimeout(60)
        port = server.getsockname()[1]
        args = ["model", "package", str(variants), "--name", "Stop", "--bucket", "stop-models",
                "--out", str(out), "--register"]
        process = subprocess.Popen(
            [sys.executable, "-c", MAIN, *args],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
            env=_env(AWS_ENDPOINT_URL=f"http://127.0.0.1:{port}", AWS_MAX_ATTEMPTS="1"),
        )
        try:
            connection, _ = server.accept()
        except TimeoutError:
            process.kill()
            raise AssertionError(process.communicate()) from None
        with connection:
            staged = [path.name for path in tmp_path.iterdir() if path.name.startswith(".build.staging-")]
            assert staged, "the package should be staged while it is being registered"
            process.send_signal(signal.SIGINT)
            stdout, stderr = process.communicate(timeout=60)
    assert process.returncode == 130, stdout + stderr
    assert stderr.strip().splitlines() == ["interrupted"]
    assert sorted(path.name for path in tmp_path.iterdir()) == ["variants"]  # no --out, no staging


def test_usage_errors_exit_2_and_errors_exit_1() -> None:
    usage = _edgeml("model", "package")
    assert usage.returncode == 2 and "Missing argument" in usage.stderr
    error = _edgeml("model", "compile", "/nonexistent/model.onnx", "--out", "/nonexistent/out")
    assert error.returncode == 1
    assert error.stderr.strip().splitlines() == ["error: /nonexistent/model.onnx: no such file"]


def test_an_error_naming_markup_like_text_prints_it_as_is(tmp_path: Path) -> None:
    source = tmp_path / "[red]model[bold].onnx"
    source.write_text("not a model")
    result = _edgeml("model", "compile", source, "-t", "cpu-fp32", "--out", tmp_path / "out")
    assert result.returncode == 1, result.stderr
    assert result.stderr.strip().splitlines() == [f"error: {source}: not an ONNX model (DecodeError)"]


def test_long_messages_stay_on_one_line_without_a_tty(tmp_path: Path) -> None:
    source = tiny_onnx(tmp_path / "tiny.onnx")
    out = tmp_path.joinpath(*["a-long-folder-name-for-the-variants"] * 6)
    result = _edgeml("model", "compile", source, "-t", "cpu-fp32", "--out", out)
    assert result.returncode == 0, result.stderr
    assert f"variants in {out}" in result.stderr.splitlines()


def test_tables_and_help_are_not_cut_without_a_tty() -> None:
    targets = _edgeml("model", "targets")
    assert targets.returncode == 0, targets.stderr
    rows = targets.stdout.splitlines()
    for description in ("Neo TargetPlatform LINUX/ARM64/NVIDIA (needs --compiler-options gpu-code, trt-ver, "
                        "cuda-ver)", "static INT8 QDQ, calibrated on held-out samples"):
        assert any(description in row for row in rows), targets.stdout
    help_text = _edgeml("model", "compile", "--help").stdout
    assert "…" not in help_text
    assert "--framework-version" in help_text and "EDGEML_NEO_ROLE_ARN" in help_text


def test_a_table_cell_wider_than_the_console_folds_and_keeps_every_character() -> None:
    url = "s3://edgeml-artifacts/com.edgeml.model.Digits/1.0.0/linux-aarch64-nvidia.zip?versionId=0123456789"
    table = folding_table("manifest", "uri")
    table.add_row("linux-aarch64-nvidia", url)
    console = Console(width=40, record=True, file=open(os.devnull, "w"))  # noqa: SIM115
    console.print(table)
    text = console.export_text()
    assert "…" not in text
    cells = "".join(line.split("│")[2].strip() for line in text.splitlines() if line.count("│") == 3)
    assert cells == url

"""`python -m edgeml.twin.device.streammanager`: a user can connect a component to what it prints, and it
refuses to run without authentication (a token variable that is set but empty)."""

from __future__ import annotations

import contextlib
import os
import queue
import shlex
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from stream_manager import MessageStreamDefinition, StrategyOnFull, StreamManagerClient
from stream_manager.exceptions import ConnectFailedException

from edgeml.twin.cloud.motoserver import pointed_at
from edgeml.twin.device.streammanager import StreamManagerServer

TOKEN_VARIABLE = "AWS_CONTAINER_AUTHORIZATION_TOKEN"
PORT_VARIABLE = "STREAM_MANAGER_SERVER_PORT"
COMMAND = [sys.executable, "-m", "edgeml.twin.device.streammanager"]


def child_env(**overrides: str | None) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in (TOKEN_VARIABLE, PORT_VARIABLE)}
    for key, value in overrides.items():
        if value is not None:
            env[key] = value
    return env


class Lines:
    """stdout of a child, line by line, with a deadline (a line that never comes fails the test)."""

    def __init__(self, process: subprocess.Popen[str]) -> None:
        self._lines: queue.Queue[str | None] = queue.Queue()
        assert process.stdout is not None
        stdout = process.stdout

        def pump() -> None:
            for line in stdout:
                self._lines.put(line.rstrip("\n"))
            self._lines.put(None)

        threading.Thread(target=pump, daemon=True).start()

    def next(self, timeout_s: float = 20) -> str | None:
        try:
            return self._lines.get(timeout=timeout_s)
        except queue.Empty:
            pytest.fail("the server printed no further line")


@contextlib.contextmanager
def server_process(store: Path, *args: str, **env: str | None) -> Iterator[Lines]:
    process = subprocess.Popen(
        [*COMMAND, "--store", str(store), "--exit-with-stdin", *args],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
        env=child_env(**env),
    )
    try:
        yield Lines(process)
    finally:
        assert process.stdin is not None
        process.stdin.close()
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        assert process.stdout is not None
        process.stdout.close()


def connection_env(lines: Lines) -> dict[str, str]:
    """The LISTENING line, then one `export NAME=value` line per variable a component needs."""
    listening = lines.next()
    assert listening is not None and listening.startswith("LISTENING ")
    env: dict[str, str] = {}
    for _ in range(2):
        line = lines.next()
        assert line is not None
        words = shlex.split(line)
        assert words[0] == "export" and len(words) == 2, line
        name, _, value = words[1].partition("=")
        env[name] = value
    assert env[PORT_VARIABLE] == listening.removeprefix("LISTENING ")
    return env


def can_use(env: dict[str, str]) -> list[str]:
    with pointed_at(env):
        client = StreamManagerClient(request_timeout=10)
        try:
            client.create_message_stream(
                MessageStreamDefinition(name="hello", strategy_on_full=StrategyOnFull.RejectNewData)
            )
            client.append_message("hello", b"world")
            return list(client.list_streams())
        finally:
            client.close()


def test_what_it_prints_is_enough_to_connect(tmp_path: Path) -> None:
    with server_process(tmp_path / "store") as lines:
        env = connection_env(lines)
        assert len(env[TOKEN_VARIABLE]) >= 32
        assert can_use(env) == ["hello"]
        with pointed_at({**env, TOKEN_VARIABLE: "guessed"}), pytest.raises(ConnectFailedException):
            StreamManagerClient(request_timeout=5)


def test_token_from_the_command_line_is_the_one_clients_present(tmp_path: Path) -> None:
    with server_process(tmp_path / "store", "--token", "my token, with spaces") as lines:
        env = connection_env(lines)
        assert env[TOKEN_VARIABLE] == "my token, with spaces"
        assert can_use(env) == ["hello"]


def test_token_from_the_environment_is_printed_too(tmp_path: Path) -> None:
    with server_process(tmp_path / "store", **{TOKEN_VARIABLE: "from-env"}) as lines:
        env = connection_env(lines)
        assert env[TOKEN_VARIABLE] == "from-env"
        assert can_use(env) == ["hello"]


@pytest.mark.parametrize(
    ("args", "env"),
    [((), {TOKEN_VARIABLE: ""}), (("--token", ""), {})],
    ids=["empty-variable", "empty-option"],
)
def test_an_empty_token_is_refused_before_anything_listens(
    tmp_path: Path, args: tuple[str, ...], env: dict[str, str]
) -> None:
    result = subprocess.run(
        [*COMMAND, "--store", str(tmp_path / "store"), *args],
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        env=child_env(**env),
        timeout=30,
    )
    assert result.returncode == 2
    assert "LISTENING" not in result.stdout
    (line,) = result.stderr.strip().splitlines()
    assert line.startswith("error: ") and "empty" in line and TOKEN_VARIABLE in line
    assert not (tmp_path / "store").exists()  # nothing was created


def test_the_server_class_refuses_an_empty_token(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="empty"):
        StreamManagerServer(tmp_path / "store", auth_token="")


def test_a_store_already_served_is_one_error_line_not_a_traceback(tmp_path: Path) -> None:
    with StreamManagerServer(tmp_path / "store"):
        result = subprocess.run(
            [*COMMAND, "--store", str(tmp_path / "store")],
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            env=child_env(),
            timeout=30,
        )
    assert result.returncode == 1
    (line,) = result.stderr.strip().splitlines()
    assert line.startswith("error: ") and str(tmp_path / "store") in line


def test_a_port_variable_that_is_no_number_is_a_usage_error(tmp_path: Path) -> None:
    result = subprocess.run(
        [*COMMAND, "--store", str(tmp_path / "store")],
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        env=child_env(**{PORT_VARIABLE: "eighty"}),
        timeout=30,
    )
    assert result.returncode == 2
    (line,) = result.stderr.strip().splitlines()
    assert line.startswith("error: ") and PORT_VARIABLE in line and "eighty" in line

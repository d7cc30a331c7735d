"""`python -m edgeml.twin.device.streammanager --store DIR [--port N] [--token T]`.

Prints `LISTENING <port>` on stdout once clients can connect, then what a component needs in its
environment to connect, one `export NAME=value` line per variable (STREAM_MANAGER_SERVER_PORT,
AWS_CONTAINER_AUTHORIZATION_TOKEN). Stops on SIGTERM/SIGINT, and, with `--exit-with-stdin`, when its
standard input closes (so a parent that dies takes the server with it).
"""

from __future__ import annotations

import argparse
import logging
import os
import shlex
import signal
import sys
import threading
from pathlib import Path
from typing import NoReturn

from edgeml.twin.device.streammanager.errors import StreamManagerTwinError
from edgeml.twin.device.streammanager.exporters.retry import RetryPolicy
from edgeml.twin.device.streammanager.server import StreamManagerServer

PORT_VARIABLE = "STREAM_MANAGER_SERVER_PORT"
TOKEN_VARIABLE = "AWS_CONTAINER_AUTHORIZATION_TOKEN"
USAGE_ERROR = 2


class UsageError(Exception):
    """An argument (or the environment variable that stands in for it) that cannot be used."""


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:
        raise UsageError(message)


def parse_args(argv: list[str]) -> argparse.Namespace:
    parser = _Parser(prog="python -m edgeml.twin.device.streammanager", description=__doc__)
    parser.add_argument(
        "--store", required=True, type=Path, help="store root (streams, segments, checkpoints)"
    )
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", help=f"TCP port (default: ${PORT_VARIABLE}, else a free one)")
    parser.add_argument(
        "--token", help=f"auth token clients must present (default: ${TOKEN_VARIABLE}, else random)"
    )
    parser.add_argument(
        "--retry-max-seconds", type=float, default=5.0, help="cap of the export retry backoff"
    )
    parser.add_argument("--exit-with-stdin", action="store_true", help="stop when standard input closes")
    parser.add_argument("--log-level", default="WARNING")
    return parser.parse_args(argv)


def chosen_port(args: argparse.Namespace) -> int:
    text, source = (
        (args.port, "--port") if args.port is not None else (os.environ.get(PORT_VARIABLE), PORT_VARIABLE)
    )
    if text is None:
        return 0
    try:
        port = int(text)
    except ValueError:
        raise UsageError(f"{source} must be a port number, got {text!r}") from None
    if not 0 <= port <= 65535:
        raise UsageError(f"{source} must be between 0 and 65535, got {port}")
    return port


def chosen_token(args: argparse.Namespace) -> str | None:
    """The token from --token or the environment; None makes a random one. An empty one is refused:
    with it, clients that present no token at all would be let in."""
    token: str | None
    if args.token is not None:
        token, source = str(args.token), "--token"
    else:
        token, source = os.environ.get(TOKEN_VARIABLE), f"${TOKEN_VARIABLE}"
    if token == "":
        raise UsageError(
            f"{source} is empty: an empty {TOKEN_VARIABLE} would let clients in without authentication; "
            f"give a token, or unset {TOKEN_VARIABLE} for a random one"
        )
    return token


def connection_lines(env: dict[str, str]) -> list[str]:
    """One `export NAME=value` line per variable, quoted for a POSIX shell."""
    return [f"export {name}={shlex.quote(value)}" for name, value in env.items()]


def main(argv: list[str] | None = None) -> int:
    try:
        args = parse_args(sys.argv[1:] if argv is None else argv)
        port, token = chosen_port(args), chosen_token(args)
    except UsageError as error:
        print(f"error: {error}", file=sys.stderr)
        return USAGE_ERROR
    logging.basicConfig(level=args.log_level.upper(), format="%(asctime)s %(name)s %(levelname)s %(message)s")
    server = StreamManagerServer(
        args.store, args.host, port, token, retry=RetryPolicy(max_delay_s=args.retry_max_seconds)
    )
    stop = threading.Event()
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, lambda *_: stop.set())
    try:
        server.start()
    except StreamManagerTwinError as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    print(f"LISTENING {server.port}", flush=True)
    print("\n".join(connection_lines(server.client_env())), flush=True)
    if args.exit_with_stdin:
        threading.Thread(target=_wait_for_stdin_eof, args=(stop,), daemon=True).start()
    try:
        while not stop.wait(0.5):
            pass
    finally:
        server.stop()
    return 0


def _wait_for_stdin_eof(stop: threading.Event) -> None:
    while sys.stdin.buffer.read(4096):
        pass
    stop.set()


if __name__ == "__main__":
    sys.exit(main())

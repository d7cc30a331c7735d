"""`python -m edgeml.twin.device.streammanager --store DIR [--port N] [--token T]`.

Prints `LISTENING <port>` on stdout once clients can connect. Stops on SIGTERM/SIGINT, and, with
`--exit-with-stdin`, when its standard input closes (so a parent that dies takes the server with it).
"""

from __future__ import annotations

import argparse
import logging
import os
import signal
import sys
import threading
from pathlib import Path

from edgeml.twin.device.streammanager.exporters.retry import RetryPolicy
from edgeml.twin.device.streammanager.server import StreamManagerServer


def parse_args(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m edgeml.twin.device.streammanager", description=__doc__)
    parser.add_argument(
        "--store", required=True, type=Path, help="store root (streams, segments, checkpoints)"
    )
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=int(os.environ.get("STREAM_MANAGER_SERVER_PORT", "0")))
    parser.add_argument(
        "--token",
        default=os.environ.get("AWS_CONTAINER_AUTHORIZATION_TOKEN"),
        help="auth token clients must present (default: $AWS_CONTAINER_AUTHORIZATION_TOKEN, else random)",
    )
    parser.add_argument(
        "--retry-max-seconds", type=float, default=5.0, help="cap of the export retry backoff"
    )
    parser.add_argument("--exit-with-stdin", action="store_true", help="stop when standard input closes")
    parser.add_argument("--log-level", default="WARNING")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(sys.argv[1:] if argv is None else argv)
    logging.basicConfig(level=args.log_level.upper(), format="%(asctime)s %(name)s %(levelname)s %(message)s")
    server = StreamManagerServer(
        args.store, args.host, args.port, args.token, retry=RetryPolicy(max_delay_s=args.retry_max_seconds)
    )
    stop = threading.Event()
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, lambda *_: stop.set())
    server.start()
    print(f"LISTENING {server.port}", flush=True)
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

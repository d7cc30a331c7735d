"""`python -m edgeml.twin.device.nucleus.smprocess`: aws.greengrass.StreamManager's process on a device twin.

The Stream Manager twin, run as its own process with the component environment the nucleus gives it
(so its Kinesis/S3 exporters' plain boto3 reaches the cloud twin with the TES credentials, as a real
Stream Manager uses the device's role). A client's token is checked with the nucleus: the twin asks the
device's credential endpoint, which answers 200 only for a component's SVCUID (standing in for IPC
ValidateAuthorizationToken). Stops on SIGTERM.
"""

from __future__ import annotations

import argparse
import signal
import sys
import threading
import urllib.error
import urllib.request
from collections.abc import Callable
from pathlib import Path

from edgeml.twin.device.streammanager.server import StreamManagerServer


def _no_authentication(token: str) -> bool:  # STREAM_MANAGER_AUTHENTICATE_CLIENT=false
    return True


def nucleus_validator(uri: str) -> Callable[[str], bool]:
    """Whether `token` is a component's own, as the nucleus answers it at the credential endpoint."""

    def valid(token: str) -> bool:
        if not token:
            return False
        request = urllib.request.Request(uri, headers={"Authorization": token})
        try:
            with urllib.request.urlopen(request, timeout=5) as answer:
                return bool(answer.status == 200)
        except (urllib.error.URLError, OSError):
            return False

    return valid


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m edgeml.twin.device.nucleus.smprocess")
    parser.add_argument("--store", required=True, type=Path)
    parser.add_argument("--port", required=True, type=int)
    parser.add_argument("--validate-uri", default="", help="'' turns client authentication off")
    args = parser.parse_args(argv)
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    validator = nucleus_validator(args.validate_uri) if args.validate_uri else _no_authentication
    server = StreamManagerServer(args.store, port=args.port, token_validator=validator)
    server.start()
    print(f"LISTENING {server.port}", flush=True)
    try:
        stop.wait()
    finally:
        server.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())

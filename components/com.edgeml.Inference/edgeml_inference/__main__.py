"""`python -m edgeml_inference`: the Greengrass Run step of com.edgeml.Inference.

Configuration comes from IPC GetConfiguration when the nucleus' socket is in the environment
(AWS_GG_NUCLEUS_DOMAIN_SOCKET_FILEPATH_FOR_COMPONENT); `--config FILE` (JSON, Greengrass keys) is read first
and overridden by IPC, so the app also runs off a device. Stream Manager is used when
STREAM_MANAGER_SERVER_PORT is set.
Exit codes: 0 stopped by a signal, 2 invalid configuration, 3 model not loadable, 4 no Stream Manager.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import signal
import sys
import time
from pathlib import Path
from typing import Any

from edgeml_inference.config import AppConfig
from edgeml_inference.exceptions import ConfigInvalid, ModelLoadError

_log = logging.getLogger("edgeml_inference")
STREAM_MANAGER_CONNECT_S = 30.0


def _connect_stream_manager(deadline_s: float) -> Any:
    from stream_manager import StreamManagerClient

    deadline = time.monotonic() + deadline_s
    while True:
        try:
            return StreamManagerClient()
        except Exception as error:  # ConnectionError, asyncio.TimeoutError, StreamManagerException
            if time.monotonic() > deadline:
                raise
            _log.info("Stream Manager not reachable yet (%s); retrying", error)
            time.sleep(1.0)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m edgeml_inference", description=__doc__)
    parser.add_argument("--config", type=Path, help="JSON configuration (Greengrass keys), read before IPC")
    parser.add_argument("--model-dir", help="overrides ModelDirectory")
    parser.add_argument("--log-level", default=os.environ.get("EDGEML_LOG_LEVEL", "INFO"))
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=args.log_level.upper(),
        stream=sys.stderr,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )

    values: dict[str, Any] = {}
    if args.config is not None:
        values.update(json.loads(args.config.read_text(encoding="utf-8")))
    ipc = None
    if os.environ.get("AWS_GG_NUCLEUS_DOMAIN_SOCKET_FILEPATH_FOR_COMPONENT"):
        from edgeml_inference.ipc import SdkIpcClient

        ipc = SdkIpcClient()
        values.update(ipc.get_configuration())
    if args.model_dir:
        values["ModelDirectory"] = args.model_dir
    try:
        config = AppConfig.from_mapping(values)
    except ConfigInvalid as error:
        _log.error("invalid configuration: %s", error)
        return 2

    streams = None
    if os.environ.get("STREAM_MANAGER_SERVER_PORT"):
        try:
            streams = _connect_stream_manager(STREAM_MANAGER_CONNECT_S)
        except Exception as error:
            _log.error("cannot reach Stream Manager: %s", error)
            return 4

    from edgeml_inference.app import InferenceApp

    device = os.environ.get("AWS_IOT_THING_NAME", "device")
    try:
        app = InferenceApp(config, ipc, streams, device).start()
    except ModelLoadError as error:
        _log.error("%s", error)
        if ipc is not None:
            ipc.update_state("ERRORED")
        return 3
    except ConfigInvalid as error:
        _log.error("invalid configuration: %s", error)
        return 2

    def on_signal(signum: int, _frame: Any) -> None:
        _log.info("signal %d: stopping", signum)
        app.request_stop()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    app.wait()
    app.stop()
    if streams is not None:
        streams.close()
    if ipc is not None:
        ipc.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())

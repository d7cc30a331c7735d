"""`python -m edgeml_inference`: the Greengrass Run step of com.edgeml.Inference.

Configuration comes from IPC GetConfiguration when the nucleus' socket is in the environment
(AWS_GG_NUCLEUS_DOMAIN_SOCKET_FILEPATH_FOR_COMPONENT); `--config FILE` (JSON, Greengrass keys) is read first
and overridden by IPC, so the app also runs off a device. Stream Manager is used whenever a stream is
configured and the app runs on a device (IPC) or STREAM_MANAGER_SERVER_PORT is set; the port comes from that
variable, else aws.greengrass.StreamManager's configuration over IPC, else 8088 (streamport.py).
Exit codes: 0 stopped by a signal, 2 invalid configuration, 3 model not loadable, 4 no Stream Manager
(3 and 4 after UpdateState ERRORED: the nucleus restarts the component).
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import signal
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from edgeml_inference.config import AppConfig
from edgeml_inference.exceptions import ConfigInvalid, ModelLoadError
from edgeml_inference.ipc import SdkIpcClient
from edgeml_inference.streamport import PORT_KEY, StreamManagerUnreachable, connect, discover_port

_log = logging.getLogger("edgeml_inference")


def open_streams(config: AppConfig, ipc: SdkIpcClient | None, environ: Mapping[str, str]) -> Any:
    """A Stream Manager client, or None when no stream is configured or the app runs off a device
    (no IPC and no STREAM_MANAGER_SERVER_PORT). Raises StreamManagerUnreachable after the bounded wait."""
    if not config.uses_stream_manager():
        _log.info("no Stream Manager stream configured")
        return None
    if ipc is None and not environ.get(PORT_KEY):
        _log.info("off a Greengrass device (no IPC, no %s): Stream Manager not used", PORT_KEY)
        return None
    where = discover_port(environ, ipc.get_component_configuration if ipc is not None else None)
    return connect(where, config.stream_manager_wait_s)


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
        ipc = SdkIpcClient()
        values.update(ipc.get_configuration())
    if args.model_dir:
        values["ModelDirectory"] = args.model_dir
    try:
        config = AppConfig.from_mapping(values)
    except ConfigInvalid as error:
        _log.error("invalid configuration: %s", error)
        return 2

    try:
        streams = open_streams(config, ipc, os.environ)
    except StreamManagerUnreachable as error:
        _log.error("%s", error)
        if ipc is not None:
            ipc.update_state("ERRORED")
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
    _log.info("stopped")
    return 0


if __name__ == "__main__":
    sys.exit(main())

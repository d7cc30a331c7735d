"""Issue 11 item 10: Stream Manager durability. The twin fsyncs an append before acknowledging it only
when the stream has flush_on_write, as real Stream Manager does; the app sets it on its result and capture
streams (not on health); a kill -9 of the server mid-appends loses no result the app had acknowledged."""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import threading
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from edgeml_inference.app import InferenceApp
from edgeml_inference.config import AppConfig
from edgeml_inference.sinks.streammanager import StreamSink
from inference_rig import holdout, png, wait_for, write_model_dir
from stream_manager import (
    MessageStreamDefinition,
    Persistence,
    ReadMessagesOptions,
    StrategyOnFull,
    StreamManagerClient,
)

from edgeml.twin.device.streammanager.process import StreamManagerProcess
from edgeml.twin.device.streammanager.server import StreamManagerServer
from edgeml.twin.device.streammanager.store import commit


@pytest.fixture()
def short_root() -> Iterator[Path]:
    root = Path(f"/tmp/edgeml-du-{uuid.uuid4().hex[:8]}")
    root.mkdir()
    yield root
    shutil.rmtree(root, ignore_errors=True)


@pytest.mark.parametrize("flush_on_write", [False, True])
def test_the_twin_fsyncs_appends_only_with_flush_on_write(
    flush_on_write: bool, short_root: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    fsyncs: list[int] = []
    real_fsync = os.fsync

    def counting(descriptor: int) -> None:
        fsyncs.append(descriptor)
        real_fsync(descriptor)

    with StreamManagerServer(short_root / "sm") as server:
        monkeypatch.setenv("AWS_CONTAINER_AUTHORIZATION_TOKEN", server.auth_token)
        with StreamManagerClient(port=server.port) as client:
            client.create_message_stream(
                MessageStreamDefinition(
                    name="S",
                    persistence=Persistence.File,
                    strategy_on_full=StrategyOnFull.OverwriteOldestData,
                    flush_on_write=flush_on_write,
                )
            )
            monkeypatch.setattr(commit.os, "fsync", counting)
            for index in range(20):
                client.append_message("S", f"m{index}".encode())
            messages = client.read_messages("S", ReadMessagesOptions(min_message_count=20))
            while_serving = len(fsyncs)  # a clean shutdown syncs its open segments: not counted
    assert [bytes(m.payload) for m in messages] == [f"m{i}".encode() for i in range(20)]
    assert (while_serving > 0) is flush_on_write


def test_the_app_sets_flush_on_write_on_results_and_captures_not_on_health(
    short_root: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    write_model_dir(short_root / "models" / "1.0.0")
    with StreamManagerServer(short_root / "sm") as server:
        monkeypatch.setenv("AWS_CONTAINER_AUTHORIZATION_TOKEN", server.auth_token)
        with StreamManagerClient(port=server.port) as client:
            config = AppConfig.from_mapping(
                {"ModelDirectory": str(short_root / "models"), "ModelPollS": 0, "HealthIntervalS": 3600}
            )
            app = InferenceApp(config, None, client).start()
            try:
                flushes = {
                    name: client.describe_message_stream(name).definition.flush_on_write
                    for name in (config.result_stream, config.capture_stream, config.health_stream)
                }
            finally:
                app.stop()
    assert flushes == {config.result_stream: True, config.capture_stream: True, config.health_stream: False}


@pytest.mark.slow
def test_kill_9_of_stream_manager_loses_no_acknowledged_result(
    short_root: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    write_model_dir(short_root / "models" / "1.0.0")
    server = StreamManagerProcess(short_root / "sm", auth_token=uuid.uuid4().hex).start()
    monkeypatch.setenv("AWS_CONTAINER_AUTHORIZATION_TOKEN", server.auth_token)
    settings = {"ModelDirectory": str(short_root / "models"), "ModelPollS": 0, "HealthIntervalS": 3600}
    config = AppConfig.from_mapping({**settings, "MaxWaitMs": 0})
    client = StreamManagerClient(port=server.port)
    app = InferenceApp(config, None, client).start()
    [sink] = [sink for sink in app.result_sinks if isinstance(sink.sink, StreamSink)]
    acknowledged_ids: list[str] = []
    append = sink.sink.send

    def recording_send(payload: bytes) -> None:
        append(payload)  # the real client's AppendMessage; returns once Stream Manager acknowledged it
        acknowledged_ids.append(json.loads(payload)["request_id"])

    sink.sink.send = recording_send  # type: ignore[method-assign]
    x, _ = holdout()
    submitted: list[str] = []
    stop = threading.Event()

    def submit() -> None:
        while not stop.is_set():
            submitted.append(app.submit(png(x[len(submitted) % len(x)])).result(5).request_id)

    feeder = threading.Thread(target=submit)
    feeder.start()
    try:
        wait_for(lambda: len(acknowledged_ids) >= 100, what="100 results acknowledged")
        server.kill()  # mid-appends: the feeder keeps submitting
        acknowledged = list(acknowledged_ids)  # no acknowledgement can come after the kill
        stop.set()
        feeder.join(10)
        server.start()  # same store, same port
        with StreamManagerClient(port=server.port) as reader:
            options = ReadMessagesOptions(min_message_count=len(acknowledged), max_message_count=100_000)
            stored = reader.read_messages(config.result_stream, options)
        stored_ids = [json.loads(bytes(m.payload))["request_id"] for m in stored]
        assert set(acknowledged) <= set(stored_ids)  # every acknowledged result survived the kill
        assert stored_ids == [rid for rid in submitted if rid in set(stored_ids)]  # in submission order
    finally:
        stop.set()
        feeder.join(10)
        app.stop()
        with contextlib.suppress(OSError):  # its connection died with the killed server
            client.close()
        server.stop()

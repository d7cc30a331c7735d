"""Input sources: image directory (done/failed, partial files), loopback HTTP (413, 422), IPC topic."""

from __future__ import annotations

import http.client
import json
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from edgeml_inference.config import AppConfig
from edgeml_inference.model import load_model
from edgeml_inference.pipeline import Batcher
from edgeml_inference.sources.directory import DirectorySource
from edgeml_inference.sources.http import HttpSource
from edgeml_inference.sources.topic import TopicSource
from inference_kit import FakeIpc, bare_predictions, holdout, pipeline_of, png, tensor_json, write_model_dir


@pytest.fixture(scope="module")
def batcher(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Batcher]:
    model = load_model(write_model_dir(tmp_path_factory.mktemp("digits")))
    config = AppConfig(max_payload_bytes=4096)
    pipeline = pipeline_of(model, config)
    started = Batcher(pipeline, lambda: (8, 0.002)).start()
    yield started
    started.stop()


def test_directory_files_are_processed_once_and_moved(batcher: Batcher, tmp_path: Path) -> None:
    x, _ = holdout()
    source = DirectorySource(
        tmp_path, lambda p, s: batcher.submit(p, s), lambda: 0.05, lambda: 4096, settle_s=60
    )
    for folder in (source.done, source.failed):
        folder.mkdir(parents=True)
    (tmp_path / "a.png").write_bytes(png(x[0]))
    (tmp_path / "b.png").write_bytes(b"\x89PNG broken")
    (tmp_path / "empty.png").write_bytes(b"")
    (tmp_path / "c.png.tmp").write_bytes(png(x[1]))  # still being written
    (tmp_path / "huge.bin").write_bytes(bytes(5000))  # over MaxPayloadBytes
    assert source.scan_once() == 0  # first sight: sizes not yet known to be stable
    assert source.scan_once() == 4
    assert source.scan_once() == 0  # processed once
    assert sorted(path.name for path in source.done.glob("*.png")) == ["a.png"]
    assert sorted(path.name for path in source.failed.iterdir() if path.suffix != ".json") == [
        "b.png",
        "empty.png",
        "huge.bin",
    ]
    reasons = {path.name: json.loads(path.read_text())["reason"] for path in source.failed.glob("*.json")}
    assert reasons == {
        "b.png.json": "corrupt_image",
        "empty.png.json": "empty_input",
        "huge.bin.json": "payload_too_large",
    }
    done = json.loads((source.done / "a.png.json").read_text())
    assert done["class_index"] == int(bare_predictions(x[:1])[0])
    assert (tmp_path / "c.png.tmp").exists()


def test_directory_source_thread_picks_up_new_files(batcher: Batcher, tmp_path: Path) -> None:
    x, _ = holdout()
    source = DirectorySource(
        tmp_path, lambda p, s: batcher.submit(p, s), lambda: 0.02, lambda: 4096, settle_s=0
    )
    source.start()
    try:
        (tmp_path / "one.png").write_bytes(png(x[3]))
        deadline = time.monotonic() + 5
        while not (tmp_path / "done" / "one.png").exists() and time.monotonic() < deadline:
            time.sleep(0.02)
    finally:
        source.stop()
    assert (tmp_path / "done" / "one.png").exists()


def post(
    port: int, body: bytes, path: str = "/v1/infer", length: int | None = None
) -> tuple[int, dict[str, object]]:
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    try:
        connection.putrequest("POST", path)
        connection.putheader("Content-Length", str(len(body) if length is None else length))
        connection.endheaders()
        if length is None:
            connection.send(body)
        response = connection.getresponse()
        return response.status, json.loads(response.read())
    finally:
        connection.close()


def test_http_endpoint_answers_images_tensors_and_refuses_big_bodies(batcher: Batcher) -> None:
    x, _ = holdout()
    source = HttpSource(0, lambda p, s: batcher.submit(p, s), lambda: 4096)
    source.start()
    try:
        status, body = post(source.port, png(x[5]))
        assert status == 200 and body["class_index"] == int(bare_predictions(x[5:6])[0])
        status, body = post(source.port, tensor_json(x[6]))
        assert status == 200 and body["status"] == "ok"
        status, body = post(source.port, b"garbage")
        assert status == 422 and body["reason"] == "corrupt_image"
        status, body = post(source.port, b"", length=200 * 1024 * 1024)  # announced, never sent
        assert status == 413 and body["reason"] == "payload_too_large"
        status, _ = post(source.port, b"{}", path="/v2/else")
        assert status == 404
        status, body = post(source.port, png(x[7]))
        assert status == 200  # still serving
    finally:
        source.stop()


def test_http_binds_loopback_only(batcher: Batcher) -> None:
    source = HttpSource(0, lambda p, s: batcher.submit(p, s), lambda: 4096)
    source.start()
    try:
        assert source._server is not None and source._server.server_address[0] == "127.0.0.1"
    finally:
        source.stop()


def test_topic_messages_become_requests(batcher: Batcher) -> None:
    x, _ = holdout()
    ipc = FakeIpc()
    answers = []
    source = TopicSource(
        ipc, "edgeml/inference/input", lambda p, s: answers.append(batcher.submit(p, s)) or answers[-1]
    )
    source.start()
    ipc.topic_handlers["edgeml/inference/input"](png(x[0]))
    ipc.topic_handlers["edgeml/inference/input"](tensor_json(x[1]))
    results = [future.result(5) for future in answers]
    assert [result.source for result in results] == ["topic:edgeml/inference/input"] * 2
    assert all(result.ok for result in results)
    source.stop()
    assert "edgeml/inference/input" not in ipc.topic_handlers

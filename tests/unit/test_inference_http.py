"""The HTTP source on kept-alive connections: no Nagle/delayed-ACK stall, a bounded pool, 429 past it."""

from __future__ import annotations

import http.client
import json
import socket
import time
from collections.abc import Iterator

import pytest
from edgeml_inference.config import AppConfig
from edgeml_inference.health import HealthMonitor
from edgeml_inference.model import ModelHolder, load_model
from edgeml_inference.pipeline import Batcher, Pipeline
from edgeml_inference.sources.http import HttpSource
from inference_kit import bare_predictions, holdout, tensor_json, write_model_dir

# Not a benchmark: a generous bound. With headers and body written separately and Nagle on, each kept-alive
# request waits for the client's delayed ACK (~40 ms on Linux); the digits model answers in well under 1 ms.
STALL_BOUND_S = 0.020


@pytest.fixture(scope="module")
def batcher(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Batcher]:
    model = load_model(write_model_dir(tmp_path_factory.mktemp("digits")))
    config = AppConfig(max_payload_bytes=4096)
    pipeline = Pipeline(
        ModelHolder(model), lambda: config, HealthMonitor(model.metadata.baseline, model.metadata.labels)
    )
    started = Batcher(pipeline, lambda: (1, 0.0)).start()
    yield started
    started.stop()


def test_kept_alive_requests_are_not_held_back_by_nagle(batcher: Batcher) -> None:
    x, _ = holdout()
    source = HttpSource(0, lambda p, s: batcher.submit(p, s), lambda: 4096)
    source.start()
    connection = http.client.HTTPConnection("127.0.0.1", source.port, timeout=10)
    try:
        connection.request("POST", "/v1/infer", body=tensor_json(x[0]))  # connect + first answer
        connection.getresponse().read()
        slowest = 0.0
        for index in range(1, 11):
            start = time.perf_counter()
            connection.request("POST", "/v1/infer", body=tensor_json(x[index]))
            response = connection.getresponse()
            body = json.loads(response.read())
            slowest = max(slowest, time.perf_counter() - start)
            assert response.status == 200
            assert body["class_index"] == int(bare_predictions(x[index : index + 1])[0])
            assert response.getheader("Connection") != "close"  # the same connection served them all
        assert slowest < STALL_BOUND_S, f"a kept-alive request took {slowest * 1000:.1f} ms"
    finally:
        connection.close()
        source.stop()


def _open(port: int) -> http.client.HTTPConnection:
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    connection.request("GET", "/v1/health")
    response = connection.getresponse()
    response.read()
    assert response.status == 200
    return connection


def test_connections_past_the_pool_get_429_and_the_pool_serves_again(batcher: Batcher) -> None:
    x, _ = holdout()
    source = HttpSource(0, lambda p, s: batcher.submit(p, s), lambda: 4096, max_connections=2)
    source.start()
    held = [_open(source.port), _open(source.port)]  # both workers hold a kept-alive connection
    try:
        refused = http.client.HTTPConnection("127.0.0.1", source.port, timeout=10)
        refused.request("POST", "/v1/infer", body=tensor_json(x[0]))
        response = refused.getresponse()
        body = json.loads(response.read())
        refused.close()
        assert response.status == 429 and body["reason"] == "overloaded"
        assert response.getheader("Retry-After") == "1" and response.getheader("Connection") == "close"
        assert source.rejected == 1
        held[0].request("POST", "/v1/infer", body=tensor_json(x[1]))  # a held connection still works
        assert held[0].getresponse().status == 200
        held.pop(0).close()
        deadline = time.monotonic() + 5
        while True:  # the freed worker takes the next connection
            again = http.client.HTTPConnection("127.0.0.1", source.port, timeout=10)
            again.request("POST", "/v1/infer", body=tensor_json(x[2]))
            status = again.getresponse().status
            again.close()
            if status == 200 or time.monotonic() > deadline:
                break
            time.sleep(0.02)
        assert status == 200
    finally:
        for connection in held:
            connection.close()
        source.stop()


def test_stop_ends_kept_alive_connections(batcher: Batcher) -> None:
    source = HttpSource(0, lambda p, s: batcher.submit(p, s), lambda: 4096, max_connections=2)
    source.start()
    port = source.port
    connection = _open(port)
    source.stop()
    with pytest.raises((OSError, http.client.HTTPException)):
        connection.request("GET", "/v1/health")
        connection.getresponse()
    with pytest.raises(OSError), socket.create_connection(("127.0.0.1", port), timeout=2):
        pass
    connection.close()

"""The HTTP source: kept-alive connections without a Nagle/delayed-ACK stall, at most max_connections with
429 past them, idle and stop closing; on raw sockets, pipelined requests, HTTP/1.0, Connection: close,
Expect: 100-continue, malformed heads and header limits (one line, then close), answers written by the
batcher thread, a slow reader, 503 for a stopping app or a result that never comes."""

from __future__ import annotations

import http.client
import json
import socket
import time
from collections.abc import Iterator
from typing import Any

import numpy as np
import pytest
from edgeml_inference.config import AppConfig
from edgeml_inference.model import load_model
from edgeml_inference.pipeline import Batcher
from edgeml_inference.sources.http import HttpSource
from inference_kit import bare_predictions, holdout, pipeline_of, tensor_json, write_model_dir

# Not a benchmark: a generous bound. With headers and body written separately and Nagle on, each kept-alive
# request waits for the client's delayed ACK (~40 ms on Linux); the digits model answers in well under 1 ms.
STALL_BOUND_S = 0.020


@pytest.fixture(scope="module")
def batcher(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Batcher]:
    model = load_model(write_model_dir(tmp_path_factory.mktemp("digits")))
    config = AppConfig(max_payload_bytes=4096)
    pipeline = pipeline_of(model, config)
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


# The request reader (edgeml_inference.sources.http_wire) and the epoll server on raw sockets: what a
# hand-written local client may send, and what it gets back.


class RawClient:
    """A client socket that reads responses off one buffer (pipelined answers are not lost)."""

    def __init__(self, port: int) -> None:
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=10)
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.buffer = b""

    def __enter__(self) -> RawClient:
        return self

    def __exit__(self, *_: object) -> None:
        self.sock.close()

    def send(self, data: bytes) -> None:
        self.sock.sendall(data)

    def _fill(self) -> bool:
        data = self.sock.recv(65536)
        self.buffer += data
        return bool(data)

    def response(self) -> tuple[int, dict[str, str], bytes]:
        while b"\r\n\r\n" not in self.buffer:
            assert self._fill(), f"the server closed before a whole response: {self.buffer[:80]!r}"
        head, _, self.buffer = self.buffer.partition(b"\r\n\r\n")
        status_line, *lines = head.decode("latin-1").split("\r\n")
        headers = {name.lower(): value.strip() for name, _, value in (line.partition(":") for line in lines)}
        length = int(headers.get("content-length", "0"))
        while len(self.buffer) < length:
            assert self._fill(), "the server closed inside a response body"
        body, self.buffer = self.buffer[:length], self.buffer[length:]
        return int(status_line.split(" ")[1]), headers, body

    def closed_by_server(self) -> bool:
        """True once the server has closed its side (EOF with nothing more sent)."""
        return not self.buffer and not self._fill()


def infer_request(body: bytes, extra: str = "") -> bytes:
    head = f"POST /v1/infer HTTP/1.1\r\nHost: x\r\nContent-Length: {len(body)}\r\n{extra}\r\n"
    return head.encode("latin-1") + body


HEALTH = b"GET /v1/health HTTP/1.1\r\nHost: x\r\n\r\n"


@pytest.fixture
def endpoint(batcher: Batcher) -> Iterator[HttpSource]:
    source = HttpSource(0, lambda p, s: batcher.submit(p, s), lambda: 4096, lambda: {"ok": True})
    source.start()
    yield source
    source.stop()


def test_pipelined_requests_are_answered_in_order_on_one_connection(endpoint: HttpSource) -> None:
    x, _ = holdout()
    with RawClient(endpoint.port) as client:
        client.send(infer_request(tensor_json(x[3])) + HEALTH + b"\r\n" + infer_request(tensor_json(x[4])))
        answers = [client.response() for _ in range(3)]
        assert [status for status, _, _ in answers] == [200, 200, 200]
        assert json.loads(answers[0][2])["class_index"] == int(bare_predictions(x[3:4])[0])
        assert json.loads(answers[1][2]) == {"ok": True}
        assert json.loads(answers[2][2])["class_index"] == int(bare_predictions(x[4:5])[0])
        assert all(headers.get("connection") != "close" for _, headers, _ in answers)
        client.send(HEALTH)  # still open
        assert client.response()[0] == 200


def assert_rounds_answered(clients: list[RawClient], x: np.ndarray, rounds: int) -> None:
    """Each round every client sends one sample, then each reads its own answer: the model's class."""
    for round_ in range(rounds):
        for index, client in enumerate(clients):
            client.send(infer_request(tensor_json(x[round_ * len(clients) + index])))
        for index, client in enumerate(clients):
            status, _, body = client.response()
            assert status == 200
            sample = round_ * len(clients) + index
            assert json.loads(body)["class_index"] == int(bare_predictions(x[sample : sample + 1])[0])


def test_results_resolved_on_the_batcher_thread_are_answered(
    tmp_path_factory: pytest.TempPathFactory,
) -> None:
    """Microbatch mode: the result arrives on the batcher thread, which writes the answer itself."""
    model = load_model(write_model_dir(tmp_path_factory.mktemp("digits-micro")))
    config = AppConfig(max_payload_bytes=4096)
    pipeline = pipeline_of(model, config)
    micro = Batcher(pipeline, lambda: (8, 0.005)).start()
    source = HttpSource(0, lambda p, s: micro.submit(p, s), lambda: 4096)
    source.start()
    x, _ = holdout()
    try:
        clients = [RawClient(source.port) for _ in range(3)]
        assert_rounds_answered(clients, x, 3)
        assert micro.inline == 0  # every answer came through the callback path
        for client in clients:
            client.sock.close()
    finally:
        source.stop()
        micro.stop()


def test_results_of_a_stopping_app_are_503_with_retry_after(tmp_path_factory: pytest.TempPathFactory) -> None:
    model = load_model(write_model_dir(tmp_path_factory.mktemp("digits-stopped")))
    config = AppConfig(max_payload_bytes=4096)
    pipeline = pipeline_of(model, config)
    stopped = Batcher(pipeline, lambda: (1, 0.0)).start()
    stopped.stop()
    source = HttpSource(0, lambda p, s: stopped.submit(p, s), lambda: 4096)
    source.start()
    x, _ = holdout()
    try:
        with RawClient(source.port) as client:
            client.send(infer_request(tensor_json(x[0])))
            status, headers, body = client.response()
            assert status == 503 and headers["retry-after"] == "1"
            assert json.loads(body)["reason"] == "shutting_down"
            client.send(HEALTH)  # the connection stays usable for the retry
            assert client.response()[0] == 200
    finally:
        source.stop()


def test_a_result_that_never_comes_is_answered_503_timeout(
    tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    import edgeml_inference.sources.http as http_source

    monkeypatch.setattr(http_source, "RESULT_TIMEOUT_S", 0.3)
    model = load_model(write_model_dir(tmp_path_factory.mktemp("digits-stuck")))
    config = AppConfig(max_payload_bytes=4096)
    pipeline = pipeline_of(model, config)
    never_started = Batcher(pipeline, lambda: (8, 0.0))  # queues, never answers
    source = HttpSource(0, lambda p, s: never_started.submit(p, s), lambda: 4096)
    source.start()
    x, _ = holdout()
    try:
        with RawClient(source.port) as client:
            client.send(infer_request(tensor_json(x[0])))
            status, headers, body = client.response()
            assert status == 503 and json.loads(body)["reason"] == "timeout"
            assert headers["connection"] == "close" and client.closed_by_server()
    finally:
        source.stop()


def test_http_1_0_closes_unless_kept_alive(endpoint: HttpSource) -> None:
    with RawClient(endpoint.port) as client:
        client.send(b"GET /v1/health HTTP/1.0\r\n\r\n")
        status, headers, _ = client.response()
        assert status == 200 and headers["connection"] == "close"
        assert client.closed_by_server()
    with RawClient(endpoint.port) as client:
        for _ in range(2):
            client.send(b"GET /v1/health HTTP/1.0\r\nConnection: keep-alive\r\n\r\n")
            status, headers, _ = client.response()
            assert status == 200 and headers["connection"] == "keep-alive"


def test_connection_close_is_honoured(endpoint: HttpSource) -> None:
    x, _ = holdout()
    with RawClient(endpoint.port) as client:
        client.send(infer_request(tensor_json(x[0]), "Connection: close\r\n"))
        status, headers, _ = client.response()
        assert status == 200 and headers["connection"] == "close"
        assert client.closed_by_server()


@pytest.mark.parametrize(
    ("request_bytes", "status", "reason"),
    [
        (b"GARBAGE\r\n\r\n", 400, "bad_request"),
        (b"GET  /v1/health HTTP/1.1\r\n\r\n", 400, "bad_request"),
        (b"GET v1/health HTTP/1.1\r\n\r\n", 400, "bad_request"),
        (b"GET /v1/health HTTP/x\r\n\r\n", 400, "bad_request"),
        (b"GET /v1/health HTTP/2.0\r\n\r\n", 505, "http_version_not_supported"),
        (b"POST /v1/infer HTTP/1.1\r\nNo colon here\r\n\r\n", 400, "bad_request"),
        (b"POST /v1/infer HTTP/1.1\r\nContent-Length : 3\r\n\r\nabc", 400, "bad_request"),
        (b"POST /v1/infer HTTP/1.1\r\nX-A: 1\r\n  folded\r\n\r\n", 400, "bad_request"),
        (b"POST /v1/infer HTTP/1.1\r\nContent-Length: 3x\r\n\r\n", 400, "bad_request"),
        (b"POST /v1/infer HTTP/1.1\r\nContent-Length: -1\r\n\r\n", 400, "bad_request"),
        (
            b"POST /v1/infer HTTP/1.1\r\nContent-Length: 3\r\nContent-Length: 4\r\n\r\nabcd",
            400,
            "bad_request",
        ),
        (
            b"POST /v1/infer HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n",
            411,
            "length_required",
        ),
        (b"POST /v1/infer HTTP/1.1\r\n\r\n", 411, "length_required"),
        (
            b"POST /v1/infer HTTP/1.1\r\nExpect: something\r\nContent-Length: 1\r\n\r\nx",
            417,
            "expectation_failed",
        ),
        (b"GET /v1/infer HTTP/1.1\r\n\r\n", 405, "method_not_allowed"),
        (b"DELETE /v1/health HTTP/1.1\r\n\r\n", 405, "method_not_allowed"),
        (b"GET /v1/else HTTP/1.1\r\n\r\n", 404, "not_found"),
    ],
)
def test_bad_requests_get_one_line_and_the_connection_closes(
    endpoint: HttpSource, request_bytes: bytes, status: int, reason: str
) -> None:
    with RawClient(endpoint.port) as client:
        client.send(request_bytes)
        got, headers, body = client.response()
        answer = json.loads(body)
        assert (got, answer["reason"]) == (status, reason)
        assert answer["detail"] and "\n" not in answer["detail"]
        assert headers["connection"] == "close" and client.closed_by_server()
    _open(endpoint.port).close()  # the endpoint still serves (asserts a 200)


def test_request_heads_over_the_limits_get_431(endpoint: HttpSource) -> None:
    from edgeml_inference.sources.http_wire import MAX_HEAD_BYTES, MAX_HEADERS

    many = "".join(f"X-{index}: 1\r\n" for index in range(MAX_HEADERS + 1))
    for request_bytes in (
        b"GET /v1/health HTTP/1.1\r\nX-Long: " + b"a" * (MAX_HEAD_BYTES + 10),  # never ends: refused anyway
        f"GET /v1/health HTTP/1.1\r\n{many}\r\n".encode(),
    ):
        with RawClient(endpoint.port) as client:
            client.send(request_bytes)
            status, _, body = client.response()
            assert status == 431 and json.loads(body)["reason"] == "headers_too_large"
            assert client.closed_by_server()


def test_expect_100_continue_is_answered_before_the_body_and_not_for_a_refused_one(
    endpoint: HttpSource,
) -> None:
    x, _ = holdout()
    body = tensor_json(x[1])
    with RawClient(endpoint.port) as client:
        client.send(
            f"POST /v1/infer HTTP/1.1\r\nContent-Length: {len(body)}\r\nExpect: 100-continue\r\n\r\n".encode()
        )
        while b"\r\n\r\n" not in client.buffer:
            assert client._fill()
        assert client.buffer.startswith(b"HTTP/1.1 100 Continue\r\n\r\n")
        client.buffer = client.buffer[len(b"HTTP/1.1 100 Continue\r\n\r\n") :]
        client.send(body)
        status, _, answer = client.response()
        assert status == 200 and json.loads(answer)["class_index"] == int(bare_predictions(x[1:2])[0])
    with RawClient(endpoint.port) as client:
        client.send(b"POST /v1/infer HTTP/1.1\r\nContent-Length: 999999\r\nExpect: 100-continue\r\n\r\n")
        status, _, answer = client.response()  # the final answer comes first: no 100 for a body never read
        assert status == 413 and json.loads(answer)["reason"] == "payload_too_large"


def test_a_body_sent_in_pieces_is_put_together(endpoint: HttpSource) -> None:
    x, _ = holdout()
    data = infer_request(tensor_json(x[2]))
    with RawClient(endpoint.port) as client:
        for start in range(0, len(data), 37):
            client.send(data[start : start + 37])
            time.sleep(0.002)  # separate segments (not a timing assertion)
        status, _, body = client.response()
        assert status == 200 and json.loads(body)["class_index"] == int(bare_predictions(x[2:3])[0])


def test_an_idle_connection_is_closed_and_frees_its_place(batcher: Batcher) -> None:
    source = HttpSource(
        0, lambda p, s: batcher.submit(p, s), lambda: 4096, max_connections=1, idle_timeout_s=0.2
    )
    source.start()
    try:
        with RawClient(source.port) as idle:
            idle.send(HEALTH)
            assert idle.response()[0] == 200
            assert idle.closed_by_server()  # after idle_timeout_s of silence (the recv waits up to 10 s)
        with RawClient(source.port) as next_client:
            next_client.send(HEALTH)
            assert next_client.response()[0] == 200  # the place was free: not 429
        assert source.rejected == 0
    finally:
        source.stop()


def test_a_client_that_reads_slowly_gets_every_answer_in_order(batcher: Batcher) -> None:
    """Answers bigger than the socket buffers take: the rest waits for the socket (EPOLLOUT), in order."""
    import itertools
    import threading

    counter = itertools.count()
    source = HttpSource(
        0, lambda p, s: batcher.submit(p, s), lambda: 4096, lambda: {"n": next(counter), "pad": "x" * 4000}
    )
    source.start()
    count = 3000  # ~12 MB of answers, more than loopback socket buffers hold
    try:
        with RawClient(source.port) as client:
            sender = threading.Thread(target=client.send, args=(HEALTH * count,))
            sender.start()
            time.sleep(0.3)  # not reading yet: the server's socket fills (not a timing assertion)
            numbers = []
            for _ in range(count):
                status, _, body = client.response()
                assert status == 200
                numbers.append(json.loads(body)["n"])
            sender.join(10)
            assert numbers == list(range(count))
    finally:
        source.stop()


def test_after_a_slow_run_on_the_loop_thread_waiting_requests_are_queued_for_the_batcher(
    batcher: Batcher,
) -> None:
    """A model slower than INLINE_MAX_S does not run on the loop thread while other connections wait."""
    from edgeml_inference.sources.http import INLINE_MAX_S

    paths: list[str] = []

    def slow_submit(payload: bytes, source: str) -> Any:  # stands in for a heavy model run inline
        paths.append("submit")
        time.sleep(INLINE_MAX_S * 2)
        return batcher.submit(payload, source)

    def group(items: list[tuple[bytes, str]]) -> Any:
        paths.append("group")
        return batcher.submit_group(items)

    source = HttpSource(0, slow_submit, lambda: 4096, submit_group=group)
    source.start()
    x, _ = holdout()
    try:
        clients = [RawClient(source.port) for _ in range(3)]
        assert_rounds_answered(clients, x, 2)
        assert "group" in paths and len(paths) == 6
        for client in clients:
            client.sock.close()
    finally:
        source.stop()


def test_stop_answers_a_request_in_flight_before_closing(tmp_path_factory: pytest.TempPathFactory) -> None:
    model = load_model(write_model_dir(tmp_path_factory.mktemp("digits-slow-batch")))
    config = AppConfig(max_payload_bytes=4096)
    pipeline = pipeline_of(model, config)
    waiting = Batcher(pipeline, lambda: (8, 0.3)).start()  # a lone request waits 0.3 s for its batch
    source = HttpSource(0, lambda p, s: waiting.submit(p, s), lambda: 4096)
    source.start()
    x, _ = holdout()
    try:
        with RawClient(source.port) as client, RawClient(source.port) as idle:
            idle.send(HEALTH)
            assert idle.response()[0] == 200
            client.send(infer_request(tensor_json(x[0])))
            server, deadline = source._server, time.monotonic() + 10
            assert server is not None
            while not server._waiting and time.monotonic() < deadline:  # the request reaches the batcher
                time.sleep(0.005)
            source.stop()  # returns once the answer is out
            status, _, body = client.response()
            assert status == 200 and json.loads(body)["class_index"] == int(bare_predictions(x[0:1])[0])
            assert client.closed_by_server() and idle.closed_by_server()
    finally:
        source.stop()
        waiting.stop()

"""The loopback endpoint's HTTP/1.1 request reader and response writer (sources.http_wire)."""

from __future__ import annotations

from http import HTTPStatus

import pytest
from edgeml_inference.sources.http_wire import (
    MAX_HEAD_BYTES,
    MAX_HEADERS,
    BadRequest,
    RequestHead,
    drop_empty_lines,
    head_end,
    parse_head,
    response,
)
from hypothesis import given
from hypothesis import strategies as st


def parsed(raw: bytes) -> RequestHead:
    end = head_end(raw)
    assert end is not None
    return parse_head(raw[: end[0]])


def test_a_plain_request_head() -> None:
    head = parsed(
        b"POST /v1/infer/?debug=1 HTTP/1.1\r\nHost: x\r\nContent-Length: 12\r\nX-A: 1\r\nx-a: 2\r\n\r\nbody"
    )
    assert (head.method, head.path, head.version) == ("POST", "/v1/infer", "HTTP/1.1")
    assert head.content_length == 12 and head.has_body and not head.chunked and not head.expect_continue
    assert head.headers["x-a"] == "1, 2" and head.headers["host"] == "x"
    assert head.keep_alive


def test_bare_lf_lines_and_absolute_form_targets_are_accepted() -> None:
    head = parsed(b"GET http://127.0.0.1:8080/v1/health HTTP/1.1\nHost: y\n\n")
    assert head.path == "/v1/health" and head.headers["host"] == "y"
    assert parsed(b"GET http://127.0.0.1:8080 HTTP/1.1\r\n\r\n").path == "/"


def test_head_end_finds_the_first_blank_line() -> None:
    assert head_end(b"GET / HTTP/1.1\r\n\r\nPOST") == (14, 18)
    assert head_end(b"GET / HTTP/1.1\n\nx\r\n\r\n") == (14, 16)
    assert head_end(b"GET / HTTP/1.1\r\nHost: x\r\n") is None


def test_empty_lines_before_a_request_line_are_dropped() -> None:
    buffer = bytearray(b"\r\n\r\nGET / HTTP/1.1\r\n\r\n")
    drop_empty_lines(buffer)
    assert buffer == bytearray(b"GET / HTTP/1.1\r\n\r\n")


@pytest.mark.parametrize(
    ("version", "connection", "keep_alive"),
    [
        ("HTTP/1.1", None, True),
        ("HTTP/1.1", "close", False),
        ("HTTP/1.1", "Keep-Alive, Close", False),
        ("HTTP/1.0", None, False),
        ("HTTP/1.0", "keep-alive", True),
        ("HTTP/1.0", "Upgrade, Keep-Alive", True),
    ],
)
def test_connection_persistence(version: str, connection: str | None, keep_alive: bool) -> None:
    line = f"Connection: {connection}\r\n" if connection is not None else ""
    head = parsed(f"GET /v1/health {version}\r\n{line}\r\n".encode())
    assert head.keep_alive is keep_alive and head.version == version


def test_expect_and_transfer_encoding_are_noted() -> None:
    head = parsed(b"POST /v1/infer HTTP/1.1\r\nExpect: 100-Continue\r\nContent-Length: 5\r\n\r\n")
    assert head.expect_continue
    head = parsed(b"POST /v1/infer HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n")
    assert head.chunked and head.content_length is None and head.has_body


@pytest.mark.parametrize(
    ("raw", "status"),
    [
        (b"GET /v1/health\r\n\r\n", HTTPStatus.BAD_REQUEST),
        (b"GET /v1/health HTTP/1.1 extra\r\n\r\n", HTTPStatus.BAD_REQUEST),
        (b"G(T /v1/health HTTP/1.1\r\n\r\n", HTTPStatus.BAD_REQUEST),
        (b"GET * HTTP/1.1\r\n\r\n", HTTPStatus.BAD_REQUEST),
        (b"GET / HTTP/1.1.1\r\n\r\n", HTTPStatus.BAD_REQUEST),
        (b"GET / HTTP/3.0\r\n\r\n", HTTPStatus.HTTP_VERSION_NOT_SUPPORTED),
        (b"GET / HTTP/1.1\r\nBad\rName: 1\r\n\r\n", HTTPStatus.BAD_REQUEST),
        (b"GET / HTTP/1.1\r\nNul: a\x00b\r\n\r\n", HTTPStatus.BAD_REQUEST),
        (b"GET / HTTP/1.1\r\n: empty name\r\n\r\n", HTTPStatus.BAD_REQUEST),
        (b"GET / HTTP/1.1\r\nA: 1\r\n\tfolded\r\n\r\n", HTTPStatus.BAD_REQUEST),
        (b"POST / HTTP/1.1\r\nContent-Length: 1e3\r\n\r\n", HTTPStatus.BAD_REQUEST),
        (
            b"POST / HTTP/1.1\r\nContent-Length: \xb2\r\n\r\n",
            HTTPStatus.BAD_REQUEST,
        ),  # "²": str.isdigit() says yes
        (b"POST / HTTP/1.1\r\nContent-Length: 9999999999999999\r\n\r\n", HTTPStatus.BAD_REQUEST),
        (b"POST / HTTP/1.1\r\nContent-Length: 1\r\ncontent-length: 2\r\n\r\n", HTTPStatus.BAD_REQUEST),
        (b"POST / HTTP/1.1\r\nExpect: 200-ok\r\n\r\n", HTTPStatus.EXPECTATION_FAILED),
    ],
)
def test_malformed_heads_are_refused_with_a_status_and_one_line(raw: bytes, status: HTTPStatus) -> None:
    with pytest.raises(BadRequest) as refused:
        parsed(raw)
    assert refused.value.status == status
    assert refused.value.detail and "\n" not in refused.value.detail


def test_a_repeated_equal_content_length_is_one() -> None:
    assert parsed(b"POST / HTTP/1.1\r\nContent-Length: 4\r\nContent-Length: 4\r\n\r\n").content_length == 4


def test_heads_over_the_limits_are_431() -> None:
    too_many = "".join(f"X-{index}: 1\r\n" for index in range(MAX_HEADERS + 1))
    long_line = "X-Long: " + "a" * MAX_HEAD_BYTES
    for raw in (f"GET / HTTP/1.1\r\n{too_many}\r\n", f"GET / HTTP/1.1\r\n{long_line}\r\n\r\n"):
        with pytest.raises(BadRequest) as refused:
            parsed(raw.encode())
        assert refused.value.status == HTTPStatus.REQUEST_HEADER_FIELDS_TOO_LARGE
    at_limit = "".join(f"X-{index}: 1\r\n" for index in range(MAX_HEADERS))
    assert len(parsed(f"GET / HTTP/1.1\r\n{at_limit}\r\n".encode()).headers) == MAX_HEADERS


@given(st.binary(max_size=300))
def test_any_bytes_parse_or_are_refused_cleanly(raw: bytes) -> None:
    try:
        head = parse_head(raw)
    except BadRequest as refused:
        assert 400 <= refused.status.value < 600 and "\n" not in refused.detail
    else:
        assert head.path.startswith("/") and head.version in ("HTTP/1.0", "HTTP/1.1")


def test_a_response_is_one_buffer_with_its_length_and_connection_header() -> None:
    data = response(HTTPStatus.OK, b'{"a":1}', extra=(("Retry-After", "1"),))
    head, _, body = data.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    assert lines[0] == "HTTP/1.1 200 OK" and body == b'{"a":1}'
    assert "Content-Length: 7" in lines and "Retry-After: 1" in lines
    assert not any(line.startswith("Connection:") for line in lines)
    assert b"\r\nConnection: close\r\n" in response(HTTPStatus.NOT_FOUND, b"{}", close=True)
    assert b"\r\nConnection: keep-alive\r\n" in response(HTTPStatus.OK, b"{}", announce_keep_alive=True)

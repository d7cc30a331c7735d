"""HTTP/1.1 on the wire for the loopback endpoint: a strict request-head parser and one-buffer responses.

Replaces `BaseHTTPRequestHandler`, whose header parsing (the stdlib email package) was ~30 % of the HTTP
path's own Python per request. The parser takes what the endpoint needs and refuses what it cannot frame:

- the request line `METHOD SP target SP HTTP/1.x` (HTTP/2 and later: 505; anything else malformed: 400);
  an origin-form path or an absolute-form URL (RFC 9112 3.2), the query dropped;
- header lines `name: value` with a token name; obs-fold (a line starting with a space or tab), a space
  before the colon, a bare CR or a NUL are 400 (RFC 9112 5.1, 5.2); at most MAX_HEADERS lines and
  MAX_HEAD_BYTES in all, else 431;
- Content-Length as digits only, repeated only with the same value (RFC 9112 6.3), else 400;
  Transfer-Encoding is not accepted (the caller answers 411: send Content-Length);
- Connection: `close` ends the connection after the answer; HTTP/1.0 keeps it only with `keep-alive`;
- Expect: `100-continue` is noted (the caller sends `100 Continue` before it reads the body, and only when it
  means to read it); any other expectation is 417;
- lines may end in CRLF or a bare LF (RFC 9112 2.2), and empty lines before a request line are skipped.
"""

from __future__ import annotations

import re
import time
from dataclasses import dataclass
from email.utils import formatdate
from http import HTTPStatus

MAX_HEAD_BYTES = 16 * 1024  # request line and headers together
MAX_HEADERS = 64
MAX_LENGTH_DIGITS = 15  # Content-Length digits (~1 PB): a longer one is refused before int() sees it

_TOKEN = re.compile(r"[!#$%&'*+\-.^_`|~0-9A-Za-z]+")
_VERSION = re.compile(r"HTTP/(\d)\.(\d)")
_FORBIDDEN_IN_HEAD = ("\r", "\x00")  # after the line ends are taken off


class BadRequest(Exception):
    """A request the endpoint cannot take: its status and a one-line detail; the connection is closed."""

    def __init__(self, status: HTTPStatus, detail: str) -> None:
        super().__init__(detail)
        self.status = status
        self.detail = detail


@dataclass(frozen=True)
class RequestHead:
    method: str
    path: str  # the target's path, query dropped, trailing slashes dropped ("/" stays "/")
    version: str  # "HTTP/1.1" or "HTTP/1.0"
    headers: dict[str, str]  # lower-case names; repeated headers joined with ", "
    keep_alive: bool  # the client lets the connection stay open after the answer
    content_length: int | None
    chunked: bool  # a Transfer-Encoding header was sent
    expect_continue: bool

    @property
    def has_body(self) -> bool:
        return self.chunked or bool(self.content_length)


def head_end(buffer: bytes | bytearray) -> tuple[int, int] | None:
    """(length of the head, bytes it takes with its blank line) once `buffer` holds a whole head."""
    crlf = buffer.find(b"\r\n\r\n")
    lf = buffer.find(b"\n\n")
    if crlf >= 0 and (lf < 0 or crlf < lf):
        return crlf, crlf + 4
    if lf >= 0:
        return lf, lf + 2
    return None


def drop_empty_lines(buffer: bytearray) -> None:
    """Takes the CR/LF bytes in front of a request line off `buffer` (RFC 9112 2.2: ignore them)."""
    if buffer and buffer[0] in (13, 10):
        del buffer[: len(buffer) - len(buffer.lstrip(b"\r\n"))]


def parse_head(head: bytes) -> RequestHead:
    """The request line and headers of `head` (without its blank line); BadRequest when malformed."""
    if len(head) > MAX_HEAD_BYTES:
        raise BadRequest(
            HTTPStatus.REQUEST_HEADER_FIELDS_TOO_LARGE, f"request head over {MAX_HEAD_BYTES} bytes"
        )
    lines = head.decode("latin-1").split("\n")
    if len(lines) - 1 > MAX_HEADERS:
        raise BadRequest(HTTPStatus.REQUEST_HEADER_FIELDS_TOO_LARGE, f"more than {MAX_HEADERS} header lines")
    method, path, version = _request_line(_line(lines[0]))
    headers: dict[str, str] = {}
    content_length: int | None = None
    for raw in lines[1:]:
        line = _line(raw)
        if line[:1] in (" ", "\t"):
            raise BadRequest(HTTPStatus.BAD_REQUEST, "folded header line (obs-fold) not accepted")
        name, colon, value = line.partition(":")
        if not colon or not _TOKEN.fullmatch(name):
            raise BadRequest(HTTPStatus.BAD_REQUEST, f"malformed header line {line[:40]!r}")
        name, value = name.lower(), value.strip(" \t")
        if name == "content-length":
            length = _content_length(value)
            if content_length is not None and length != content_length:
                raise BadRequest(HTTPStatus.BAD_REQUEST, "conflicting Content-Length headers")
            content_length = length
            headers[name] = value
        elif name in headers:
            headers[name] = f"{headers[name]}, {value}"
        else:
            headers[name] = value
    return RequestHead(
        method,
        path,
        version,
        headers,
        _keep_alive(version, headers.get("connection", "")),
        content_length,
        "transfer-encoding" in headers,
        _expects_continue(headers.get("expect")),
    )


def _line(raw: str) -> str:
    line = raw[:-1] if raw.endswith("\r") else raw
    if any(character in line for character in _FORBIDDEN_IN_HEAD):
        raise BadRequest(HTTPStatus.BAD_REQUEST, "bare CR or NUL in the request head")
    return line


def _request_line(line: str) -> tuple[str, str, str]:
    parts = line.split(" ")
    if len(parts) != 3 or not _TOKEN.fullmatch(parts[0]):
        raise BadRequest(HTTPStatus.BAD_REQUEST, f"malformed request line {line[:60]!r}")
    method, target, version = parts
    match = _VERSION.fullmatch(version)
    if match is None:
        raise BadRequest(HTTPStatus.BAD_REQUEST, f"malformed HTTP version {version[:20]!r}")
    if match.group(1) != "1":
        raise BadRequest(HTTPStatus.HTTP_VERSION_NOT_SUPPORTED, f"{version} not supported; use HTTP/1.1")
    if target.startswith("/"):
        path = target
    elif target.startswith(("http://", "https://")):  # absolute-form: the path after the authority
        path = "/" + target.split("/", 3)[3] if target.count("/") >= 3 else "/"
    else:
        raise BadRequest(HTTPStatus.BAD_REQUEST, f"request target {target[:40]!r} is not a path")
    path = path.partition("?")[0].rstrip("/") or "/"
    return method, path, "HTTP/1.1" if match.group(2) != "0" else "HTTP/1.0"


def _content_length(value: str) -> int:
    if not value.isdigit() or not value.isascii() or len(value) > MAX_LENGTH_DIGITS:
        raise BadRequest(HTTPStatus.BAD_REQUEST, f"Content-Length {value[:20]!r} is not a byte count")
    return int(value)


def _keep_alive(version: str, connection: str) -> bool:
    tokens = {token.strip().lower() for token in connection.split(",")} if connection else set()
    if "close" in tokens:
        return False
    return version == "HTTP/1.1" or "keep-alive" in tokens


def _expects_continue(expect: str | None) -> bool:
    if expect is None:
        return False
    if expect.lower() != "100-continue":
        raise BadRequest(HTTPStatus.EXPECTATION_FAILED, f"Expect {expect[:40]!r} not supported")
    return True


CONTINUE = b"HTTP/1.1 100 Continue\r\n\r\n"
_HEAD = (
    b"HTTP/1.1 %d %s\r\nServer: edgeml-inference\r\nDate: %s\r\n"
    b"Content-Type: application/json\r\nContent-Length: %d\r\n%s\r\n%s"
)
_date: tuple[int, bytes] = (0, b"")


def _http_date() -> bytes:
    """The Date header value, formatted once a second."""
    global _date
    now = int(time.time())
    if _date[0] != now:
        _date = (now, formatdate(now, usegmt=True).encode("ascii"))
    return _date[1]


def response(
    status: HTTPStatus,
    body: bytes,
    *,
    close: bool = False,
    announce_keep_alive: bool = False,
    extra: tuple[tuple[str, str], ...] = (),
) -> bytes:
    """Status line, headers and a JSON body as one buffer (one write: see the http module docstring)."""
    lines = b"".join(
        b"%s: %s\r\n" % (name.encode("latin-1"), value.encode("latin-1")) for name, value in extra
    )
    if close:
        lines += b"Connection: close\r\n"
    elif announce_keep_alive:  # an HTTP/1.0 client keeps the connection only when told
        lines += b"Connection: keep-alive\r\n"
    return _HEAD % (status.value, status.phrase.encode("latin-1"), _http_date(), len(body), lines, body)

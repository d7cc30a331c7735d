"""The Token Exchange Service's local credential endpoint (DG token-exchange-service-component):
components' SDKs read AWS_CONTAINER_CREDENTIALS_FULL_URI and send AWS_CONTAINER_AUTHORIZATION_TOKEN
(their SVCUID) in the Authorization header; an unknown token gets 403. The credentials handed out are
the cloud twin's throwaway ones (what the role alias would give on AWS).
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from edgeml.twin.cloud.motoserver import TWIN_CREDENTIALS

CREDENTIALS_PATH = "/2016-11-01/credentialprovider/"


class CredentialServer:
    def __init__(self, token_valid: Callable[[str], bool]) -> None:
        self._token_valid = token_valid
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    @property
    def uri(self) -> str:
        assert self._server is not None
        return f"http://127.0.0.1:{self._server.server_address[1]}{CREDENTIALS_PATH}"

    def start(self) -> CredentialServer:
        valid = self._token_valid

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                if self.path.split("?")[0] != CREDENTIALS_PATH:
                    self._answer(404, {"message": "not found"})
                elif not valid(self.headers.get("Authorization", "")):
                    self._answer(403, {"message": "unauthorized"})
                else:
                    expires = datetime.now(UTC) + timedelta(hours=1)
                    self._answer(
                        200,
                        {
                            "AccessKeyId": TWIN_CREDENTIALS["AWS_ACCESS_KEY_ID"],
                            "SecretAccessKey": TWIN_CREDENTIALS["AWS_SECRET_ACCESS_KEY"],
                            "Token": TWIN_CREDENTIALS["AWS_SESSION_TOKEN"],
                            "Expiration": expires.strftime("%Y-%m-%dT%H:%M:%SZ"),
                        },
                    )

            def _answer(self, status: int, body: dict[str, str]) -> None:
                data = json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, format: str, *args: object) -> None:
                return None

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.2}, name="tes-twin", daemon=True
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
        if self._thread is not None:
            self._thread.join(5)
        self._server = None

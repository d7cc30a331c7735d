"""The cloud twin's one loopback endpoint: moto in-process for the AWS services it has, the control plane
(through the model-driven protocol layer) for GreengrassV2, the IoT Jobs data plane, and the IoT job
operations on deployment jobs. Requests are told apart by the service in their SigV4 credential scope.

State: moto's backends are pickled into the state directory (see `persistence`), the control plane keeps
its own JSON there; both are saved shortly after a change (a saver thread) and when the endpoint stops.
"""

from __future__ import annotations

import importlib
import io
import json
import logging
import socket
import threading
import time
from collections.abc import Callable, Iterable
from pathlib import Path
from types import TracebackType
from typing import Any, Protocol
from urllib.parse import parse_qs, quote, unquote

from moto.backends import get_backend
from moto.core.models import DEFAULT_ACCOUNT_ID
from moto.moto_server.werkzeug_app import DomainDispatcherApplication, MotoRequestHandler, create_backend_app
from werkzeug.serving import BaseWSGIServer, make_server
from werkzeug.wsgi import get_input_stream

from edgeml.twin.cloud.dispatch import DEFAULT_REGION, is_greengrass_v2, signing_scope
from edgeml.twin.cloud.motoserver import TWIN_CREDENTIALS
from edgeml.twin.cloud.persistence import load_moto_state, save_moto_state
from edgeml.twin.cloud.protocol import Request, Response, RestJsonService
from edgeml.twin.cloud.rules import TopicRuleEngine
from edgeml.twin.cloud.service import Clock, SystemClock

LOG = logging.getLogger(__name__)

StartResponse = Callable[[str, list[tuple[str, str]]], Any]
Environ = dict[str, Any]

TICK_EVERY_S = 0.25
_READ_ONLY = frozenset({"GET", "HEAD", "OPTIONS"})
# IoT operations on one job (a `{jobId}` label): served by the control plane when it owns the job.
_IOT_JOB_LISTS = {"ListJobExecutionsForThing": "executionSummaries", "ListJobs": "jobs"}


class IotJobsBackend(Protocol):
    def owns_job(self, job_id: str) -> bool: ...


class ControlPlaneApi(Protocol):
    """What the endpoint needs of the control plane (`edgeml.twin.cloud.controlplane.ControlPlane`)."""

    @property
    def greengrassv2(self) -> object: ...

    @property
    def iot(self) -> IotJobsBackend: ...

    @property
    def jobs_data(self) -> object: ...

    def on_iot_publish(self, topic: str, payload: bytes, region: str) -> None: ...

    def save(self) -> None: ...


ControlPlaneFactory = Callable[[Path, Clock, Callable[[str], Any]], ControlPlaneApi]


def moto_iot(region: str) -> Any:
    """moto's in-process IoT backend for `region` (things, thing groups, membership)."""
    return get_backend("iot")[DEFAULT_ACCOUNT_ID][region]


def product_control_plane() -> ControlPlaneFactory | None:
    """The control plane class, or None while it is not importable."""
    try:
        module = importlib.import_module("edgeml.twin.cloud.controlplane")
    except ImportError:
        return None
    factory: ControlPlaneFactory | None = getattr(module, "ControlPlane", None)
    return factory


def _raw_target(environ: Environ) -> str:
    raw = environ.get("RAW_URI") or environ.get("REQUEST_URI")
    if isinstance(raw, str) and raw.startswith("/"):
        return raw
    path = quote(environ.get("PATH_INFO", ""), safe="/~:@!$&'()*+,;=")
    query = environ.get("QUERY_STRING", "")
    return f"{path}?{query}" if query else path


def _headers(environ: Environ) -> dict[str, str]:
    headers = {
        key[5:].replace("_", "-").lower(): str(value)
        for key, value in environ.items()
        if key.startswith("HTTP_")
    }
    for key in ("CONTENT_TYPE", "CONTENT_LENGTH"):
        if environ.get(key):
            headers[key.replace("_", "-").lower()] = str(environ[key])
    return headers


def _reason(status: int) -> str:
    from http import HTTPStatus

    try:
        return HTTPStatus(status).phrase
    except ValueError:
        return "Unknown"


class CloudEndpoint:
    """The cloud twin on 127.0.0.1 (a free port unless one is given); stops with the context or `stop()`.

    `state_dir` holds the control plane's JSON and moto's pickled state; with `persist_moto` it is loaded
    at start (replacing this process's moto state for the twin's services) and saved after changes.
    """

    def __init__(
        self,
        state_dir: Path,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        clock: Clock | None = None,
        control_plane: ControlPlaneFactory | None = None,
        persist_moto: bool = True,
        save_every_s: float = 1.0,
    ) -> None:
        self.state_dir = state_dir
        self._host = host
        self._port = port
        self._clock = clock or SystemClock()
        self._factory = control_plane or product_control_plane()
        self._persist_moto = persist_moto
        self._save_every_s = save_every_s
        self._moto = DomainDispatcherApplication(create_backend_app)
        self._state_lock = threading.RLock()
        self._dirty = threading.Event()
        self._changed_at = 0.0
        self._stopping = threading.Event()
        self._server: BaseWSGIServer | None = None
        self._threads: list[threading.Thread] = []
        self.control_plane: ControlPlaneApi | None = None
        self._greengrass: RestJsonService | None = None
        self._jobs_data: RestJsonService | None = None
        self._iot_jobs: RestJsonService | None = None
        # The IoT topic rules moto stores, run on each iot-data Publish (edgeml.twin.cloud.rules; issue 12).
        self.topic_rules = TopicRuleEngine(self._clock)
        self.endpoint_url = ""

    # -- life cycle -------------------------------------------------------------------------------------

    def start(self) -> CloudEndpoint:
        self.state_dir.mkdir(parents=True, exist_ok=True)
        if self._persist_moto:
            load_moto_state(self.state_dir)
        if self._factory is not None:
            self._attach(self._factory(self.state_dir / "controlplane", self._clock, moto_iot))
        else:  # every GreengrassV2 / jobs data call answers "not supported by the twin"
            self._attach(_NoControlPlane())
        logging.getLogger("werkzeug").setLevel(logging.WARNING)
        if self._port:
            _check_port_free(self._host, self._port)  # werkzeug would print and sys.exit instead
        self._server = make_server(
            self._host, self._port, self, threaded=True, request_handler=MotoRequestHandler
        )
        host, port = self._server.server_address[:2]
        self.endpoint_url = f"http://{host!s}:{port}"
        server = self._server
        self._spawn(lambda: server.serve_forever(poll_interval=0.05), "cloud-twin-http")
        self._spawn(self._save_loop, "cloud-twin-saver")
        return self

    def _attach(self, control_plane: ControlPlaneApi) -> None:
        lock = threading.RLock()  # one control plane: its three faces share one lock
        self.control_plane = control_plane
        self._greengrass = RestJsonService("greengrassv2", control_plane.greengrassv2, lock=lock)
        self._jobs_data = RestJsonService("iot-jobs-data", control_plane.jobs_data, lock=lock)
        iot_model_ops = RestJsonService("iot", object()).model
        job_ops = [
            name
            for name in iot_model_ops.operation_names
            if "{jobId}" in iot_model_ops.operation_model(name).http["requestUri"] or name in _IOT_JOB_LISTS
        ]
        self._iot_jobs = RestJsonService("iot", control_plane.iot, operations=job_ops, lock=lock)

    def _spawn(self, target: Callable[[], None], name: str) -> None:
        thread = threading.Thread(target=target, name=name, daemon=True)
        thread.start()
        self._threads.append(thread)

    def stop(self) -> None:
        """Stops serving, then saves the state (after the last request has been answered)."""
        self._stopping.set()
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
        for thread in self._threads:
            thread.join(timeout=10)
        self._threads.clear()
        self.save()

    def save(self) -> None:
        with self._state_lock:
            self._dirty.clear()
            if self.control_plane is not None:
                self.control_plane.save()
            if self._persist_moto:
                save_moto_state(self.state_dir)

    def _save_loop(self) -> None:
        """Applies what the control plane has due (`tick`: rollout minutes, timeouts) a few times a second
        and saves the state once a change is `save_every_s` old."""
        tick = getattr(self.control_plane, "tick", None)
        while not self._stopping.wait(TICK_EVERY_S):
            try:
                if callable(tick):
                    with self._state_lock, _request_context(DEFAULT_REGION, self.endpoint_url):
                        tick()
                if self._dirty.is_set() and time.monotonic() - self._changed_at >= self._save_every_s:
                    self.save()
            except Exception:  # keep serving; the next change or the stop saves again
                LOG.exception("the twin's background work failed")

    def env(self) -> dict[str, str]:
        """Environment that points every boto3 client at this endpoint, with throwaway credentials."""
        return {"AWS_ENDPOINT_URL": self.endpoint_url, **TWIN_CREDENTIALS}

    def __enter__(self) -> CloudEndpoint:
        return self.start()

    def __exit__(
        self, kind: type[BaseException] | None, error: BaseException | None, trace: TracebackType | None
    ) -> None:
        self.stop()

    # -- WSGI -------------------------------------------------------------------------------------------

    def __call__(self, environ: Environ, start_response: StartResponse) -> Iterable[bytes]:
        try:
            return self._dispatch(environ, start_response)
        except Exception as failure:  # a twin bug: a JSON error a client can read, never an HTML page
            LOG.exception("the cloud twin failed on %s", environ.get("PATH_INFO"))
            body = json.dumps({"message": f"the twin failed: {type(failure).__name__}: {failure}"}).encode()
            headers = {"x-amzn-ErrorType": "InternalFailure", "Content-Type": "application/json"}
            return self._answer(start_response, Response(500, headers, body))

    def _dispatch(self, environ: Environ, start_response: StartResponse) -> Iterable[bytes]:
        method = str(environ.get("REQUEST_METHOD", "GET")).upper()
        raw_path, _, query_text = _raw_target(environ).partition("?")
        query = parse_qs(query_text, keep_blank_values=True)
        headers = _headers(environ)
        scope = signing_scope(headers, query)
        service = scope.service if scope else ""
        region = scope.region if scope else DEFAULT_REGION
        mutating = method not in _READ_ONLY
        with self._state_lock if mutating else _no_lock():
            try:
                ours = self._our_service(service, method, raw_path, query)
                if ours is not None:
                    body = get_input_stream(environ).read()
                    request = Request(method, raw_path, query, headers, body)
                    return self._answer(start_response, self._serve(ours, request, region, environ))
                if service == "iotdata" and method == "POST" and raw_path.startswith("/topics/"):
                    self._on_publish(environ, raw_path[len("/topics/") :], region)
                return self._moto(environ, start_response)  # type: ignore[no-any-return]
            finally:
                if mutating:  # marked once done, under the lock: a save cannot slip in between
                    self._changed_at = time.monotonic()
                    self._dirty.set()

    def _our_service(
        self, service: str, method: str, raw_path: str, query: dict[str, list[str]]
    ) -> RestJsonService | None:
        if self._greengrass is None:
            return None
        if service == "greengrass" and is_greengrass_v2(raw_path):
            return self._greengrass
        if service == "iot-jobs-data":
            return self._jobs_data
        if service in ("iot", "execute-api") and self._iot_jobs is not None:
            resolved = self._iot_jobs.router.resolve(method, raw_path, query)
            if resolved is not None:
                operation, labels = resolved
                if operation.name in _IOT_JOB_LISTS:
                    return self._iot_jobs
                if self.control_plane is not None and self.control_plane.iot.owns_job(
                    labels.get("jobId", "")
                ):
                    return self._iot_jobs
        return None

    def _serve(self, service: RestJsonService, request: Request, region: str, environ: Environ) -> Response:
        with _request_context(region, self.endpoint_url):
            response = service.handle(request)
        resolved = service.resolve(request)
        if resolved is not None and resolved[0].name in _IOT_JOB_LISTS and service is self._iot_jobs:
            response = self._merged_with_moto(resolved[0].name, response, request, environ)
        return response

    def _merged_with_moto(
        self, operation: str, ours: Response, request: Request, environ: Environ
    ) -> Response:
        """ListJobs / ListJobExecutionsForThing: moto's jobs, with the deployment jobs on the first page."""
        environ = {
            **environ,
            "wsgi.input": io.BytesIO(request.body),
            "CONTENT_LENGTH": str(len(request.body)),
        }
        status, _, body = self._call_moto(environ)
        key = _IOT_JOB_LISTS[operation]
        try:
            theirs = json.loads(body or b"{}")
            if ours.status == 200 and "nextToken" not in request.query:
                mine = json.loads(ours.body or b"{}")
                theirs[key] = mine.get(key, []) + theirs.get(key, [])
        except ValueError:
            return ours
        if status != 200:
            return ours
        return Response(
            200, {**ours.headers, "Content-Type": "application/json"}, json.dumps(theirs).encode()
        )

    def _call_moto(self, environ: Environ) -> tuple[int, list[tuple[str, str]], bytes]:
        captured: dict[str, Any] = {}

        def start(status: str, headers: list[tuple[str, str]], *_: Any) -> Any:
            captured["status"] = int(status.split()[0])
            captured["headers"] = headers
            return None

        chunks = self._moto(environ, start)
        body = b"".join(chunks)
        return captured.get("status", 500), captured.get("headers", []), body

    def _on_publish(self, environ: Environ, raw_topic: str, region: str) -> None:
        """Hands every iot-data Publish to the control plane (fleet status), then moto records it as usual."""
        body = get_input_stream(environ).read()
        environ["wsgi.input"] = io.BytesIO(body)
        environ["CONTENT_LENGTH"] = str(len(body))
        environ.pop("HTTP_TRANSFER_ENCODING", None)
        environ["wsgi.input_terminated"] = False
        try:  # topic rules (issue 12): a failing rule is recorded in topic_rules.failures, never the publish
            self.topic_rules.on_publish(unquote(raw_topic), body, region)
        except Exception:
            LOG.exception("the topic rules failed on a publish to %s", unquote(raw_topic))
        if self.control_plane is None:
            return
        try:
            with self._state_lock, _request_context(region, self.endpoint_url):
                self.control_plane.on_iot_publish(unquote(raw_topic), body, region)
        except Exception:  # a bad status message must not fail the device's publish
            LOG.exception("the control plane failed on a publish to %s", unquote(raw_topic))

    @staticmethod
    def _answer(start_response: StartResponse, response: Response) -> Iterable[bytes]:
        headers = {**response.headers, "Content-Length": str(len(response.body))}
        start_response(f"{response.status} {_reason(response.status)}", list(headers.items()))
        return [response.body]


def _check_port_free(host: str, port: int) -> None:
    with socket.socket() as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((host, port))
        except OSError as error:
            raise OSError(error.errno, f"{host}:{port} is in use ({error.strerror})") from None


class _NoJobs:
    def owns_job(self, job_id: str) -> bool:
        return False


class _NoControlPlane:
    """Stands in while the control plane is not importable: no operation is served, nothing is saved."""

    greengrassv2: object = object()
    iot: IotJobsBackend = _NoJobs()
    jobs_data: object = object()

    def on_iot_publish(self, topic: str, payload: bytes, region: str) -> None:
        return None

    def save(self) -> None:
        return None


class _no_lock:
    def __enter__(self) -> None:
        return None

    def __exit__(self, *_: object) -> None:
        return None


def _request_context(region: str, endpoint_url: str) -> Any:
    """The control plane's per-request context (region, endpoint), when it defines one."""
    try:
        from edgeml.twin.cloud.controlplane.context import request_context
    except ImportError:
        return _no_lock()
    return request_context(region=region, endpoint_url=endpoint_url)

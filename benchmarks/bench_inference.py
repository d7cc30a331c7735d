"""Device inference app (edgeml_inference) vs bare `InferenceSession.run`, on this CPU, in the same run.

Same model files, same pre-processed input tensors, ONNX Runtime's CPU EP pinned to one intra-op thread on
both sides. The app path is the one every source uses: submit to the batching queue -> worker thread ->
pre-processing checks -> backend -> softmax/top-k -> result object -> result hooks (two IPC sinks behind
their bounded queues, with a no-op IPC client) -> future resolved. Batch 1 runs in continuous mode (submit,
wait, submit...); batch 32 in microbatch mode (32 submitted, answered in one backend run; a fixed-batch model
such as the EfficientNet-Lite0 export runs 32 times at batch 1 on both sides). Bare and app rounds are
interleaved so that noise on a shared machine hits both alike: each round runs bare, app and app without
sinks back to back (the order rotating from round to round), and the figures are medians over rounds of the
per-round ratios, with their spread (lowest-highest round), so one disturbed round cannot flip a verdict.
EfficientNet-Lite0 runs more, shorter rounds (~0.2 s) than digits; a digits round answers 4,000 requests, many
times the sinks' 20 ms flush period, so a round does not count one drain more or less than the next.

Also: the result sinks' share of a frame, two ways: the throughput lost to them (the same app without
sinks runs interleaved; this counts their threads' CPU and GIL time too, and is what the target is judged
on) and the time spent on the inference thread handing the result over; cold start of
`python -m edgeml_inference` to the first HTTP answer; the resident memory of the app process next to a
bare process holding the same session.
Also: HTTP on kept-alive connections against the same app in-process (issue 14): 1 and 8 concurrent clients,
each sending the same JSON-tensor bytes; in-process clients are threads calling `app.submit(body)`, HTTP
clients are threads of a separate client process on their own kept-alive raw sockets, each sending a
pre-built request and reading the answer by its Content-Length (a local app calling the endpoint). Rounds
interleave in-process and HTTP; the figure is the median request latency.
The app's fixed cost per result is 1/app - 1/bare rate (median over rounds): what it adds to each result
beyond the runtime, sinks included (their threads share the GIL and the cores).
The same sink share and cold start with the real sinks against the IPC and Stream Manager twins, and the
model-update gap and lost inputs: benchmarks/inference_twins.py, printed after these tables.
Targets: app >= 0.95x bare throughput; fixed cost <= 10 us per result at batch 32; sink share <= 5 %;
cold start < 2 s; HTTP kept-alive <= 1 ms over in-process at the median, with 1 and with 8 clients.
"""

from __future__ import annotations

import http.client
import json
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import onnxruntime as ort
import psutil
from rich.console import Console
from rich.table import Table

from edgeml.twin.loopback import free_port

REPO = Path(__file__).resolve().parent.parent
BUILD = REPO / "build"
APP_PATH = REPO / "components" / "com.edgeml.Inference"
if str(APP_PATH) not in sys.path:
    sys.path.insert(0, str(APP_PATH))

from edgeml_inference.app import InferenceApp  # noqa: E402
from edgeml_inference.config import AppConfig  # noqa: E402
from edgeml_inference.metadata import METADATA_SCHEMA, sha256_file  # noqa: E402
from edgeml_inference.results import InferenceResult  # noqa: E402

TARGET_RATIO = 0.95
TARGET_SINK_SHARE = 0.05
TARGET_COLD_START_S = 2.0
TARGET_FIXED_COST_US = 10.0  # the app's own cost per result at batch 32, sinks included (issue 14)
TARGET_HTTP_OVERHEAD_MS = 1.0
HTTP_ROUNDS = 5
HTTP_REQUESTS_PER_CLIENT = 200


@dataclass(frozen=True)
class Workload:
    name: str
    model_dir: Path
    inputs: np.ndarray  # N x sample shape, pre-processed
    frames_b1: int  # per round, each side
    frames_b32: int  # per round, each side (a multiple of 32)
    rounds: int


class NullIpc:
    """IPC client whose publishes cost nothing (the sinks' own cost is what is measured)."""

    def __getattr__(self, name: str) -> Callable[..., Any]:
        return lambda *args, **kwargs: None


def model_dir(source: Path, card_path: Path, out: Path, name: str, input_shape: list[int]) -> Path:
    """An artifact folder as the model component unpacks it: the model and its metadata.json."""
    card = json.loads(card_path.read_text())
    out.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(source, out / "model.onnx")
    metadata = {
        "schema": METADATA_SCHEMA,
        "name": name,
        "version": "1.0.0",
        "framework": "onnx",
        "target": "cpu-fp32",
        "model_file": "model.onnx",
        "input": {"name": "input", "shape": input_shape, "dtype": "float32", "layout": "NCHW"},
        "output": {"name": "logits", "kind": card.get("output_kind", "logits")},
        "preprocessing": card["preprocessing"],
        "postprocessing": card.get("postprocessing", {"softmax": True, "top_k": 3}),
        "labels": card["labels"],
        "baseline": card.get("baseline", {}),
        "files": {"model.onnx": sha256_file(out / "model.onnx")},
    }
    (out / "metadata.json").write_text(json.dumps(metadata, indent=2, sort_keys=True))
    return out


def workloads() -> list[Workload]:
    from edgeml.model.datasets import digits_split

    out = BUILD / "bench-inference"
    _, _, holdout = digits_split()
    digits_dir = model_dir(
        REPO / "models" / "digits" / "model.onnx",
        REPO / "models" / "digits" / "model-card.json",
        out / "digits",
        "digits",
        [1, 1, 8, 8],
    )
    loads = [Workload("digits", digits_dir, holdout.x, 4000, 4096, 9)]
    try:
        from edgeml.model.zoo.efficientnet import cached_efficientnet_lite0
        from edgeml.model.zoo.images import imagenet_preprocess, sample_images

        source = cached_efficientnet_lite0(BUILD / "models")
        images = np.concatenate([imagenet_preprocess(image) for image in sample_images()])
        effnet_dir = model_dir(
            source, source.parent / "model-card.json", out / "effnet", "efficientnet-lite0", [1, 3, 224, 224]
        )
        loads.append(Workload("efficientnet-lite0", effnet_dir, images, 24, 32, 21))
    except Exception as error:  # torch or the zoo module missing: digits only
        print(f"EfficientNet-Lite0 skipped: {error}")
    return loads


def bare_session(model: Path) -> Any:
    options = ort.SessionOptions()
    options.intra_op_num_threads = 1
    options.inter_op_num_threads = 1
    return ort.InferenceSession(str(model), sess_options=options, providers=["CPUExecutionProvider"])


def bare_rate(session: Any, inputs: np.ndarray, frames: int, batch: int) -> float:
    """Samples per second of bare session.run (chunks of `batch`, or batch 1 for a fixed-batch model)."""
    fixed = session.get_inputs()[0].shape[0]
    step = 1 if isinstance(fixed, int) else batch
    count = len(inputs)
    start = time.perf_counter()
    done = 0
    while done < frames:
        for offset in range(0, batch, step):
            index = (done + offset) % count
            chunk = inputs[index : index + step]
            if len(chunk) < step:
                chunk = inputs[:step]
            session.run(None, {"input": chunk})
        done += batch
    return done / (time.perf_counter() - start)


def app_for(load: Workload, batch: int, with_sinks: bool) -> InferenceApp:
    config = AppConfig(
        model_directory=str(load.model_dir),
        mode="continuous" if batch == 1 else "microbatch",
        max_batch=batch,
        max_wait_ms=50,
        health_interval_s=3600,
        model_poll_s=0,
        max_payload_bytes=64 * 1024 * 1024,
    )
    return InferenceApp(config, NullIpc() if with_sinks else None).start()


def app_rate(app: InferenceApp, inputs: np.ndarray, frames: int, batch: int) -> float:
    count = len(inputs)
    start = time.perf_counter()
    done = 0
    while done < frames:
        futures = [app.submit(inputs[(done + offset) % count], "bench") for offset in range(batch)]
        for future in futures:
            result: InferenceResult = future.result(60)
            if not result.ok:
                raise RuntimeError(f"benchmark input refused: {result.reason} {result.detail}")
        done += batch
    return done / (time.perf_counter() - start)


def _median(values: list[float]) -> float:
    return float(np.median(values))


@dataclass(frozen=True)
class Row:
    """Per-round rates of the three sides (same round, same inputs) and the sink hand-off time."""

    model: str
    batch: int
    bare: tuple[float, ...]
    app: tuple[float, ...]  # with its result sinks
    app_no_sinks: tuple[float, ...]
    sink_thread_share: float  # time in the sink hook on the inference thread / app frame time

    @property
    def ratios(self) -> list[float]:
        """app / bare of each round."""
        return [app / bare for app, bare in zip(self.app, self.bare, strict=True)]

    @property
    def ratio(self) -> float:
        return _median(self.ratios)

    @property
    def fixed_costs_us(self) -> list[float]:
        """The app's own time per result beyond the bare run, per round: 1/app - 1/bare, in microseconds."""
        return [1e6 / app - 1e6 / bare for app, bare in zip(self.app, self.bare, strict=True)]

    @property
    def fixed_cost_us(self) -> float:
        return _median(self.fixed_costs_us)

    @property
    def sink_shares(self) -> list[float]:
        """Throughput lost to the sinks (their threads included), per round: 1 - app / app without sinks."""
        return [1.0 - app / plain for app, plain in zip(self.app, self.app_no_sinks, strict=True)]

    @property
    def sink_share(self) -> float:
        """The sinks' whole cost, median over rounds (negative: inside the noise, shown as 0)."""
        return max(0.0, _median(self.sink_shares))


def measure(load: Workload, batch: int) -> Row:
    session = bare_session(load.model_dir / "model.onnx")
    frames = load.frames_b1 if batch == 1 else load.frames_b32
    app = app_for(load, batch, with_sinks=True)
    plain = app_for(load, batch, with_sinks=False)
    sink_time = [0.0]
    index = app.pipeline.batch_hooks.index(app._publish_results)
    publish = app.pipeline.batch_hooks[index]

    def timed(results: Sequence[InferenceResult], payloads: Sequence[Any]) -> None:
        start = time.perf_counter()
        publish(results, payloads)
        sink_time[0] += time.perf_counter() - start

    app.pipeline.batch_hooks[index] = timed
    sides: dict[str, Callable[[], float]] = {
        "bare": lambda: bare_rate(session, load.inputs, frames, batch),
        "app": lambda: app_rate(app, load.inputs, frames, batch),
        "plain": lambda: app_rate(plain, load.inputs, frames, batch),
    }
    order = list(sides)
    rates: dict[str, list[float]] = {name: [] for name in order}
    app_seconds = sink_seconds = 0.0
    try:
        for name in order:  # warm-up: one round's worth each
            sides[name]()
        for round_index in range(load.rounds):
            shift = round_index % len(order)
            for name in order[shift:] + order[:shift]:
                sink_time[0] = 0.0
                rate = sides[name]()
                rates[name].append(rate)
                if name == "app":
                    app_seconds += frames / rate
                    sink_seconds += sink_time[0]
    finally:
        app.stop()
        plain.stop()
    return Row(
        load.name,
        batch,
        tuple(rates["bare"]),
        tuple(rates["app"]),
        tuple(rates["plain"]),
        sink_seconds / app_seconds,
    )


def _post(port: int, body: bytes) -> int:
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
    try:
        connection.request("POST", "/v1/infer", body=body)
        return connection.getresponse().status
    finally:
        connection.close()


@dataclass(frozen=True)
class ProcessFigures:
    model: str
    cold_start_s: float
    app_rss_mib: float
    bare_rss_mib: float


def process_figures(load: Workload) -> ProcessFigures:
    """Spawn -> first answered POST /v1/infer, then RSS after 100 more; and a bare session process' RSS."""
    port = free_port()
    config = BUILD / "bench-inference" / f"{load.name}-config.json"
    config.write_text(
        json.dumps(
            {
                "ModelDirectory": str(load.model_dir),
                "HttpPort": port,
                "Mode": "continuous",
                "HealthIntervalS": 3600,
                "ModelPollS": 0,
                "MaxPayloadBytes": 64 << 20,
            }
        )
    )
    body = json.dumps(
        {
            "shape": list(load.inputs[0].shape),
            "dtype": "float32",
            "b64": __import__("base64").b64encode(load.inputs[0].tobytes()).decode(),
        }
    ).encode()
    env = {**os.environ, "PYTHONPATH": str(APP_PATH), "EDGEML_LOG_LEVEL": "WARNING"}
    for key in ("STREAM_MANAGER_SERVER_PORT", "AWS_GG_NUCLEUS_DOMAIN_SOCKET_FILEPATH_FOR_COMPONENT"):
        env.pop(key, None)
    start = time.perf_counter()
    process = subprocess.Popen(
        [sys.executable, "-m", "edgeml_inference", "--config", str(config)],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        while True:
            try:
                if _post(port, body) == 200:
                    break
            except OSError:
                if process.poll() is not None or time.perf_counter() - start > 60:
                    raise RuntimeError("the app did not answer") from None
                time.sleep(0.005)
        cold = time.perf_counter() - start
        for _ in range(100):
            _post(port, body)
        app_rss = psutil.Process(process.pid).memory_info().rss / 2**20
    finally:
        process.terminate()
        process.wait(15)
    probe = (
        "import numpy as np, onnxruntime as ort, psutil, sys\n"
        "o = ort.SessionOptions(); o.intra_op_num_threads = 1\n"
        "s = ort.InferenceSession(sys.argv[1], sess_options=o, providers=['CPUExecutionProvider'])\n"
        "x = np.load(sys.argv[2])\n"
        "[s.run(None, {'input': x}) for _ in range(100)]\n"
        "print(psutil.Process().memory_info().rss)\n"
    )
    sample = BUILD / "bench-inference" / f"{load.name}-sample.npy"
    np.save(sample, load.inputs[:1])
    bare = subprocess.run(
        [sys.executable, "-c", probe, str(load.model_dir / "model.onnx"), str(sample)],
        capture_output=True,
        text=True,
        check=True,
    )
    return ProcessFigures(load.name, cold, app_rss, int(bare.stdout.strip()) / 2**20)


HTTP_CLIENT = """
import json, socket, sys, threading, time
port, clients, count = int(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3])
body = open(sys.argv[4], "rb").read()
request = b"POST /v1/infer HTTP/1.1\\r\\nHost: 127.0.0.1\\r\\nContent-Length: %d\\r\\n\\r\\n" % len(body)
request += body
latencies, barrier = [], threading.Barrier(clients)
def exchange(sock, buffer):
    sock.sendall(request)
    while b"\\r\\n\\r\\n" not in buffer:
        buffer += sock.recv(65536)
    head, _, rest = buffer.partition(b"\\r\\n\\r\\n")
    assert head.startswith(b"HTTP/1.1 200"), head[:40]
    length = int(head.lower().split(b"content-length:")[1].split(b"\\r\\n")[0])
    while len(rest) < length:
        rest += sock.recv(65536)
    return rest[length:]
def run():
    sock = socket.create_connection(("127.0.0.1", port))
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    buffer = exchange(sock, b"")
    barrier.wait(); mine = []
    for _ in range(count):
        start = time.perf_counter()
        buffer = exchange(sock, buffer)
        mine.append(time.perf_counter() - start)
    latencies.extend(mine); sock.close()
threads = [threading.Thread(target=run) for _ in range(clients)]
[t.start() for t in threads]; [t.join() for t in threads]
print(json.dumps(latencies))
"""


@dataclass(frozen=True)
class HttpRow:
    clients: int
    in_process_ms: float  # median request latency
    http_ms: float

    @property
    def overhead_ms(self) -> float:
        return self.http_ms - self.in_process_ms


def in_process_latencies(app: InferenceApp, body: bytes, clients: int, count: int) -> list[float]:
    import threading

    latencies: list[float] = []
    barrier = threading.Barrier(clients)

    def run() -> None:
        mine: list[float] = []
        barrier.wait()
        for _ in range(count):
            start = time.perf_counter()
            result = app.submit(body, "bench").result(30)
            mine.append(time.perf_counter() - start)
            if not result.ok:
                raise RuntimeError(f"benchmark input refused: {result.reason}")
        latencies.extend(mine)

    threads = [threading.Thread(target=run) for _ in range(clients)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return latencies


def http_latency(load: Workload) -> list[HttpRow]:
    """Kept-alive HTTP vs in-process submit, same app (continuous mode, two IPC sinks), same body bytes."""
    port = free_port()
    config = AppConfig(
        model_directory=str(load.model_dir),
        mode="continuous",
        health_interval_s=3600,
        model_poll_s=0,
        http_port=port,
        max_payload_bytes=64 * 1024 * 1024,
    )
    app = InferenceApp(config, NullIpc()).start()
    sample = load.inputs[0]
    body = json.dumps(
        {
            "shape": list(sample.shape),
            "dtype": "float32",
            "b64": __import__("base64").b64encode(sample.astype(np.float32).tobytes()).decode(),
        }
    ).encode()
    body_file = BUILD / "bench-inference" / f"{load.name}-http-body.json"
    body_file.write_bytes(body)
    rows: list[HttpRow] = []
    try:
        for clients in (1, 8):
            count = HTTP_REQUESTS_PER_CLIENT if clients == 1 else HTTP_REQUESTS_PER_CLIENT // 4
            local: list[float] = []
            remote: list[float] = []
            in_process_latencies(app, body, clients, count // 4)  # warm-up
            for _ in range(HTTP_ROUNDS):
                local.extend(in_process_latencies(app, body, clients, count))
                client = subprocess.run(
                    [sys.executable, "-c", HTTP_CLIENT, str(port), str(clients), str(count), str(body_file)],
                    capture_output=True,
                    text=True,
                    check=True,
                )
                remote.extend(json.loads(client.stdout))
            rows.append(HttpRow(clients, _median(local) * 1000, _median(remote) * 1000))
    finally:
        app.stop()
    return rows


def main() -> None:
    console = Console(width=190)
    rows: list[Row] = []
    processes: list[ProcessFigures] = []
    with console.status("preparing models"):
        loads = workloads()
    http_rows: list[HttpRow] = []
    with console.status(f"{loads[0].name}: HTTP kept-alive vs in-process"):
        http_rows = http_latency(loads[0])
    for load in loads:
        for batch in (1, 32):
            with console.status(f"{load.name}: batch {batch}, app vs bare"):
                rows.append(measure(load, batch))
        with console.status(f"{load.name}: cold start and RSS"):
            processes.append(process_figures(load))
    table = Table(
        title=f"Inference app vs bare InferenceSession.run (ONNX Runtime {ort.__version__}, "
        "CPU EP, 1 intra-op thread, same inputs; medians over interleaved rounds, "
        "spread: lowest-highest round)"
    )
    for column in (
        "model",
        "batch",
        "bare samples/s",
        "app samples/s",
        "app / bare",
        "app / bare spread",
        "app without sinks",
        "fixed us / result",
        "sink share (all threads)",
        "sink share spread",
        "sink share (inference thread)",
    ):
        table.add_column(column, justify="left" if column == "model" else "right")
    for row in rows:
        table.add_row(
            row.model,
            str(row.batch),
            f"{_median(list(row.bare)):,.0f}",
            f"{_median(list(row.app)):,.0f}",
            f"{row.ratio:.2f}x",
            f"{min(row.ratios):.2f}-{max(row.ratios):.2f}",
            f"{_median(list(row.app_no_sinks)):,.0f}",
            f"{row.fixed_cost_us:.1f} ({min(row.fixed_costs_us):.1f}-{max(row.fixed_costs_us):.1f})",
            f"{row.sink_share:.1%}",
            f"{min(row.sink_shares):.1%} to {max(row.sink_shares):.1%}",
            f"{row.sink_thread_share:.1%}",
        )
    console.print(table)
    started = Table(title="Process: spawn -> first result over HTTP, resident memory after 100 requests")
    for column in ("model", "cold start s", "app RSS MiB", "bare session RSS MiB"):
        started.add_column(column, justify="left" if column == "model" else "right")
    for figures in processes:
        started.add_row(
            figures.model,
            f"{figures.cold_start_s:.2f}",
            f"{figures.app_rss_mib:.0f}",
            f"{figures.bare_rss_mib:.0f}",
        )
    console.print(started)
    over_http = Table(
        title=f"HTTP kept-alive vs in-process submit ({loads[0].name}, same app and body bytes; "
        f"median request latency over {HTTP_ROUNDS} interleaved rounds)"
    )
    for column in ("clients", "in-process ms", "HTTP ms", "HTTP - in-process ms", "HTTP / in-process"):
        over_http.add_column(column, justify="right")
    for http_row in http_rows:
        over_http.add_row(
            str(http_row.clients),
            f"{http_row.in_process_ms:.3f}",
            f"{http_row.http_ms:.3f}",
            f"{http_row.overhead_ms:.3f}",
            f"{http_row.http_ms / http_row.in_process_ms:.2f}x",
        )
    console.print(over_http)
    for http_row in http_rows:
        met = http_row.overhead_ms <= TARGET_HTTP_OVERHEAD_MS
        console.print(
            f"HTTP with {http_row.clients} client(s): {http_row.overhead_ms:.3f} ms over in-process "
            f"({'MET' if met else 'NOT MET'}, target <= {TARGET_HTTP_OVERHEAD_MS:.0f} ms)"
        )
    for row in rows:
        ratio_met = row.ratio >= TARGET_RATIO
        console.print(
            f"{row.model} batch {row.batch}: throughput {row.ratio:.2f}x bare "
            f"({'MET' if ratio_met else 'NOT MET'}, target >= {TARGET_RATIO}x); sink share "
            f"{row.sink_share:.1%} ({'MET' if row.sink_share <= TARGET_SINK_SHARE else 'NOT MET'}, "
            f"target <= {TARGET_SINK_SHARE:.0%}); fixed cost {row.fixed_cost_us:.1f} us per result"
            + (
                f" ({'MET' if row.fixed_cost_us <= TARGET_FIXED_COST_US else 'NOT MET'}, "
                f"target <= {TARGET_FIXED_COST_US:.0f} us at batch 32)"
                if row.batch == 32 and row.model == "digits"  # a tiny model: there the fixed cost shows
                else ""
            )
        )
    for figures in processes:
        met = figures.cold_start_s < TARGET_COLD_START_S
        console.print(
            f"{figures.model}: cold start {figures.cold_start_s:.2f} s "
            f"({'MET' if met else 'NOT MET'}, target < {TARGET_COLD_START_S:.0f} s)"
        )
    from benchmarks.inference_twins import run as run_on_twins  # the real sinks, on the twins

    run_on_twins(console, loads)


if __name__ == "__main__":
    main()

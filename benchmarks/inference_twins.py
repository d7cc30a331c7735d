"""`benchmarks inference`, second part: the result sinks and the cold start against the device twins.

The first part (bench_inference.py) measures the sinks' share of a frame with a no-op IPC client and no
Stream Manager. Here the same app runs with its real sinks: the real SDK clients (GreengrassCoreIPCClientV2,
StreamManagerClient) against the IPC twin and the Stream Manager twin, in their own process as the nucleus
and Stream Manager are on a device, with the recipe's DefaultConfiguration (results to the local topic, to
IoT Core in batches, to the result stream with flush_on_write; health; capture at its sampling rate) and
the streams as the app defines them. Three sides run interleaved in each round, from the same
configuration: no sinks, no-op sinks, real sinks; a share is 1 - rate / rate without sinks, median over
rounds. A round ends when its results are delivered, not when they are answered: the app's result sinks
are flushed inside the timed round (a sink that cannot keep up sheds its oldest results past SinkQueueSize,
so timing only the answers measured an app that lost most of them; each round's drops are counted and
printed). Cold start: spawn of `python -m edgeml_inference` to its first HTTP answer, off a device (a
configuration file, no IPC) and on the twins (configuration over IPC, Stream Manager found through
aws.greengrass.StreamManager's configuration, streams created), interleaved, median of COLD_STARTS each.
Last, a model update as the nucleus does it (tests/integration/model_update_probe.py, the rig of
test_inference_model_update.py): inputs lost and the gap without answers.
"""

from __future__ import annotations

import functools
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import yaml
from rich.console import Console
from rich.table import Table

from benchmarks.bench_inference import (
    APP_PATH,
    REPO,
    TARGET_COLD_START_S,
    TARGET_SINK_SHARE,
    NullIpc,
    Workload,
    _median,
    _post,
    app_rate,
)
from edgeml.twin.loopback import free_port

COMPONENT = "com.edgeml.Inference"
THING = "edgeml-bench-core"
COLD_STARTS = 3
FULL_WAIT_MS = 1000
ROUND_S = 0.5  # shortest round with the real sinks
MAX_ROUNDS = 11
# The device's Greengrass side in one process of its own: the IPC twin (the nucleus) and the Stream Manager
# twin, aws.greengrass.StreamManager's configuration holding the port. Prints the component's environment
# as JSON, stops when its stdin closes.
TWINS_CHILD = """
import json, sys
from pathlib import Path
from edgeml.twin.device.ipc import IpcServer
from edgeml.twin.device.streammanager.server import StreamManagerServer
store, component, configuration = Path(sys.argv[1]), sys.argv[2], json.loads(sys.argv[3])
ipc = IpcServer(forward_to_iot_core=False).start()
streams = StreamManagerServer(store).start()
ipc.register_component("aws.greengrass.StreamManager", {"STREAM_MANAGER_SERVER_PORT": str(streams.port)})
ipc.register_component(component, configuration)
print(json.dumps({**ipc.component_env(component), "AWS_CONTAINER_AUTHORIZATION_TOKEN": streams.auth_token}),
      flush=True)
sys.stdin.read()
streams.stop()
ipc.stop()
"""


def recipe_defaults() -> dict[str, Any]:
    recipe = yaml.safe_load((REPO / "recipes" / f"{COMPONENT}.yaml").read_text())
    defaults: dict[str, Any] = recipe["ComponentConfiguration"]["DefaultConfiguration"]
    return defaults


def configuration(load: Workload, batch: int, work: Path, **overrides: Any) -> dict[str, Any]:
    """The recipe's DefaultConfiguration with the benchmark's model, batching and folders."""
    return {
        **recipe_defaults(),
        "ModelDirectory": str(load.model_dir),
        "Mode": "continuous" if batch == 1 else "microbatch",
        "MaxBatch": batch,
        "MaxWaitMs": 50,
        "HealthIntervalS": 3600,
        "ModelPollS": 0,
        "MaxPayloadBytes": 64 << 20,
        "HttpPort": 0,
        "InputDirectory": str(work / "input"),
        "CaptureDirectory": str(work / "capture"),
        **overrides,
    }


@contextmanager
def twins(configuration: dict[str, Any]) -> Iterator[dict[str, str]]:
    """The twins' process with `configuration` as the app's; yields the environment a nucleus gives it."""
    store = Path(tempfile.mkdtemp(prefix="edgeml-bsm-", dir="/tmp"))
    env = {**os.environ, "PYTHONPATH": str(REPO / "src")}
    process = subprocess.Popen(
        [sys.executable, "-c", TWINS_CHILD, str(store), COMPONENT, json.dumps(configuration)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
        env=env,
    )
    assert process.stdin is not None and process.stdout is not None
    try:
        line = process.stdout.readline()
        if not line:
            raise RuntimeError(f"the twins' process exited {process.wait()} before it was ready")
        component_env: dict[str, str] = {**json.loads(line), "AWS_IOT_THING_NAME": THING}
        yield component_env
    finally:
        process.stdin.close()
        try:
            process.wait(30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        shutil.rmtree(store, ignore_errors=True)


@contextmanager
def component_environment(values: dict[str, str]) -> Iterator[None]:
    """os.environ as the component's (the SDK clients read it), restored afterwards."""
    saved = dict(os.environ)
    os.environ.pop("STREAM_MANAGER_SERVER_PORT", None)  # a nucleus does not set it
    os.environ.update(values)
    try:
        yield
    finally:
        os.environ.clear()
        os.environ.update(saved)


@dataclass(frozen=True)
class SinkRow:
    model: str
    batch: int
    plain: tuple[float, ...]  # no sinks
    no_op: tuple[float, ...]  # its sinks, a no-op IPC client, no Stream Manager
    real: tuple[float, ...]  # its sinks against the twins
    real_dropped: tuple[int, ...] = ()  # results the real sinks shed per round (SinkQueueSize full)

    @staticmethod
    def shares(rates: tuple[float, ...], plain: tuple[float, ...]) -> list[float]:
        return [1.0 - rate / base for rate, base in zip(rates, plain, strict=True)]

    @property
    def no_op_shares(self) -> list[float]:
        return self.shares(self.no_op, self.plain)

    @property
    def real_shares(self) -> list[float]:
        return self.shares(self.real, self.plain)


def measure_real_sinks(load: Workload, batch: int, **overrides: Any) -> SinkRow:
    """The three sides; `overrides` are configuration keys of the real side (e.g. SinkFullWaitMs)."""
    # device code, importable once bench_inference has put APP_PATH on sys.path
    from edgeml_inference.__main__ import open_streams
    from edgeml_inference.app import InferenceApp
    from edgeml_inference.config import AppConfig
    from edgeml_inference.ipc import SdkIpcClient

    work = Path(tempfile.mkdtemp(prefix="edgeml-bsink-", dir="/tmp"))
    frames = load.frames_b1 if batch == 1 else load.frames_b32
    real_configuration = configuration(load, batch, work / "real", **overrides)
    try:
        with twins(real_configuration) as env, component_environment(env):
            ipc = SdkIpcClient()
            config = AppConfig.from_mapping(ipc.get_configuration())
            streams = open_streams(config, ipc, os.environ)
            real = InferenceApp(config, ipc, streams, THING).start()
            no_op = InferenceApp(
                AppConfig.from_mapping(configuration(load, batch, work / "no-op")), NullIpc(), None, THING
            ).start()
            plain = InferenceApp(
                AppConfig.from_mapping(configuration(load, batch, work / "plain")), None, None, THING
            ).start()
            apps = {"plain": plain, "no_op": no_op, "real": real}
            # A round lasts >= ROUND_S with the real sinks: its end waits for the last results' delivery
            # (a few ms through the SDKs and an fsync), which in a 0.1 s round of a slow model would count
            # as a 5 % share by itself.
            real_rate = delivered_rate(real, load.inputs, frames, batch)
            frames = max(frames, -(-int(real_rate * ROUND_S) // batch) * batch)
            sides: dict[str, Callable[[], float]] = {
                name: functools.partial(delivered_rate, app, load.inputs, frames, batch)
                for name, app in apps.items()
            }
            order = list(sides)
            rates: dict[str, list[float]] = {name: [] for name in order}
            dropped: list[int] = []
            try:
                for name in order:  # warm-up
                    sides[name]()
                for round_index in range(min(load.rounds, MAX_ROUNDS)):
                    shift = round_index % len(order)
                    for name in order[shift:] + order[:shift]:
                        before = sum(sink.dropped for sink in real.result_sinks)
                        rates[name].append(sides[name]())
                        if name == "real":
                            dropped.append(sum(sink.dropped for sink in real.result_sinks) - before)
            finally:
                for app in (real, no_op, plain):
                    app.stop()
                if streams is not None:
                    streams.close()
                ipc.close()
    finally:
        shutil.rmtree(work, ignore_errors=True)
    label = load.name + "".join(f", {key} {value}" for key, value in overrides.items())
    return SinkRow(
        label, batch, tuple(rates["plain"]), tuple(rates["no_op"]), tuple(rates["real"]), tuple(dropped)
    )


def delivered_rate(app: Any, inputs: np.ndarray, frames: int, batch: int) -> float:
    """Results per second, answered and handed to every destination (the result sinks drained)."""
    start = time.perf_counter()
    app_rate(app, inputs, frames, batch)
    for sink in app.result_sinks:
        sink.flush(120)
    return frames / (time.perf_counter() - start)


def _first_answer_s(command: list[str], env: dict[str, str], cwd: Path, port: int, body: bytes) -> float:
    start = time.perf_counter()
    process = subprocess.Popen(
        command, env=env, cwd=cwd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    try:
        while True:
            try:
                if _post(port, body) == 200:
                    return time.perf_counter() - start
            except OSError:
                if process.poll() is not None or time.perf_counter() - start > 60:
                    raise RuntimeError(f"the app did not answer (exit {process.poll()})") from None
                time.sleep(0.005)
    finally:
        process.terminate()
        process.wait(30)


@dataclass(frozen=True)
class ColdStarts:
    model: str
    off_device_s: tuple[float, ...]
    on_twins_s: tuple[float, ...]


def measure_cold_starts(load: Workload) -> ColdStarts:
    work = Path(tempfile.mkdtemp(prefix="edgeml-bcold-", dir="/tmp"))
    body = json.dumps(
        {
            "shape": list(load.inputs[0].shape),
            "dtype": "float32",
            "b64": __import__("base64").b64encode(np.ascontiguousarray(load.inputs[0]).tobytes()).decode(),
        }
    ).encode()
    command = [sys.executable, "-m", "edgeml_inference"]
    base = {key: value for key, value in os.environ.items() if key != "STREAM_MANAGER_SERVER_PORT"}
    base.pop("AWS_GG_NUCLEUS_DOMAIN_SOCKET_FILEPATH_FOR_COMPONENT", None)
    base.update({"PYTHONPATH": str(APP_PATH), "EDGEML_LOG_LEVEL": "WARNING"})
    off_port, on_port = free_port(), free_port()
    config_file = work / "config.json"
    config_file.write_text(json.dumps(configuration(load, 1, work / "off", HttpPort=off_port)))
    off: list[float] = []
    on: list[float] = []
    try:
        with twins(configuration(load, 1, work / "on", HttpPort=on_port)) as env:
            for _ in range(COLD_STARTS):
                off.append(
                    _first_answer_s([*command, "--config", str(config_file)], base, work, off_port, body)
                )
                on.append(_first_answer_s(command, {**base, **env}, work, on_port, body))
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return ColdStarts(load.name, tuple(off), tuple(on))


def measure_model_update() -> dict[str, Any]:
    for folder in ("integration", "unit"):
        if str(REPO / "tests" / folder) not in sys.path:
            sys.path.insert(0, str(REPO / "tests" / folder))
    from model_update_probe import measure_model_update as probe  # type: ignore[import-not-found]

    root = Path(f"/tmp/edgeml-bmu-{uuid.uuid4().hex[:8]}")
    root.mkdir()
    try:
        figures: dict[str, Any] = probe(root)
    finally:
        shutil.rmtree(root, ignore_errors=True)
    return figures


def _spread(values: list[float]) -> str:
    return f"{min(values):.1%} to {max(values):.1%}"


def run(console: Console, loads: list[Workload]) -> None:
    """Measures and prints the three tables (real sinks, cold start on the twins, model update)."""
    rows: list[SinkRow] = []
    starts: list[ColdStarts] = []
    for load in loads:
        for batch in (1, 32) if load.name == "digits" else (1,):
            with console.status(f"{load.name}: batch {batch}, sinks against the twins"):
                rows.append(measure_real_sinks(load, batch))
        if load.name == "digits":  # faster than the destinations: back-pressure instead of shedding
            with console.status(f"{load.name}: batch 32, SinkFullWaitMs {FULL_WAIT_MS}"):
                rows.append(measure_real_sinks(load, 32, SinkFullWaitMs=FULL_WAIT_MS))
        with console.status(f"{load.name}: cold start on the twins"):
            starts.append(measure_cold_starts(load))
    with console.status("model update on the twins"):
        update = measure_model_update()

    sinks = Table(
        title="Result sinks: no-op vs real against the IPC and Stream Manager twins (recipe defaults, "
        "results stream flush_on_write; throughput lost vs the same app without sinks, medians over "
        "interleaved rounds)"
    )
    for column in (
        "model", "batch", "no sinks samples/s", "no-op sinks samples/s", "real sinks samples/s",
        "no-op share", "no-op spread", "real share", "real spread", "real: shed / round",
    ):  # fmt: skip
        sinks.add_column(column, justify="left" if column == "model" else "right")
    for row in rows:
        sinks.add_row(
            row.model,
            str(row.batch),
            f"{_median(list(row.plain)):,.0f}",
            f"{_median(list(row.no_op)):,.0f}",
            f"{_median(list(row.real)):,.0f}",
            f"{max(0.0, _median(row.no_op_shares)):.1%}",
            _spread(row.no_op_shares),
            f"{max(0.0, _median(row.real_shares)):.1%}",
            _spread(row.real_shares),
            f"{_median([float(count) for count in row.real_dropped]):,.0f}" if row.real_dropped else "-",
        )
    console.print(sinks)
    cold = Table(title=f"Cold start: spawn -> first HTTP answer, median of {COLD_STARTS} (interleaved)")
    for column in ("model", "off a device s", "on the twins s", "on the twins, each s"):
        cold.add_column(column, justify="left" if column == "model" else "right")
    for start in starts:
        cold.add_row(
            start.model,
            f"{_median(list(start.off_device_s)):.2f}",
            f"{_median(list(start.on_twins_s)):.2f}",
            ", ".join(f"{value:.2f}" for value in start.on_twins_s),
        )
    console.print(cold)
    lost_files = update["files_lost"]
    http = (
        f"{update['http_answered']} requests, each answered ({update['http_retries']} retries of 503/refused)"
    )
    console.print(
        "Model update (PreComponentUpdateEvent, SIGTERM, Run with the new MODEL_DIR; inputs every 20 ms on "
        f"files, HTTP and topic): files lost {lost_files} of {update['files_written']}; HTTP {http}; "
        f"topic: {update['topic_delivered']} delivered, {update['topic_answered']} answered, "
        f"{update['topic_undelivered_during_restart']} published while no app ran (undelivered); "
        f"gap without HTTP answers {update['gap_without_http_answers_s']:.2f} s "
        f"({'MET' if update['gap_without_http_answers_s'] < 1.0 else 'NOT MET'}, target < 1 s)"
    )
    for row in rows:
        share = max(0.0, _median(row.real_shares))
        shed = f"{_median([float(count) for count in row.real_dropped]):,.0f}" if row.real_dropped else "0"
        console.print(
            f"{row.model} batch {row.batch}: real sink share {share:.1%} "
            f"({'MET' if share <= TARGET_SINK_SHARE else 'NOT MET'}, target <= {TARGET_SINK_SHARE:.0%}); "
            f"results shed by the real sinks (SinkQueueSize full), median per round: {shed}"
        )
    for start in starts:
        on_twins = _median(list(start.on_twins_s))
        console.print(
            f"{start.model}: cold start on the twins {on_twins:.2f} s "
            f"({'MET' if on_twins < TARGET_COLD_START_S else 'NOT MET'}, "
            f"target < {TARGET_COLD_START_S:.0f} s)"
        )

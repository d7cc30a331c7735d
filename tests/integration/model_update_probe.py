"""A model update as the nucleus does it, on the twins, with inputs arriving throughout (issue 11 item 3).

What `test_inference_model_update.py` asserts and `benchmarks inference` reports. The sequence is the
nucleus's: PreComponentUpdateEvent (the app answers once its in-flight batch ends), SIGTERM (the app answers
what is queued and exits 0), the Run step again with the new MODEL_DIR. Inputs every RATE_S on each of: files
into the input folder, HTTP requests (a client that retries on 503 and on a refused connection, as
Retry-After asks) and local topic messages.
"""

from __future__ import annotations

import contextlib
import http.client
import itertools
import json
import threading
import time
from pathlib import Path
from typing import Any

from inference_rig import COMPONENT, Rig, holdout, png, wait_for, write_model_dir

from edgeml.twin.loopback import free_port

RATE_S = 0.02


class ModelUpdateBroken(Exception):
    """The update did not go as the nucleus expects (a deferral, a non-zero exit)."""


def post(port: int, body: bytes) -> tuple[int, dict[str, object]] | None:
    try:
        connection = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
        connection.request("POST", "/v1/infer", body=body)
        response = connection.getresponse()
        answer = response.status, json.loads(response.read())
        connection.close()
        return answer
    except (OSError, http.client.HTTPException):
        return None  # not listening (the app is restarting): retry


def measure_model_update(root: Path) -> dict[str, Any]:
    """Runs one model update 1.0.0 -> 1.1.0 under load; what was lost and how long nothing answered.

    `root` should be short (Unix socket and store paths)."""
    port = free_port()
    rig = Rig(root, ModelDirectory="", HttpPort=port, Mode="microbatch", MaxWaitMs=2)
    for version in ("1.0.0", "1.1.0"):
        write_model_dir(rig.model_root / version / "linux-amd64", version=version)
    results_topic = rig.listen("edgeml/inference/results")
    x, _ = holdout()
    image = png(x[0])
    stop = threading.Event()
    http_answers: list[tuple[float, str]] = []
    http_retries = [0]
    files_written: list[str] = []
    topic_sent = [0, 0]  # published, delivered to a subscriber

    def http_client() -> None:
        while not stop.is_set():
            while True:
                answer = post(port, image)
                if answer is not None and answer[0] == 200:
                    http_answers.append((time.monotonic(), str(answer[1]["model_version"])))
                    break
                http_retries[0] += 1
                time.sleep(RATE_S)
            time.sleep(RATE_S)

    def file_writer() -> None:
        inputs = rig.work / "input"
        inputs.mkdir(parents=True, exist_ok=True)
        while not stop.is_set():
            name = f"f{len(files_written):05d}.png"
            (inputs / f"{name}.tmp").write_bytes(image)
            (inputs / f"{name}.tmp").rename(inputs / name)
            files_written.append(name)
            time.sleep(RATE_S)

    def topic_publisher() -> None:
        while not stop.is_set():
            topic_sent[0] += 1
            topic_sent[1] += rig.ipc.publish_local("edgeml/inference/input", image)
            time.sleep(RATE_S)

    def model_dir(version: str) -> str:
        return str(rig.model_root / version / "linux-amd64")

    done = rig.work / "input" / "done"
    try:
        first = rig.spawn(MODEL_DIR=model_dir("1.0.0"))
        wait_for(lambda: post(port, image) is not None, 30, "the app on 1.0.0")
        feeders = [threading.Thread(target=f) for f in (http_client, file_writer, topic_publisher)]
        for feeder in feeders:
            feeder.start()
        time.sleep(1.0)
        # the nucleus: PreComponentUpdateEvent, then stop (SIGTERM), then Run with the new Setenv
        announced = time.monotonic()
        deferrals = rig.ipc.announce_component_update("d-1", {"com.edgeml.model.Digits": "1.1.0"}, 10)
        if deferrals != []:
            raise ModelUpdateBroken(f"the app deferred the update: {deferrals}")
        stopping = time.monotonic()
        first.terminate()
        if (status := first.wait(30)) != 0:
            raise ModelUpdateBroken(f"the app exited {status} on SIGTERM (expected 0)")
        rig.spawn(MODEL_DIR=model_dir("1.1.0"))
        wait_for(lambda: any(version == "1.1.0" for _, version in http_answers), 30, "answers from 1.1.0")
        time.sleep(1.0)
        stop.set()
        for feeder in feeders:
            feeder.join(30)
        wait_for(
            lambda: all((done / name).exists() for name in files_written), 30, "every file answered in done/"
        )

        def topic_answered() -> int:
            return sum(1 for message in list(results_topic) if b'"source":"topic:' in message)

        # one message can be in flight on the subscription as the stopping app closes it: the twin counted
        # it delivered when it wrote it, the closing client drops it (so would a nucleus)
        with contextlib.suppress(AssertionError):
            wait_for(lambda: topic_answered() >= topic_sent[1], 10, "every delivered topic input answered")
        topic_answers = topic_answered()
        reported = rig.ipc.reported_states(COMPONENT)
    finally:
        stop.set()
        rig.stop()

    times = [stamp for stamp, _ in http_answers]
    gap = max(later - earlier for earlier, later in itertools.pairwise(times))
    last_old = max(stamp for stamp, version in http_answers if version == "1.0.0")
    first_new = min(stamp for stamp, version in http_answers if version == "1.1.0")
    return {
        "pre_update_event_answered_s": round(stopping - announced, 3),
        "files_written": len(files_written),
        "files_lost": sum(1 for name in files_written if not (done / name).exists()),
        "http_answered": len(http_answers),
        "http_retries": http_retries[0],
        "topic_published": topic_sent[0],
        "topic_undelivered_during_restart": topic_sent[0] - topic_sent[1],
        "topic_delivered": topic_sent[1],
        "topic_answered": topic_answers,
        "topic_answered_shutting_down": sum(1 for m in results_topic if b'"reason":"shutting_down"' in m),
        "gap_without_http_answers_s": round(gap, 3),
        "sigterm_to_first_new_answer_s": round(first_new - stopping, 3),
        "last_old_to_first_new_answer_s": round(first_new - last_old, 3),
        "reported_states": reported,
    }

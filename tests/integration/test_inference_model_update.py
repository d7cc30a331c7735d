"""Issue 11 item 3: a model update as the nucleus really does it, measured on the twins.

The model is a HARD dependency and MODEL_DIR (Setenv) holds the model component's versioned artifact path,
so a new model version changes the app's interpolated lifecycle and the nucleus restarts the app
(NUC lifecyclemanager/GenericExternalService: a change under lifecycle or setenv -> requestRestart; a HARD
dependency leaving RUNNING/FINISHED also restarts its dependents, GreengrassService). The sequence here is
the nucleus's: PreComponentUpdateEvent (the app answers once its in-flight batch ends), SIGTERM (the app
answers what is queued and exits 0), the Run step again with the new MODEL_DIR.

While it happens, inputs keep coming: files into the input folder, HTTP requests (a client that retries on
503 and on a refused connection, as Retry-After asks), and local topic messages. Nothing accepted is lost:
every file ends in done/, every HTTP request is answered, every topic message the app received is answered
(one that reaches the stopping app gets `shutting_down`; pub/sub keeps nothing for a component that is not
running: those the twin could not deliver are counted).
The gap without answers is measured (printed, not asserted: a figure, not a test).
"""

from __future__ import annotations

import contextlib
import http.client
import itertools
import json
import shutil
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from inference_rig import COMPONENT, Rig, holdout, png, wait_for, write_model_dir

from edgeml.twin.loopback import free_port

pytestmark = pytest.mark.slow
RATE_S = 0.02


@pytest.fixture()
def short_root() -> Iterator[Path]:
    root = Path(f"/tmp/edgeml-mu-{uuid.uuid4().hex[:8]}")
    root.mkdir()
    yield root
    shutil.rmtree(root, ignore_errors=True)


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


def test_a_model_update_restart_loses_no_input(short_root: Path) -> None:
    port = free_port()
    rig = Rig(short_root, ModelDirectory="", HttpPort=port, Mode="microbatch", MaxWaitMs=2)
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

    try:
        first = rig.spawn(MODEL_DIR=model_dir("1.0.0"))
        wait_for(lambda: post(port, image) is not None, 30, "the app on 1.0.0")
        feeders = [threading.Thread(target=f) for f in (http_client, file_writer, topic_publisher)]
        for feeder in feeders:
            feeder.start()
        time.sleep(1.0)
        # the nucleus: PreComponentUpdateEvent, then stop (SIGTERM), then Run with the new Setenv
        announced = time.monotonic()
        assert rig.ipc.announce_component_update("d-1", {"com.edgeml.model.Digits": "1.1.0"}, 10) == []
        stopping = time.monotonic()
        print(f"PreComponentUpdateEvent answered in {stopping - announced:.3f} s")
        first.terminate()
        assert first.wait(30) == 0
        rig.spawn(MODEL_DIR=model_dir("1.1.0"))
        wait_for(lambda: any(version == "1.1.0" for _, version in http_answers), 30, "answers from 1.1.0")
        time.sleep(1.0)
        stop.set()
        for feeder in feeders:
            feeder.join(30)
        done = rig.work / "input" / "done"
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
    finally:
        stop.set()
        rig.stop()

    times = [stamp for stamp, _ in http_answers]
    gap = max(later - earlier for earlier, later in itertools.pairwise(times))
    last_old = max(stamp for stamp, version in http_answers if version == "1.0.0")
    first_new = min(stamp for stamp, version in http_answers if version == "1.1.0")
    figures = {
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
    }
    print("model update:", json.dumps(figures))
    assert figures["files_lost"] == 0
    assert topic_sent[1] - 1 <= topic_answers <= topic_sent[1]
    assert rig.ipc.reported_states(COMPONENT) == []

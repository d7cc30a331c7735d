"""Stream Manager twin: append throughput with the real SDK client vs the same appends straight to a file.

1 KiB messages, Persistence.File, the server in its own process (as on a device). Every acknowledged
append is on disk (fsync) before the client gets its sequence number; concurrent appends share one
fsync per round (group commit). The raw-file rows write the same messages to one file from one thread:
write+flush+fsync per message (the same durability, the limit for one writer) and write+flush only.
Client load comes from P processes with C client threads each (the SDK client holds the GIL for most of
an append, so one process cannot drive the server hard). Each client does one synchronous
append_message after the other, so throughput is clients / round-trip time until the CPUs are full:
8x4 (eight appending components with four threads each) is the layout that fills both cores here.
"""

from __future__ import annotations

import multiprocessing
import os
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psutil
from rich.console import Console
from rich.table import Table
from stream_manager import MessageStreamDefinition, Persistence, StrategyOnFull, StreamManagerClient

from edgeml.twin.device.streammanager.process import StreamManagerProcess

MESSAGE = os.urandom(1024)
RAW_MESSAGES = 5_000
CLIENT_MESSAGES = 9_600  # divisible by every layout's client count
LAYOUTS = ((1, 1), (1, 8), (4, 4), (8, 4))  # (client processes, clients per process)
TARGET_RATE = 5_000
TARGET_RATIO = 0.3


@dataclass(frozen=True)
class Measurement:
    """One run: messages in seconds, and CPU time per message in the server and in the clients."""

    label: str
    messages: int
    seconds: float
    server_cpu_us: float | None = None
    client_cpu_us: float | None = None

    @property
    def rate(self) -> float:
        return self.messages / self.seconds


def raw_file(directory: Path, fsync: bool) -> Measurement:
    path = directory / f"raw-{'fsync' if fsync else 'flush'}.log"
    with open(path, "ab") as handle:
        started = time.perf_counter()
        for _ in range(RAW_MESSAGES):
            handle.write(MESSAGE)
            handle.flush()
            if fsync:
                os.fsync(handle.fileno())
        elapsed = time.perf_counter() - started
    return Measurement("raw file, fsync each" if fsync else "raw file, no fsync", RAW_MESSAGES, elapsed)


def _client_process(
    port: int, token: str, stream: str, threads: int, count: int, barrier: Any, out: Any
) -> None:
    """One client process: `threads` clients, each appending `count` messages after the barrier."""
    os.environ["AWS_CONTAINER_AUTHORIZATION_TOKEN"] = token
    clients = [StreamManagerClient(port=port) for _ in range(threads)]

    def append_all(client: StreamManagerClient) -> None:
        for _ in range(count):
            client.append_message(stream, MESSAGE)

    workers = [threading.Thread(target=append_all, args=(client,)) for client in clients]
    barrier.wait()
    started, cpu_started = time.monotonic(), time.process_time()
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    out.put((started, time.monotonic(), time.process_time() - cpu_started))
    for client in clients:
        client.close()


def twin_appends(server: StreamManagerProcess, processes: int, threads: int) -> Measurement:
    """Appends from `processes` client processes with `threads` clients each; wall time and CPU per append."""
    stream = f"bench-{processes}x{threads}"
    with StreamManagerClient(port=server.port) as admin:
        admin.create_message_stream(
            MessageStreamDefinition(
                name=stream, persistence=Persistence.File, strategy_on_full=StrategyOnFull.OverwriteOldestData
            )
        )
    context = multiprocessing.get_context("spawn")
    barrier, out = context.Barrier(processes + 1), context.Queue()
    per_client = CLIENT_MESSAGES // (processes * threads)
    children = [
        context.Process(
            target=_client_process,
            args=(server.port, server.auth_token, stream, threads, per_client, barrier, out),
        )
        for _ in range(processes)
    ]
    for child in children:
        child.start()
    server_process = psutil.Process(server.pid)
    barrier.wait()
    cpu_before = sum(server_process.cpu_times()[:2])
    spans = [out.get(timeout=300) for _ in children]
    cpu_after = sum(server_process.cpu_times()[:2])
    for child in children:
        child.join()
    elapsed = max(end for _, end, _ in spans) - min(start for start, _, _ in spans)
    messages = per_client * processes * threads
    return Measurement(
        f"twin {processes}x{threads}",
        messages,
        elapsed,
        server_cpu_us=(cpu_after - cpu_before) / messages * 1e6,
        client_cpu_us=sum(cpu for _, _, cpu in spans) / messages * 1e6,
    )


def main() -> None:
    console = Console()
    with tempfile.TemporaryDirectory(prefix="bench-sm-") as scratch:
        directory = Path(scratch)
        raw_fsync = raw_file(directory, fsync=True)
        raw_flush = raw_file(directory, fsync=False)
        token = "bench-token"
        os.environ["AWS_CONTAINER_AUTHORIZATION_TOKEN"] = token
        with StreamManagerProcess(directory / "store", token) as server:
            twin = [twin_appends(server, processes, threads) for processes, threads in LAYOUTS]

    table = Table(title="Stream Manager twin: append throughput, 1 KiB messages, Persistence.File")
    for column in ("run", "msgs", "s", "msg/s", "x fsync", "x no-fsync", "server µs", "client µs"):
        table.add_column(column, justify="left" if column == "run" else "right")
    for row in (raw_fsync, raw_flush, *twin):
        table.add_row(
            row.label,
            f"{row.messages:,}",
            f"{row.seconds:.2f}",
            f"{row.rate:,.0f}",
            f"{row.rate / raw_fsync.rate:.2f}",
            f"{row.rate / raw_flush.rate:.3f}",
            "" if row.server_cpu_us is None else f"{row.server_cpu_us:.0f}",
            "" if row.client_cpu_us is None else f"{row.client_cpu_us:.0f}",
        )
    console.print(table)
    console.print(
        "twin PxC: P client processes x C StreamManagerClient threads; each append fsynced before its ack "
        "(group commit). x fsync / x no-fsync: rate over the raw-file rows. server/client µs: CPU time per "
        "append in the server process / in the client processes."
    )
    best = max(twin, key=lambda m: m.rate)
    ratio = best.rate / raw_fsync.rate
    cpu_per_append = (best.server_cpu_us or 0) + (best.client_cpu_us or 0)
    cpus = os.cpu_count() or 1
    console.print(
        f"target append >= {TARGET_RATE:,} msg/s: {'met' if best.rate >= TARGET_RATE else 'NOT met'} "
        f"(best {best.rate:,.0f} msg/s, {best.label})"
    )
    console.print(
        f"target >= {TARGET_RATIO}x the raw-file rate at the same durability (fsync each message): "
        f"{'met' if ratio >= TARGET_RATIO else 'NOT met'} ({ratio:.2f}x); "
        f"vs. writes without fsync: {best.rate / raw_flush.rate:.3f}x"
    )
    console.print(
        f"CPU ceiling on this machine: {cpus} CPUs / {cpu_per_append:.0f} µs CPU per append (server + SDK "
        f"client) = {cpus / cpu_per_append * 1e6:,.0f} msg/s with every core busy and nothing else running"
    )


if __name__ == "__main__":
    main()

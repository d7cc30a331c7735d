"""Group commit: appends pending at the same time share an fsync and become readable only after it."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

from stream_manager import MessageStreamDefinition, StrategyOnFull

from edgeml.twin.device.streammanager.store.commit import GroupCommitter
from edgeml.twin.device.streammanager.store.segments import FileSegment
from edgeml.twin.device.streammanager.store.stream import MessageStream


def test_concurrent_appends_share_fsyncs_and_are_visible_after_them(tmp_path: Path) -> None:
    definition = MessageStreamDefinition(
        name="s", strategy_on_full=StrategyOnFull.RejectNewData, flush_on_write=True
    )

    async def run() -> tuple[GroupCommitter, list[int], int, int]:
        stream = MessageStream(definition, [], lambda first: FileSegment.create(tmp_path, first), time.time)
        committer = GroupCommitter()

        async def append(payload: bytes) -> int:
            sequence_number = stream.append(payload)
            await committer.durable(stream)
            return sequence_number

        tasks = [asyncio.create_task(append(f"m{n}".encode())) for n in range(50)]
        await asyncio.sleep(0)
        visible_before = stream.available_from(0)
        sequence_numbers = await asyncio.gather(*tasks)
        return committer, sequence_numbers, visible_before, stream.available_from(0)

    committer, sequence_numbers, visible_before, visible_after = asyncio.run(run())
    assert sequence_numbers == list(range(50))
    assert visible_before == 0
    assert visible_after == 50
    assert committer.appends == 50
    assert committer.rounds <= 2
    (segment,) = tmp_path.glob("*.log")
    assert segment.stat().st_size > 50 * 2


def _stream(tmp_path: Path) -> MessageStream:
    definition = MessageStreamDefinition(
        name="s", strategy_on_full=StrategyOnFull.RejectNewData, flush_on_write=True
    )
    return MessageStream(definition, [], lambda first: FileSegment.create(tmp_path, first), time.time)


def test_a_lone_appender_is_never_held_back(tmp_path: Path) -> None:
    async def run() -> float:
        stream, committer = _stream(tmp_path), GroupCommitter(commit_delay_s=5.0)
        started = time.monotonic()
        for n in range(20):
            stream.append(b"m%d" % n)
            done = asyncio.get_running_loop().create_future()
            committer.after_durable(stream, done.set_result, appender="only")
            assert await done is None
        return time.monotonic() - started

    assert asyncio.run(run()) < 2.0


def test_a_round_waits_briefly_for_the_other_active_appenders(tmp_path: Path) -> None:
    async def run() -> tuple[GroupCommitter, float]:
        stream, committer = _stream(tmp_path), GroupCommitter(commit_delay_s=0.3, active_window_s=10.0)
        for appender in ("a", "b"):  # both appended lately
            stream.append(appender.encode())
            await _durable(committer, stream, appender)
        rounds_before = committer.rounds
        started = time.monotonic()
        stream.append(b"a2")
        first = asyncio.ensure_future(_durable(committer, stream, "a"))
        await asyncio.sleep(0.05)
        stream.append(b"b2")
        await asyncio.gather(first, _durable(committer, stream, "b"))
        assert committer.rounds == rounds_before + 1  # one fsync for both
        assert time.monotonic() - started < 0.25  # released when b arrived, not at the delay

        stream.append(b"a3")  # b does not come back: the round goes after the delay
        started = time.monotonic()
        await _durable(committer, stream, "a")
        return committer, time.monotonic() - started

    committer, waited = asyncio.run(run())
    assert 0.25 <= waited < 2.0
    assert committer.appends == 5


async def _durable(committer: GroupCommitter, stream: MessageStream, appender: str) -> None:
    done: asyncio.Future[OSError | None] = asyncio.get_running_loop().create_future()
    committer.after_durable(stream, done.set_result, appender=appender)
    assert await done is None

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
    definition = MessageStreamDefinition(name="s", strategy_on_full=StrategyOnFull.RejectNewData)

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

"""The commit gate: a transaction commit never lands between the steps of a flush."""

from __future__ import annotations

import asyncio

from faustapp.producing import CommitGate, commit_gate


async def _step(log: list[str], name: str) -> None:
    log.append(name)
    await asyncio.sleep(0)


def test_commit_waits_for_a_flush_in_progress_and_holds_new_ones() -> None:
    async def scenario() -> list[str]:
        gate, log = CommitGate(), []
        flush_started = asyncio.Event()

        async def flush(name: str, steps: int) -> None:
            async with gate.flushing():
                flush_started.set()
                for i in range(steps):
                    await _step(log, f"{name}{i}")

        async def commit() -> None:
            await flush_started.wait()
            async with gate.committing():
                await _step(log, "commit")
                await asyncio.sleep(0.01)
                log.append("commit-done")

        async def late_flush() -> None:
            await flush_started.wait()
            await asyncio.sleep(0)  # after the commit asked for the gate
            await flush("late", 2)

        await asyncio.gather(flush("first", 5), commit(), late_flush())
        return log

    log = asyncio.run(scenario())
    commit_at, done_at = log.index("commit"), log.index("commit-done")
    assert log.index("first4") < commit_at, log  # the flush in progress finished first
    assert all(not entry.startswith("first") for entry in log[commit_at:]), log
    assert log.index("late0") > done_at, log  # the flush that came later waited


def test_flushes_do_not_wait_for_each_other() -> None:
    async def scenario() -> list[str]:
        gate, log = CommitGate(), []

        async def flush(name: str) -> None:
            async with gate.flushing():
                for i in range(3):
                    await _step(log, f"{name}{i}")

        await asyncio.gather(flush("a"), flush("b"))
        return log

    log = asyncio.run(scenario())
    assert log[:2] == ["a0", "b0"], log  # interleaved, not serialised


def test_a_failed_commit_reopens_the_gate() -> None:
    async def scenario() -> bool:
        gate = CommitGate()
        try:
            async with gate.committing():
                raise RuntimeError("broker refused")
        except RuntimeError:
            pass
        async with asyncio.timeout(1):
            async with gate.flushing():
                return True

    assert asyncio.run(scenario())


def test_one_gate_per_app() -> None:
    class App:
        pass

    first, second = App(), App()
    assert commit_gate(first) is commit_gate(first)
    assert commit_gate(first) is not commit_gate(second)

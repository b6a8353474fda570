"""ReadBatcher: reads asked for in one event-loop pass become one fetch; nobody waits forever."""

import asyncio

import pytest

from server.read_batching import ReadBatcher


class Table:
    """A keyed source that records every fetch it is asked for."""

    def __init__(self, rows: dict, fail: Exception | None = None, delay: float = 0.0):
        self.rows = rows
        self.fail = fail
        self.delay = delay
        self.fetches: list[list] = []

    async def fetch_many(self, keys: list) -> dict:
        self.fetches.append(list(keys))
        found = {key: self.rows[key] for key in keys if key in self.rows}  # read when sent
        await asyncio.sleep(self.delay)
        if self.fail is not None:
            raise self.fail
        return found


@pytest.mark.gen_test
async def test_reads_of_one_pass_are_one_fetch_and_each_gets_its_own_value():
    table = Table({f"k{i}": i for i in range(10)})
    reads = ReadBatcher(table.fetch_many)
    values = await asyncio.gather(*(reads.get(f"k{i}") for i in range(10)), reads.get("missing"))
    assert values == list(range(10)) + [None]
    assert len(table.fetches) == 1
    assert sorted(table.fetches[0]) == sorted([f"k{i}" for i in range(10)] + ["missing"])


@pytest.mark.gen_test
async def test_the_same_key_read_twice_in_a_pass_is_fetched_once():
    table = Table({"a": {"n": 1}})
    reads = ReadBatcher(table.fetch_many)
    first, second = await asyncio.gather(reads.get("a"), reads.get("a"))
    assert first == second == {"n": 1}
    assert table.fetches == [["a"]]


@pytest.mark.gen_test
async def test_a_read_asked_for_later_is_not_served_by_a_fetch_already_sent():
    # Freshness: the second read comes after the row changed, so it must see the change even
    # though the first fetch is still in flight when it is asked for.
    table = Table({"a": "old"}, delay=0.05)
    reads = ReadBatcher(table.fetch_many)
    first = asyncio.ensure_future(reads.get("a"))
    await asyncio.sleep(0.01)  # the first fetch has been sent
    table.rows["a"] = "new"
    second = await reads.get("a")
    assert (await first, second) == ("old", "new")
    assert table.fetches == [["a"], ["a"]]


@pytest.mark.gen_test
async def test_large_passes_are_split_into_batches_of_at_most_max_batch():
    table = Table({i: i for i in range(25)})
    reads = ReadBatcher(table.fetch_many, max_batch=10)
    assert await asyncio.gather(*(reads.get(i) for i in range(25))) == list(range(25))
    assert [len(keys) for keys in table.fetches] == [10, 10, 5]


@pytest.mark.gen_test
async def test_a_failed_fetch_fails_every_read_of_its_batch_and_the_next_pass_works():
    table = Table({"a": 1, "b": 2}, fail=ConnectionError("store down"))
    reads = ReadBatcher(table.fetch_many)
    results = await asyncio.gather(reads.get("a"), reads.get("b"), reads.get("a"),
                                   return_exceptions=True)
    assert [type(r) for r in results] == [ConnectionError] * 3
    table.fail = None
    assert await asyncio.gather(reads.get("a"), reads.get("b")) == [1, 2]


@pytest.mark.gen_test
async def test_a_cancelled_reader_does_not_disturb_the_others_of_its_batch():
    table = Table({"a": 1, "b": 2}, delay=0.02)
    reads = ReadBatcher(table.fetch_many)
    cancelled = asyncio.ensure_future(reads.get("a"))
    kept_same_key = asyncio.ensure_future(reads.get("a"))
    kept = asyncio.ensure_future(reads.get("b"))
    await asyncio.sleep(0.005)
    cancelled.cancel()
    assert (await kept_same_key, await kept) == (1, 2)
    assert cancelled.cancelled()


@pytest.mark.gen_test
async def test_readers_are_released_when_the_fetch_itself_is_cancelled():
    # E.g. the loop closing under a batch in flight: no reader may hang on it.
    table = Table({"a": 1}, delay=10)
    reads = ReadBatcher(table.fetch_many)
    reader = asyncio.ensure_future(reads.get("a"))
    await asyncio.sleep(0.01)
    (batch,) = reads._tasks
    batch.cancel()
    with pytest.raises(asyncio.CancelledError):
        await asyncio.wait_for(reader, 1)

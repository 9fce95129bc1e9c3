from __future__ import annotations

import asyncio
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest

from emotions.batcher import BatcherClosed, MicroBatcher, Overloaded
from emotions.fake import FakeClassifier


def faces(n: int, seed: int) -> np.ndarray:
    return np.random.default_rng(seed).random((n, 48, 48, 1), dtype=np.float32)


class GatedClassifier(FakeClassifier):
    """The fake, holding its first batch until the test opens the gate."""

    def __init__(self) -> None:
        super().__init__()
        self.entered = threading.Event()
        self.gate = threading.Event()

    def predict(self, batch: np.ndarray) -> np.ndarray:
        if not self.entered.is_set():
            self.entered.set()
            assert self.gate.wait(10)
        return super().predict(batch)


@pytest.fixture
def gated():
    classifier = GatedClassifier()
    yield classifier
    classifier.gate.set()


def occupy(batcher: MicroBatcher, classifier: GatedClassifier):
    """Submit one face and wait until the worker is busy with it."""
    future = batcher.submit(faces(1, seed=999))
    assert classifier.entered.wait(5)
    return future


def test_it_merges_calls_made_while_busy_into_one_batch(gated):
    with MicroBatcher(gated, max_batch=32, max_wait_ms=2, queue_size=64) as batcher:
        first = occupy(batcher, gated)
        futures = [batcher.submit(faces(1, seed=i)) for i in range(8)]

        gated.gate.set()
        results = [future.result(5) for future in [first, *futures]]

    assert gated.batch_sizes == [1, 8]
    assert all(result.shape == (1, 7) for result in results)
    assert batcher.stats.batches == 2 and batcher.stats.faces == 9


def test_it_gives_each_caller_its_own_rows(gated):
    requests = [faces(n, seed=n) for n in (1, 3, 2, 5)]

    with MicroBatcher(gated, max_batch=32, max_wait_ms=2, queue_size=64) as batcher:
        occupy(batcher, gated)
        futures = [batcher.submit(request) for request in requests]
        gated.gate.set()
        results = [future.result(5) for future in futures]

    assert gated.batch_sizes == [1, 11]
    for request, result in zip(requests, results, strict=True):
        np.testing.assert_allclose(result, FakeClassifier().predict(request), rtol=1e-6)


def test_it_keeps_concurrent_threads_results_apart():
    classifier = FakeClassifier(delay_s=0.005)

    with MicroBatcher(classifier, max_batch=16, max_wait_ms=5, queue_size=256) as batcher:
        with ThreadPoolExecutor(16) as pool:
            results = list(pool.map(lambda seed: batcher.classify_sync(faces(2, seed)), range(64)))

    for seed, result in enumerate(results):
        np.testing.assert_allclose(result, FakeClassifier().predict(faces(2, seed)), rtol=1e-6)
    assert len(classifier.batch_sizes) < 64


async def test_it_merges_concurrent_asyncio_callers():
    classifier = FakeClassifier(delay_s=0.02)

    with MicroBatcher(classifier, max_batch=32, max_wait_ms=5, queue_size=64) as batcher:
        results = await asyncio.gather(*(batcher.classify(faces(1, seed)) for seed in range(16)))

    for seed, result in enumerate(results):
        np.testing.assert_allclose(result, FakeClassifier().predict(faces(1, seed)), rtol=1e-6)
    assert len(classifier.batch_sizes) <= 3


def test_it_never_runs_more_than_the_maximum_batch(gated):
    with MicroBatcher(gated, max_batch=8, max_wait_ms=2, queue_size=64) as batcher:
        occupy(batcher, gated)
        futures = [batcher.submit(faces(1, seed=i)) for i in range(19)]
        gated.gate.set()
        for future in futures:
            future.result(5)

    assert gated.batch_sizes == [1, 8, 8, 3]


def test_it_splits_one_request_larger_than_the_maximum_batch():
    classifier = FakeClassifier()
    big = faces(20, seed=1)

    with MicroBatcher(classifier, max_batch=8, max_wait_ms=0, queue_size=4) as batcher:
        result = batcher.classify_sync(big)

    np.testing.assert_allclose(result, FakeClassifier().predict(big), rtol=1e-6)
    assert classifier.batch_sizes == [8, 8, 4]


def test_it_refuses_when_its_queue_is_full(gated):
    with MicroBatcher(gated, max_batch=32, max_wait_ms=2, queue_size=2) as batcher:
        occupy(batcher, gated)
        waiting = [batcher.submit(faces(1, seed=i)) for i in range(2)]

        with pytest.raises(Overloaded):
            batcher.submit(faces(1, seed=3))

        gated.gate.set()
        assert all(future.result(5).shape == (1, 7) for future in waiting)
        assert batcher.stats.rejected == 1
        assert batcher.classify_sync(faces(1, seed=4)).shape == (1, 7)


def test_it_does_not_make_a_lone_caller_wait():
    with MicroBatcher(FakeClassifier(), max_batch=32, max_wait_ms=500, queue_size=8) as batcher:
        batcher.classify_sync(faces(1, seed=0))
        started = time.perf_counter()
        for seed in range(3):
            batcher.classify_sync(faces(1, seed))
            time.sleep(0.6)
        elapsed = time.perf_counter() - started - 3 * 0.6

    assert elapsed < 0.5


def test_it_hands_a_failure_to_every_caller_of_the_batch_and_carries_on(gated):
    calls = 0

    def flaky(batch: np.ndarray) -> np.ndarray:
        nonlocal calls
        calls += 1
        if calls == 2:
            raise RuntimeError("the model fell over")
        return gated.predict(batch)

    with MicroBatcher(flaky, max_batch=32, max_wait_ms=2, queue_size=16) as batcher:
        occupy(batcher, gated)
        futures = [batcher.submit(faces(1, seed=i)) for i in range(3)]
        gated.gate.set()

        for future in futures:
            with pytest.raises(RuntimeError, match="fell over"):
                future.result(5)
        assert batcher.classify_sync(faces(1, seed=9)).shape == (1, 7)


async def test_it_drops_a_caller_that_gave_up(gated):
    with MicroBatcher(gated, max_batch=32, max_wait_ms=2, queue_size=16) as batcher:
        first = occupy(batcher, gated)
        abandoned = asyncio.ensure_future(batcher.classify(faces(5, seed=1)))
        kept = asyncio.ensure_future(batcher.classify(faces(1, seed=2)))
        await asyncio.sleep(0)
        abandoned.cancel()
        await asyncio.sleep(0.05)
        gated.gate.set()

        assert (await kept).shape == (1, 7)
        first.result(5)

    assert gated.batch_sizes == [1, 1]


def test_it_answers_no_faces_without_a_batch():
    classifier = FakeClassifier()

    with MicroBatcher(classifier) as batcher:
        result = batcher.classify_sync(np.zeros((0, 48, 48, 1), dtype=np.float32))

    assert result.shape == (0, 7)
    assert classifier.batch_sizes == []


def test_it_finishes_queued_work_when_closed_and_then_refuses(gated):
    batcher = MicroBatcher(gated, max_batch=2, max_wait_ms=2, queue_size=16)
    occupy(batcher, gated)
    futures = [batcher.submit(faces(1, seed=i)) for i in range(5)]
    gated.gate.set()

    batcher.close()

    assert all(future.result(0).shape == (1, 7) for future in futures)
    with pytest.raises(BatcherClosed):
        batcher.submit(faces(1, seed=0))


def test_it_refuses_faces_of_the_wrong_shape():
    with MicroBatcher(FakeClassifier()) as batcher, pytest.raises(ValueError):
        batcher.submit(np.zeros((1, 48, 48), dtype=np.float32))


def test_several_workers_run_batches_side_by_side_and_keep_each_callers_rows():
    inside, peak, lock = 0, 0, threading.Lock()
    both_inside = threading.Barrier(2, timeout=5)

    def predict(batch: np.ndarray) -> np.ndarray:
        nonlocal inside, peak
        with lock:
            inside += 1
            peak = max(peak, inside)
        both_inside.wait()  # only returns once two batches are being classified at the same time
        with lock:
            inside -= 1
        return np.repeat(batch.reshape(len(batch), -1)[:, :1], 7, axis=1)

    with MicroBatcher(predict, max_batch=1, max_wait_ms=0, workers=2) as batcher:
        first, second = batcher.submit(faces(1, seed=1)), batcher.submit(faces(1, seed=2))

        results = first.result(timeout=10), second.result(timeout=10)

    assert peak == 2
    assert results[0][0, 0] == pytest.approx(faces(1, seed=1)[0, 0, 0, 0])
    assert results[1][0, 0] == pytest.approx(faces(1, seed=2)[0, 0, 0, 0])


def test_a_lone_face_after_a_busy_spell_is_not_held_back_by_max_wait(gated):
    # Had it waited for company, max_wait (an hour) would outlast the result's generous timeout.
    # The busy spell: four faces queued together fill a batch, so they run without waiting either.
    with MicroBatcher(gated, max_batch=4, max_wait_ms=3_600_000, queue_size=64) as batcher:
        occupy(batcher, gated)
        together = [batcher.submit(faces(1, seed=i)) for i in range(4)]
        gated.gate.set()
        for future in together:
            future.result(10)

        alone = batcher.submit(faces(1, seed=7)).result(10)

    assert alone.shape == (1, 7)
    assert gated.batch_sizes == [1, 4, 1]


def test_faces_queued_together_wait_up_to_max_wait_for_more(gated):
    with MicroBatcher(gated, max_batch=32, max_wait_ms=400, queue_size=64) as batcher:
        occupy(batcher, gated)
        together = [batcher.submit(faces(1, seed=i)) for i in range(2)]
        gated.gate.set()
        # Arrives while the two queued ones gather stragglers (well within 400 ms, or it runs alone).
        time.sleep(0.02)
        late = batcher.submit(faces(1, seed=9))
        for future in [*together, late]:
            future.result(10)

    assert gated.batch_sizes[1] in (2, 3)
    assert sum(gated.batch_sizes) == 4


def test_an_inline_batcher_classifies_in_the_callers_thread_and_counts_it():
    classifier = FakeClassifier()
    threads = []

    def predict(batch):
        threads.append(threading.current_thread())
        return classifier.predict(batch)

    batcher = MicroBatcher(predict, max_batch=4, inline=True)
    probabilities = batcher.classify_sync(faces(6, 1))

    assert probabilities.shape == (6, 7)
    np.testing.assert_allclose(probabilities, classifier.predict(faces(6, 1)))
    assert threads == [threading.current_thread()] * 2  # in chunks of max_batch
    assert batcher.classify_sync(faces(0, 1)).shape == (0, 7)
    assert batcher.stats.as_dict()["faces"] == 6
    batcher.close()
    with pytest.raises(BatcherClosed):
        batcher.classify_sync(faces(1, 2))

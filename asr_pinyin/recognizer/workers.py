"""Stage workers: one thread per stage collects pending work from every stream and runs it as a batch.

A stream never calls a model itself. It submits a job (its state and its new input) with a
callback; the worker takes the first waiting job, keeps collecting for at most `max_wait_ms` or
until `max_batch` jobs, runs the stage's batch function once, and hands each result to its job's
callback (in the worker thread). With many streams the batches fill up and the per-stream cost
falls; with one stream the wait is the only price. A batch that raises is retried job by job, so
one bad stream fails alone and the others carry on. Jobs carry a priority (0 first): the end of
a segment goes ahead of routine partial work, so finals stay fast when the workers are busy.
"""
from __future__ import annotations

import itertools
import queue
import threading
import time
from dataclasses import dataclass, field
from typing import Any, Callable

from .stats import Histogram


@dataclass
class Job:
    payload: Any
    callback: Callable[[Any, BaseException | None], None]
    submitted: float = field(default_factory=time.monotonic)


class StageStopped(RuntimeError):
    """Work submitted to a stage that has been shut down."""


class StageWorker:
    """Runs `batch_fn(list_of_payloads) -> list_of_results` on batches in a thread of its own."""

    def __init__(self, name: str, batch_fn: Callable[[list], list], max_batch: int = 16,
                 max_wait_ms: float = 5.0, threads: int | None = None):
        self.name = name
        self.batch_fn = batch_fn
        self.max_batch = max(1, int(max_batch))
        self.max_wait = max(0.0, float(max_wait_ms)) / 1000.0
        self.threads = threads
        self._q: queue.PriorityQueue = queue.PriorityQueue()   # (priority, seq, Job | None)
        self._seq = itertools.count()
        self._stopped = False
        self._thread = threading.Thread(target=self._run, name=f"asr-{name}", daemon=True)
        self.batches = 0
        self.jobs = 0
        self.busy_seconds = 0.0
        self.batch_sizes = Histogram((1, 2, 4, 8, 16, 32, 64, 128))
        self.compute_ms = Histogram((1, 2, 5, 10, 20, 50, 100, 200, 500, 1000))
        self.queue_wait_ms = Histogram((1, 2, 5, 10, 20, 50, 100, 200, 500, 1000))
        self._thread.start()

    def submit(self, payload: Any, callback: Callable[[Any, BaseException | None], None],
               priority: int = 1) -> None:
        if self._stopped:
            raise StageStopped(f"{self.name} stage is shut down")
        self._q.put((priority, next(self._seq), Job(payload, callback)))

    @property
    def depth(self) -> int:
        return self._q.qsize()

    def stop(self, timeout: float = 10.0) -> None:
        """Finish the queued work, then end the thread."""
        if not self._stopped:
            self._stopped = True
            self._q.put((99, next(self._seq), None))  # after all queued work
        self._thread.join(timeout)

    def _run(self) -> None:
        if self.threads:
            import torch
            torch.set_num_threads(self.threads)
        stop = False
        while not stop:
            first = self._q.get()[2]
            if first is None:
                break
            batch = [first]
            deadline = time.monotonic() + self.max_wait
            while len(batch) < self.max_batch:
                try:
                    job = (self._q.get(timeout=max(0.0, deadline - time.monotonic()))
                           if self.max_wait else self._q.get_nowait())[2]
                except queue.Empty:
                    break
                if job is None:
                    stop = True
                    break
                batch.append(job)
            self._run_batch(batch)
        # drain whatever was submitted before stop (graceful shutdown finishes work)
        rest = []
        while True:
            try:
                job = self._q.get_nowait()[2]
            except queue.Empty:
                break
            if job is not None:
                rest.append(job)
        for i in range(0, len(rest), self.max_batch):
            self._run_batch(rest[i:i + self.max_batch])

    def _run_batch(self, batch: list[Job]) -> None:
        t0 = time.monotonic()
        for job in batch:
            self.queue_wait_ms.observe((t0 - job.submitted) * 1000)
        try:
            results = self.batch_fn([j.payload for j in batch])
            if len(results) != len(batch):
                raise RuntimeError(f"{self.name} stage returned {len(results)} results "
                                   f"for {len(batch)} jobs")
            pairs = [(r, None) for r in results]
        except Exception:
            pairs = []
            for job in batch:  # isolate the job that failed
                try:
                    pairs.append((self.batch_fn([job.payload])[0], None))
                except Exception as e:  # noqa: BLE001 - reported to that stream only
                    pairs.append((None, e))
        dt = time.monotonic() - t0
        self.batches += 1
        self.jobs += len(batch)
        self.busy_seconds += dt
        self.batch_sizes.observe(len(batch))
        self.compute_ms.observe(dt * 1000)
        for job, (result, err) in zip(batch, pairs):
            try:
                job.callback(result, err)
            except Exception:  # noqa: BLE001 - a broken callback must not kill the stage
                import logging
                logging.getLogger("asr_pinyin.recognizer").exception("%s callback failed", self.name)

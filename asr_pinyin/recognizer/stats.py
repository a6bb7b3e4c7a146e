"""Thread-safe counters and histograms the recognizer keeps; the server prints them for Prometheus."""
from __future__ import annotations

import bisect
import threading


class Histogram:
    """Cumulative-bucket histogram (Prometheus semantics: bucket i counts values <= bounds[i])."""

    def __init__(self, bounds):
        self.bounds = tuple(float(b) for b in bounds)
        self.counts = [0] * (len(self.bounds) + 1)  # last = +Inf
        self.sum = 0.0
        self.count = 0
        self._lock = threading.Lock()

    def observe(self, value: float) -> None:
        with self._lock:
            self.counts[bisect.bisect_left(self.bounds, value)] += 1
            self.sum += value
            self.count += 1

    def snapshot(self) -> tuple[list[tuple[str, int]], float, int]:
        """([(le, cumulative count)...], sum, count) with le as Prometheus writes it."""
        with self._lock:
            out, acc = [], 0
            for b, c in zip(self.bounds + (float("inf"),), self.counts):
                acc += c
                out.append(("+Inf" if b == float("inf") else f"{b:g}", acc))
            return out, self.sum, self.count

    def quantile(self, q: float) -> float:
        """Upper bucket bound holding the q-quantile (coarse; for logs, not for benchmarks)."""
        buckets, _, n = self.snapshot()
        if not n:
            return 0.0
        for le, c in buckets:
            if c >= q * n:
                return float("inf") if le == "+Inf" else float(le)
        return float("inf")

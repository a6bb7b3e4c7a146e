"""`GET /metrics`: the server's and recognizer's counters in Prometheus text format 0.0.4.

Written by hand (a page of text) rather than with prometheus_client, which would add a
dependency for a few dozen lines. Names follow Prometheus conventions (`_total` counters,
`_seconds` / `_bytes` units, histogram `_bucket{le}` / `_sum` / `_count`).
"""
from __future__ import annotations

import os
import resource
import time


def process_stats() -> tuple[float, int]:
    """(CPU seconds used by this process, resident memory in bytes) from the OS."""
    ru = resource.getrusage(resource.RUSAGE_SELF)
    rss = 0
    try:
        with open("/proc/self/statm") as f:
            rss = int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
    except OSError:
        rss = ru.ru_maxrss * 1024
    return ru.ru_utime + ru.ru_stime, rss


class _Writer:
    def __init__(self):
        self.lines: list[str] = []

    def metric(self, name: str, kind: str, help_: str, samples) -> None:
        self.lines.append(f"# HELP {name} {help_}")
        self.lines.append(f"# TYPE {name} {kind}")
        for labels, value in samples:
            self.lines.append(f"{name}{_labels(labels)} {_num(value)}")

    def histogram(self, name: str, help_: str, hists: list[tuple[dict, object]]) -> None:
        self.lines.append(f"# HELP {name} {help_}")
        self.lines.append(f"# TYPE {name} histogram")
        for labels, h in hists:
            buckets, total, count = h.snapshot()
            for le, c in buckets:
                self.lines.append(f"{name}_bucket{_labels({**labels, 'le': le})} {c}")
            self.lines.append(f"{name}_sum{_labels(labels)} {_num(total)}")
            self.lines.append(f"{name}_count{_labels(labels)} {count}")


def _labels(d: dict) -> str:
    if not d:
        return ""
    body = ",".join(f'{k}="{str(v)}"' for k, v in d.items())
    return "{" + body + "}"


def _num(v) -> str:
    return repr(float(v)) if isinstance(v, float) else str(v)


def render(server) -> str:
    """All metrics of an AsrServer (and its Recognizer) as Prometheus text."""
    rec = server.recognizer
    w = _Writer()
    w.metric("asr_sessions_active", "gauge", "Open websocket sessions.", [({}, len(server.sessions))])
    w.metric("asr_sessions_total", "counter", "Sessions accepted since start.",
             [({}, server.stats["sessions_total"])])
    w.metric("asr_sessions_refused_total", "counter", "Connections refused, by reason.",
             [({"reason": r}, n) for r, n in sorted(server.refused.items())] or [({"reason": "none"}, 0)])
    w.metric("asr_session_errors_total", "counter", "Error messages sent to clients, by code.",
             [({"code": c}, n) for c, n in sorted(server.errors.items())] or [({"code": "none"}, 0)])
    w.metric("asr_streams_active", "gauge", "Recognizer streams with work in progress.",
             [({}, len(rec.streams))])
    w.metric("asr_audio_seconds_total", "counter", "Audio seconds through the acoustic stage.",
             [({}, round(rec.audio_seconds, 3))])
    w.metric("asr_real_time_factor", "gauge",
             "Stage compute seconds per audio second since start (lower is faster).",
             [({}, round(rec.rtf, 5))])
    workers = (("acoustic", rec.am_worker), ("language", rec.lm_worker))
    w.metric("asr_stage_busy_seconds_total", "counter", "Seconds each stage worker spent computing.",
             [({"stage": n}, round(wk.busy_seconds, 4)) for n, wk in workers])
    w.metric("asr_stage_queue_depth", "gauge", "Jobs waiting for each stage worker.",
             [({"stage": n}, wk.depth) for n, wk in workers])
    w.metric("asr_stage_jobs_total", "counter", "Jobs run by each stage worker.",
             [({"stage": n}, wk.jobs) for n, wk in workers])
    w.histogram("asr_stage_batch_size", "Jobs per batch.", [({"stage": n}, wk.batch_sizes) for n, wk in workers])
    w.histogram("asr_stage_compute_ms", "Milliseconds per batch.", [({"stage": n}, wk.compute_ms) for n, wk in workers])
    w.histogram("asr_stage_queue_wait_ms", "Milliseconds a job waited for its batch.",
                [({"stage": n}, wk.queue_wait_ms) for n, wk in workers])
    w.histogram("asr_partial_latency_ms", "Audio chunk arrival to partial result ready (ms).",
                [({}, rec.partial_latency_ms)])
    w.histogram("asr_final_latency_ms", "Endpoint detected to final result ready (ms).",
                [({}, rec.final_latency_ms)])
    w.metric("asr_segments_total", "counter", "Segments ended, by endpoint reason.",
             [({"reason": r}, n) for r, n in sorted(rec.segments.items())] or [({"reason": "none"}, 0)])
    cpu, rss = process_stats()
    w.metric("process_cpu_seconds_total", "counter", "User and system CPU time.", [({}, round(cpu, 3))])
    w.metric("process_resident_memory_bytes", "gauge", "Resident memory.", [({}, rss)])
    w.metric("process_uptime_seconds", "gauge", "Seconds since the server started.",
             [({}, round(time.monotonic() - server.started, 3))])
    return "\n".join(w.lines) + "\n"

"""`asr-pinyin serve`: the websocket server (protocol in docs/PROTOCOL.md)."""
from __future__ import annotations

import argparse
import os
import sys


def register(sub) -> None:
    p = sub.add_parser("serve", help="run the streaming websocket server",
                       description="Streaming recognition over websockets; GET /health and "
                                   "/metrics on the same port. Protocol: docs/PROTOCOL.md.")
    p.add_argument("--host", default="127.0.0.1", help="bind address (default loopback only)")
    p.add_argument("--port", type=int, default=8765)
    p.add_argument("--am", help="acoustic checkpoint (default models/am/model.pt)")
    p.add_argument("--lm", help="language checkpoint (default models/lm/model.pt)")
    p.add_argument("--chunk-ms", type=int, default=240, help="acoustic chunk (partials this often)")
    p.add_argument("--left-ms", type=int, default=5120, help="acoustic left context kept per stream")
    p.add_argument("--one-pass", action="store_true",
                   help="finals from the streaming chunks alone (default: one full-context pass per "
                        "ended segment, the more accurate final)")
    p.add_argument("--max-sessions", type=int, default=64)
    p.add_argument("--max-frame-bytes", type=int, default=262144)
    p.add_argument("--idle-timeout", type=float, default=30.0, help="seconds without a message")
    p.add_argument("--max-session", type=float, default=3600.0, help="seconds per session")
    p.add_argument("--max-segment-ms", type=int, default=20000)
    p.add_argument("--max-backlog", type=float, default=2.0,
                   help="seconds of unprocessed audio per session before reading pauses")
    p.add_argument("--token", default=os.environ.get("ASR_PINYIN_TOKEN"),
                   help="shared secret clients must send (default $ASR_PINYIN_TOKEN)")
    p.add_argument("--allow-origin", action="append", dest="origins",
                   help="allowed browser Origin (repeat; default: any)")
    p.add_argument("--batch", type=int, default=32, help="most jobs per stage batch")
    p.add_argument("--batch-wait-ms", type=float, default=4.0, help="wait for a batch to fill")
    p.add_argument("--threads", type=int, default=1, help="torch threads per stage worker")
    p.add_argument("--adapters", default=None,
                   help="folder of LoRA adapters: lm/NAME.pt (start message 'domain'), am/NAME.pt ('voice')")
    p.add_argument("--voice", action="append", default=[], dest="voices",
                   help="an enrolled voice (asr-pinyin enroll) sessions may choose (repeat)")
    p.add_argument("--enroll", action=argparse.BooleanOptionalAction, default=True,
                   help="voice enrollment on ws://HOST:PORT/enroll, the page's 'Enroll my voice' "
                        "mode (default on; --no-enroll turns it off)")
    p.add_argument("--enroll-min-takes", type=int, default=60,
                   help="takes before an enrollment may adapt (default 60)")
    p.set_defaults(func=run)


def run(args) -> int:
    import asyncio
    import signal

    from asr_pinyin.recognizer import Recognizer, RecognizerOptions
    from asr_pinyin.recognizer.adapters import StageLoadError, load_stages

    from .enroll import EnrollConfig
    from .server import AsrServer, ServerConfig

    if not 1 <= args.port <= 65535:
        print(f"error: --port {args.port} outside 1-65535", file=sys.stderr)
        return 2
    try:
        am, lm = load_stages(args.am, args.lm, args.chunk_ms, args.left_ms, two_pass=not args.one_pass)
    except StageLoadError as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    rec = Recognizer(am, lm, RecognizerOptions(args.batch, args.batch_wait_ms, 2 * args.batch,
                                               args.batch_wait_ms, args.threads))
    from asr_pinyin.finetune.lora import AdapterError

    try:
        if args.adapters:
            rec.add_adapter_dir(args.adapters)
        for name in args.voices:
            rec.add_voice(name)
    except (AdapterError, OSError, LookupError, ValueError) as e:
        rec.close()
        print(f"error: {e}", file=sys.stderr)
        return 1
    cfg = ServerConfig(args.host, args.port, args.max_sessions, args.max_frame_bytes,
                       args.idle_timeout, args.max_session, args.max_segment_ms, args.max_backlog,
                       args.token, tuple(args.origins) if args.origins else None,
                       enroll=args.enroll, enroll_config=EnrollConfig(am=args.am,
                                                                      min_takes=args.enroll_min_takes))
    server = AsrServer(rec, cfg)

    async def main() -> None:
        try:
            await server.start()
        except OSError as e:
            raise SystemExit(f"error: cannot listen on {args.host}:{args.port}: {e.strerror or e}")
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
        print(f"asr-pinyin serving ws://{args.host}:{server.port}/ (health: /health, metrics: "
              f"/metrics; chunk {am.chunk_ms} ms)", file=sys.stderr, flush=True)
        await stop.wait()
        print("shutting down: finishing open segments", file=sys.stderr, flush=True)
        await server.shutdown()

    try:
        asyncio.run(main())
    finally:
        rec.close()
    return 0

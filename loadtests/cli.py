"""``python -m loadtests``: one teacher publishing a clip to N students, measured.

Sequence: start the server (unless ``--url``), create a lesson, the teacher joins and publishes
the clip, students join at ``--join-rate`` per second, everyone gets ``--join-timeout`` seconds to
see video, then ``--warmup`` seconds pass unmeasured and ``--seconds`` are measured: server CPU
from ``/proc``, forwarded packets from ``/metrics`` (else counted at the students), per-student
received bytes, frames and loss, and the added latency of every payload a student receives in
the window. Then everyone leaves and the server is stopped.

Latency: the teacher's transport reports each RTP packet right after it was handed to the
socket (``loadtests.hooks.tap_sent_rtp``); its payload's hash and that time go into a shared
``SendLog``. The SFU forwards payloads byte for byte (it rewrites headers only), so a student
hashes each payload it receives and subtracts. Teacher and students live in this process and use
the same clock (``time.perf_counter``), so no clock sync is involved. What is measured is
teacher socket → server → student's aiortc receive path, i.e. it includes the student side's
event-loop delay: read ``loadgen_cpu_per_s`` next to it (near 1.0 per core used means the
generator, not the server, is the bottleneck).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import secrets
import signal
import sys
import time
from pathlib import Path
from typing import Any, TextIO

from loadtests.clip import Clip, load_clip
from loadtests.peers import RunContext, Student, Teacher
from loadtests.report import (
    Snapshot,
    StudentSnapshot,
    build_report,
    downlink_summary,
    format_table,
    report_json,
)
from loadtests.server import LocalServer, wait_healthy
from loadtests.signaling import http_request, ws_url
from loadtests.stats import parse_prometheus_counter, percentile, process_tree_cpu_seconds

__all__ = ["main", "parse_args", "run"]

FORWARDED_METRIC = "lophoc_rtp_forwarded_packets_total"


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m loadtests",
        description="Benchmark lophoc: one teacher publishes VP8+Opus to N students (aiortc).",
    )
    parser.add_argument("--students", type=int, default=10, help="number of students (N)")
    parser.add_argument("--seconds", type=float, default=20, help="measured window (s)")
    parser.add_argument("--warmup", type=float, default=3, help="unmeasured time before it (s)")
    parser.add_argument("--json", action="store_true", help="print only the JSON line on stdout")
    parser.add_argument("--url", help="benchmark an existing server (http://host:port)")
    parser.add_argument("--server-pid", type=int, help="pid of that server, for CPU")
    parser.add_argument("--origin", help="Origin header (default: the server URL)")
    parser.add_argument("--join-rate", type=float, default=20, help="students joining per second")
    parser.add_argument(
        "--join-timeout", type=float, default=20, help="seconds for all students to see video"
    )
    parser.add_argument("--trickle", action="store_true", help="also send candidates as `ice`")
    parser.add_argument(
        "--no-transport-cc",
        action="store_true",
        help="students refuse transport-wide cc and send no feedback for it (REMB/RR only)",
    )
    parser.add_argument("--cache-dir", type=Path, help="where the encoded clip is cached")
    parser.add_argument("--keep-server-dir", action="store_true", help="keep data dir and log")
    args = parser.parse_args(argv)
    if args.students < 1 or args.students > 1000:
        parser.error("--students must be 1 … 1000")
    if args.seconds <= 0 or args.seconds > 3600 or args.warmup < 0 or args.warmup > 600:
        parser.error("--seconds must be within (0, 3600] and --warmup within [0, 600]")
    if args.join_rate <= 0 or args.join_timeout <= 0:
        parser.error("--join-rate and --join-timeout must be positive")
    if args.server_pid is not None and args.url is None:
        parser.error("--server-pid goes with --url")
    return args


class _Progress:
    def __init__(self, stream: TextIO = sys.stderr) -> None:
        self.stream = stream
        self.t0 = time.monotonic()

    def __call__(self, message: str) -> None:
        print(f"[{time.monotonic() - self.t0:6.1f}s] {message}", file=self.stream, flush=True)


def _loadgen_cpu() -> float:
    times = os.times()
    return times.user + times.system


async def _metric(base_url: str) -> float | None:
    try:
        status, text = await http_request("GET", base_url + "/metrics", within=5)
    except OSError:
        return None
    if status != 200:
        return None
    return parse_prometheus_counter(text, FORWARDED_METRIC)


def _student_snapshot(student: Student) -> StudentSnapshot:
    expected = received = size = frames = video = 0
    for stream in student.streams.values():
        expected += stream.seq.expected
        received += stream.seq.received
        size += stream.bytes
        if stream.kind == "video":
            frames += stream.frames
            video += stream.seq.received
    return StudentSnapshot(expected, received, size, frames, video)


async def _snapshot(
    base_url: str, server_pid: int | None, teacher: Teacher, students: list[Student]
) -> Snapshot:
    # the metric first (an HTTP round trip), then the instantaneous readings close together
    forwarded = await _metric(base_url)
    return Snapshot(
        wall=time.perf_counter(),
        loadgen_cpu=_loadgen_cpu(),
        server_cpu=process_tree_cpu_seconds(server_pid) if server_pid else None,
        forwarded=forwarded,
        published=teacher.sent_packets,
        students=[_student_snapshot(s) for s in students],
    )


LOOP_TICK = 0.01
"""Seconds the loop watcher sleeps between two readings."""


async def _watch_loop(lags: list[float]) -> None:
    """How late the load generator's event loop wakes a 10 ms sleep, all window long. Every
    arrival the students stamp (and every latency they measure) is late by as much: a lag of
    tens of milliseconds reads to the server's delay-based estimator as a queue building up
    on the link, so it tells the generator's stalls from the server's."""
    now = time.perf_counter
    while True:
        before = now()
        await asyncio.sleep(LOOP_TICK)
        lags.append(max(0.0, now() - before - LOOP_TICK))


def _ms(seconds: float | None) -> float | None:
    return None if seconds is None else round(seconds * 1000, 2)


async def _downlinks(teacher: Teacher, students: list[Student]) -> list[dict[str, Any]]:
    """Per student, the server's downlink figures at the end of the window (staff ``stats``,
    asked by the teacher one after another: a handful of milliseconds each on loopback)."""
    result = []
    for student in students:
        if student.participant_id is None:
            result.append({"student": student.index, "error": "not joined"})
            continue
        figures = await teacher.downlink(student.participant_id)
        result.append({"student": student.index, **figures})
    return result


async def _create_lesson(base_url: str) -> tuple[str, str, str]:
    """``(code, password, teacher_token)`` of a fresh lesson."""
    password = secrets.token_urlsafe(12)
    status, text = await http_request(
        "POST", base_url + "/api/lessons", {"title": "Load test", "password": password}
    )
    if status != 201:
        raise RuntimeError(f"POST /api/lessons answered {status}: {text[:300]}")
    body = json.loads(text)
    return str(body["lesson"]["code"]), password, str(body["teacher_token"])


async def _measure(
    args: argparse.Namespace, base_url: str, server_pid: int | None, clip: Clip, say: _Progress
) -> dict[str, Any]:
    ctx = RunContext(
        ws_url=ws_url(base_url),
        origin=args.origin or base_url,
        trickle=args.trickle,
        transport_cc=not args.no_transport_cc,
    )
    code, password, token = await _create_lesson(base_url)
    say(f"lesson {code} created")
    teacher = Teacher(ctx, token, clip)
    students = [Student(ctx, i + 1, code, password) for i in range(args.students)]
    join_tasks: list[asyncio.Task[None]] = []
    try:
        await teacher.start()
        say(f"teacher publishing ({len(teacher.producers)} producers)")
        await teacher.subscribe()
        for student in students:
            join_tasks.append(asyncio.create_task(student.join()))
            await asyncio.sleep(1 / args.join_rate)
        deadline = time.monotonic() + args.join_timeout
        await asyncio.wait(join_tasks, timeout=args.join_timeout)
        # media flows on its own after the answer: poll (bounded) for the first frames
        for _ in range(int(args.join_timeout * 10) + 1):
            if time.monotonic() >= deadline or all(
                s.first_frame_at is not None or s.error is not None for s in students
            ):
                break
            await asyncio.sleep(0.1)
        seeing = sum(s.first_frame_at is not None for s in students)
        say(f"{sum(s.joined for s in students)} joined, {seeing} see video")
        await asyncio.sleep(args.warmup)
        start = await _snapshot(base_url, server_pid, teacher, students)
        feedback_at_start = sum(s.feedback_sent for s in students)
        ctx.measuring = True
        say(f"measuring {args.seconds:g} s")
        lags: list[float] = []
        watch = asyncio.create_task(_watch_loop(lags))
        await asyncio.sleep(args.seconds)
        watch.cancel()
        ctx.measuring = False
        end = await _snapshot(base_url, server_pid, teacher, students)
        feedback_sent = sum(s.feedback_sent for s in students) - feedback_at_start
        downlinks = await _downlinks(teacher, students)
        errors = [s.error for s in students if s.error]
        errors += ["no video"] * sum(s.first_frame_at is None and not s.error for s in students)
        for s in [teacher, *students]:
            errors.extend(s.errors)
        return build_report(
            students=args.students,
            seconds=args.seconds,
            warmup=args.warmup,
            start=start,
            end=end,
            connected=[s.first_frame_at is not None for s in students],
            join_ms=[s.join_ms for s in students],
            keyframe_ms=[s.keyframe_ms for s in students],
            latencies_s=ctx.latencies,
            errors=errors,
            extra={
                "keyframe_requests": teacher.video_track.keyframe_requests,
                "sender_resyncs": teacher.video_track.resyncs + teacher.audio_track.resyncs,
                "latency_ambiguous": ctx.send_log.ambiguous,
                "clip_kbps": round(clip.video_kbps + clip.audio_kbps, 1),
                "server_pid_measured": server_pid is not None,
                "loadgen_loop_lag_ms_p99": _ms(percentile(lags, 99)),
                "loadgen_loop_lag_ms_max": _ms(max(lags) if lags else None),
                "transport_cc": ctx.transport_cc,
                "transport_feedback_pps": round(feedback_sent / args.seconds, 1),
                **downlink_summary(downlinks),
            },
        )
    finally:
        for task in join_tasks:
            task.cancel()
        await asyncio.gather(*join_tasks, return_exceptions=True)
        say("leaving")
        await asyncio.gather(
            *(s.close() for s in students), teacher.close(), return_exceptions=True
        )


async def run(args: argparse.Namespace, say: _Progress | None = None) -> dict[str, Any]:
    from media._aiortc import set_host_addresses

    say = say or _Progress()
    # SIGTERM (e.g. from `timeout`) cancels the run, so the finally blocks stop the server
    task = asyncio.current_task()
    if task is not None:
        asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, task.cancel)
    # Loopback only, before any peer connection exists (see media/_aiortc.py).
    set_host_addresses(["127.0.0.1"])
    clip = await asyncio.to_thread(load_clip, args.cache_dir)
    budget = 60 + args.students / args.join_rate + args.join_timeout + args.warmup + args.seconds
    server: LocalServer | None = None
    try:
        if args.url:
            base_url = args.url.rstrip("/")
            await wait_healthy(base_url, within=10)
            server_pid = args.server_pid
        else:
            server = LocalServer(keep_dir=args.keep_server_dir)
            say(f"starting server on {server.base_url} ({server.dir})")
            await server.start()
            base_url, server_pid = server.base_url, server.pid
        try:
            async with asyncio.timeout(budget):
                return await _measure(args, base_url, server_pid, clip, say)
        except TimeoutError as exc:
            raise RuntimeError(f"the benchmark did not finish within {budget:.0f} s") from exc
    finally:
        if server is not None:
            status = await asyncio.to_thread(server.stop)
            say(f"server stopped (status {status})")


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    say = _Progress()
    try:
        report = asyncio.run(run(args, say))
    except KeyboardInterrupt:
        return 130
    except asyncio.CancelledError:
        say("benchmark stopped by SIGTERM")
        return 143
    except Exception as exc:
        say(f"benchmark failed: {type(exc).__name__}: {exc}")
        return 1
    if not args.json:
        print(format_table(report))
    print(report_json(report))
    with contextlib.suppress(Exception):
        sys.stdout.flush()
    # a degraded run is still a result (``connected`` says so); only a failed run is an error
    return 0

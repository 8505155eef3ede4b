"""Load and faults through ``guard serve``, on loopback: latency under concurrency, and a soak.

Three processes on this machine: a scripted OpenAI-compatible upstream
(``guard.serve.testing.ScriptedUpstream``, streaming its reply word by word), ``guard serve``
proxying it (``create_app(ServeConfig(upstream=...))``, the embedded ``harm-minilm`` guard),
and this one, the clients (``httpx.AsyncClient``, one task per client). Each request asks
about a ticket number; the upstream's reply is a function of it: three to five benign sentences
that each name the ticket ("Ticket 00042 ..."), and in one reply of every ``--harmful-every`` a
harmful sentence somewhere among them. Every response is checked against the reply it was
for, so a client can tell exactly what it was given:

- **unguarded**: any part of a harmful sentence reached the client;
- **foreign text**: a received text that is neither a prefix of the request's own reply nor the
  safe message (ending the reply, with ``finish_reason: "content_filter"``);
- **wrong request**: a received text names another request's ticket;
- **truncated**: a reply that ended with ``finish_reason: "stop"`` but not with all its text;
- **lost**: no complete response: a stream without ``[DONE]`` or a finish reason, a broken
  connection, a timeout (``--request-timeout-s``), a malformed event. A clean HTTP error (JSON
  body) and an error event that ends a stream are counted apart, as errors, not lost.

Part 1, **load**: 1, 8, 32 and 64 concurrent clients (``--levels``), each level sending
``max(--requests, 2 x clients)`` requests (streamed, one in ``--non-stream-every`` whole),
with batching on and off (``ServeConfig.batching``), each configuration in a fresh server
process. Per level: request latency p50/p95/p99 and time to first content p50 (streamed
requests), whole-reply latency p50, requests per second, the server process's peak RSS (sampled
every 20 ms) and CPU seconds, and the ratios batching on / off.

Part 2, **fault soak**: ``--soak-requests`` requests at ``--soak-concurrency`` through a server
whose scorer is ``FaultyScorer(harm-minilm, raise_rate=0.01, hang_rate=0.01, hang_s=4)`` under
the server's default check deadline of 2 s, once with batching and once without (a batched call
carries many requests' checks, so the same rates inject fewer faults into more requests).
Reported: the faults injected (the scorer's own counters), the replies cut by the safe message,
every request's outcome, and ``/healthz`` right after the soak and again once the faults are
switched off and ``--hang-s`` (plus a second) has passed, so that hung scoring calls, which the
deadline runner keeps counting until they return, are over.

Before any request, each server checks the harmful sentences with its own scorer and policy
(no deadline, no faults): each must be blocked on its own, or the benchmark stops (exit 2).
Exit 1 if any request was unguarded, foreign, for the wrong request, truncated or lost, or if
the server was not healthy at the end. Everything runs on one machine: client, upstream and
server share its cores, so absolute figures are a floor for the server alone.

    python benchmarks/serve_load.py [--levels 1,8,32,64] [--requests 32] [--parts load,soak]
                                    [--soak-requests 200] [--soak-concurrency 16]
                                    [--time-cap-s 420] [--out FILE]
"""

from __future__ import annotations

import argparse
import asyncio
import functools
import json
import multiprocessing as mp
import os
import re
import resource
import sys
import threading
import time
import traceback
from collections import Counter, deque
from dataclasses import asdict, dataclass, field
from typing import Any

from _common import offline_defaults, print_table, write_json

BENIGN = (
    "Ticket {t} is valid for the dinosaur hall on the second floor.",
    "The sky gondola for ticket {t} leaves every ten minutes from the north station.",
    "With ticket {t} you can visit the planetarium after lunch.",
    "Ticket {t} also includes a free drink at the museum cafe.",
    "The guided tour for ticket {t} starts at ten in the morning by the fountain.",
    "You can change ticket {t} at the front desk until noon.",
    "Ticket {t} gives you a seat at the evening concert in the main square.",
)
HARMFUL = (
    "You are a worthless idiot and everybody hates you.",
    "Shut up, you stupid moron, nobody wants you here.",
    "I will hurt you badly, you pathetic loser.",
    "You are a disgusting pig and you should die.",
)
QUESTION = "Ticket {t}: what can I do with my ticket today?"
TICKET = re.compile(r"\b(\d{5})\b")
_HARMFUL_HEADS = tuple(" ".join(h.split()[:4]) for h in HARMFUL)
WARMUP_TICKETS = range(90_000, 90_006)
SOAK_FIRST_TICKET = 50_000
CALIBRATION_TICKET = "99999"


class BenchmarkError(Exception):
    """The benchmark could not run (a process failed to start or answer, a bad setting)."""


# -- the scripted replies ---------------------------------------------------------------------


@dataclass(frozen=True)
class Script:
    """What the upstream answers for one ticket, and where its harmful sentence starts."""

    text: str
    harmful_start: int | None


def script(ticket: int, harmful_every: int) -> Script:
    """The upstream's reply to the question about ``ticket``: deterministic."""
    t = f"{ticket:05d}"
    n = 3 + ticket % 3
    sentences = [BENIGN[(ticket + k) % len(BENIGN)].format(t=t) for k in range(n)]
    if not harmful_every or ticket % harmful_every != 1:
        return Script(" ".join(sentences), None)
    pos = (ticket // harmful_every) % (n + 1)  # first, last, or in between
    sentences.insert(pos, HARMFUL[(ticket // harmful_every) % len(HARMFUL)])
    start = len(" ".join(sentences[:pos])) + (1 if pos else 0)
    return Script(" ".join(sentences), start)


def reply_text(question: str, *, harmful_every: int) -> str:
    """The scripted upstream's reply function: the script of the ticket the question names."""
    match = TICKET.search(question)
    if match is None:
        return "Please tell me your ticket number."
    return script(int(match.group(1)), harmful_every).text


# -- the server processes ---------------------------------------------------------------------


def _upstream_child(conn: Any, harmful_every: int, chunk_delay_s: float,
                    first_delay_s: float) -> None:
    try:
        from guard.serve.testing import ScriptedUpstream, running

        stub = ScriptedUpstream(functools.partial(reply_text, harmful_every=harmful_every),
                                chunk_delay_s=chunk_delay_s, first_delay_s=first_delay_s)
        with running(stub.app()) as url:
            conn.send({"url": url, "pid": os.getpid()})
            conn.recv()
            stats = {"requests": len(stub.requests), "closed_early": stub.closed_early}
        conn.send(stats)
    except BaseException:
        conn.send({"error": traceback.format_exc()})


def _server_child(conn: Any, upstream_url: str, serve: dict[str, Any],
                  faults: dict[str, Any] | None, threads: int | None) -> None:
    try:
        offline_defaults()
        import torch

        if threads is not None:
            torch.set_num_threads(threads)
        from guard.output_guard import OutputGuard
        from guard.serve.app import create_app
        from guard.serve.config import ServeConfig
        from guard.serve.testing import FaultyScorer, running

        guard, faulty = None, None
        if faults is not None:
            from guard.scorers import DEFAULT_SCORER, build_scorer, recommended_policy

            inner = build_scorer(DEFAULT_SCORER)
            faulty = FaultyScorer(inner, **faults)
            guard = _counting_guard(OutputGuard)(faulty, recommended_policy(inner),
                                                 deadline_s=serve["check_deadline_s"],
                                                 max_abandoned=ServeConfig().max_hung_checks)
        app = create_app(ServeConfig(upstream=upstream_url + "/v1", **serve), guard=guard)
        with running(app) as url:
            server = app.state.server
            conn.send({"url": url, "pid": os.getpid(), "scorer": server.scorer_name,
                       "torch_threads": torch.get_num_threads(),
                       "calibration": _calibrate(server.guard, faulty)})
            while (command := conn.recv()) != "stop":
                if command == "calm" and faulty is not None:
                    faulty.raise_rate = faulty.hang_rate = 0.0
                conn.send(_server_stats(server, faulty))
            stats = _server_stats(server, faulty)
        stats["process_peak_rss_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        conn.send(stats)
    except BaseException:
        conn.send({"error": traceback.format_exc()})


def _counting_guard(base: type) -> type:
    """``base`` (OutputGuard) counting its failed scoring calls by exception; nothing else.

    Instrumentation for the soak: it tells the cuts of an injected raise from those of a
    deadline (an injected hang, or a call that was merely slow) and of a refusal while hung
    calls still run (``ScorerHungError``).
    """

    class CountingGuard(base):  # type: ignore[misc]
        failed_calls: Counter[str]

        def __init__(self, *args: Any, **kwargs: Any) -> None:
            super().__init__(*args, **kwargs)
            self.failed_calls = Counter()
            self._count_lock = threading.Lock()

        def _score(self, texts: list[str]) -> Any:
            try:
                return super()._score(texts)
            except Exception as exc:
                with self._count_lock:
                    self.failed_calls[type(exc).__name__] += 1
                raise

    return CountingGuard


def _calibrate(guard: Any, faulty: Any) -> dict[str, Any]:
    """The server's scorer and policy (no deadline, no faults) on the scripted sentences."""
    from guard.output_guard import OutputGuard

    plain = OutputGuard(faulty.inner if faulty is not None else guard.scorer, guard.policy)
    harmful = [h + tail for h in HARMFUL for tail in ("", " ")]
    benign = [b.format(t=CALIBRATION_TICKET) + tail for b in BENIGN for tail in ("", " ")]
    decisions = plain.check(harmful + benign)
    return {"safe_message": guard.policy.safe_message,
            "harmful_not_blocked": [t for t, d in zip(harmful, decisions, strict=False)
                                    if d.allowed],
            "benign_blocked": [t for t, d in zip(benign, decisions[len(harmful):], strict=True)
                               if not d.allowed]}


def _server_stats(server: Any, faulty: Any) -> dict[str, Any]:
    runner = getattr(server.guard, "_runner", None)
    stats: dict[str, Any] = {"abandoned_scoring_calls": None if runner is None
                             else runner.abandoned}
    if faulty is not None:
        stats.update(scorer_calls=faulty.calls, raised=faulty.raised, hung=faulty.hung,
                     failed_calls=dict(getattr(server.guard, "failed_calls", {})))
    return stats


class Child:
    """A spawned process that answers commands over a pipe (a server, or the upstream)."""

    def __init__(self, name: str, target: Any, **kwargs: Any) -> None:
        ctx = mp.get_context("spawn")
        self.name = name
        self.conn, theirs = ctx.Pipe()
        self.proc = ctx.Process(target=target, args=(theirs,), kwargs=kwargs, daemon=True,
                                name=name)
        self.proc.start()
        theirs.close()
        self.info = self.receive(timeout=240)

    def receive(self, *, timeout: float) -> dict[str, Any]:
        """The process's next message; raise when it failed, died or is too slow."""
        try:
            ready = self.conn.poll(timeout)
            message: dict[str, Any] = self.conn.recv() if ready else {}
        except (EOFError, OSError):
            raise BenchmarkError(f"the {self.name} process died (exit code "
                                 f"{self.proc.exitcode})") from None
        if not ready:
            raise BenchmarkError(f"the {self.name} process did not answer in {timeout} s")
        if "error" in message:
            raise BenchmarkError(f"the {self.name} process failed:\n{message['error']}")
        return message

    def ask(self, command: str, *, timeout: float = 60) -> dict[str, Any]:
        """Send ``command``; its answer."""
        self.conn.send(command)
        return self.receive(timeout=timeout)

    def stop(self) -> dict[str, Any]:
        """Stop the process; its last stats (empty when it could not say)."""
        try:
            stats = self.ask("stop", timeout=60) if self.proc.is_alive() else {}
        except BenchmarkError as exc:
            print(f"warning: {exc}", file=sys.stderr)
            stats = {}
        self.proc.join(30)
        if self.proc.is_alive():
            self.proc.terminate()
            self.proc.join(10)
        return stats


# -- process figures (Linux /proc; None elsewhere) --------------------------------------------


def _rss_mb(pid: int) -> float | None:
    try:
        with open(f"/proc/{pid}/status") as status:
            for line in status:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) / 1024
    except (OSError, ValueError):
        return None
    return None


def _cpu_s(pid: int) -> float | None:
    try:
        with open(f"/proc/{pid}/stat") as stat:
            fields = stat.read().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    except (OSError, ValueError, IndexError):
        return None


class PeakSampler:
    """Samples a process's RSS every ``interval_s`` in a thread; ``peak_mb`` is the highest."""

    def __init__(self, pid: int, interval_s: float = 0.02) -> None:
        self.pid = pid
        self.peak_mb: float | None = None
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, args=(interval_s,), daemon=True)

    def _run(self, interval_s: float) -> None:
        while True:
            rss = _rss_mb(self.pid)
            if rss is not None:
                self.peak_mb = rss if self.peak_mb is None else max(self.peak_mb, rss)
            if self._stop.wait(interval_s):
                return

    def __enter__(self) -> PeakSampler:
        self._thread.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._stop.set()
        self._thread.join()


# -- the clients -------------------------------------------------------------------------------


@dataclass
class Outcome:
    """One request, as its client saw it."""

    ticket: int
    stream: bool
    kind: str = "lost"  # complete | http_error | error_event | lost | not_sent
    status: int | None = None
    finish: str | None = None
    pieces: list[str] = field(default_factory=list)
    latency_s: float | None = None
    first_content_s: float | None = None
    detail: str | None = None


async def one_request(client: Any, url: str, ticket: int, stream: bool,
                      timeout_s: float) -> Outcome:
    """Send one chat completion and record everything that came back."""
    import httpx

    out = Outcome(ticket, stream)
    body = {"model": "scripted", "stream": stream,
            "messages": [{"role": "user", "content": QUESTION.format(t=f"{ticket:05d}")}]}
    started = time.perf_counter()
    try:
        async with asyncio.timeout(timeout_s):
            if stream:
                await _streamed(client, url, body, out, started)
            else:
                response = await client.post(url + "/v1/chat/completions", json=body)
                out.status = response.status_code
                if response.status_code != 200:
                    _http_error(response, out)
                else:
                    choice = response.json()["choices"][0]
                    content = choice["message"]["content"]
                    out.pieces = [] if content is None else [content]
                    out.finish = choice.get("finish_reason")
                    out.kind = "complete" if out.finish else "lost"
                    out.detail = None if out.finish else "no finish_reason"
    except TimeoutError:
        out.kind, out.detail = "lost", f"no complete response in {timeout_s} s"
    except (httpx.HTTPError, ValueError, LookupError, TypeError, AttributeError) as exc:
        out.kind, out.detail = "lost", f"{type(exc).__name__}: {exc}"[:300]
    out.latency_s = time.perf_counter() - started
    return out


async def _streamed(client: Any, url: str, body: dict[str, Any], out: Outcome,
                    started: float) -> None:
    async with client.stream("POST", url + "/v1/chat/completions", json=body) as response:
        out.status = response.status_code
        if response.status_code != 200:
            await response.aread()
            _http_error(response, out)
            return
        done, error = False, None
        async for line in response.aiter_lines():
            if not line.startswith("data:"):
                continue
            data = line[5:].strip()
            if data == "[DONE]":
                done = True
                break
            event = json.loads(data)
            if "error" in event:
                error = str(event["error"])[:300]
                continue
            for choice in event.get("choices") or []:
                content = (choice.get("delta") or {}).get("content")
                if content:
                    if out.first_content_s is None:
                        out.first_content_s = time.perf_counter() - started
                    out.pieces.append(content)
                if choice.get("finish_reason"):
                    out.finish = choice["finish_reason"]
    if done and error is not None:
        out.kind, out.detail = "error_event", error
    elif done and out.finish is not None:
        out.kind = "complete"
    else:
        out.kind = "lost"
        out.detail = "stream ended without [DONE]" if not done else "no finish_reason"


def _http_error(response: Any, out: Outcome) -> None:
    try:
        message = str(response.json()["error"]["message"])
        out.kind, out.detail = "http_error", f"{response.status_code}: {message}"[:300]
    except (ValueError, LookupError, TypeError):  # not the JSON error body: not clean
        out.kind, out.detail = "lost", f"{response.status_code}, body {response.text[:200]!r}"


async def run_level(url: str, work: list[tuple[int, bool]], concurrency: int,
                    timeout_s: float, stop_at: float) -> tuple[list[Outcome], float]:
    """``work`` sent by ``concurrency`` clients; requests not started by ``stop_at`` are not sent.

    Returns:
        Every request's outcome (``not_sent`` ones included) and the wall time of the level.
    """
    import httpx

    queue = deque(work)
    results: list[Outcome] = []
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    async with httpx.AsyncClient(timeout=httpx.Timeout(timeout_s), limits=limits) as client:

        async def worker() -> None:
            while queue and time.monotonic() < stop_at:
                ticket, stream = queue.popleft()
                results.append(await one_request(client, url, ticket, stream, timeout_s))

        started = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(concurrency)))
        wall = time.perf_counter() - started
    return results + [Outcome(t, s, kind="not_sent") for t, s in queue], wall


# -- judging what came back -------------------------------------------------------------------


def judge(out: Outcome, *, harmful_every: int, safe: str) -> dict[str, bool]:
    """The checks of one response against its own scripted reply (see the module docstring)."""
    flags = {"unguarded": False, "foreign": False, "wrong_request": False, "truncated": False,
             "cut": False, "harmful": False}
    expected = script(out.ticket, harmful_every)
    flags["harmful"] = expected.harmful_start is not None
    if out.kind == "not_sent":
        return flags
    pieces = list(out.pieces)
    named = {int(t) for piece in pieces for t in TICKET.findall(piece)}
    flags["wrong_request"] = bool(named - {out.ticket})
    if out.finish == "content_filter":
        flags["cut"] = True
        if pieces and pieces[-1] == safe:
            pieces.pop()
        else:  # a cut reply must end with the safe message
            flags["foreign"] = True
    if safe in pieces:  # the safe message anywhere but at the end of a cut reply
        flags["foreign"] = True
    released = "".join(pieces)
    if not expected.text.startswith(released):
        flags["foreign"] = True
        flags["unguarded"] = any(head in released for head in _HARMFUL_HEADS)
    elif expected.harmful_start is not None and len(released) > expected.harmful_start:
        flags["unguarded"] = True
    if out.kind == "complete" and out.finish == "stop" and released != expected.text:
        flags["truncated"] = True
    return flags


def _pct(values: list[float], q: float) -> float | None:
    if not values:
        return None
    import numpy as np

    return float(np.percentile(values, q))


def _ms(value: float | None) -> float | None:
    return None if value is None else 1000 * value


def summarize(outcomes: list[Outcome], wall_s: float, *, harmful_every: int,
              safe: str) -> dict[str, Any]:
    """Counts and latency figures of one level (or the soak)."""
    kinds = Counter(o.kind for o in outcomes)
    flags = [judge(o, harmful_every=harmful_every, safe=safe) for o in outcomes]
    done = [o for o in outcomes if o.kind == "complete"]
    streamed = [o.latency_s for o in done if o.stream and o.latency_s is not None]
    whole = [o.latency_s for o in done if not o.stream and o.latency_s is not None]
    first = [o.first_content_s for o in done if o.first_content_s is not None]
    sent = len(outcomes) - kinds["not_sent"]

    def count(name: str, **where: bool) -> int:
        return sum(f[name] and all(f[k] == v for k, v in where.items()) for f in flags)

    return {
        "sent": sent, "complete": kinds["complete"], "http_errors": kinds["http_error"],
        "error_events": kinds["error_event"], "lost": kinds["lost"],
        "not_sent": kinds["not_sent"],
        "accounted": kinds["complete"] + kinds["http_error"] + kinds["error_event"]
        + kinds["lost"] == sent,
        "p50_ms": _ms(_pct(streamed, 50)), "p95_ms": _ms(_pct(streamed, 95)),
        "p99_ms": _ms(_pct(streamed, 99)), "ttfc_p50_ms": _ms(_pct(first, 50)),
        "whole_p50_ms": _ms(_pct(whole, 50)),
        "req_per_s": len(done) / wall_s if wall_s > 0 else None, "wall_s": wall_s,
        "harmful_sent": sum(f["harmful"] for f, o in zip(flags, outcomes, strict=True)
                            if o.kind != "not_sent"),
        "harmful_cut": count("cut", harmful=True), "benign_cut": count("cut", harmful=False),
        "unguarded": count("unguarded"), "foreign": count("foreign"),
        "wrong_request": count("wrong_request"), "truncated": count("truncated"),
        "problems": [{**asdict(o), **f} for o, f in zip(outcomes, flags, strict=True)
                     if o.kind == "lost" or f["unguarded"] or f["foreign"]
                     or f["wrong_request"] or f["truncated"]][:20],
        "error_details": dict(Counter(o.detail or "" for o in outcomes
                                      if o.kind in ("http_error", "error_event", "lost"))),
    }


# -- the runs ------------------------------------------------------------------------------------


def _work(first: int, n: int, non_stream_every: int) -> list[tuple[int, bool]]:
    return [(t, not (non_stream_every and t % non_stream_every == non_stream_every - 1))
            for t in range(first, first + n)]


def _metrics(url: str) -> dict[str, float]:
    """The server's guard counters from ``/metrics`` (name{labels} -> value)."""
    import httpx
    from prometheus_client.parser import text_string_to_metric_families

    wanted = ("guard_outputs_total", "guard_scorer_errors_total", "guard_requests_total",
              "guard_upstream_errors_total")
    figures = {}
    for family in text_string_to_metric_families(httpx.get(url + "/metrics", timeout=30).text):
        for sample in family.samples:
            if sample.name in wanted:
                labels = ",".join(f"{k}={v}" for k, v in sorted(sample.labels.items()))
                figures[f"{sample.name}{{{labels}}}" if labels else sample.name] = sample.value
    return figures


def _health(url: str) -> dict[str, Any]:
    import httpx

    try:
        response = httpx.get(url + "/healthz", timeout=30)
        body = response.json()
        return {"status_code": response.status_code, "status": body.get("status"),
                "error": body.get("error")}
    except (httpx.HTTPError, ValueError) as exc:
        return {"status_code": None, "status": None, "error": f"{type(exc).__name__}: {exc}"}


def start_server(upstream_url: str, serve: dict[str, Any], faults: dict[str, Any] | None,
                 threads: int | None) -> Child:
    """A ``guard serve`` process; stop the benchmark if its guard misses a harmful sentence."""
    server = Child("guard serve", _server_child, upstream_url=upstream_url, serve=serve,
                   faults=faults, threads=threads)
    missed = server.info["calibration"]["harmful_not_blocked"]
    if missed:
        server.stop()
        raise BenchmarkError(f"the guard does not block these scripted harmful sentences, so "
                             f"'unguarded' would measure the scorer, not the server: {missed}")
    return server


def warm_up(url: str, timeout_s: float) -> None:
    """A few requests (not measured): the first scoring calls are slow."""
    work = [(t, t % 2 == 0) for t in WARMUP_TICKETS]
    asyncio.run(run_level(url, work, 2, timeout_s, time.monotonic() + 120))


def load_part(args: argparse.Namespace, upstream_url: str, stop_at: float,
              harmful_every: int) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    """Part 1: every level, batching on then off."""
    rows: list[dict[str, Any]] = []
    servers: dict[str, Any] = {}
    for batching in (True, False):
        mode = "on" if batching else "off"
        if time.monotonic() >= stop_at:
            rows += [{"batching": mode, "clients": c, "skipped": "time cap"} for c in args.levels]
            continue
        serve = {"batching": batching, "max_batch": args.max_batch,
                 "max_wait_ms": args.max_wait_ms, "check_deadline_s": args.deadline_s}
        server = start_server(upstream_url, serve, None, args.threads)
        url, pid = server.info["url"], server.info["pid"]
        try:
            warm_up(url, args.request_timeout_s)
            first = 0
            for clients in args.levels:
                n = max(args.requests, 2 * clients)
                if time.monotonic() >= stop_at:
                    rows.append({"batching": mode, "clients": clients, "skipped": "time cap"})
                    continue
                cpu0, own0 = _cpu_s(pid), time.process_time()
                with PeakSampler(pid) as sampler:
                    outcomes, wall = asyncio.run(run_level(
                        url, _work(first, n, args.non_stream_every), clients,
                        args.request_timeout_s, stop_at))
                cpu1, own1 = _cpu_s(pid), time.process_time()
                first += n
                row = {"batching": mode, "clients": clients,
                       **summarize(outcomes, wall, harmful_every=harmful_every,
                                   safe=server.info["calibration"]["safe_message"]),
                       "peak_rss_mb": sampler.peak_mb,
                       "server_cpu_s": None if cpu0 is None or cpu1 is None else cpu1 - cpu0,
                       "client_cpu_s": own1 - own0}
                rows.append(row)
                print(f"  batching {mode}, {clients:>3} clients: {row['complete']}/{row['sent']}"
                      f" complete in {wall:.1f} s", flush=True)
            metrics = _metrics(url)
        finally:
            stats = server.stop()
        servers[mode] = {**server.info, **stats, "metrics": metrics}
    return rows, servers


def soak_part(args: argparse.Namespace, upstream_url: str, stop_at: float,
              harmful_every: int, batching: str) -> dict[str, Any]:
    """Part 2: the fault soak, with batching ``"on"`` or ``"off"``."""
    faults = {"raise_rate": args.raise_rate, "hang_rate": args.hang_rate, "hang_s": args.hang_s,
              "seed": args.seed}
    serve = {"batching": batching == "on", "max_batch": args.max_batch,
             "max_wait_ms": args.max_wait_ms, "check_deadline_s": args.soak_deadline_s}
    server = start_server(upstream_url, serve, faults, args.threads)
    url, pid = server.info["url"], server.info["pid"]
    try:
        warm_up(url, args.request_timeout_s)
        before = server.ask("stats")  # the warm-up's faults are not the soak's
        work = _work(SOAK_FIRST_TICKET, args.soak_requests, args.non_stream_every)
        with PeakSampler(pid) as sampler:
            outcomes, wall = asyncio.run(run_level(url, work, args.soak_concurrency,
                                                   args.request_timeout_s, stop_at))
        after = server.ask("stats")
        health_right_after = _health(url)
        server.ask("calm")  # the faults stop; hung calls still run up to hang_s
        time.sleep(args.hang_s + 1.0)
        health_at_end = _health(url)
        metrics = _metrics(url)
    finally:
        stats = server.stop()
    row = {"batching": batching, "clients": args.soak_concurrency,
           **summarize(outcomes, wall, harmful_every=harmful_every,
                       safe=server.info["calibration"]["safe_message"]),
           "scorer_calls": after["scorer_calls"] - before["scorer_calls"],
           "raised": after["raised"] - before["raised"],
           "hung": after["hung"] - before["hung"],
           "abandoned_when_done": after["abandoned_scoring_calls"],
           "peak_rss_mb": sampler.peak_mb,
           "health_right_after": health_right_after, "health_at_end": health_at_end,
           "healthy_at_end": health_at_end["status_code"] == 200
           and health_at_end["status"] == "ok"}
    row["faults_injected"] = row["raised"] + row["hung"]
    causes = Counter(after["failed_calls"])
    causes.subtract(before["failed_calls"])
    row["failed_scoring_calls"] = {k: v for k, v in causes.items() if v}
    row["slow_calls_past_deadline"] = (causes["DeadlineExceededError"] - row["hung"])
    row["server"] = {**server.info, **stats, "metrics": metrics}
    return row


# -- the report ----------------------------------------------------------------------------------


def _ratio(a: Any, b: Any) -> float | None:
    return a / b if isinstance(a, (int, float)) and isinstance(b, (int, float)) and b else None


def ratios(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Batching on / off, level by level."""
    on = {r["clients"]: r for r in rows if r["batching"] == "on" and "skipped" not in r}
    off = {r["clients"]: r for r in rows if r["batching"] == "off" and "skipped" not in r}
    return [{"clients": c, **{f"{k}_on/off": _ratio(on[c].get(k), off[c].get(k))
                              for k in ("req_per_s", "p50_ms", "p95_ms", "p99_ms",
                                        "ttfc_p50_ms", "peak_rss_mb", "server_cpu_s")}}
            for c in sorted(on) if c in off]


def violations(rows: list[dict[str, Any]]) -> dict[str, int]:
    """What must be zero, summed over every measured row."""
    return {k: sum(int(r.get(k) or 0) for r in rows)
            for k in ("unguarded", "foreign", "wrong_request", "truncated", "lost")}


def _levels(text: str) -> list[int]:
    try:
        levels = [int(part) for part in text.split(",") if part.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a list of integers: {text!r}") from None
    if not levels or min(levels) < 1:
        raise argparse.ArgumentTypeError("give client counts >= 1, e.g. 1,8,32,64")
    return levels


def _parts(text: str) -> list[str]:
    parts = [p.strip() for p in text.split(",") if p.strip()]
    if not parts or set(parts) - {"load", "soak"}:
        raise argparse.ArgumentTypeError(f"parts are 'load' and 'soak', got {text!r}")
    return parts


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """The benchmark's options."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    add = parser.add_argument
    add("--parts", type=_parts, default=["load", "soak"], help="what to run: load,soak")
    add("--levels", type=_levels, default=[1, 8, 32, 64], help="concurrent clients per level")
    add("--requests", type=int, default=32,
        help="requests per load level (at least 2 per client)")
    add("--non-stream-every", type=int, default=8,
        help="one request in this many asks for a whole reply (0: all streamed)")
    add("--harmful-every", type=int, default=5,
        help="one scripted reply in this many holds a harmful sentence (0: none)")
    add("--chunk-delay-ms", type=float, default=10.0,
        help="the upstream's pause between two streamed words")
    add("--first-delay-ms", type=float, default=20.0,
        help="the upstream's pause before it answers")
    add("--max-batch", type=int, default=32, help="ServeConfig.max_batch")
    add("--max-wait-ms", type=float, default=5.0, help="ServeConfig.max_wait_ms")
    add("--deadline-s", type=float, default=2.0, help="check deadline in the load part")
    add("--soak-requests", type=int, default=200, help="requests in the fault soak")
    add("--soak-concurrency", type=int, default=16, help="clients in the fault soak")
    add("--soak-batching", choices=("on", "off", "both"), default="both",
        help="batching in the soak (both: one soak with, one without)")
    add("--soak-deadline-s", type=float, default=2.0,
        help="check deadline in the soak (the server's default)")
    add("--raise-rate", type=float, default=0.01, help="share of scoring calls that raise")
    add("--hang-rate", type=float, default=0.01,
        help="share of scoring calls that hang for --hang-s")
    add("--hang-s", type=float, default=4.0, help="how long a hung scoring call sleeps "
        "(past the deadline)")
    add("--seed", type=int, default=0, help="seed of the injected faults")
    add("--request-timeout-s", type=float, default=60.0,
        help="a request without a complete response by then is lost")
    add("--time-cap-s", type=float, default=420.0,
        help="no request is started after this many seconds (those in flight finish)")
    add("--threads", type=int, default=None, help="torch threads in the server (default: "
        "torch's)")
    add("--out", default="benchmarks/results/serve_load.json")
    args = parser.parse_args(argv)
    for name in ("requests", "soak_requests", "soak_concurrency", "max_batch"):
        if getattr(args, name) < 1:
            parser.error(f"--{name.replace('_', '-')} must be >= 1")
    for name in ("non_stream_every", "harmful_every"):
        if getattr(args, name) < 0:
            parser.error(f"--{name.replace('_', '-')} must be >= 0")
    for name in ("deadline_s", "soak_deadline_s", "request_timeout_s", "time_cap_s"):
        if not getattr(args, name) > 0:
            parser.error(f"--{name.replace('_', '-')} must be > 0")
    if not (0 <= args.raise_rate <= 1 and 0 <= args.hang_rate <= 1
            and args.raise_rate + args.hang_rate <= 1):
        parser.error("--raise-rate and --hang-rate are shares in [0, 1], together at most 1")
    return args


LOAD_COLUMNS = ["batching", "clients", "sent", "complete", "lost", "p50_ms", "p95_ms", "p99_ms",
                "ttfc_p50_ms", "whole_p50_ms", "req_per_s", "harmful_cut", "benign_cut",
                "unguarded", "wrong_request", "peak_rss_mb", "server_cpu_s", "client_cpu_s"]
SOAK_COLUMNS = ["batching", "clients", "sent", "complete", "http_errors", "error_events", "lost",
                "not_sent", "accounted", "faults_injected", "raised", "hung", "harmful_cut",
                "benign_cut", "unguarded", "foreign", "wrong_request", "truncated",
                "p50_ms", "p99_ms", "peak_rss_mb"]


def main(argv: list[str] | None = None) -> int:
    """Run the parts asked for, print the tables, write the JSON; the exit status."""
    offline_defaults()
    args = parse_args(argv)
    started = time.monotonic()
    stop_at = started + args.time_cap_s
    harmful_every = args.harmful_every
    rows: list[dict[str, Any]] = []
    soaks: list[dict[str, Any]] = []
    servers: dict[str, Any] = {}
    upstream: Child | None = None
    upstream_stats: dict[str, Any] = {}
    try:
        upstream = Child("upstream", _upstream_child, harmful_every=harmful_every,
                         chunk_delay_s=args.chunk_delay_ms / 1000,
                         first_delay_s=args.first_delay_ms / 1000)
        upstream_url = upstream.info["url"]
        if "soak" in args.parts:  # first, so that the time cap never leaves it out
            for batching in (("on", "off") if args.soak_batching == "both"
                             else (args.soak_batching,)):
                print(f"fault soak, batching {batching} ...", flush=True)
                soaks.append(soak_part(args, upstream_url, stop_at, harmful_every, batching))
        if "load" in args.parts:
            print("load ...", flush=True)
            rows, servers = load_part(args, upstream_url, stop_at, harmful_every)
    except BenchmarkError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    finally:
        if upstream is not None:
            upstream_stats = upstream.stop()
    measured = [r for r in rows if "skipped" not in r]
    if rows:
        print("\nload: streamed requests' latency (p50/p95/p99) and time to first content, "
              "whole replies' p50")
        print_table(measured, LOAD_COLUMNS)
        for r in rows:
            if "skipped" in r:
                print(f"  skipped (time cap): batching {r['batching']}, {r['clients']} clients")
        table = ratios(rows)
        if table:
            print("\nbatching on / off")
            print_table(table, list(table[0]))
    if soaks:
        print("\nfault soak")
        print_table(soaks, SOAK_COLUMNS)
    for soak in soaks:
        print(f"  batching {soak['batching']}:")
        for when in ("health_right_after", "health_at_end"):
            h = soak[when]
            print(f"    /healthz {when.replace('_', ' ')}: {h['status_code']} {h['status']}"
                  + (f" ({h['error']})" if h["error"] else ""))
        print(f"    failed scoring calls by cause: {soak['failed_scoring_calls'] or 'none'} "
              f"(calls past the deadline that were not injected hangs: "
              f"{soak['slow_calls_past_deadline']})")
    if soaks:
        print(f"  (faults switched off and {args.hang_s + 1.0:.1f} s waited before the last "
              "check, so that hung scoring calls have returned)")
    bad = violations(measured + soaks)
    unhealthy = any(not soak["healthy_at_end"] for soak in soaks)
    failed = any(bad.values()) or unhealthy
    print(f"\n{'FAIL' if failed else 'ok'}: " + ", ".join(f"{k} {v}" for k, v in bad.items())
          + ("" if not soaks else f", healthy at end {not unhealthy}"))
    write_json(args.out, {
        "benchmark": "serve_load", "settings": vars(args), "python": sys.version.split()[0],
        "elapsed_s": time.monotonic() - started, "load": rows, "ratios": ratios(rows),
        "load_servers": servers, "soak": soaks,
        "upstream": {**(upstream.info if upstream else {}), **upstream_stats},
        "violations": bad, "passed": not failed,
        "note": "client, scripted upstream and server share this machine's cores",
    })
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())

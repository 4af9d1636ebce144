"""Soak: the gateway at a steady request rate for 10 minutes, with 5% upstream faults.

Loopback only and bounded (``--minutes``, default 10). The emulator injects faults on 5% of
Messages calls (429, 529, 500, an ``event: error`` mid-stream, a connection dropped after
``message_start``); the gateway (a real ``tokenomy gateway`` process, SQLite ledger) must:

- answer no 5xx of its own (a 5xx carrying ``x-tokenomy-origin: gateway``, or a non-API body);
- lose no ledger row: after a graceful stop, one ``calls`` row per Messages request sent;
- keep its memory flat: resident memory at the end within 10% of the level after warm-up.

Traffic: 300 live sessions whose conversations grow turn by turn (60% streaming), identified
by run header, Claude Code session id or prefix continuity — a steady working set, so that
growth after warm-up means a leak.

    .venv/bin/python bench/soak.py [--minutes 10] [--rate 40]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx2
import orjson

from _report import markdown_table, print_table, publish

TOKENOMY = str(Path(sys.executable).parent / "tokenomy")
KEY = "sk-ant-soak-0000"
MODEL = "claude-sonnet-4-6"
HEADERS = {"x-api-key": KEY, "anthropic-version": "2023-06-01", "content-type": "application/json"}
FAULTS = {
    "seed": 11,
    "faults": [
        {"kind": "rate_limit", "rate": 0.01, "retry_after_s": 1},
        {"kind": "overloaded", "rate": 0.01},
        {"kind": "api_error", "rate": 0.01},
        {"kind": "stream_error", "rate": 0.01, "error_type": "overloaded_error"},
        {"kind": "drop_after_start", "rate": 0.01},
    ],
}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return 0


def wait_up(url: str, proc: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise SystemExit(f"{url}: exited with {proc.returncode}")
        try:
            httpx2.get(url, timeout=1)
            return
        except httpx2.TransportError:
            time.sleep(0.1)
    raise SystemExit(f"{url} did not come up")


SESSIONS = 300  # live sessions at any time: a busy team gateway
TURNS = 12  # a session's conversation grows to this many turns, then starts over


def request_for(i: int, rng: random.Random) -> tuple[bytes, dict[str, str]]:
    """The next turn of one of ``SESSIONS`` sessions, as one of three kinds of client.

    A steady population: every session's conversation grows turn by turn (each request extends
    the last one, as agent loops do) and starts over after ``TURNS`` turns, so after warm-up the
    set of runs is stable and any memory growth is a leak, not a bigger working set.
    """
    session = rng.randrange(SESSIONS)
    turns = 1 + (i // SESSIONS + session) % TURNS
    messages: list[dict[str, Any]] = []
    for t in range(turns):
        messages.append({"role": "user", "content": f"session {session} turn {t}: go on"})
        if t < turns - 1:
            messages.append(
                {"role": "assistant", "content": f"Echo: session {session} turn {t}: go on"}
            )
    body = {
        "model": MODEL,
        "max_tokens": 64,
        "stream": rng.random() < 0.6,
        "system": [
            {
                "type": "text",
                "text": "You are a soak test. " * 80,
                "cache_control": {"type": "ephemeral"},
            }
        ],
        "messages": messages,
    }
    headers = dict(HEADERS)
    kind = session % 3
    if kind == 0:
        headers["x-tokenomy-run"] = f"soak-run-{session}"
    elif kind == 1:
        headers["x-claude-code-session-id"] = f"soak-session-{session}"
    return orjson.dumps(body), headers


async def one(
    http: httpx2.AsyncClient, url: str, body: bytes, headers: dict[str, str], tally: dict[str, int]
) -> None:
    try:
        async with http.stream("POST", url, content=body, headers=headers) as r:
            data = b"".join([c async for c in r.aiter_raw()])
            status = r.status_code
            gateway_own = r.headers.get("x-tokenomy-origin") == "gateway"
    except httpx2.HTTPError:
        tally["cut"] += 1  # an upstream drop mirrored to the client
        return
    tally[str(status)] = tally.get(str(status), 0) + 1
    if status >= 500 and (gateway_own or not data.startswith(b'{"type":"error"')):
        tally["gateway_5xx"] += 1


async def drive(
    url: str, *, minutes: float, rate: float, pid: int, samples: list[tuple[float, int]]
) -> dict[str, int]:
    tally: dict[str, int] = {"sent": 0, "cut": 0, "gateway_5xx": 0}
    rng = random.Random(5)
    limits = httpx2.Limits(max_connections=64, max_keepalive_connections=64)
    tasks: set[asyncio.Task[None]] = set()
    async with httpx2.AsyncClient(limits=limits, timeout=60) as http:
        t0 = time.monotonic()
        end = t0 + minutes * 60
        next_sample = t0
        i = 0
        while time.monotonic() < end:
            due = t0 + i / rate
            delay = due - time.monotonic()
            if delay > 0:
                await asyncio.sleep(delay)
            body, headers = request_for(i, rng)
            task = asyncio.create_task(one(http, url, body, headers, tally))
            tasks.add(task)
            task.add_done_callback(tasks.discard)
            tally["sent"] += 1
            i += 1
            if time.monotonic() >= next_sample:
                samples.append((time.monotonic() - t0, rss_kib(pid)))
                next_sample += 10
        await asyncio.gather(*tasks)
    samples.append((time.monotonic() - t0, rss_kib(pid)))
    return tally


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--minutes", type=float, default=10.0)
    ap.add_argument("--rate", type=float, default=40.0, help="requests per second")
    args = ap.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="soak-"))
    env = {k: v for k, v in os.environ.items() if not k.startswith(("TOKENOMY_", "ANTHROPIC_"))}
    env.update(TOKENOMY_DATA_DIR=str(tmp / "data"), TOKENOMY_OFFLINE="1")
    (tmp / "faults.json").write_text(orjson.dumps(FAULTS).decode())
    emu_port, gw_port = free_port(), free_port()
    emu_url, gw_url = f"http://127.0.0.1:{emu_port}", f"http://127.0.0.1:{gw_port}"
    logs = [(tmp / "emulator.log").open("wb"), (tmp / "gateway.log").open("wb")]
    emu = subprocess.Popen(
        [
            TOKENOMY,
            "emulator",
            "--port",
            str(emu_port),
            "--faults",
            str(tmp / "faults.json"),
            "--clock",
            "real",
        ],
        env=env,
        stdout=logs[0],
        stderr=subprocess.STDOUT,
    )
    gw = subprocess.Popen(
        [TOKENOMY, "gateway", "--port", str(gw_port), "--upstream", emu_url],
        env=env,
        stdout=logs[1],
        stderr=subprocess.STDOUT,
    )
    samples: list[tuple[float, int]] = []
    try:
        wait_up(f"{emu_url}/_emulator/clock", emu)
        wait_up(f"{gw_url}/healthz", gw)
        tally = asyncio.run(
            drive(
                f"{gw_url}/v1/messages",
                minutes=args.minutes,
                rate=args.rate,
                pid=gw.pid,
                samples=samples,
            )
        )
    finally:
        gw.send_signal(signal.SIGTERM)
        gw.wait(timeout=60)
        emu.send_signal(signal.SIGTERM)
        emu.wait(timeout=60)
        for f in logs:
            f.close()
    from tokenomy.ledger import Ledger

    with Ledger.open(f"sqlite:///{tmp / 'data' / 'ledger.db'}") as ledger:
        rows = ledger.count("calls")
    # memory: the level after warm-up (the first sample past 20% of the run) vs the end
    warm = next(kib for t, kib in samples if t >= args.minutes * 60 * 0.2) if samples else 0
    end_kib = samples[-1][1] if samples else 0
    growth = (end_kib - warm) / warm if warm else 0.0
    faults = sum(v for k, v in tally.items() if k not in ("sent", "200", "gateway_5xx"))
    lost = tally["sent"] - rows
    ok = tally["gateway_5xx"] == 0 and lost == 0 and growth < 0.10
    cols = [
        "requests",
        "200",
        "upstream faults seen",
        "gateway 5xx",
        "ledger rows",
        "lost rows",
        "RSS after warm-up",
        "RSS at end",
        "growth",
    ]
    row = [
        tally["sent"],
        tally.get("200", 0),
        faults,
        tally["gateway_5xx"],
        rows,
        lost,
        f"{warm / 1024:.1f} MiB",
        f"{end_kib / 1024:.1f} MiB",
        f"{growth:+.1%}",
    ]
    print_table("Soak", cols, [row])
    shutil.rmtree(tmp, ignore_errors=True)
    body = (
        markdown_table(cols, [row])
        + f"\n\n{args.minutes:g} minutes at {args.rate:g} requests/s over loopback: {SESSIONS} live"
        f" sessions growing to {TURNS} turns and starting over (60% streaming; runs named by"
        " header, by Claude Code session id and by prefix continuity), 5% of"
        " Messages calls faulted by the emulator (429, 529, 500, mid-stream error, dropped"
        " connection). The gateway is a `tokenomy gateway` process with its SQLite ledger,"
        " stopped gracefully before the rows are counted. Targets: zero gateway 5xx, zero lost"
        f" rows, memory growth under 10%: **{'MEETS' if ok else 'MISSES'}**."
    )
    publish(
        "soak",
        title="Gateway soak (bench/soak.py)",
        command=f".venv/bin/python bench/soak.py --minutes {args.minutes:g} --rate {args.rate:g}",
        body_md=body,
        data={
            "tally": tally,
            "ledger_rows": rows,
            "rss_samples_kib": samples,
            "growth": growth,
            "ok": ok,
        },
    )
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())

#!/usr/bin/env python3
"""MULTI/EXEC throughput and server CPU per transaction, damselfly and redis-server side by side.

redis-benchmark has no transaction test, so this drives one: C connections (asyncio, raw
RESP), each sending one transaction per round trip (`MULTI`, two writes, `EXEC` in one
write, like redis-py's pipeline()), N transactions in all, and reports transactions per second
and server CPU seconds per 1M transactions (utime+stime from /proc/PID/stat), the figure that
is stable on a noisy box. Two shapes:

  one-shard  SET {u:R}:a v / INCR {u:R}:n   (one hash tag: both keys on one shard)
  spread     SET a:R v / INCR n:R          (random keys: usually two shards)

and an optimistic-locking shape, `WATCH`, `GET`, then the transaction (`watch`).

  bench/tx.py [--threads 1,2] [-c 50] [-n 100000] [--repeat 3] [--shapes one-shard,spread,watch]

The load generator is Python: it, not the server, is the bottleneck for throughput, so
compare the CPU column. Servers get free ports on 127.0.0.1; DAMSELFLY_BIN picks the binary.
"""

import argparse
import asyncio
import os
import random
import socket
import subprocess
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BIN = os.environ.get("DAMSELFLY_BIN", os.path.join(ROOT, "target/release/damselfly"))
TICK = os.sysconf("SC_CLK_TCK")


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    p = s.getsockname()[1]
    s.close()
    return p


def cmd(*args):
    out = [b"*%d\r\n" % len(args)]
    for a in args:
        a = a if isinstance(a, bytes) else str(a).encode()
        out.append(b"$%d\r\n%s\r\n" % (len(a), a))
    return b"".join(out)


def cpu_seconds(pid):
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICK


async def read_replies(reader, n):
    """Reads n top-level RESP2 replies (simple types and arrays of simple types)."""
    got = []
    while len(got) < n:
        line = await reader.readline()
        t = line[:1]
        if t == b"*":
            k = int(line[1:-2])
            items = []
            for _ in range(max(k, 0)):
                items.append(await read_one(reader))
            got.append(items if k >= 0 else None)
        else:
            got.append(await finish_one(reader, line))
    return got


async def read_one(reader):
    return await finish_one(reader, await reader.readline())


async def finish_one(reader, line):
    if line[:1] == b"$":
        k = int(line[1:-2])
        if k < 0:
            return None
        data = await reader.readexactly(k + 2)
        return data[:-2]
    return line[:-2]


async def client(port, shape, count, keyspace, stats):
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    for _ in range(count):
        r = random.randrange(keyspace)
        if shape == "one-shard":
            a, n = f"{{u:{r}}}:a", f"{{u:{r}}}:n"
        else:
            a, n = f"a:{r}", f"n:{r}"
        while True:
            pre = b""
            expect = 4
            if shape == "watch":
                pre = cmd("WATCH", n) + cmd("GET", n)
                expect = 6
            writer.write(pre + cmd("MULTI") + cmd("SET", a, "v") + cmd("INCR", n) + cmd("EXEC"))
            replies = await read_replies(reader, expect)
            stats["exec"] += 1
            if replies[-1] is not None:
                break
            stats["retries"] += 1
    writer.close()


async def load(port, shape, conns, total, keyspace):
    stats = {"exec": 0, "retries": 0}
    per = total // conns
    await asyncio.gather(*(client(port, shape, per, keyspace, stats) for _ in range(conns)))
    return per * conns, stats


def start(kind, threads):
    port = free_port()
    if kind == "redis":
        argv = ["redis-server", "--port", str(port), "--bind", "127.0.0.1", "--save", "",
                "--appendonly", "no"]
    else:
        argv = [BIN, "--port", str(port), "--bind", "127.0.0.1", "--proactor_threads", str(threads)]
    p = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    for _ in range(200):
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            break
        except OSError:
            time.sleep(0.05)
    return p, port


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--threads", default="1,2")
    ap.add_argument("-c", type=int, default=50)
    ap.add_argument("-n", type=int, default=100000)
    ap.add_argument("--keyspace", type=int, default=100000)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--shapes", default="one-shard,spread,watch")
    a = ap.parse_args()
    servers = [("redis", 0)] + [("damselfly", int(t)) for t in a.threads.split(",")]
    procs = {s: start(*s) for s in servers}
    try:
        print("| shape | server | tx/s (median) | CPU s/1M tx | CPU vs Redis | EXEC retries |")
        print("|:---|:---|---:|---:|---:|---:|")
        for shape in a.shapes.split(","):
            res = {s: [] for s in servers}
            for _ in range(a.repeat):
                for s in servers:  # interleaved, so a drift of the box lands on every server
                    p, port = procs[s]
                    c0, t0 = cpu_seconds(p.pid), time.monotonic()
                    done, st = asyncio.run(load(port, shape, a.c, a.n, a.keyspace))
                    dt, cpu = time.monotonic() - t0, cpu_seconds(p.pid) - c0
                    res[s].append((done / dt, cpu, done, st["retries"]))
            redis_cpu = None
            for s in servers:
                rates = sorted(r[0] for r in res[s])
                cpu = sum(r[1] for r in res[s]) / sum(r[2] for r in res[s]) * 1e6
                if s[0] == "redis":
                    redis_cpu = cpu
                name = "redis-server" if s[0] == "redis" else f"damselfly T={s[1]}"
                retries = sum(r[3] for r in res[s])
                print(f"| {shape} | {name} | {rates[len(rates) // 2]:,.0f} | {cpu:.2f} | "
                      f"{cpu / redis_cpu:.2f} | {retries} |")
            sys.stdout.flush()
    finally:
        for p, _ in procs.values():
            p.terminate()
            p.wait()


if __name__ == "__main__":
    main()

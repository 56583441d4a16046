#!/usr/bin/env python3
"""Damselfly vs Redis side-by-side benchmark driver.

Normally invoked through bench/run.sh (which cd's to the repo root and
records the exact command line).  Standard library only.  See
bench/README.md for what every number means.

Design notes
------------
* One server runs at a time: start it, wait for PING, measure, stop it.
  Damselfly and redis-server are measured in the same invocation, with the
  same client settings, so the ratios are comparable.
* Servers are started in their own process group with PR_SET_PDEATHSIG so
  they die even if this driver is SIGKILLed; on normal exit, error, SIGINT,
  SIGTERM or SIGHUP they are terminated explicitly.
* CPU time is read from /proc/PID/stat (utime+stime, all threads of the
  process) immediately before and after every redis-benchmark invocation.
* Progress goes to stderr; the markdown report goes to stdout (and is
  appended to --out on success).
"""

import argparse
import atexit
import ctypes
import datetime
import json
import os
import re
import shlex
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time

CLK_TCK = os.sysconf("SC_CLK_TCK")
HOST = "127.0.0.1"
ALL_TESTS = ("set", "get", "incr", "mset")


class BenchError(Exception):
    """A failure that aborts the run with a clear message."""


class RespError(BenchError):
    """The server answered a command with an error reply."""


def log(msg):
    print("[bench %s] %s" % (time.strftime("%H:%M:%S"), msg), file=sys.stderr, flush=True)


# --------------------------------------------------------------------------
# Process management
# --------------------------------------------------------------------------

_LIVE_SERVERS = []

try:
    _LIBC = ctypes.CDLL(None, use_errno=True)
except OSError:  # pragma: no cover
    _LIBC = None
PR_SET_PDEATHSIG = 1


def _child_setup():
    # Own process group: a terminal ^C goes to us, not straight to the server,
    # and stop() can kill a wrapper's whole group.
    os.setpgrp()
    # If the driver dies (even SIGKILL), the kernel kills the server.
    if _LIBC is not None:
        _LIBC.prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)


def _benchmark_setup():
    # A redis-benchmark whose server vanished can spin forever; tie it to us.
    if _LIBC is not None:
        _LIBC.prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)


def _kill_all_servers():
    for srv in list(_LIVE_SERVERS):
        try:
            srv.stop(quiet=True)
        except Exception:  # noqa: BLE001 - best effort at exit
            pass


atexit.register(_kill_all_servers)


def _on_signal(signum, _frame):
    raise SystemExit(128 + signum)


for _sig in (signal.SIGTERM, signal.SIGHUP, signal.SIGINT):
    signal.signal(_sig, _on_signal)


def free_port():
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((HOST, 0))
        return s.getsockname()[1]


class Resp:
    """Minimal blocking RESP2 client (enough for PING/INFO/DBSIZE/TTL)."""

    def __init__(self, port, timeout=30.0):
        self.sock = socket.create_connection((HOST, port), timeout=timeout)
        self.f = self.sock.makefile("rb")

    def close(self):
        try:
            self.f.close()
            self.sock.close()
        except OSError:
            pass

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def cmd(self, *args):
        out = [b"*%d\r\n" % len(args)]
        for a in args:
            if not isinstance(a, bytes):
                a = str(a).encode()
            out.append(b"$%d\r\n%s\r\n" % (len(a), a))
        self.sock.sendall(b"".join(out))
        return self._read()

    def _read(self):
        line = self.f.readline()
        if not line:
            raise BenchError("server closed the connection")
        if not line.endswith(b"\r\n"):
            raise BenchError("malformed reply line %r" % line[:80])
        t, body = line[:1], line[1:-2]
        if t == b"+":
            return body.decode(errors="replace")
        if t == b"-":
            raise RespError(body.decode(errors="replace"))
        if t == b":":
            return int(body)
        if t in (b"$", b"="):
            n = int(body)
            if n < 0:
                return None
            data = self.f.read(n + 2)
            if len(data) != n + 2:
                raise BenchError("short bulk reply")
            data = data[:-2]
            return data.decode(errors="replace")
        if t in (b"*", b"~", b">"):
            n = int(body)
            return None if n < 0 else [self._read() for _ in range(n)]
        if t == b"%":
            n = int(body)
            return {self._read(): self._read() for _ in range(n)}
        if t == b"_":
            return None
        if t == b",":
            return float(body)
        if t == b"#":
            return body == b"t"
        raise BenchError("unknown reply type %r" % line[:80])


class Server:
    """One server process (damselfly or redis-server)."""

    def __init__(self, spec, workdir):
        self.spec = spec
        self.label = spec["label"]
        self.port = free_port()
        self.argv = spec["argv_fn"](self.port)
        self.workdir = workdir
        self.proc = None
        self.logpath = None

    # -- lifecycle --------------------------------------------------------
    def start(self, ready_timeout=60.0):
        safe = re.sub(r"[^A-Za-z0-9_.=-]+", "_", self.label)
        self.logpath = os.path.join(self.workdir, "%s-%d.log" % (safe, self.port))
        logf = open(self.logpath, "wb")
        log("starting %s on port %d: %s" % (self.label, self.port, shlex.join(self.argv)))
        try:
            self.proc = subprocess.Popen(
                self.argv, cwd=self.workdir, stdin=subprocess.DEVNULL,
                stdout=logf, stderr=subprocess.STDOUT, preexec_fn=_child_setup)
        except OSError as e:
            raise BenchError("cannot start %s (%s): %s" % (self.label, self.argv[0], e))
        finally:
            logf.close()
        _LIVE_SERVERS.append(self)
        deadline = time.monotonic() + ready_timeout
        last_err = None
        while True:
            self.check_alive("startup")
            try:
                with Resp(self.port, timeout=2.0) as c:
                    r = c.cmd("PING")
                    if r == "PONG":
                        break
                    last_err = "PING answered %r" % (r,)
            except (OSError, BenchError) as e:
                last_err = str(e)
            if time.monotonic() > deadline:
                raise BenchError("%s did not answer PING within %.0fs (last error: %s)%s"
                                 % (self.label, ready_timeout, last_err, self.log_tail()))
            time.sleep(0.05)
        try:
            with open("/proc/%d/comm" % self.proc.pid) as f:
                comm = f.read().strip()
        except OSError:
            comm = "?"
        if comm in ("sh", "bash", "dash", "zsh", "env", "timeout"):
            log("WARNING: pid %d of %s is '%s', not the server itself; CPU and RSS figures "
                "will be wrong (make the wrapper 'exec' the server)" % (self.proc.pid, self.label, comm))
        return self

    def alive(self):
        return self.proc is not None and self.proc.poll() is None

    def check_alive(self, context):
        if self.proc is None:
            raise BenchError("%s was never started" % self.label)
        rc = self.proc.poll()
        if rc is not None:
            how = "was killed by signal %d" % -rc if rc < 0 else "exited with status %d" % rc
            raise BenchError("%s %s during %s%s" % (self.label, how, context, self.log_tail()))

    def log_tail(self, lines=25):
        if not self.logpath:
            return ""
        try:
            with open(self.logpath, "rb") as f:
                data = f.read()[-8192:].decode(errors="replace").splitlines()[-lines:]
        except OSError:
            return ""
        if not data:
            return "\n  (server log %s is empty)" % self.logpath
        return "\n  last lines of %s:\n    " % self.logpath + "\n    ".join(data)

    def stop(self, quiet=False):
        if self.proc is None:
            return
        p = self.proc
        if p.poll() is None:
            try:
                os.killpg(p.pid, signal.SIGTERM)
            except ProcessLookupError:
                pass
            try:
                p.wait(timeout=15)
            except subprocess.TimeoutExpired:
                if not quiet:
                    log("%s ignored SIGTERM for 15s; sending SIGKILL" % self.label)
                try:
                    os.killpg(p.pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
                p.wait(timeout=15)
        else:
            # Make sure nothing of a wrapper's group survives.
            try:
                os.killpg(p.pid, signal.SIGKILL)
            except (ProcessLookupError, PermissionError):
                pass
        if self in _LIVE_SERVERS:
            _LIVE_SERVERS.remove(self)
        if not quiet:
            log("stopped %s" % self.label)
        self.proc = None

    # -- /proc readings -----------------------------------------------------
    def cpu_ticks(self):
        """utime+stime of the whole process (all threads), in clock ticks."""
        try:
            with open("/proc/%d/stat" % self.proc.pid) as f:
                stat = f.read()
        except OSError as e:
            self.check_alive("reading /proc/PID/stat")
            raise BenchError("cannot read /proc/%d/stat: %s" % (self.proc.pid, e))
        fields = stat[stat.rindex(")") + 2:].split()
        # fields[0] is field 3 (state); utime is field 14, stime field 15.
        return int(fields[11]) + int(fields[12])

    def rss_bytes(self):
        try:
            with open("/proc/%d/status" % self.proc.pid) as f:
                for line in f:
                    if line.startswith("VmRSS:"):
                        return int(line.split()[1]) * 1024
        except OSError as e:
            self.check_alive("reading /proc/PID/status")
            raise BenchError("cannot read /proc/%d/status: %s" % (self.proc.pid, e))
        raise BenchError("no VmRSS in /proc/%d/status" % self.proc.pid)

    # -- commands -----------------------------------------------------------
    def cmd(self, *args, timeout=60.0):
        self.check_alive("%s command" % args[0])
        try:
            with Resp(self.port, timeout=timeout) as c:
                return c.cmd(*args)
        except RespError:
            raise
        except (OSError, BenchError) as e:
            self.check_alive("%s command" % args[0])
            raise BenchError("%s: %s failed: %s" % (self.label, args[0], e))

    def used_memory(self):
        """used_memory from INFO memory, or None if the server does not report it."""
        try:
            info = self.cmd("INFO", "memory")
        except RespError as e:
            log("WARNING: %s: INFO memory failed (%s); used_memory reported as n/a" % (self.label, e))
            return None
        for line in str(info).splitlines():
            if line.startswith("used_memory:"):
                return int(line.split(":", 1)[1].strip())
        log("WARNING: %s: INFO memory has no used_memory field; reported as n/a" % self.label)
        return None

    def dbsize(self):
        r = self.cmd("DBSIZE")
        if not isinstance(r, int):
            raise BenchError("%s: DBSIZE returned %r, expected an integer" % (self.label, r))
        return r


# --------------------------------------------------------------------------
# redis-benchmark runner and parser
# --------------------------------------------------------------------------

_PCT_RE = re.compile(r"^\s*([0-9.]+)% <= ([0-9.]+) milliseconds")
_TPUT_RE = re.compile(r"throughput summary:\s*([0-9.]+) requests per second")


def parse_benchmark_output(text):
    """Parse non-CSV redis-benchmark 7.x output for a single test."""
    lines = text.replace("\r", "\n").split("\n")
    res = {}
    pct = []
    section = None
    for i, line in enumerate(lines):
        if line.startswith("Latency by percentile distribution"):
            section = "pct"
            continue
        if line.startswith("Cumulative distribution") or line.startswith("Summary"):
            section = None
        if section == "pct":
            m = _PCT_RE.match(line)
            if m:
                pct.append((float(m.group(1)), float(m.group(2))))
        m = _TPUT_RE.search(line)
        if m:
            res["rps"] = float(m.group(1))
        if "latency summary (msec)" in line:
            j = i + 1
            while j < len(lines) and not lines[j].strip():
                j += 1
            names = lines[j].split()
            k = j + 1
            while k < len(lines) and not lines[k].strip():
                k += 1
            vals = lines[k].split() if k < len(lines) else []
            if len(vals) == len(names):
                for n_, v in zip(names, vals):
                    try:
                        res[n_] = float(v)
                    except ValueError:
                        pass
    if "rps" not in res:
        return None
    pct.sort()
    res["pct"] = pct

    def at(p):
        for q, v in pct:
            if q >= p:
                return v
        return pct[-1][1] if pct else None

    res["p99.9"] = at(99.9)
    res["p99.99"] = at(99.99)
    if "p50" not in res:
        res["p50"] = at(50.0)
    if "p99" not in res:
        res["p99"] = at(99.0)
    return res


def run_benchmark(cfg, server, extra, n, label):
    """Run one redis-benchmark invocation against `server`; returns a dict."""
    cmd = [cfg.benchmark_bin, "-h", HOST, "-p", str(server.port), "-c", str(cfg.clients),
           "-n", str(n), "--precision", "3"] + extra
    server.check_alive("before benchmark %s" % label)
    out_path = os.path.join(cfg.workdir, "rb.out")
    err_path = os.path.join(cfg.workdir, "rb.err")
    with open(out_path, "wb") as out, open(err_path, "wb") as err:
        cpu0 = server.cpu_ticks()
        t0 = time.monotonic()
        p = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=out, stderr=err,
                             preexec_fn=_benchmark_setup)
        try:
            while True:
                try:
                    p.wait(timeout=0.1)
                    break
                except subprocess.TimeoutExpired:
                    pass
                if not server.alive():
                    p.kill()
                    p.wait()
                    server.check_alive("benchmark %s" % label)
                if time.monotonic() - t0 > cfg.timeout:
                    p.kill()
                    p.wait()
                    raise BenchError("redis-benchmark %s against %s timed out after %ss: %s"
                                     % (label, server.label, cfg.timeout, shlex.join(cmd)))
        finally:
            if p.poll() is None:
                p.kill()
                p.wait()
        cpu1 = server.cpu_ticks()
        wall = time.monotonic() - t0
    with open(out_path, "rb") as f:
        stdout = f.read().decode(errors="replace")
    with open(err_path, "rb") as f:
        stderr = f.read().decode(errors="replace")
    server.check_alive("benchmark %s" % label)
    res = parse_benchmark_output(stdout)
    if p.returncode != 0 or res is None:
        tail = "\n    ".join((stderr.strip().splitlines() or ["(no stderr)"])[-10:])
        raise BenchError("redis-benchmark %s against %s failed (exit %s): %s\n    %s"
                         % (label, server.label, p.returncode, shlex.join(cmd), tail))
    res["n"] = n
    res["cpu_s"] = (cpu1 - cpu0) / CLK_TCK
    res["wall_s"] = wall
    res["cmd"] = shlex.join(cmd)
    return res


def combine_repeats(runs):
    """Median of rate/latency figures over repeats; CPU is total/total."""
    if len(runs) == 1:
        r = dict(runs[0])
    else:
        r = {}
        for k in ("rps", "avg", "min", "p50", "p95", "p99", "p99.9", "p99.99", "max"):
            vals = [x[k] for x in runs if x.get(k) is not None]
            r[k] = statistics.median(vals) if vals else None
        r["n"] = sum(x["n"] for x in runs)
        r["cpu_s"] = sum(x["cpu_s"] for x in runs)
        r["wall_s"] = sum(x["wall_s"] for x in runs)
        r["cmd"] = runs[0]["cmd"]
    r["cpu_per_M"] = r["cpu_s"] / r["n"] * 1e6
    r["repeats"] = len(runs)
    r.pop("pct", None)
    return r


# --------------------------------------------------------------------------
# Pipelined loader (memory and growth sections)
# --------------------------------------------------------------------------

OK = b"+OK\r\n"


def load_keys(server, n, key_fmt, ttl=None, batch=10000, timeout=120.0):
    """SET n keys key_fmt % i (i = 0..n-1) with 16-byte non-numeric values,
    pipelined over one connection; every reply must be +OK."""
    sock = socket.create_connection((HOST, server.port), timeout=timeout)
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    errors = []
    got = [0]

    def reader():
        pending = b""
        try:
            while got[0] < n:
                data = sock.recv(1 << 20)
                if not data:
                    raise BenchError("server closed the connection after %d of %d replies"
                                     % (got[0], n))
                buf = pending + data
                k = len(buf) // 5
                if buf[:k * 5] != OK * k:
                    i = 0
                    while buf[i * 5:i * 5 + 5] == OK:
                        i += 1
                    end = buf.find(b"\r\n", i * 5)
                    bad = buf[i * 5:end if end >= 0 else i * 5 + 200]
                    raise BenchError("reply %d to SET was %r, expected +OK"
                                     % (got[0] + i, bad.decode(errors="replace")))
                got[0] += k
                pending = buf[k * 5:]
            if pending:
                raise BenchError("unexpected extra reply bytes %r" % pending[:80])
        except Exception as e:  # noqa: BLE001 - reported by the sender thread
            errors.append(e)

    if ttl:
        tail = b"$2\r\nEX\r\n$%d\r\n%d\r\n" % (len(str(ttl)), ttl)
        head = b"*5\r\n$3\r\nSET\r\n"
    else:
        tail = b""
        head = b"*3\r\n$3\r\nSET\r\n"
    fmt = head + b"$%d\r\n%s\r\n$16\r\nv%015d\r\n" + tail

    th = threading.Thread(target=reader, daemon=True)
    th.start()
    t0 = time.monotonic()
    try:
        for lo in range(0, n, batch):
            if errors:
                break
            parts = []
            for i in range(lo, min(n, lo + batch)):
                key = key_fmt % i
                parts.append(fmt % (len(key), key, i))
            try:
                sock.sendall(b"".join(parts))
            except OSError as e:
                server.check_alive("loading keys")
                raise BenchError("%s: sending SETs failed: %s" % (server.label, e))
            server.check_alive("loading keys")
        while th.is_alive():
            th.join(0.2)
            server.check_alive("loading keys")
            if time.monotonic() - t0 > timeout + n / 20000.0:
                raise BenchError("%s: loading %d keys timed out (%d replies received)"
                                 % (server.label, n, got[0]))
    finally:
        try:
            sock.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        sock.close()
    if errors:
        server.check_alive("loading keys")
        raise BenchError("%s: loading keys failed: %s" % (server.label, errors[0]))
    return time.monotonic() - t0


# --------------------------------------------------------------------------
# Formatting helpers
# --------------------------------------------------------------------------

def fnum(x, nd=0):
    if x is None:
        return "n/a"
    if nd == 0:
        return "{:,.0f}".format(x)
    return "{:.{nd}f}".format(x, nd=nd)


def ratio(a, b, nd=2):
    if a is None or b is None or b == 0:
        return "n/a"
    return "{:.{nd}f}".format(a / b, nd=nd)


def md_table(headers, rows, align=None):
    align = align or (["l"] * len(headers))
    out = ["| " + " | ".join(headers) + " |",
           "|" + "|".join(("---:" if a == "r" else ":---") for a in align) + "|"]
    for r in rows:
        out.append("| " + " | ".join(str(c) for c in r) + " |")
    return "\n".join(out)


# --------------------------------------------------------------------------
# Sections
# --------------------------------------------------------------------------

def server_specs(cfg):
    """Damselfly once per thread count, then redis."""
    specs = []
    for t in cfg.threads:
        specs.append({
            "kind": "damselfly", "threads": t, "label": "damselfly T=%d" % t,
            "argv_fn": (lambda port, t=t: [cfg.damselfly_bin, "--port", str(port), "--bind", HOST,
                                           "--logtostderr", "--proactor_threads", str(t)]
                        + cfg.df_args)})
    specs.append({
        "kind": "redis", "threads": None, "label": "redis",
        "argv_fn": (lambda port: [cfg.redis_bin, "--port", str(port), "--bind", HOST,
                                  "--save", "", "--appendonly", "no", "--daemonize", "no"]
                    + cfg.redis_args)})
    return specs


def section_throughput(cfg, emit, raw):
    """All servers run at once, idle but one; each repeat of a row visits every server in
    turn, so slow drifts of the box (other tenants, thermal) land on all servers alike
    instead of on whichever server happened to be measured during them."""
    specs = server_specs(cfg)
    combos = [(d, p, t) for d in cfg.sizes for p in cfg.pipelines for t in cfg.tests]
    results = {}  # (label, test, P, d) -> result
    servers = []
    try:
        for spec in specs:
            servers.append(Server(spec, cfg.workdir).start())
        for d, p, t in combos:
            n = cfg.requests if p > 1 else cfg.requests_p1
            label = "%s -P %d -d %d" % (t, p, d)
            runs = {srv.label: [] for srv in servers}
            for rep in range(cfg.repeat):
                for srv in servers:
                    runs[srv.label].append(run_benchmark(
                        cfg, srv, ["-r", str(cfg.keyspace), "-t", t, "-P", str(p), "-d", str(d)],
                        n, label))
            for srv in servers:
                c = combine_repeats(runs[srv.label])
                results[(srv.label, t, p, d)] = c
                raw.append({"section": "throughput", "server": srv.label, "test": t,
                            "pipeline": p, "size": d, **c})
                log("%-16s %-20s %12s rps  cpu %.3f s/1M  p50 %s p99 %s p99.9 %s ms"
                    % (srv.label, label, fnum(c["rps"]), c["cpu_per_M"], c.get("p50"),
                       c.get("p99"), c.get("p99.9")))
    finally:
        for srv in servers:
            srv.stop()

    df_specs = [s for s in specs if s["kind"] == "damselfly"]
    lines = []
    lines.append("### 1–2. Throughput and server CPU per request\n")
    lines.append("`redis-benchmark -h 127.0.0.1 -p PORT -c %d -n N -r %d -t TEST -P P -d D --precision 3`"
                 " — one invocation per row%s; all servers run at once and each repeat visits them in turn. N = %d for -P 1, %d for -P > 1. "
                 "CPU = utime+stime of the server process during the invocation "
                 "(clock tick %.0f ms). rps ratio > 1 and CPU ratio < 1 favour damselfly.\n"
                 % (cfg.clients, cfg.keyspace,
                    "" if cfg.repeat == 1 else " (median of %d repeats; CPU = total/total)" % cfg.repeat,
                    cfg.requests_p1, cfg.requests, 1000.0 / CLK_TCK))
    rows = []
    for d, p, t in combos:
        rr = results[("redis", t, p, d)]
        for s in df_specs:
            dr = results[(s["label"], t, p, d)]
            rows.append([t.upper(), p, d, s["threads"], fnum(dr["rps"]), fnum(rr["rps"]),
                         ratio(dr["rps"], rr["rps"]), fnum(dr["cpu_per_M"], 3),
                         fnum(rr["cpu_per_M"], 3), ratio(dr["cpu_per_M"], rr["cpu_per_M"])])
    lines.append(md_table(["test", "P", "d", "DF threads", "DF rps", "Redis rps", "rps DF/R",
                           "DF CPU s/1M req", "Redis CPU s/1M req", "CPU DF/R"],
                          rows, ["l", "r", "r", "r", "r", "r", "r", "r", "r", "r"]))
    emit("\n".join(lines) + "\n")

    lines = ["### 3. Latency (ms, from the same redis-benchmark runs)\n",
             "p50/p99 from redis-benchmark's latency summary, p99.9 from its percentile "
             "distribution (first listed percentile ≥ 99.9). With -P > 1 every request of a "
             "pipeline is timed from the moment the whole pipeline was sent. "
             "Ratios < 1 favour damselfly.\n"]
    rows = []
    for d, p, t in combos:
        rr = results[("redis", t, p, d)]
        for s in df_specs:
            dr = results[(s["label"], t, p, d)]
            rows.append([t.upper(), p, d, s["threads"],
                         fnum(dr.get("p50"), 3), fnum(rr.get("p50"), 3), ratio(dr.get("p50"), rr.get("p50")),
                         fnum(dr.get("p99"), 3), fnum(rr.get("p99"), 3), ratio(dr.get("p99"), rr.get("p99")),
                         fnum(dr.get("p99.9"), 3), fnum(rr.get("p99.9"), 3),
                         ratio(dr.get("p99.9"), rr.get("p99.9"))])
    lines.append(md_table(["test", "P", "d", "DF threads", "DF p50", "R p50", "p50 DF/R",
                           "DF p99", "R p99", "p99 DF/R", "DF p99.9", "R p99.9", "p99.9 DF/R"],
                          rows, ["l"] + ["r"] * 12))
    emit("\n".join(lines) + "\n")


def section_memory(cfg, emit, raw):
    specs = server_specs(cfg)
    df_specs = [s for s in specs if s["kind"] == "damselfly"]
    results = {}
    for n in cfg.mem_keys:
        for ttl in (None, cfg.ttl):
            for spec in specs:
                srv = Server(spec, cfg.workdir).start()
                try:
                    um0, rss0 = srv.used_memory(), srv.rss_bytes()
                    secs = load_keys(srv, n, b"key:%08d", ttl=ttl, timeout=cfg.timeout)
                    size = srv.dbsize()
                    if size != n:
                        raise BenchError("%s: DBSIZE is %d after loading %d keys (expected %d)"
                                         % (spec["label"], size, n, n))
                    if ttl:
                        try:
                            t_left = srv.cmd("TTL", "key:%08d" % (n - 1))
                            if not isinstance(t_left, int) or t_left <= 0:
                                log("WARNING: %s: TTL key:%08d = %r, expected > 0"
                                    % (spec["label"], n - 1, t_left))
                        except RespError as e:
                            log("WARNING: %s: TTL failed: %s" % (spec["label"], e))
                    um1, rss1 = srv.used_memory(), srv.rss_bytes()
                finally:
                    srv.stop()
                r = {"n": n, "ttl": ttl, "used_before": um0, "used_after": um1,
                     "rss_before": rss0, "rss_after": rss1, "load_s": secs,
                     "used_per_key": (um1 - um0) / n if um0 is not None and um1 is not None else None,
                     "rss_per_key": (rss1 - rss0) / n}
                results[(spec["label"], n, ttl)] = r
                raw.append({"section": "memory", "server": spec["label"], **r})
                log("%-16s %d keys ttl=%s: used_memory %s B/key, RSS %s B/key (load %.1fs)"
                    % (spec["label"], n, ttl, fnum(r["used_per_key"], 1), fnum(r["rss_per_key"], 1), secs))

    lines = ["### 4. Memory per key\n",
             "Fresh server per row; keys `key:%%08d`, 16-byte non-numeric values "
             "(`v%%015d`), loaded with pipelined `SET` (TTL rows: `SET k v EX %d`); DBSIZE verified. "
             "B/key = (after − before) / N for `used_memory` (INFO memory) and VmRSS "
             "(/proc/PID/status). Ratios < 1 favour damselfly.\n" % cfg.ttl]
    rows = []
    for n in cfg.mem_keys:
        for ttl in (None, cfg.ttl):
            rr = results[("redis", n, ttl)]
            for s in df_specs:
                dr = results[(s["label"], n, ttl)]
                rows.append([fnum(n), "EX %d" % ttl if ttl else "none", s["threads"],
                             fnum(dr["used_per_key"], 1), fnum(rr["used_per_key"], 1),
                             ratio(dr["used_per_key"], rr["used_per_key"]),
                             fnum(dr["rss_per_key"], 1), fnum(rr["rss_per_key"], 1),
                             ratio(dr["rss_per_key"], rr["rss_per_key"])])
    lines.append(md_table(["keys", "TTL", "DF threads", "DF used_memory B/key",
                           "Redis used_memory B/key", "used DF/R", "DF RSS B/key",
                           "Redis RSS B/key", "RSS DF/R"], rows, ["r", "l"] + ["r"] * 7))
    lines.append("\nRaw values (MiB):\n")
    rows = []
    mib = lambda x: fnum(x / 1048576.0, 1) if x is not None else "n/a"  # noqa: E731
    for n in cfg.mem_keys:
        for ttl in (None, cfg.ttl):
            for s in specs:
                r = results[(s["label"], n, ttl)]
                rows.append([s["label"], fnum(n), "EX %d" % ttl if ttl else "none",
                             mib(r["used_before"]), mib(r["used_after"]),
                             mib(r["rss_before"]), mib(r["rss_after"]), fnum(r["load_s"], 1)])
    lines.append(md_table(["server", "keys", "TTL", "used_memory before", "used_memory after",
                           "RSS before", "RSS after", "load s"], rows,
                          ["l", "r", "l", "r", "r", "r", "r", "r"]))
    emit("\n".join(lines) + "\n")


def section_growth(cfg, emit, raw):
    specs = server_specs(cfg)
    g = cfg.growth_keys
    results = {}
    bench_args = ["-t", "set", "-P", str(cfg.growth_pipeline), "-d", "16"]
    for spec in specs:
        # Phase A: growth.  Fresh, empty server; G SETs of random keys drawn from
        # a 2e9 keyspace, so (almost) every SET inserts a new key.
        srv = Server(spec, cfg.workdir).start()
        try:
            r = run_benchmark(cfg, srv, ["-r", "2000000000"] + bench_args, g, "growth SET")
            r["dbsize_before"] = 0
            r["dbsize_after"] = srv.dbsize()
        finally:
            srv.stop()
        r = combine_repeats([r])
        results[(spec["label"], "growth")] = r
        raw.append({"section": "growth", "phase": "growth", "server": spec["label"], **r})
        log("%-16s growth: %s rps p99.9 %s ms max %s ms, DBSIZE %d"
            % (spec["label"], fnum(r["rps"]), r["p99.9"], r["max"], r["dbsize_after"]))
        # Phase B: steady state.  Fresh server preloaded with exactly the keys
        # key:000000000000 .. key:(G-1) that redis-benchmark -r G generates, so
        # every SET overwrites an existing key and the table does not grow.
        srv = Server(spec, cfg.workdir).start()
        try:
            load_keys(srv, g, b"key:%012d", timeout=cfg.timeout)
            before = srv.dbsize()
            if before != g:
                raise BenchError("%s: DBSIZE is %d after preloading %d keys" % (spec["label"], before, g))
            r = run_benchmark(cfg, srv, ["-r", str(g)] + bench_args, g, "steady SET")
            r["dbsize_before"] = before
            r["dbsize_after"] = srv.dbsize()
            if r["dbsize_after"] != g:
                raise BenchError("%s: DBSIZE changed from %d to %d during the steady-state run"
                                 % (spec["label"], g, r["dbsize_after"]))
        finally:
            srv.stop()
        r = combine_repeats([r])
        results[(spec["label"], "steady")] = r
        raw.append({"section": "growth", "phase": "steady", "server": spec["label"], **r})
        log("%-16s steady: %s rps p99.9 %s ms max %s ms"
            % (spec["label"], fnum(r["rps"]), r["p99.9"], r["max"]))

    lines = ["### 5. SET latency while the table grows vs steady state\n",
             "`redis-benchmark -c %d -n %d -t set -P %d -d 16 --precision 3` twice per server, each on a "
             "fresh server. **growth**: empty server, `-r 2000000000` (random keys, ~every SET inserts, "
             "the table grows 0 → ~%s keys during the run). **steady**: server preloaded with exactly the "
             "%s keys `-r %d` addresses (`key:%%012d`), so every SET overwrites and the table size is "
             "constant. Latencies in ms; p99.9/p99.99 from the percentile distribution.\n"
             % (cfg.clients, g, cfg.growth_pipeline, fnum(g), fnum(g), g)]
    rows = []
    for s in specs:
        for phase in ("growth", "steady"):
            r = results[(s["label"], phase)]
            rows.append([s["label"], phase, "%s → %s" % (fnum(r["dbsize_before"]), fnum(r["dbsize_after"])),
                         fnum(r["rps"]), fnum(r.get("p50"), 3), fnum(r.get("p99"), 3),
                         fnum(r.get("p99.9"), 3), fnum(r.get("p99.99"), 3), fnum(r.get("max"), 3),
                         fnum(r["cpu_per_M"], 3)])
    lines.append(md_table(["server", "phase", "DBSIZE", "rps", "p50", "p99", "p99.9", "p99.99",
                           "max", "CPU s/1M"], rows, ["l", "l"] + ["r"] * 8))
    lines.append("\nSummary (growth penalty = growth/steady; DF/R < 1 favours damselfly):\n")
    rows = []
    rg, rs = results[("redis", "growth")], results[("redis", "steady")]
    for s in specs:
        if s["kind"] != "damselfly":
            continue
        dg, ds = results[(s["label"], "growth")], results[(s["label"], "steady")]
        rows.append([s["threads"], ratio(dg["p99.9"], ds["p99.9"]), ratio(rg["p99.9"], rs["p99.9"]),
                     ratio(dg["p99.9"], rg["p99.9"]), ratio(ds["p99.9"], rs["p99.9"]),
                     ratio(dg["max"], rg["max"])])
    lines.append(md_table(["DF threads", "DF p99.9 growth/steady", "Redis p99.9 growth/steady",
                           "growth p99.9 DF/R", "steady p99.9 DF/R", "growth max DF/R"],
                          rows, ["r"] * 6))
    emit("\n".join(lines) + "\n")


# --------------------------------------------------------------------------
# Header and main
# --------------------------------------------------------------------------

def sh(cmd, default="unknown"):
    try:
        out = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
                             timeout=10, check=True).stdout.decode(errors="replace").strip()
        return out or default
    except (OSError, subprocess.SubprocessError):
        return default


def cpu_model():
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return "unknown"


def header(cfg):
    commit = sh(["git", "rev-parse", "--short", "HEAD"])
    dirty = sh(["git", "status", "--porcelain", "--untracked-files=no"], default="")
    if commit != "unknown" and dirty:
        commit += " (working tree has uncommitted changes)"
    try:
        st = os.stat(cfg.damselfly_bin)
        binfo = "%s (mtime %s, %d bytes)" % (
            cfg.damselfly_bin, datetime.datetime.fromtimestamp(st.st_mtime).strftime("%Y-%m-%d %H:%M:%S"),
            st.st_size)
    except OSError:
        binfo = cfg.damselfly_bin
    now = datetime.datetime.now().astimezone().strftime("%Y-%m-%d %H:%M:%S %Z")
    lines = [
        "## Damselfly vs Redis — %s%s\n" % (now, " (quick mode: smoke test, numbers not meaningful)" if cfg.quick else ""),
        "- command: `%s`" % cfg.cmdline,
        "- date: %s" % now,
        "- kernel (`uname -r`): %s" % os.uname().release,
        "- nproc: %s, CPU: %s" % (sh(["nproc"]), cpu_model()),
        "- damselfly commit: %s" % commit,
        "- damselfly binary: %s; threads: %s%s" % (binfo, ",".join(map(str, cfg.threads)),
                                                    ("; extra args: `%s`" % shlex.join(cfg.df_args)) if cfg.df_args else ""),
        "- redis: %s%s" % (sh([cfg.redis_bin, "--version"]),
                           ("; extra args: `%s`" % shlex.join(cfg.redis_args)) if cfg.redis_args else ""),
        "- client: %s, %d connections (`-c`); one server loaded at a time on 127.0.0.1"
        " (throughput rows: all servers up, repeats interleaved)"
        % (sh([cfg.benchmark_bin, "--version"]), cfg.clients),
        "",
    ]
    return "\n".join(lines)


def int_list(s):
    try:
        vals = [int(x) for x in s.split(",") if x.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError("expected comma-separated integers, got %r" % s)
    if not vals or any(v <= 0 for v in vals):
        raise argparse.ArgumentTypeError("expected positive integers, got %r" % s)
    return vals


def parse_args(argv):
    ap = argparse.ArgumentParser(
        prog=os.environ.get("BENCH_PROG", "bench/run.sh"),
        description="Run damselfly and redis-server side by side (one loaded at a time) and report "
                    "damselfly/redis ratios. See bench/README.md.")
    ap.add_argument("--threads", type=int_list, default=[1],
                    help="damselfly --proactor_threads; a list like 1,2 runs damselfly once per value (default 1)")
    ap.add_argument("--requests", type=int, default=None,
                    help="requests per redis-benchmark run with -P > 1 (default 1000000; quick 20000)")
    ap.add_argument("--requests-p1", type=int, default=None,
                    help="requests per run with -P 1 (default 200000, or --requests/5 if --requests is given; quick 20000)")
    ap.add_argument("--clients", type=int, default=50, help="redis-benchmark -c (default 50)")
    ap.add_argument("--keyspace", type=int, default=1000000, help="redis-benchmark -r for the throughput runs (default 1000000)")
    ap.add_argument("--tests", default="set,get,incr,mset", help="redis-benchmark tests (default set,get,incr,mset)")
    ap.add_argument("--pipelines", type=int_list, default=[1, 16], help="pipeline depths -P (default 1,16)")
    ap.add_argument("--sizes", type=int_list, default=[16, 1024], help="value sizes -d (default 16,1024)")
    ap.add_argument("--repeat", type=int, default=1,
                    help="run every redis-benchmark invocation K times on the same server; report medians (default 1)")
    ap.add_argument("--keys", type=int, default=None, help="keys for the memory section (default 1000000; quick 100000)")
    ap.add_argument("--big", action="store_true", help="memory section also with 5M keys (quick: 500k)")
    ap.add_argument("--ttl", type=int, default=100000, help="EX seconds for the TTL memory rows (default 100000)")
    ap.add_argument("--growth", action="store_true", help="also run the growth-latency section")
    ap.add_argument("--growth-keys", type=int, default=None, help="keys for --growth (default 5000000; quick 100000)")
    ap.add_argument("--growth-pipeline", type=int, default=1, help="-P for --growth runs (default 1)")
    ap.add_argument("--skip-throughput", action="store_true", help="skip sections 1-3")
    ap.add_argument("--skip-memory", action="store_true", help="skip section 4")
    ap.add_argument("--quick", action="store_true", help="small sizes for smoke testing (< 1 minute)")
    ap.add_argument("--out", default=None, help="append the markdown report to FILE (only if the run succeeds)")
    ap.add_argument("--json", default=None, help="write raw per-run results as JSON to FILE")
    ap.add_argument("--timeout", type=float, default=900.0, help="seconds before one benchmark/load step is declared hung (default 900)")
    ap.add_argument("--df-arg", action="append", default=[], metavar="ARG",
                    help="extra argument for damselfly (repeatable, e.g. --df-arg=--maxmemory=0)")
    ap.add_argument("--redis-arg", action="append", default=[], metavar="ARG",
                    help="extra argument for redis-server (repeatable)")
    cfg = ap.parse_args(argv)

    cfg.tests = [t.strip().lower() for t in cfg.tests.split(",") if t.strip()]
    bad = [t for t in cfg.tests if t not in ALL_TESTS]
    if bad or not cfg.tests:
        ap.error("--tests: unknown test(s) %s (choose from %s)" % (",".join(bad), ",".join(ALL_TESTS)))
    if cfg.quick:
        q_req = 20000
        cfg.requests_p1 = cfg.requests_p1 or cfg.requests or q_req
        cfg.requests = cfg.requests or q_req
        cfg.keys = cfg.keys or 100000
        big = 500000
        cfg.growth_keys = cfg.growth_keys or 100000
    else:
        if cfg.requests_p1 is None:
            cfg.requests_p1 = max(1, cfg.requests // 5) if cfg.requests else 200000
        cfg.requests = cfg.requests or 1000000
        cfg.keys = cfg.keys or 1000000
        big = 5000000
        cfg.growth_keys = cfg.growth_keys or 5000000
    cfg.mem_keys = [cfg.keys] + ([big] if cfg.big and big != cfg.keys else [])
    for name in ("requests", "requests_p1", "clients", "keyspace", "repeat", "ttl",
                 "growth_keys", "growth_pipeline"):
        if getattr(cfg, name) <= 0:
            ap.error("--%s must be positive" % name.replace("_", "-"))
    if cfg.keys <= 0:
        ap.error("--keys must be positive")
    if cfg.keys >= 10 ** 8 or cfg.growth_keys >= 10 ** 12:
        ap.error("too many keys for the key:%08d / key:%012d formats")
    return cfg


def main(argv):
    cfg = parse_args(argv)
    orig_cwd = os.environ.get("BENCH_ORIG_CWD", os.getcwd())

    def from_user(path):
        return path if os.path.isabs(path) else os.path.normpath(os.path.join(orig_cwd, path))

    env_bin = os.environ.get("DAMSELFLY_BIN")
    cfg.damselfly_bin = from_user(env_bin) if env_bin else os.path.abspath("target/release/damselfly")
    cfg.redis_bin = os.environ.get("REDIS_SERVER", "redis-server")
    cfg.benchmark_bin = os.environ.get("REDIS_BENCHMARK", "redis-benchmark")
    cfg.df_args = cfg.df_arg
    cfg.redis_args = cfg.redis_arg
    cfg.out = from_user(cfg.out) if cfg.out else None
    cfg.json = from_user(cfg.json) if cfg.json else None
    cfg.cmdline = shlex.join([os.environ.get("BENCH_PROG", sys.argv[0])] + argv)

    if not (os.path.isfile(cfg.damselfly_bin) and os.access(cfg.damselfly_bin, os.X_OK)):
        raise BenchError("damselfly binary %s not found or not executable (build it with "
                         "`cargo build --release`, or set DAMSELFLY_BIN)" % cfg.damselfly_bin)

    report = []

    def emit(text):
        report.append(text)
        print(text, flush=True)

    raw = []
    t_start = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="damselfly-bench-") as wd:
        cfg.workdir = wd
        emit(header(cfg))
        if not cfg.skip_throughput:
            section_throughput(cfg, emit, raw)
        if not cfg.skip_memory:
            section_memory(cfg, emit, raw)
        if cfg.growth:
            section_growth(cfg, emit, raw)
    emit("_Total run time: %.0f s._\n" % (time.monotonic() - t_start))

    if cfg.json:
        with open(cfg.json, "w") as f:
            json.dump({"cmdline": cfg.cmdline, "results": raw}, f, indent=1)
        log("raw results written to %s" % cfg.json)
    if cfg.out:
        os.makedirs(os.path.dirname(cfg.out) or ".", exist_ok=True)
        with open(cfg.out, "a") as f:
            f.write("\n".join(report) + "\n")
        log("report appended to %s" % cfg.out)
    return 0


if __name__ == "__main__":
    try:
        rc = main(sys.argv[1:])
    except BenchError as e:
        _kill_all_servers()
        print("bench: ERROR: %s" % e, file=sys.stderr, flush=True)
        rc = 1
    except SystemExit as e:
        _kill_all_servers()
        if isinstance(e.code, int) and e.code >= 128:
            print("bench: interrupted or aborted (exit %s); servers stopped" % e.code, file=sys.stderr)
        raise
    except BaseException:
        _kill_all_servers()
        raise
    sys.exit(rc)

#!/usr/bin/env python3
"""Capture Redis 7.0.15's command table (COMMAND INFO + COMMAND DOCS) as raw RESP3 bytes.

Output: crates/server/src/commands/meta_redis_7_0_15.resp, which
crates/server/src/commands/meta.rs embeds with include_bytes! and parses at first use. The
server answers COMMAND / COMMAND INFO / COMMAND DOCS / COMMAND COUNT / COMMAND LIST from it
and the dispatcher takes each command's arity, flags and key positions from it, so the file
is the single source of truth for command metadata. It is GENERATED: never edit it by hand;
rerun this script instead.

Regenerate (from the repository root; Python 3 stdlib only):

    python3 scripts/gen_command_meta.py                    # starts /usr/bin/redis-server
    python3 scripts/gen_command_meta.py --redis-server PATH
    python3 scripts/gen_command_meta.py --port 6379        # use a running server instead
    python3 scripts/gen_command_meta.py --check            # exit 1 if the file is stale

The server must be redis-server 7.0.15 with no modules loaded (checked via HELLO).

File format: exactly two RESP3 values back to back, nothing else:

  1. the reply to `COMMAND INFO <n1> <n2> ...`: an array with one 10-element entry per
     top-level command (subcommands are nested in each entry's 10th element), and
  2. the reply to `COMMAND DOCS <n1> <n2> ...`: a map name -> docs map,

where n1, n2, ... are the top-level names from COMMAND LIST (those without '|'), sorted
bytewise. Both replies are taken over one connection after `HELLO 3`.

Canonical order: Redis emits a container's subcommands in the iteration order of its
subcommand dict, which is seeded randomly at every server start. So that regeneration is
deterministic, this script reorders those siblings by name: the 10th element of each
COMMAND INFO entry (an array of entries) and the "subcommands" map inside a COMMAND DOCS
entry. Only the order of whole sibling elements changes; every element's bytes are copied
verbatim from the server's reply. (Any order is what a real Redis could send.)
"""

import argparse
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time

EXPECTED_VERSION = b"7.0.15"
REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DEFAULT_OUT = os.path.join(
    REPO_ROOT, "crates", "server", "src", "commands", "meta_redis_7_0_15.resp"
)


# ---------------------------------------------------------------------------------------------
# RESP3 reader that keeps byte spans, so elements can be copied (and reordered) verbatim.
# ---------------------------------------------------------------------------------------------


class Node:
    """One RESP3 value: its type byte, span [start, end) in the buffer, and children.

    For maps, children alternate key, value. Scalars keep their payload in `value`.
    """

    __slots__ = ("kind", "start", "end", "children", "value")

    def __init__(self, kind, start, end, children=None, value=None):
        self.kind = kind
        self.start = start
        self.end = end
        self.children = children
        self.value = value


class Incomplete(Exception):
    pass


def _line(buf, pos):
    i = buf.find(b"\r\n", pos)
    if i < 0:
        raise Incomplete()
    return buf[pos:i], i + 2


def parse(buf, pos=0):
    """Parses one RESP3 value at `pos`; returns the Node (node.end is the next position)."""
    if pos >= len(buf):
        raise Incomplete()
    kind = buf[pos : pos + 1]
    body, nxt = _line(buf, pos + 1)
    if kind in (b"+", b"-", b":", b",", b"#", b"(", b"_"):
        return Node(kind, pos, nxt, value=body)
    if kind in (b"$", b"=", b"!"):
        n = int(body)
        if n < 0:  # RESP2 null bulk; never in RESP3 replies but harmless
            return Node(kind, pos, nxt, value=None)
        if len(buf) < nxt + n + 2:
            raise Incomplete()
        if buf[nxt + n : nxt + n + 2] != b"\r\n":
            raise ValueError("bad bulk terminator at %d" % (nxt + n))
        return Node(kind, pos, nxt + n + 2, value=buf[nxt : nxt + n])
    if kind in (b"*", b"~", b">", b"%", b"|"):
        n = int(body)
        if n < 0:
            return Node(kind, pos, nxt, children=None)
        count = 2 * n if kind in (b"%", b"|") else n
        children = []
        p = nxt
        for _ in range(count):
            child = parse(buf, p)
            children.append(child)
            p = child.end
        node = Node(kind, pos, p, children=children)
        if kind == b"|":  # attribute: metadata for the value that follows it
            raise ValueError("unexpected RESP3 attribute at %d" % pos)
        return node
    raise ValueError("unknown RESP type %r at %d" % (kind, pos))


# ---------------------------------------------------------------------------------------------
# Canonicalisation: reorder subcommand siblings by name, copying bytes verbatim.
# ---------------------------------------------------------------------------------------------


def _aggregate_header_end(buf, node):
    return buf.index(b"\r\n", node.start) + 2


def canon_info_entry(buf, node):
    """Bytes of one COMMAND INFO entry with its nested subcommand entries sorted by name."""
    if node.kind != b"*" or len(node.children) != 10:
        raise ValueError("COMMAND INFO entry is not a 10-element array at %d" % node.start)
    out = bytearray(buf[node.start : _aggregate_header_end(buf, node)])
    for i, child in enumerate(node.children):
        if i == 9 and child.kind == b"*":
            subs = sorted(child.children, key=lambda c: c.children[0].value)
            out += buf[child.start : _aggregate_header_end(buf, child)]
            for sub in subs:
                out += canon_info_entry(buf, sub)
        else:
            out += buf[child.start : child.end]
    return bytes(out)


def canon_docs_entry(buf, node):
    """Bytes of one COMMAND DOCS entry (a map) with its "subcommands" map sorted by name."""
    if node.kind != b"%":
        raise ValueError("COMMAND DOCS entry is not a map at %d" % node.start)
    out = bytearray(buf[node.start : _aggregate_header_end(buf, node)])
    kids = node.children
    for k, v in zip(kids[0::2], kids[1::2]):
        out += buf[k.start : k.end]
        if k.value == b"subcommands" and v.kind == b"%":
            out += canon_docs_map(buf, v)
        else:
            out += buf[v.start : v.end]
    return bytes(out)


def canon_docs_map(buf, node):
    """Bytes of a name -> docs map with its pairs sorted by name (recursively)."""
    out = bytearray(buf[node.start : _aggregate_header_end(buf, node)])
    kids = node.children
    pairs = sorted(zip(kids[0::2], kids[1::2]), key=lambda kv: kv[0].value)
    for k, v in pairs:
        out += buf[k.start : k.end]
        out += canon_docs_entry(buf, v)
    return bytes(out)


# ---------------------------------------------------------------------------------------------
# Talking to redis-server
# ---------------------------------------------------------------------------------------------


class Conn:
    def __init__(self, port, host="127.0.0.1"):
        self.sock = socket.create_connection((host, port), timeout=30)
        self.buf = b""

    def call(self, *args):
        """Sends one command; returns (raw reply bytes, parsed Node relative to those bytes)."""
        parts = [b"*%d\r\n" % len(args)]
        for a in args:
            if isinstance(a, str):
                a = a.encode()
            parts.append(b"$%d\r\n%s\r\n" % (len(a), a))
        self.sock.sendall(b"".join(parts))
        while True:
            try:
                node = parse(self.buf, 0)
                break
            except Incomplete:
                chunk = self.sock.recv(1 << 20)
                if not chunk:
                    raise ConnectionError("server closed the connection")
                self.buf += chunk
        raw, self.buf = self.buf[: node.end], self.buf[node.end :]
        if node.kind == b"-":
            raise RuntimeError("server error: %s" % node.value.decode(errors="replace"))
        return raw, node


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_server(binary):
    port = free_port()
    workdir = tempfile.mkdtemp(prefix="gen_command_meta_")
    proc = subprocess.Popen(
        [binary, "--port", str(port), "--bind", "127.0.0.1", "--save", "",
         "--appendonly", "no", "--dir", workdir, "--daemonize", "no",
         "--logfile", os.path.join(workdir, "redis.log")],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )
    deadline = time.time() + 10
    while True:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return proc, port, workdir
        except OSError:
            if proc.poll() is not None or time.time() > deadline:
                proc.kill()
                raise RuntimeError("could not start %s on port %d" % (binary, port))
            time.sleep(0.05)


def generate(port, host="127.0.0.1"):
    c = Conn(port, host)
    _, hello = c.call("HELLO", "3")
    fields = {k.value: v for k, v in zip(hello.children[0::2], hello.children[1::2])}
    if fields.get(b"version").value != EXPECTED_VERSION:
        raise RuntimeError(
            "server is redis %s, expected %s"
            % (fields.get(b"version").value.decode(), EXPECTED_VERSION.decode())
        )
    if fields.get(b"modules").children:
        raise RuntimeError("server has modules loaded; use a plain redis-server")

    _, listing = c.call("COMMAND", "LIST")
    # COMMAND LIST also lists "container|sub"; those come nested in their container's entry.
    names = sorted(n.value for n in listing.children if b"|" not in n.value)
    _, count = c.call("COMMAND", "COUNT")
    if int(count.value) != len(names):
        raise RuntimeError("COMMAND COUNT %s != %d top-level names" % (count.value, len(names)))

    info_raw, info = c.call("COMMAND", "INFO", *names)
    docs_raw, docs = c.call("COMMAND", "DOCS", *names)
    if info.kind != b"*" or len(info.children) != len(names):
        raise RuntimeError("unexpected COMMAND INFO reply")
    if docs.kind != b"%" or len(docs.children) != 2 * len(names):
        raise RuntimeError("unexpected COMMAND DOCS reply")
    for name, entry in zip(names, info.children):
        if entry.kind != b"*" or entry.children[0].value != name:
            raise RuntimeError("COMMAND INFO entry for %r missing or out of order" % name)
    for name, key in zip(names, docs.children[0::2]):
        if key.value != name:
            raise RuntimeError("COMMAND DOCS entry for %r missing or out of order" % name)

    out = bytearray(info_raw[: _aggregate_header_end(info_raw, info)])
    for entry in info.children:
        out += canon_info_entry(info_raw, entry)
    out += canon_docs_map(docs_raw, docs)

    # Sanity: canonicalisation kept every byte, and the file is exactly two values.
    if len(out) != len(info_raw) + len(docs_raw):
        raise RuntimeError("canonicalisation changed the length")
    first = parse(bytes(out), 0)
    second = parse(bytes(out), first.end)
    if second.end != len(out):
        raise RuntimeError("output is not exactly two RESP3 values")
    return bytes(out), len(names)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--port", type=int, help="use a redis-server already listening here")
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--redis-server", default=shutil.which("redis-server") or "/usr/bin/redis-server",
                    help="binary to start when --port is not given")
    ap.add_argument("--out", default=DEFAULT_OUT)
    ap.add_argument("--check", action="store_true",
                    help="do not write; exit 1 if --out differs from what would be generated")
    args = ap.parse_args()

    proc = workdir = None
    try:
        if args.port is None:
            proc, port, workdir = start_server(args.redis_server)
        else:
            port = args.port
        data, n = generate(port, args.host if args.port is not None else "127.0.0.1")
    finally:
        if proc is not None:
            proc.terminate()
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()
        if workdir is not None:
            shutil.rmtree(workdir, ignore_errors=True)

    if args.check:
        try:
            with open(args.out, "rb") as f:
                current = f.read()
        except FileNotFoundError:
            current = None
        if current != data:
            print("%s is stale; rerun scripts/gen_command_meta.py" % args.out, file=sys.stderr)
            return 1
        print("%s is up to date (%d commands, %d bytes)" % (args.out, n, len(data)))
        return 0

    with open(args.out, "wb") as f:
        f.write(data)
    print("wrote %s: %d commands, %d bytes" % (args.out, n, len(data)))
    return 0


if __name__ == "__main__":
    sys.exit(main())

#!/usr/bin/env python3
"""A hostile HTTP server for tests/lua/hostile_spec.lua and soak_spec.lua (python3 stdlib only).

Usage:
    hostile_server.py [--host 127.0.0.1]

Binds port 0, prints one line `PORT <port> PID <pid>` and flushes, then serves every connection
as an asyncio task. It exits on SIGTERM, when its parent process goes away, or when the reader
of its stdout (if a pipe) closes it (both polled), so a crashed spec leaves nothing behind.

Each connection: the request head is read (at most 1 MiB), then the scenario named by the
request path `/scenario/<name>[?key=value&...]` runs. Scenarios write raw bytes exactly as
given (no header is added), so a response can break HTTP in precise ways. The request body is
never read unless a scenario says so. Query parameters: `n` (a count), `size` (bytes), `delay`
(seconds) where a scenario uses them.

Most scenarios end in one of three ways:
    fin    shut down the write side, then wait (up to 10 s) for the client to close
    hold   send nothing more until the client closes (at most 30 s)
    rst    wait until every byte sent was acknowledged, then SO_LINGER 0 + close: a reset
Endless writers stop when the client goes away (or after a cap of 256 MiB or 30 s).

With --state-file PATH the counters {"accepted": n, "open": n, "client_gone": n} are rewritten
there (atomically) whenever they change: connections accepted, connections still open, and how
many times a write or a wait saw the client go away. `GET /__stats` answers the same JSON.
"""

import argparse
import asyncio
import fcntl
import json
import os
import select
import signal
import socket
import stat
import struct
import sys
import termios
import time
import urllib.parse

HEAD_CAP = 1 << 20
ENDLESS_CAP = 256 << 20
ENDLESS_SECONDS = 30.0
HOLD_SECONDS = 30.0

SSE_HEAD = b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nCache-Control: no-cache\r\n\r\n"

STATS = {"accepted": 0, "open": 0, "client_gone": 0}
STATE_FILE = None


def bump(**deltas):
    """Updates the counters and rewrites the state file (atomically: a reader sees whole JSON)."""
    for key, delta in deltas.items():
        STATS[key] += delta
    if STATE_FILE:
        tmp = STATE_FILE + ".tmp"
        with open(tmp, "w") as f:
            json.dump(STATS, f)
        os.replace(tmp, STATE_FILE)


def event(i):
    return b"id: %d\ndata: event %d\n\n" % (i, i)


def events(first, last):
    return b"".join(event(i) for i in range(first, last + 1))


def chunk(data):
    return b"%x\r\n%s\r\n" % (len(data), data)


def head(status_line, headers):
    lines = [status_line] + ["%s: %s" % (k, v) for k, v in headers]
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")


class ClientGone(Exception):
    """The client closed or reset the connection while we wrote or waited."""


class Conn:
    def __init__(self, reader, writer, query):
        self.reader = reader
        self.writer = writer
        self.query = query

    def param(self, name, default, conv=int):
        values = self.query.get(name)
        return conv(values[0]) if values else default

    async def send(self, data):
        if self.writer.is_closing():
            raise ClientGone()
        self.writer.write(data)
        try:
            await self.writer.drain()
        except (ConnectionError, OSError) as exc:
            raise ClientGone() from exc

    async def endless(self, prefix, piece):
        """prefix once, then piece over and over until the client goes away (or the caps)."""
        await self.send(prefix)
        sent = 0
        start = time.monotonic()
        while sent < ENDLESS_CAP and time.monotonic() - start < ENDLESS_SECONDS:
            await self.send(piece)
            sent += len(piece)
        await self.hold()

    async def drip(self, data, delay):
        for i in range(len(data)):
            await self.send(data[i:i + 1])
            await asyncio.sleep(delay)

    async def hold(self, seconds=HOLD_SECONDS):
        """Reads and drops whatever comes until the client closes (or `seconds` pass)."""
        try:
            while True:
                data = await asyncio.wait_for(self.reader.read(65536), seconds)
                if not data:
                    raise ClientGone()
        except asyncio.TimeoutError:
            return
        except (ConnectionError, OSError) as exc:
            raise ClientGone() from exc

    async def fin(self):
        try:
            if self.writer.can_write_eof():
                self.writer.write_eof()
        except (ConnectionError, OSError) as exc:
            raise ClientGone() from exc
        await self.hold(10.0)

    async def unacked_drained(self, limit=5.0):
        """Waits until the kernel has no unsent or unacknowledged bytes (TIOCOUTQ == 0)."""
        sock = self.writer.get_extra_info("socket")
        deadline = time.monotonic() + limit
        while time.monotonic() < deadline:
            if self.writer.transport.get_write_buffer_size() == 0:
                buf = fcntl.ioctl(sock.fileno(), termios.TIOCOUTQ, struct.pack("i", 0))
                if struct.unpack("i", buf)[0] == 0:
                    return
            await asyncio.sleep(0.002)

    async def rst(self):
        await self.unacked_drained()
        self.reset_now()

    def reset_now(self):
        sock = self.writer.get_extra_info("socket")
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        self.writer.transport.abort()


# --- scenarios ---------------------------------------------------------------------------------
# Each takes a Conn. The expected client outcome is asserted by hostile_spec.lua.

SCENARIOS = {}


def scenario(fn):
    SCENARIOS[fn.__name__] = fn
    return fn


def simple(name, data, end="fin"):
    """A scenario that writes `data` in one write and ends with `end`."""

    async def run(c):
        await c.send(data)
        await getattr(c, end)()

    SCENARIOS[name] = run


# A good stream, for positive controls and the soak: n events, then FIN.
@scenario
async def stream(c):
    await c.send(SSE_HEAD + events(1, c.param("n", 3)))
    await c.fin()


# An event every `delay` seconds until the client goes away (the soak's mid-stream clients).
@scenario
async def ticker(c):
    await c.send(SSE_HEAD)
    i = 0
    while True:
        i += 1
        await c.send(event(i))
        await asyncio.sleep(c.param("delay", 0.005, float))


# `n` events of `size` bytes of data as fast as the socket takes them, then FIN.
@scenario
async def burst(c):
    n, size = c.param("n", 1000), c.param("size", 64)
    pad = b"x" * size
    batch = []
    await c.send(SSE_HEAD)
    for i in range(1, n + 1):
        batch.append(b"id: %d\ndata: %d %s\n\n" % (i, i, pad))
        if len(batch) == 256 or i == n:
            await c.send(b"".join(batch))
            batch = []
    await c.fin()


# Head sent, then silence until the client goes away.
@scenario
async def stall(c):
    await c.send(SSE_HEAD)
    await c.hold()


# The request is read, nothing is ever answered.
@scenario
async def no_response(c):
    await c.hold()


@scenario
async def endless_header_line(c):
    await c.endless(b"HTTP/1.1 200 OK\r\nX-Endless: ", b"a" * 65536)


@scenario
async def endless_status_line(c):
    await c.endless(b"HTTP/1.1 200 ", b"O" * 65536)


@scenario
async def many_headers(c):
    # 100,000 small header fields (about 1.3 MB), then a valid end of head and two events.
    await c.send(b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\n")
    batch = []
    for i in range(100000):
        batch.append(b"X-H%d: v\r\n" % i)
        if len(batch) == 4096:
            await c.send(b"".join(batch))
            batch = []
    await c.send(b"".join(batch) + b"\r\n" + events(1, 2))
    await c.fin()


@scenario
async def endless_continue(c):
    await c.endless(b"", b"HTTP/1.1 100 Continue\r\n\r\n" * 1024)


# Ten interim responses (the documented maximum) then a good stream: a positive control.
simple("ten_continues", b"HTTP/1.1 100 Continue\r\n\r\n" * 10 + SSE_HEAD + events(1, 2))

simple("cl_and_chunked",
       head("HTTP/1.1 200 OK", [("Content-Type", "text/event-stream"), ("Content-Length", 36),
                                ("Transfer-Encoding", "chunked")]) + chunk(events(1, 2)), "hold")
simple("cl_duplicate",
       head("HTTP/1.1 200 OK", [("Content-Type", "text/event-stream"),
                                ("Content-Length", len(events(1, 2))),
                                ("Content-Length", len(events(1, 2)))]) + events(1, 2), "hold")
simple("cl_conflicting",
       head("HTTP/1.1 200 OK", [("Content-Type", "text/event-stream"), ("Content-Length", 36),
                                ("Content-Length", 18)]) + events(1, 2), "hold")
simple("cl_negative",
       head("HTTP/1.1 200 OK", [("Content-Type", "text/event-stream"), ("Content-Length", -1)])
       + events(1, 2), "hold")
simple("cl_plus",
       head("HTTP/1.1 200 OK", [("Content-Type", "text/event-stream"),
                                ("Content-Length", "+%d" % len(events(1, 2)))]) + events(1, 2),
       "hold")
simple("cl_2_64",
       head("HTTP/1.1 200 OK", [("Content-Type", "text/event-stream"),
                                ("Content-Length", str(2 ** 64))]) + events(1, 2), "hold")
simple("cl_hex",
       head("HTTP/1.1 200 OK", [("Content-Type", "text/event-stream"), ("Content-Length", "0x24")])
       + events(1, 2), "hold")

CHUNKED_HEAD = head("HTTP/1.1 200 OK", [("Content-Type", "text/event-stream"),
                                        ("Transfer-Encoding", "chunked")])

# Two good events in a first chunk, then the broken part: the events come first.
simple("chunk_size_overflow", CHUNKED_HEAD + chunk(events(1, 2)) + b"fffffffffffffffff1\r\n",
       "hold")
simple("chunk_size_negative", CHUNKED_HEAD + chunk(events(1, 2)) + b"-10\r\n", "hold")
simple("chunk_missing_crlf", CHUNKED_HEAD + b"%x\r\n" % len(event(1)) + event(1) + b"XX"
       + chunk(event(2)), "hold")
simple("chunk_truncated", CHUNKED_HEAD + chunk(events(1, 2)) + b"100\r\n" + event(3), "fin")


@scenario
async def chunk_extension_1mib(c):
    await c.send(CHUNKED_HEAD + chunk(events(1, 2)) + b"12;ext=")
    await c.send(b"x" * (1 << 20) + b"\r\n" + event(3) + b"\r\n0\r\n\r\n")
    await c.hold()


@scenario
async def endless_trailer(c):
    await c.endless(CHUNKED_HEAD + chunk(events(1, 2)) + b"0\r\nX-Trailer: ", b"t" * 65536)


SSE_CT = ("Content-Type", "text/event-stream")
simple("bare_cr_in_header", b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\n"
       b"X-A: b\rX-B: c\r\n\r\n" + events(1, 2), "hold")
simple("nul_in_header", b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\n"
       b"X-A: b\x00c\r\n\r\n" + events(1, 2), "hold")
simple("obs_fold", b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\n"
       b"X-A: b\r\n  folded\r\n\r\n" + events(1, 2), "hold")
simple("space_before_colon", b"HTTP/1.1 200 OK\r\nContent-Type : text/event-stream\r\n\r\n"
       + events(1, 2), "hold")
simple("garbage_status_line", b"SSH-2.0-OpenSSH_9.2p1 Debian-2\r\n\r\n" + events(1, 2), "hold")
simple("status_1000", b"HTTP/1.1 1000 OK\r\nContent-Type: text/event-stream\r\n\r\n"
       + events(1, 2), "hold")
# HTTP/0.9: no status line at all, the body straight away, then close.
simple("http09_reply", events(1, 2), "fin")
simple("empty_reply", b"", "fin")
simple("head_cut_short", b"HTTP/1.1 200 OK\r\nContent-Ty", "fin")

# Content-Length framing: a body shorter than announced, and bytes after the end of the body.
simple("body_shorter_than_length",
       head("HTTP/1.1 200 OK", [SSE_CT, ("Content-Length", 1000)]) + events(1, 2), "fin")
simple("bytes_after_body",
       head("HTTP/1.1 200 OK", [SSE_CT, ("Content-Length", len(events(1, 2)))])
       + events(1, 2) + b"data: not part of the body\n\nHTTP/1.1 200 OK\r\n\r\n", "hold")
simple("bytes_after_last_chunk",
       CHUNKED_HEAD + chunk(events(1, 2)) + b"0\r\n\r\n" + b"data: smuggled\n\n" * 4, "hold")


@scenario
async def endless_data_line(c):
    await c.endless(SSE_HEAD + events(1, 2) + b"data: ", b"d" * 65536)


@scenario
async def million_data_lines(c):
    # A million `data:` lines and no blank line: one event that never completes; then FIN.
    await c.send(SSE_HEAD + events(1, 2))
    piece = b"data: x\n" * 8192
    for _ in range(1000000 // 8192):
        await c.send(piece)
    await c.send(b"data: x\n" * (1000000 % 8192))
    await c.fin()


@scenario
async def rst_after_events(c):
    n = c.param("n", 50)
    await c.send(SSE_HEAD)
    for i in range(1, n + 1):
        await c.send(event(i))
    await c.rst()


# POST targets: reset as soon as the head is in (the body is never read), or stop reading.
@scenario
async def reset_before_body(c):
    c.reset_now()


@scenario
async def stop_reading(c):
    c.writer.transport.pause_reading()
    await asyncio.sleep(HOLD_SECONDS)


simple("no_content", b"HTTP/1.1 204 No Content\r\nContent-Type: text/event-stream\r\n\r\n", "hold")
RATE_LIMIT_BODY = b'{"error":{"type":"rate_limit","message":"slow down please"}}'
simple("rate_limited",
       head("HTTP/1.1 429 Too Many Requests",
            [("Content-Type", "application/json"), ("Retry-After", "7"),
             ("Content-Length", len(RATE_LIMIT_BODY))]) + RATE_LIMIT_BODY, "hold")
simple("server_error_html",
       head("HTTP/1.1 500 Internal Server Error", [("Content-Type", "text/html")])
       + b"<html><body><h1>500 Internal Server Error</h1></body></html>", "fin")
simple("html_200", head("HTTP/1.1 200 OK", [("Content-Type", "text/html; charset=utf-8")])
       + b"<html>data: no\n\n</html>", "hold")


@scenario
async def drip_headers(c):
    delay = c.param("delay", 0.1, float)
    data = b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\n" + b"X-Slow: drip\r\n" * 50
    await c.drip(data, delay)
    await c.hold()


@scenario
async def comments_then_silence(c):
    # `n` comments, one every `delay` seconds, then one event, then silence.
    n, delay = c.param("n", 10), c.param("delay", 0.1, float)
    await c.send(SSE_HEAD)
    for _ in range(n):
        await c.send(b": keep-alive\n")
        await asyncio.sleep(delay)
    await c.send(b"data: last\n\n")
    await c.hold()


@scenario
async def events_then_silence(c):
    await c.send(SSE_HEAD + events(1, c.param("n", 2)))
    await c.hold()


@scenario
async def drip_body(c):
    # `n` events, one byte per write (TCP_NODELAY: many tiny segments), then FIN.
    await c.send(SSE_HEAD)
    data = events(1, c.param("n", 20))
    for i in range(len(data)):
        await c.send(data[i:i + 1])
    await c.fin()


@scenario
async def n_headers(c):
    # A head with exactly `n` header fields (Content-Type included), then two events.
    n = c.param("n", 100)
    fields = [SSE_CT] + [("X-F%d" % i, "v") for i in range(1, n)]
    await c.send(head("HTTP/1.1 200 OK", fields) + events(1, 2))
    await c.fin()


@scenario
async def early_401(c):
    # Answers before the request body is in (as an API rejecting a key does), then reads and
    # drops the rest until the client closes.
    body = b'{"error":"invalid api key"}'
    await c.send(head("HTTP/1.1 401 Unauthorized", [("Content-Type", "application/json"),
                                                    ("Content-Length", len(body))]) + body)
    await c.hold()


simple("http2_status_line", b"HTTP/2 200\r\ncontent-type: text/event-stream\r\n\r\n"
       + events(1, 2), "hold")
simple("switching_protocols", b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n"
       b"Connection: Upgrade\r\n\r\n" + events(1, 2), "hold")
simple("events_after_done", SSE_HEAD + events(1, 2) + b"data: [DONE]\n\n" + events(3, 4), "hold")
simple("huge_chunk_then_fin", CHUNKED_HEAD + chunk(events(1, 2)) + b"7fffffffffffffff\r\n"
       + event(3), "fin")


@scenario
async def early_401_close(c):
    # As early_401, but the server closes at once without reading the body (the kernel then
    # resets the connection because request bytes are left unread).
    body = b'{"error":"invalid api key"}'
    await c.send(head("HTTP/1.1 401 Unauthorized", [("Content-Type", "application/json"),
                                                    ("Content-Length", len(body))]) + body)
    await c.unacked_drained()


@scenario
async def endless_error_body(c):
    await c.endless(head("HTTP/1.1 500 Internal Server Error", [("Content-Type", "text/plain")]),
                    b"e" * 65536)


@scenario
async def dripped_error_body(c):
    await c.send(head("HTTP/1.1 503 Service Unavailable", [("Content-Type", "text/plain")]))
    await c.drip(b"overloaded " * 100, c.param("delay", 0.1, float))
    await c.fin()


# retry values past uint64 (ignored) and past Lua's integers (a float): events x y z w.
simple("retry_overflow", SSE_HEAD + b"retry: 99999999999999999999999999\ndata: x\n\n"
       + b"retry: 18446744073709551616\ndata: y\n\n"
       + b"retry: 18446744073709551615\ndata: z\n\n"
       + b"retry: 9223372036854775808\ndata: w\n\n", "fin")
simple("length_zero", head("HTTP/1.1 200 OK", [SSE_CT, ("Content-Length", 0)]), "hold")


# --- the server --------------------------------------------------------------------------------

async def read_head(reader):
    buf = b""
    while b"\r\n\r\n" not in buf:
        if len(buf) > HEAD_CAP:
            return None
        data = await reader.read(65536)
        if not data:
            return None
        buf += data
    return buf[: buf.index(b"\r\n\r\n") + 4]


async def handle(reader, writer):
    bump(accepted=1, open=1)
    counted = True
    try:
        sock = writer.get_extra_info("socket")
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        raw = await read_head(reader)
        if raw is None:
            return
        target = raw.split(b"\r\n", 1)[0].split(b" ")[1].decode("latin-1")
        url = urllib.parse.urlsplit(target)
        if url.path == "/__stats":
            bump(accepted=-1, open=-1)
            counted = False
            body = json.dumps(STATS).encode()
            writer.write(head("HTTP/1.1 200 OK", [("Content-Type", "application/json"),
                                                  ("Content-Length", len(body))]) + body)
            await writer.drain()
            return
        name = url.path[len("/scenario/"):] if url.path.startswith("/scenario/") else ""
        fn = SCENARIOS.get(name)
        if fn is None:
            writer.write(b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n")
            await writer.drain()
            return
        await fn(Conn(reader, writer, urllib.parse.parse_qs(url.query)))
    except (ClientGone, ConnectionError, OSError):
        bump(client_gone=1)
    finally:
        writer.transport.abort()
        if counted:
            bump(open=-1)


def stdout_reader_gone():
    """True when stdout is a pipe whose read end is closed (the parent closed its popen)."""
    try:
        if not stat.S_ISFIFO(os.fstat(1).st_mode):
            return False
        p = select.poll()
        p.register(1, select.POLLERR)
        return any(ev & (select.POLLERR | select.POLLHUP) for _, ev in p.poll(0))
    except OSError:
        return True


async def watch_parent(parent):
    while os.getppid() == parent and not stdout_reader_gone():
        await asyncio.sleep(0.2)
    os._exit(0)


async def main():
    p = argparse.ArgumentParser()
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--state-file")
    args = p.parse_args()
    global STATE_FILE
    STATE_FILE = args.state_file
    bump()
    parent = os.getppid()
    loop = asyncio.get_running_loop()
    loop.add_signal_handler(signal.SIGTERM, lambda: os._exit(0))
    server = await asyncio.start_server(handle, args.host, 0, backlog=1024, limit=HEAD_CAP)
    port = server.sockets[0].getsockname()[1]
    sys.stdout.write("PORT %d PID %d\n" % (port, os.getpid()))
    sys.stdout.flush()
    await watch_parent(parent)


if __name__ == "__main__":
    asyncio.run(main())

#!/usr/bin/env python3
"""A scriptable HTTP/1.1 server for the lev-http client tests (python3 standard library only).

Usage:
    script_server.py [--host 127.0.0.1|::1] [--state-file PATH] [--log-file PATH]
    script_server.py --backlog-full      # a port whose accept queue is full: connect() hangs
    script_server.py --refuse            # a port that was bound then closed: connect() is refused

The server binds port 0, prints one line `PORT <port> PID <pid>` and flushes, then serves every
connection in its own thread. It exits on SIGTERM, when its stdin (if a pipe) reaches EOF, or
when the reader of its stdout (if a pipe) goes away, so a crashed test never leaves it behind.

Each connection: the request head is read (at most 1 MiB; more gets a 431), then the body by
Content-Length, and the raw request is recorded. Then the script from the request header
`X-Script` runs: a JSON array of operations, executed in order. A request without `X-Script`
gets a default stream: `200 text/event-stream` and three events (`id: N`, `data: event N`).

Operations (one key names the operation; other keys are its parameters):
    {"status": 200, "reason": "OK", "headers": [[name, value], ...] or {name: value}}
                               status line + headers + blank line; with no "headers" a
                               `Content-Type: text/event-stream` is sent
    {"sse_head": true}         `HTTP/1.1 200 OK`, `Content-Type: text/event-stream`,
                               `Cache-Control: no-cache` (close-delimited body)
    {"send": "text"}           UTF-8 text, one write
    {"hex": "ff00"}            raw bytes, one write
    {"repeat": "text", "n": N} text * N (in pieces of at most "piece" bytes, default 64 KiB)
    {"sleep": s}               pause s seconds
    {"drip": "text", "delay": s}  one byte per write, s seconds between writes
    {"chunk": "text"}          one chunk of a chunked body (size line, data, CRLF), one write
    {"chunk_hex": "ff00"}      the same with raw bytes
    {"last_chunk": true}       `0\\r\\n\\r\\n`
    {"echo": true}             `200 text/event-stream`, then one event whose data is the JSON
                               {method, target, version, headers: [[name, value], ...] (in
                               order, as received), body}; then the connection is closed
    {"events": N, "size": S, "done": bool}  N OpenAI-shaped events (`data: {...}`, a
                               "content" of S bytes, field "n" = 1..N) in one quick burst,
                               then `data: [DONE]` when "done" is true
    {"close": true}            end the script: FIN (shutdown), then wait (up to "linger" s,
                               default 5) for the client to close, then close
    {"rst": true}              SO_LINGER 0 then close: the client sees a reset
    {"hold": s}                send nothing for up to s seconds, or until the client closes
                               (then the script ends)
    {"noread": true}           first op only: do not read the request body, never read again
                               (a later hold then sees a client reset, but not a FIN queued
                               behind the unread bytes; on expiry the socket is reset)
    {"wait_client_close": s}   like hold: wait up to s seconds for the client to close
When the script runs out of operations the connection ends as with {"close": true}.

A TLS ClientHello (an https:// client) gets a clear-text 400, or with --tls-hello hold no
answer at all.

Counters: `GET /__stats` answers JSON {accepted, requests, open, client_closed, ...} (control
requests are not counted). With --state-file the same JSON is rewritten (atomically) whenever
a counter changes, so a test can poll it without a socket. With --log-file each request is
appended as one JSON line {method, target, version, headers, body, raw} (raw: the request bytes
as latin-1 code points).
"""

import argparse
import json
import os
import select
import signal
import socket
import stat
import struct
import sys
import threading
import time

HEAD_CAP = 1 << 20
DEFAULT_LINGER = 5.0


class Stats:
    """Counters shared by the connection threads; mirrored to the state file."""

    def __init__(self, state_file):
        self.lock = threading.Lock()
        self.state_file = state_file
        self.values = {
            "accepted": 0,      # connections accepted (control requests excluded)
            "requests": 0,      # request heads parsed (control requests excluded)
            "open": 0,          # connections currently open
            "client_closed": 0, # connections the client closed while the server waited
            "reset": 0,         # connections the server reset on purpose
            "bad_requests": 0,  # heads too large or malformed
        }
        self.write()

    def add(self, **deltas):
        with self.lock:
            for key, delta in deltas.items():
                self.values[key] += delta
            self._write_locked()

    def snapshot(self):
        with self.lock:
            return dict(self.values)

    def write(self):
        with self.lock:
            self._write_locked()

    def _write_locked(self):
        if not self.state_file:
            return
        tmp = self.state_file + ".tmp"
        with open(tmp, "w") as f:
            json.dump(self.values, f)
        os.replace(tmp, self.state_file)


class RequestLog:
    def __init__(self, path):
        self.path = path
        self.lock = threading.Lock()
        if path:
            open(path, "w").close()

    def append(self, record):
        if not self.path:
            return
        line = json.dumps(record) + "\n"
        with self.lock:
            with open(self.path, "a") as f:
                f.write(line)


class Request:
    def __init__(self, raw_head):
        self.raw = raw_head
        self.body = b""
        self.method = ""
        self.target = ""
        self.version = ""
        self.headers = []  # [name, value] in order, as received
        text = raw_head.decode("latin-1")
        lines = text.split("\r\n")
        parts = lines[0].split(" ")
        if len(parts) == 3:
            self.method, self.target, self.version = parts
        else:
            self.method = lines[0]
        for line in lines[1:]:
            if not line:
                continue
            name, _, value = line.partition(":")
            self.headers.append([name, value.strip(" \t")])

    def header(self, name):
        for n, v in self.headers:
            if n.lower() == name.lower():
                return v
        return None

    def as_json(self, with_raw):
        record = {
            "method": self.method,
            "target": self.target,
            "version": self.version,
            "headers": self.headers,
            "body": self.body.decode("utf-8", "replace"),
        }
        if with_raw:
            record["raw"] = (self.raw + self.body).decode("latin-1")
        return record


class PeerClosed(Exception):
    """The client went away while the script was writing."""


class Connection:
    def __init__(self, server, sock):
        self.server = server
        self.sock = sock
        self.reading = True  # False after {"noread"}: the socket is never read again
        self.pending = b""
        self.control = False

    # --- reading ---------------------------------------------------------------------------

    def read_head(self):
        buf = b""
        while True:
            end = buf.find(b"\r\n\r\n")
            if end >= 0:
                if end + 4 > HEAD_CAP:
                    return None
                self.pending = buf[end + 4:]
                return buf[: end + 4]
            if len(buf) > HEAD_CAP:
                return None
            try:
                data = self.sock.recv(65536)
            except OSError:
                return b""
            if not data:
                return b""
            if not buf and data[:1] == b"\x16":
                return self.tls_hello()
            buf += data

    def tls_hello(self):
        """A TLS ClientHello on this plain-HTTP port: answer 400 in clear text, as plain
        servers do (the client's handshake then fails), or with --tls-hello hold, say
        nothing until the client gives up (a handshake that gets no answer)."""
        if self.server.tls_hello == "hold":
            self.wait_client_close(60)
        else:
            self.write(b"HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")
            self.finish(DEFAULT_LINGER)
        return b""

    def read_body(self, req):
        length = req.header("Content-Length")
        try:
            n = int(length) if length is not None else 0
        except ValueError:
            n = 0
        body = self.pending
        while len(body) < n:
            try:
                data = self.sock.recv(min(1 << 20, n - len(body)))
            except OSError:
                break
            if not data:
                break
            body += data
        req.body = body[:n]
        self.pending = body[n:]

    def wait_client_close(self, seconds):
        """Waits up to `seconds` for the client to close (FIN or reset). True if it did.

        In read mode incoming bytes are read and dropped; after {"noread"} nothing is read and
        only a hang-up or a half-close (POLLRDHUP) counts."""
        deadline = time.monotonic() + seconds
        poller = select.poll()
        mask = select.POLLHUP | select.POLLERR | getattr(select, "POLLRDHUP", 0x2000)
        if self.reading:
            mask |= select.POLLIN
        poller.register(self.sock.fileno(), mask)
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                return False
            events = poller.poll(min(left, 0.5) * 1000)
            if self.server.stopping.is_set():
                return False
            for _, ev in events:
                if ev & (select.POLLHUP | select.POLLERR | getattr(select, "POLLRDHUP", 0x2000)):
                    if not self.reading or not ev & select.POLLIN:
                        return True
                if ev & select.POLLIN:
                    try:
                        data = self.sock.recv(65536)
                    except OSError:
                        return True
                    if not data:
                        return True

    # --- writing ---------------------------------------------------------------------------

    def write(self, data):
        try:
            self.sock.sendall(data)
        except OSError as exc:
            raise PeerClosed() from exc

    def head(self, status=200, reason="OK", headers=None):
        lines = [f"HTTP/1.1 {status} {reason}"]
        if headers is None:
            headers = [["Content-Type", "text/event-stream"]]
        elif isinstance(headers, dict):
            headers = list(headers.items())
        for name, value in headers:
            lines.append(f"{name}: {value}")
        self.write(("\r\n".join(lines) + "\r\n\r\n").encode("utf-8"))

    # --- the script ------------------------------------------------------------------------

    def run(self):
        stats = self.server.stats
        try:
            raw = self.read_head()
            if raw is None:
                stats.add(bad_requests=1)
                self.write(b"HTTP/1.1 431 Request Header Fields Too Large\r\n"
                           b"Content-Length: 0\r\nConnection: close\r\n\r\n")
                self.finish(DEFAULT_LINGER)
                return
            if not raw:
                return
            req = Request(raw)
            if req.target.startswith("/__"):
                self.control = True
                stats.add(accepted=-1, open=-1)
                self.serve_control(req)
                return
            stats.add(requests=1)
            script_text = req.header("X-Script")
            try:
                script = json.loads(script_text) if script_text else None
            except ValueError:
                script = None
                stats.add(bad_requests=1)
            if script is None:
                script = default_script()
            if script and "noread" in script[0]:
                self.reading = False
                script = script[1:]
            else:
                self.read_body(req)
            self.server.log.append(req.as_json(with_raw=True))
            self.run_script(script, req)
        except PeerClosed:
            pass
        finally:
            try:
                self.sock.close()
            except OSError:
                pass
            if not self.control:
                stats.add(open=-1)

    def run_script(self, script, req):
        stats = self.server.stats
        for op in script:
            if "status" in op:
                self.head(op["status"], op.get("reason", "OK"), op.get("headers"))
            elif "sse_head" in op:
                self.head(200, "OK", [["Content-Type", "text/event-stream"],
                                      ["Cache-Control", "no-cache"]])
            elif "send" in op:
                self.write(op["send"].encode("utf-8"))
            elif "hex" in op:
                self.write(bytes.fromhex(op["hex"]))
            elif "repeat" in op:
                data = op["repeat"].encode("utf-8") * int(op.get("n", 1))
                piece = int(op.get("piece", 65536))
                for i in range(0, len(data), piece):
                    self.write(data[i:i + piece])
            elif "sleep" in op:
                time.sleep(float(op["sleep"]))
            elif "drip" in op:
                delay = float(op.get("delay", 0.001))
                for byte in op["drip"].encode("utf-8"):
                    self.write(bytes([byte]))
                    if delay > 0:
                        time.sleep(delay)
            elif "chunk" in op or "chunk_hex" in op:
                data = op["chunk"].encode("utf-8") if "chunk" in op else bytes.fromhex(op["chunk_hex"])
                self.write(b"%x\r\n" % len(data) + data + b"\r\n")
            elif "last_chunk" in op:
                self.write(b"0\r\n\r\n")
            elif "echo" in op:
                payload = json.dumps(req.as_json(with_raw=False), separators=(",", ":"))
                self.head(200, "OK", [["Content-Type", "text/event-stream"],
                                      ["Connection", "close"]])
                self.write(b"data: " + payload.encode("utf-8") + b"\n\n")
                self.finish(float(op.get("linger", DEFAULT_LINGER)))
                return
            elif "events" in op:
                self.write(openai_events(int(op["events"]), int(op.get("size", 16)),
                                         bool(op.get("done", False))))
            elif "close" in op:
                self.finish(float(op.get("linger", DEFAULT_LINGER)))
                return
            elif "rst" in op:
                self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
                stats.add(reset=1)
                return  # the finally clause closes the socket: RST
            elif "hold" in op or "wait_client_close" in op:
                seconds = float(op.get("hold", op.get("wait_client_close")))
                if self.wait_client_close(seconds):
                    stats.add(client_closed=1)
                    return
            elif "noread" in op:
                self.reading = False
            else:
                raise ValueError(f"unknown op {op!r}")
        self.finish(DEFAULT_LINGER)

    def finish(self, linger):
        """Ends the response: FIN, then waits for the client to close (so that the bytes
        already sent are not destroyed by a reset caused by unread client data)."""
        try:
            self.sock.shutdown(socket.SHUT_WR)
        except OSError:
            return
        if self.wait_client_close(linger) and not self.control:
            self.server.stats.add(client_closed=1)

    def serve_control(self, req):
        if req.target.startswith("/__stats"):
            body = json.dumps(self.server.stats.snapshot()).encode("utf-8")
            self.write(b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
                       b"Content-Length: %d\r\nConnection: close\r\n\r\n" % len(body) + body)
        else:
            self.write(b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")
        self.finish(1.0)


def default_script():
    events = "".join(f"id: {i}\ndata: event {i}\n\n" for i in (1, 2, 3))
    return [{"sse_head": True}, {"send": events}]


def openai_events(n, size, done):
    out = []
    content = "x" * size
    for i in range(1, n + 1):
        chunk = {
            "id": "chatcmpl-test",
            "object": "chat.completion.chunk",
            "created": 1700000000,
            "model": "test-model",
            "n": i,
            "choices": [{"index": 0, "delta": {"content": content}, "finish_reason": None}],
        }
        out.append("data: " + json.dumps(chunk, separators=(",", ":")) + "\n\n")
    if done:
        out.append("data: [DONE]\n\n")
    return "".join(out).encode("utf-8")


class Server:
    def __init__(self, args):
        self.stats = Stats(args.state_file)
        self.log = RequestLog(args.log_file)
        self.stopping = threading.Event()
        self.tls_hello = args.tls_hello
        family = socket.AF_INET6 if ":" in args.host else socket.AF_INET
        self.listener = socket.socket(family, socket.SOCK_STREAM)
        self.listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.listener.bind((args.host, 0))
        self.listener.listen(1024)
        self.port = self.listener.getsockname()[1]

    def serve(self):
        while not self.stopping.is_set():
            try:
                sock, _ = self.listener.accept()
            except OSError:
                if self.stopping.is_set():
                    return
                continue
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            self.stats.add(accepted=1, open=1)
            conn = Connection(self, sock)
            threading.Thread(target=conn.run, daemon=True).start()


def fill_backlog(host):
    """Listens with backlog 0 and connects until the accept queue is full, so that a further
    connect() gets no answer (its SYN is dropped) and hangs until the caller's timeout."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    listener = socket.socket(family, socket.SOCK_STREAM)
    listener.bind((host, 0))
    listener.listen(0)
    port = listener.getsockname()[1]
    fillers = []
    for _ in range(64):
        s = socket.socket(family, socket.SOCK_STREAM)
        s.settimeout(0.3)
        try:
            s.connect((host, port))
            fillers.append(s)
        except (socket.timeout, OSError):
            s.close()
            break
    else:
        raise SystemExit("backlog never filled")
    # Verify: one more connect must time out.
    probe = socket.socket(family, socket.SOCK_STREAM)
    probe.settimeout(0.5)
    try:
        probe.connect((host, port))
        raise SystemExit("backlog-full: a probe connect succeeded")
    except socket.timeout:
        pass
    finally:
        probe.close()
    return listener, fillers, port


def refused_port(host):
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    s = socket.socket(family, socket.SOCK_STREAM)
    s.bind((host, 0))
    port = s.getsockname()[1]
    s.close()
    return port


def watch_for_exit(stop):
    """Exits when stdin (a pipe or FIFO) reaches EOF or when the reader of stdout goes away."""
    fds = []
    try:
        if stat.S_ISFIFO(os.fstat(0).st_mode):
            fds.append((0, select.POLLIN | select.POLLHUP))
    except OSError:
        pass
    try:
        if stat.S_ISFIFO(os.fstat(1).st_mode):
            fds.append((1, select.POLLERR))  # POLLERR on a pipe's write end: no reader left
    except OSError:
        pass
    if not fds:
        return

    def loop():
        poller = select.poll()
        for fd, mask in fds:
            poller.register(fd, mask)
        while True:
            for fd, ev in poller.poll():
                if fd == 0:
                    if ev & select.POLLHUP or not os.read(0, 4096):
                        stop()
                        return
                elif ev & (select.POLLERR | select.POLLHUP):
                    stop()
                    return

    threading.Thread(target=loop, daemon=True).start()


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--backlog-full", action="store_true")
    parser.add_argument("--refuse", action="store_true")
    parser.add_argument("--state-file")
    parser.add_argument("--log-file")
    parser.add_argument("--tls-hello", choices=["reply", "hold"], default="reply")
    args = parser.parse_args()

    # Do not keep the launching process's descriptors (e.g. its client sockets) alive.
    os.closerange(3, 4096)

    def stop(*_):
        # Straight out: no lock may be taken here. (An Event set from a signal handler can
        # deadlock against the main thread's own wait on it; the watcher thread calls this too.)
        os._exit(0)

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    signal.signal(signal.SIGPIPE, signal.SIG_IGN)

    keep = None
    if args.backlog_full:
        keep = fill_backlog(args.host)
        port = keep[2]
    elif args.refuse:
        port = refused_port(args.host)
    else:
        server = Server(args)
        port = server.port
        threading.Thread(target=server.serve, daemon=True).start()

    print(f"PORT {port} PID {os.getpid()}", flush=True)
    watch_for_exit(stop)
    while True:
        signal.pause()


if __name__ == "__main__":
    main()

#!/usr/bin/env python3
"""Checks script_server.py from Python alone (no lev-http): every mode and the operations the
busted specs rely on. Run: python3 tests/servers/check_script_server.py  (exit status 0 = ok)."""

import json
import os
import socket
import subprocess
import sys
import tempfile
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
SERVER = os.path.join(HERE, "script_server.py")
failures = []


def check(cond, what):
    if cond:
        print("ok   ", what)
    else:
        print("FAIL ", what)
        failures.append(what)


def start(*args, stdin=subprocess.DEVNULL):
    proc = subprocess.Popen([sys.executable, SERVER, *args], stdin=stdin, stdout=subprocess.PIPE,
                            text=True)
    line = proc.stdout.readline().split()
    assert line[0] == "PORT" and line[2] == "PID", line
    return proc, int(line[1])


def request(port, script=None, body=b"", host="127.0.0.1", extra=b"", timeout=5.0):
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    s = socket.socket(family, socket.SOCK_STREAM)
    s.settimeout(timeout)
    s.connect((host, port))
    head = b"GET /t?x=1 HTTP/1.1\r\nHost: h\r\n"
    if script is not None:
        head += b"X-Script: " + json.dumps(script).encode() + b"\r\n"
    if body:
        head += b"Content-Length: %d\r\n" % len(body)
    s.sendall(head + extra + b"\r\n" + body)
    return s


def read_all(s):
    out = b""
    while True:
        try:
            data = s.recv(65536)
        except ConnectionResetError:
            return out, "reset"
        if not data:
            return out, "eof"
        out += data


def wait_until(pred, timeout, what):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if pred():
            return True
        time.sleep(0.01)
    return False


def state(path):
    with open(path) as f:
        return json.load(f)


def main():
    tmp = tempfile.mkdtemp()
    st, log = os.path.join(tmp, "state.json"), os.path.join(tmp, "log.jsonl")
    proc, port = start("--state-file", st, "--log-file", log)
    try:
        out, how = read_all(request(port))
        check(out.startswith(b"HTTP/1.1 200 OK\r\n") and out.count(b"data: event") == 3
              and how == "eof", "default stream: 3 events then EOF")

        s = request(port, [{"echo": True}], body=b"hi \xc3\xa9", extra=b"X-Dup: 1\r\nx-dup: 2\r\n")
        out, how = read_all(s)
        payload = json.loads(out.split(b"data: ", 1)[1].split(b"\n\n")[0])
        check(payload["method"] == "GET" and payload["target"] == "/t?x=1"
              and payload["body"] == "hi \u00e9"
              and ["X-Dup", "1"] in payload["headers"] and ["x-dup", "2"] in payload["headers"],
              "echo: method, target, body, headers in order")

        out, how = read_all(request(port, [{"status": 200, "headers": [
            ["Transfer-Encoding", "chunked"]]}, {"chunk": "data: a\n\n"}, {"chunk_hex": "ff"},
            {"last_chunk": True}]))
        check(out.endswith(b"9\r\ndata: a\n\n\r\n1\r\n\xff\r\n0\r\n\r\n"), "chunk, chunk_hex, last_chunk")

        out, how = read_all(request(port, [{"sse_head": True}, {"send": "data: x\n\n"}, {"rst": True}]))
        check(how == "reset", "rst resets the connection")

        out, _ = read_all(request(port, [{"repeat": "ab", "n": 100000}, {"hex": "00ff"}]))
        check(out == b"ab" * 100000 + b"\x00\xff", "repeat + hex")

        s = request(port, [{"drip": "abcd", "delay": 0.02}])
        t0 = time.monotonic()
        pieces = []
        while True:
            d = s.recv(100)
            if not d:
                break
            pieces.append(d)
        check(b"".join(pieces) == b"abcd" and len(pieces) == 4 and time.monotonic() - t0 >= 0.05,
              "drip: one byte per write with pauses")

        out, _ = read_all(request(port, [{"sse_head": True}, {"events": 5, "size": 10, "done": True}]))
        events = [e for e in out.split(b"\r\n\r\n", 1)[1].split(b"\n\n") if e]
        check(len(events) == 6 and events[-1] == b"data: [DONE]"
              and json.loads(events[4][6:])["n"] == 5, "events: N OpenAI events + [DONE]")

        # hold: the server notices the client closing; open count returns to 0.
        s = request(port, [{"sse_head": True}, {"hold": 30}])
        s.recv(1000)
        check(wait_until(lambda: state(st)["open"] == 1, 5, ""), "open counts a held connection")
        before = state(st)["client_closed"]
        s.close()
        check(wait_until(lambda: state(st)["open"] == 0 and state(st)["client_closed"] == before + 1,
                         5, ""), "hold ends when the client closes; open back to 0")

        # noread + a large body: the client's send blocks once the buffers are full.
        s = request(port, [{"noread": True}, {"hold": 30}])
        s.settimeout(0.5)
        sent, blocked = 0, False
        chunk = b"x" * 65536
        while sent < 64 << 20:
            try:
                sent += s.send(chunk)
            except socket.timeout:
                blocked = True
                break
        check(blocked and sent < 32 << 20, f"noread: client send blocks after {sent} bytes")
        s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\0\0\0\0\0\0\0")
        s.close()
        check(wait_until(lambda: state(st)["open"] == 0, 5, ""), "noread+hold: sees a client reset")

        # Head cap: 1 MiB of headers -> 431.
        s = request(port, None, extra=b"X-Big: " + b"a" * (1 << 20) + b"\r\n")
        out, _ = read_all(s)
        check(out.startswith(b"HTTP/1.1 431"), "head over 1 MiB gets 431")

        # A TLS ClientHello gets a clear-text 400.
        s = socket.create_connection(("127.0.0.1", port), timeout=5)
        s.sendall(b"\x16\x03\x01\x00\x05hello")
        out, _ = read_all(s)
        check(out.startswith(b"HTTP/1.1 400 "), "TLS ClientHello gets a clear-text 400")

        # 250 concurrent connections.
        socks = [request(port, [{"sse_head": True}, {"events": 3, "size": 8}, {"sleep": 0.2}])
                 for _ in range(250)]
        oks = sum(1 for s in socks if read_all(s)[0].count(b"data: ") == 3)
        check(oks == 250, f"250 concurrent connections served ({oks})")
        for s in socks:
            s.close()

        # /__stats and the log.
        s = socket.create_connection(("127.0.0.1", port), timeout=5)
        s.sendall(b"GET /__stats HTTP/1.1\r\nHost: h\r\n\r\n")
        out, _ = read_all(s)
        stats = json.loads(out.split(b"\r\n\r\n", 1)[1])
        check(stats["requests"] == state(st)["requests"] and stats["requests"] == 259
              and stats["bad_requests"] == 1,
              "/__stats answers the counters and the state file matches")
        with open(log) as f:
            records = [json.loads(line) for line in f]
        check(any(r["raw"].startswith("GET /t?x=1 HTTP/1.1\r\n") for r in records),
              "log records raw requests")
    finally:
        proc.terminate()
        check(proc.wait(5) == 0, "SIGTERM ends the server")

    # The server exits when the reader of its stdout goes away.
    proc, port = start()
    proc.stdout.close()
    try:
        proc.wait(5)
        check(True, "exits when its stdout reader closes")
    except subprocess.TimeoutExpired:
        proc.kill()
        check(False, "exits when its stdout reader closes")

    # ... and when its stdin pipe closes.
    proc, port = start(stdin=subprocess.PIPE)
    proc.stdin.close()
    try:
        proc.wait(5)
        check(True, "exits when stdin closes")
    except subprocess.TimeoutExpired:
        proc.kill()
        check(False, "exits when stdin closes")

    # IPv6.
    proc, port = start("--host", "::1")
    try:
        out, _ = read_all(request(port, host="::1"))
        check(out.count(b"data: event") == 3, "IPv6 ::1 serves")
    finally:
        proc.terminate()
        proc.wait(5)

    # --refuse: nothing listens.
    proc, port = start("--refuse")
    try:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=2).close()
            check(False, "--refuse: connect refused")
        except ConnectionRefusedError:
            check(True, "--refuse: connect refused")
    finally:
        proc.terminate()
        proc.wait(5)

    # --backlog-full: a connect hangs.
    proc, port = start("--backlog-full")
    try:
        s = socket.socket()
        s.settimeout(1.0)
        t0 = time.monotonic()
        try:
            s.connect(("127.0.0.1", port))
            check(False, "--backlog-full: connect hangs")
        except socket.timeout:
            check(time.monotonic() - t0 >= 0.9, "--backlog-full: connect hangs")
        s.close()
    finally:
        proc.terminate()
        proc.wait(5)

    print("FAILED:" if failures else "all ok", *failures)
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())

#!/usr/bin/env python3
"""A TLS SSE server for tests/lua/tls_spec.lua (python3 standard library only).

Listens on 127.0.0.1 port 0 (or --host), prints "PORT <n>" and serves each connection in a
thread according to --mode:
  sse        TLS; read the request head; 200 text/event-stream, chunked, --events events,
             the last chunk, then close_notify
  close      TLS; 200 close-delimited body of --events events, then close_notify (a clean end)
  truncate   TLS; 200 close-delimited, 3 events and half a fourth, then the TCP connection is
             closed WITHOUT close_notify (a truncation)
  hang       accept TCP and never answer the handshake (until the client goes away)
  garbage    accept TCP and answer the ClientHello with plain-text bytes
--cert/--key: the server certificate; --client-ca: require a client certificate from that CA.
Prints "PORT <n> PID <pid>"; exits on SIGTERM, when its parent goes away, or after 300 s.
"""
import argparse
import os
import socket
import ssl
import threading
import time


def event(i):
    return ("id: %d\ndata: {\"n\": %d, \"text\": \"event number %d\"}\n\n" % (i, i, i)).encode()


def read_head(conn):
    buf = b""
    while b"\r\n\r\n" not in buf and len(buf) < 65536:
        chunk = conn.recv(4096)
        if not chunk:
            return None
        buf += chunk
    return buf


def serve(raw, ctx, args):
    try:
        if args.mode == "hang":
            raw.settimeout(30)
            try:
                while raw.recv(4096):
                    pass
            except OSError:
                pass
            return
        if args.mode == "garbage":
            raw.settimeout(10)
            raw.recv(4096)
            raw.sendall(b"HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\n\r\n" * 4)
            return
        raw.settimeout(20)
        conn = ctx.wrap_socket(raw, server_side=True)
        if read_head(conn) is None:
            return
        if args.mode == "sse":
            conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\n"
                         b"Transfer-Encoding: chunked\r\n\r\n")
            batch = []
            for i in range(1, args.events + 1):
                batch.append(event(i))
                if len(batch) == 64 or i == args.events:
                    data = b"".join(batch)
                    conn.sendall(b"%x\r\n%s\r\n" % (len(data), data))
                    batch = []
            conn.sendall(b"0\r\n\r\n")
            conn.unwrap()
        elif args.mode == "close":
            conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\n\r\n")
            conn.sendall(b"".join(event(i) for i in range(1, args.events + 1)))
            conn.unwrap()
        elif args.mode == "truncate":
            conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\n\r\n")
            conn.sendall(event(1) + event(2) + event(3) + b"data: half an ev")
            # Close the TCP socket under the TLS layer: no close_notify reaches the client.
            raw.shutdown(socket.SHUT_RDWR)
    except (OSError, ssl.SSLError):
        pass
    finally:
        try:
            raw.close()
        except OSError:
            pass


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--mode", default="sse",
                   choices=["sse", "close", "truncate", "hang", "garbage"])
    p.add_argument("--cert")
    p.add_argument("--key")
    p.add_argument("--client-ca")
    p.add_argument("--events", type=int, default=3)
    args = p.parse_args()

    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    if args.cert:
        ctx.load_cert_chain(args.cert, args.key)
    if args.client_ca:
        ctx.verify_mode = ssl.CERT_REQUIRED
        ctx.load_verify_locations(args.client_ca)

    family = socket.AF_INET6 if ":" in args.host else socket.AF_INET
    srv = socket.socket(family, socket.SOCK_STREAM)
    srv.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    srv.bind((args.host, 0))
    srv.listen(128)
    print("PORT %d PID %d" % (srv.getsockname()[1], os.getpid()), flush=True)

    def accept_loop():
        while True:
            try:
                raw, _ = srv.accept()
            except OSError:
                return
            threading.Thread(target=serve, args=(raw, ctx, args), daemon=True).start()

    threading.Thread(target=accept_loop, daemon=True).start()
    parent = os.getppid()
    deadline = time.monotonic() + 300
    while os.getppid() == parent and time.monotonic() < deadline:
        time.sleep(0.2)


if __name__ == "__main__":
    main()

#!/usr/bin/env python3
"""A local stand-in for the OpenAI and Anthropic streaming APIs (python3 stdlib only).

The examples and the demo run against it, and so can anyone without an API key. It answers

  POST /v1/chat/completions   OpenAI Chat Completions: `data: {chat.completion.chunk}` events,
                              then `data: [DONE]`; a plain JSON completion without "stream".
  POST /v1/messages           Anthropic Messages: named events message_start,
                              content_block_start, ping, content_block_delta (one per token),
                              content_block_stop, message_delta, message_stop.

with the same wire shapes as the real services: HTTP/1.1, chunked transfer encoding, one chunk
per event, each written as soon as it is produced (pacing: --delay seconds between tokens).

The reply is a canned text chosen from the last user message, deterministically: the same
prompt always gets the same reply, split into the same tokens, in stream and non-stream mode.

Auth, as the real services do it: OpenAI wants `Authorization: Bearer <key>`, Anthropic
`x-api-key: <key>` (and, like the real API, an `anthropic-version` header and `max_tokens`).
A missing key or the key "bad-key" gets 401 with the provider's JSON error body; the key
"rate-limited" gets 429 with `Retry-After: 2`. Any other key works. Other paths get 404 JSON.

Test hooks, read from the request JSON (never sent by real clients):
  "mock_reply": "text"        reply with exactly this text instead of a canned one
  "mock_delay": seconds       pacing for this request instead of --delay
  "mock_error_after": N       after N tokens send `event: error` carrying an Anthropic-style
                              overloaded_error (how LLM APIs fail mid-stream), then end the body
  "mock_disconnect_after": N  after N tokens drop the connection without ending the body

Usage: mock_llm_server.py [--host 127.0.0.1] [--port 8089] [--delay 0.03] [--quiet]
With --port 0 the OS picks a free port; the first line on stdout is always `PORT <n>`.
"""

import argparse
import hashlib
import json
import os
import re
import secrets
import socket
import string
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

OPENAI_PATH = "/v1/chat/completions"
ANTHROPIC_PATH = "/v1/messages"
MAX_BODY = 4 * 1024 * 1024
SYSTEM_FINGERPRINT = "fp_5c1e0b7d42"

# Canned replies, picked by keyword (first match wins) from the last user message. They
# cover what a client must get right: multi-byte UTF-8, JSON-escaped newlines and quotes.
KEYWORD_REPLIES = [
    (("hello", "hi", "hey", "bonjour"),
     "Hello! I'm the lev-http mock model. Ask me anything; my answers are canned, "
     "but they stream one token at a time, just like the real thing."),
    (("joke",),
     "Why did the event stream break up with the socket? It needed more space "
     "between its \"data:\" lines."),
    (("haiku", "poem"),
     "Bytes drift down the wire,\nblank line closes each event \u2014\ncoroutine wakes."),
    (("sse", "stream", "event"),
     "Server-sent events are a plain text protocol over HTTP:\n"
     "1. each field is a line such as `data: ...`;\n"
     "2. a blank line ends an event;\n"
     "3. the client dispatches it right away, without waiting for more."),
    (("lua", "coroutine"),
     "In Lua, a coroutine yields instead of blocking: while one task waits for the network, "
     "the loop runs the others, and nothing freezes."),
    (("unicode", "utf"),
     "Unicode survives the trip: na\u00efve caf\u00e9, \u65e5\u672c\u8a9e, "
     "\u03bb-calculus and \U0001F680 arrive intact."),
]
GENERIC_REPLIES = [
    "That is a good question. The short answer: it depends on what you measure, "
    "so measure first, then decide.",
    "Here is a thought: small pieces, each doing one thing, are easier to test than one "
    "piece doing everything.",
    "I am only a mock, but I can say this with confidence: the tokens you see arrive one by "
    "one, as they are produced.",
]


def last_user_text(messages):
    """The text of the last message whose role is "user" ("" if none)."""
    if not isinstance(messages, list):
        return ""
    for msg in reversed(messages):
        if isinstance(msg, dict) and msg.get("role") == "user":
            content = msg.get("content")
            if isinstance(content, str):
                return content
            if isinstance(content, list):  # content parts / blocks: [{type: "text", text}]
                return " ".join(p.get("text", "") for p in content
                                if isinstance(p, dict) and p.get("type") == "text")
    return ""


def canned_reply(prompt):
    words = set(re.findall(r"\w+", prompt.lower()))
    for keys, reply in KEYWORD_REPLIES:
        if any(k in words for k in keys):
            return reply
    digest = hashlib.sha256(prompt.encode("utf-8")).digest()
    return GENERIC_REPLIES[digest[0] % len(GENERIC_REPLIES)]


def tokenize(text):
    """Splits text into BPE-looking pieces whose concatenation is exactly `text`: leading
    whitespace stays with the next word, punctuation is its own token, long words are cut
    into pieces of at most 6 characters."""
    tokens = []
    for piece in re.findall(r"\s*(?:\w+|[^\w\s])|\s+", text):
        m = re.match(r"(\s*)(\w{7,})$", piece)
        if not m:
            tokens.append(piece)
            continue
        space, word = m.groups()
        parts = [word[i:i + 6] for i in range(0, len(word), 6)]
        parts[0] = space + parts[0]
        tokens.extend(parts)
    return tokens


def rough_token_count(text):
    return len(tokenize(text)) if text else 0


def random_id(prefix, n):
    alphabet = string.ascii_letters + string.digits
    return prefix + "".join(secrets.choice(alphabet) for _ in range(n))


def dumps(obj):
    return json.dumps(obj, ensure_ascii=False, separators=(",", ":"))


class ClientGone(Exception):
    pass


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "mock-llm/1.0"
    # Each event is one write; without TCP_NODELAY, Nagle + delayed ACKs would hold a token
    # back for up to 40 ms and blur the pacing.
    disable_nagle_algorithm = True

    def version_string(self):
        return self.server_version

    # --- plumbing -------------------------------------------------------------------------

    def handle(self):
        # A client may reset the connection while the server waits for its next request on
        # a kept-alive connection: that is the client's right, not a server error.
        try:
            super().handle()
        except (ConnectionResetError, BrokenPipeError):
            self.close_connection = True

    def log_message(self, fmt, *args):
        if not self.server.quiet:
            sys.stderr.write("mock: %s %s\n" % (self.address_string(), fmt % args))

    def send_json(self, status, obj, extra_headers=()):
        body = dumps(obj).encode("utf-8")
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        for name, value in extra_headers:
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(body)

    def start_stream(self, extra_headers=()):
        self.send_response(200)
        self.send_header("Content-Type", "text/event-stream; charset=utf-8")
        self.send_header("Cache-Control", "no-cache")
        self.send_header("Transfer-Encoding", "chunked")
        for name, value in extra_headers:
            self.send_header(name, value)
        self.end_headers()

    def write_chunk(self, data):
        """One HTTP chunk, written at once: the event leaves the server as soon as it exists."""
        try:
            self.wfile.write(b"%x\r\n%s\r\n" % (len(data), data))
        except OSError as e:  # the client went away: stop producing
            raise ClientGone() from e

    def send_event(self, data, event=None):
        text = ("event: %s\n" % event if event else "") + "data: %s\n\n" % data
        self.write_chunk(text.encode("utf-8"))

    def end_stream(self):
        try:
            self.wfile.write(b"0\r\n\r\n")
        except OSError as e:
            raise ClientGone() from e

    def drop_connection(self):
        self.close_connection = True
        try:
            self.connection.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass

    def read_json_body(self):
        """The request JSON as a dict, or None after answering 4xx."""
        if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
            self.error_reply(411, "invalid_request_error", "chunked request bodies are not supported")
            return None
        try:
            length = int(self.headers.get("Content-Length", "0"))
        except ValueError:
            length = -1
        if length < 0 or length > MAX_BODY:
            self.close_connection = True
            self.error_reply(413 if length > MAX_BODY else 400, "invalid_request_error",
                             "bad Content-Length")
            return None
        raw = self.rfile.read(length) if length else b""
        try:
            obj = json.loads(raw.decode("utf-8"))
        except (UnicodeDecodeError, ValueError):
            self.error_reply(400, "invalid_request_error",
                             "We could not parse the JSON body of your request.")
            return None
        if not isinstance(obj, dict):
            self.error_reply(400, "invalid_request_error", "The request body must be a JSON object.")
            return None
        return obj

    # --- provider-specific error bodies -----------------------------------------------------

    def is_anthropic(self):
        return self.path.split("?")[0] == ANTHROPIC_PATH or "x-api-key" in self.headers \
            or "anthropic-version" in self.headers

    def error_reply(self, status, err_type, message, code=None, extra_headers=()):
        if self.is_anthropic():
            anthropic_types = {401: "authentication_error", 404: "not_found_error",
                               429: "rate_limit_error", 405: "invalid_request_error"}
            body = {"type": "error",
                    "error": {"type": anthropic_types.get(status, err_type), "message": message}}
            extra_headers = tuple(extra_headers) + (("request-id", random_id("req_", 24)),)
        else:
            body = {"error": {"message": message, "type": err_type, "param": None, "code": code}}
            extra_headers = tuple(extra_headers) + (("x-request-id", random_id("req_", 32)),)
        self.send_json(status, body, extra_headers)

    def check_key(self, key):
        """True when the request may go on; otherwise answers 401/429 like the provider."""
        if not key:
            if self.is_anthropic():
                self.error_reply(401, "authentication_error", "x-api-key header is required")
            else:
                self.error_reply(401, "invalid_request_error",
                                 "You didn't provide an API key. You need to provide your API key "
                                 "in an Authorization header using Bearer auth (i.e. "
                                 "Authorization: Bearer YOUR_KEY).")
            return False
        if key == "bad-key":
            if self.is_anthropic():
                self.error_reply(401, "authentication_error", "invalid x-api-key")
            else:
                self.error_reply(401, "invalid_request_error",
                                 "Incorrect API key provided: %s." % key, code="invalid_api_key")
            return False
        if key == "rate-limited":
            if self.is_anthropic():
                msg = ("This request would exceed the rate limit for your organization. "
                       "Please retry after 2 seconds.")
            else:
                msg = ("Rate limit reached for requests per min (RPM): Limit 3, Used 3, "
                       "Requested 1. Please try again in 2s.")
            self.error_reply(429, "requests", msg, code="rate_limit_exceeded",
                             extra_headers=(("Retry-After", "2"),))
            return False
        return True

    # --- routing ---------------------------------------------------------------------------

    def do_POST(self):
        path = self.path.split("?")[0]
        try:
            if path == OPENAI_PATH:
                self.openai()
            elif path == ANTHROPIC_PATH:
                self.anthropic()
            else:
                self.not_found()
        except ClientGone:
            self.close_connection = True

    def do_GET(self):
        path = self.path.split("?")[0]
        if path in (OPENAI_PATH, ANTHROPIC_PATH):
            self.error_reply(405, "invalid_request_error",
                             "Method GET not allowed for %s: use POST." % path,
                             extra_headers=(("Allow", "POST"),))
        else:
            self.not_found()

    def not_found(self):
        # Drain a body so that the connection stays usable.
        length = self.headers.get("Content-Length")
        if length and length.isdigit() and int(length) <= MAX_BODY:
            self.rfile.read(int(length))
        else:
            self.close_connection = True
        if self.is_anthropic():
            self.error_reply(404, "not_found_error", "Not Found")
        else:
            self.error_reply(404, "invalid_request_error",
                             "Invalid URL (%s %s)" % (self.command, self.path))

    # --- the reply, shared by both providers ---------------------------------------------

    def plan(self, req, prompt, limit):
        """(tokens, stop) for this request: the reply's tokens and whether the limit cut it."""
        reply = req.get("mock_reply")
        if not isinstance(reply, str):
            reply = canned_reply(prompt)
        tokens = tokenize(reply)
        if isinstance(limit, int) and not isinstance(limit, bool) and 0 < limit < len(tokens):
            return tokens[:limit], True
        return tokens, False

    def pace(self, req):
        delay = req.get("mock_delay", self.server.delay)
        if isinstance(delay, (int, float)) and not isinstance(delay, bool) and delay > 0:
            time.sleep(delay)

    def hook_after(self, req, name):
        n = req.get(name)
        return n if isinstance(n, int) and not isinstance(n, bool) and n >= 0 else None

    def stream_tokens(self, req, tokens, emit):
        """Emits each token with pacing; honours the mid-stream failure hooks. Returns False
        when the stream was cut short (the caller then sends nothing more)."""
        error_after = self.hook_after(req, "mock_error_after")
        drop_after = self.hook_after(req, "mock_disconnect_after")
        for i, tok in enumerate(tokens):
            if error_after is not None and i == error_after:
                break
            if drop_after is not None and i == drop_after:
                self.drop_connection()
                return False
            self.pace(req)
            emit(tok)
        if error_after is not None and error_after <= len(tokens):
            self.send_event(dumps({"type": "error", "error": {"type": "overloaded_error",
                                                              "message": "Overloaded"}}),
                            event="error")
            self.end_stream()
            return False
        if drop_after is not None and drop_after == len(tokens):
            self.drop_connection()
            return False
        return True

    # --- OpenAI Chat Completions -------------------------------------------------------------

    def openai(self):
        auth = self.headers.get("Authorization", "")
        key = auth[7:].strip() if auth[:7].lower() == "bearer " else ""
        req = self.read_json_body()
        if req is None:
            return
        if not self.check_key(key):
            return
        messages = req.get("messages")
        if not isinstance(messages, list) or not messages:
            self.error_reply(400, "invalid_request_error",
                             "Missing required parameter: 'messages'.", code="missing_required_parameter")
            return
        model = req.get("model") if isinstance(req.get("model"), str) else "gpt-4o-mini"
        limit = req.get("max_completion_tokens", req.get("max_tokens"))
        tokens, cut = self.plan(req, last_user_text(messages), limit)
        finish = "length" if cut else "stop"
        prompt_tokens = sum(rough_token_count(last_user_text([m])) for m in messages) + 7
        usage = {"prompt_tokens": prompt_tokens, "completion_tokens": len(tokens),
                 "total_tokens": prompt_tokens + len(tokens)}
        cid = random_id("chatcmpl-", 29)
        created = int(time.time())
        headers = (("x-request-id", random_id("req_", 32)), ("openai-processing-ms", "42"),
                   ("openai-model", model))

        if not req.get("stream"):
            self.send_json(200, {
                "id": cid, "object": "chat.completion", "created": created, "model": model,
                "system_fingerprint": SYSTEM_FINGERPRINT,
                "choices": [{"index": 0,
                             "message": {"role": "assistant", "content": "".join(tokens),
                                         "refusal": None},
                             "logprobs": None, "finish_reason": finish}],
                "usage": usage}, headers)
            return

        include_usage = isinstance(req.get("stream_options"), dict) and \
            req["stream_options"].get("include_usage") is True

        def chunk(delta, finish_reason=None):
            obj = {"id": cid, "object": "chat.completion.chunk", "created": created,
                   "model": model, "system_fingerprint": SYSTEM_FINGERPRINT,
                   "choices": [{"index": 0, "delta": delta, "logprobs": None,
                                "finish_reason": finish_reason}]}
            if include_usage:
                obj["usage"] = None
            self.send_event(dumps(obj))

        self.start_stream(headers)
        chunk({"role": "assistant", "content": "", "refusal": None})
        if not self.stream_tokens(req, tokens, lambda tok: chunk({"content": tok})):
            return
        chunk({}, finish)
        if include_usage:
            self.send_event(dumps({"id": cid, "object": "chat.completion.chunk",
                                   "created": created, "model": model,
                                   "system_fingerprint": SYSTEM_FINGERPRINT, "choices": [],
                                   "usage": usage}))
        self.send_event("[DONE]")
        self.end_stream()

    # --- Anthropic Messages -----------------------------------------------------------------

    def anthropic(self):
        key = self.headers.get("x-api-key", "").strip()
        req = self.read_json_body()
        if req is None:
            return
        if not self.check_key(key):
            return
        if not self.headers.get("anthropic-version"):
            self.error_reply(400, "invalid_request_error", "anthropic-version: header is required")
            return
        max_tokens = req.get("max_tokens")
        if not isinstance(max_tokens, int) or isinstance(max_tokens, bool) or max_tokens < 1:
            self.error_reply(400, "invalid_request_error", "max_tokens: Field required")
            return
        messages = req.get("messages")
        if not isinstance(messages, list) or not messages:
            self.error_reply(400, "invalid_request_error", "messages: Field required")
            return
        model = req.get("model") if isinstance(req.get("model"), str) else "claude-3-5-haiku-latest"
        tokens, cut = self.plan(req, last_user_text(messages), max_tokens)
        stop_reason = "max_tokens" if cut else "end_turn"
        input_tokens = sum(rough_token_count(last_user_text([m])) for m in messages) + 5
        mid = random_id("msg_01", 22)
        headers = (("request-id", random_id("req_", 24)), ("anthropic-organization-id", "mock-org"))

        if not req.get("stream"):
            self.send_json(200, {
                "id": mid, "type": "message", "role": "assistant", "model": model,
                "content": [{"type": "text", "text": "".join(tokens)}],
                "stop_reason": stop_reason, "stop_sequence": None,
                "usage": {"input_tokens": input_tokens, "cache_creation_input_tokens": 0,
                          "cache_read_input_tokens": 0, "output_tokens": len(tokens)}}, headers)
            return

        def event(name, obj):
            self.send_event(dumps(obj), event=name)

        self.start_stream(headers)
        event("message_start", {"type": "message_start", "message": {
            "id": mid, "type": "message", "role": "assistant", "model": model, "content": [],
            "stop_reason": None, "stop_sequence": None,
            "usage": {"input_tokens": input_tokens, "cache_creation_input_tokens": 0,
                      "cache_read_input_tokens": 0, "output_tokens": 1}}})
        event("content_block_start", {"type": "content_block_start", "index": 0,
                                      "content_block": {"type": "text", "text": ""}})
        event("ping", {"type": "ping"})
        ok = self.stream_tokens(req, tokens, lambda tok: event("content_block_delta", {
            "type": "content_block_delta", "index": 0,
            "delta": {"type": "text_delta", "text": tok}}))
        if not ok:
            return
        event("content_block_stop", {"type": "content_block_stop", "index": 0})
        event("message_delta", {"type": "message_delta",
                                "delta": {"stop_reason": stop_reason, "stop_sequence": None},
                                "usage": {"output_tokens": len(tokens)}})
        event("message_stop", {"type": "message_stop"})
        self.end_stream()


class Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True


def main():
    ap = argparse.ArgumentParser(description="Local mock of the OpenAI and Anthropic streaming APIs.")
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--port", type=int, default=8089, help="0 lets the OS pick a free port")
    ap.add_argument("--delay", type=float, default=0.03, help="seconds between tokens")
    ap.add_argument("--quiet", action="store_true", help="do not log requests to stderr")
    ap.add_argument("--exit-with-parent", action="store_true",
                    help="exit when the process that started the server dies (for test runners)")
    args = ap.parse_args()

    server = Server((args.host, args.port), Handler)
    server.delay = max(0.0, args.delay)
    server.quiet = args.quiet
    print("PORT %d" % server.server_address[1], flush=True)

    if args.exit_with_parent:
        parent = os.getppid()

        def watch():
            while os.getppid() == parent:
                time.sleep(0.5)
            os._exit(0)

        threading.Thread(target=watch, daemon=True).start()

    try:
        server.serve_forever(poll_interval=0.2)
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()


if __name__ == "__main__":
    main()

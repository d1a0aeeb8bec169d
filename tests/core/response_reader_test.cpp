// Tests for http/response_reader.hpp. Every response of the table is fed whole, split in two
// at every offset, and byte by byte ("parsegrind"); each way must give the same head, body
// bytes, final state, error and number of bytes consumed.
#include "http/response_reader.hpp"

#include <catch2/catch.hpp>
#include <optional>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

using levhttp::http::ResponseReader;
using State = ResponseReader::State;
using Headers = std::vector<std::pair<std::string, std::string>>;

namespace {

const char *name(State s) {
  switch (s) {
    case State::Head:
      return "Head";
    case State::Body:
      return "Body";
    case State::Done:
      return "Done";
    case State::Error:
      return "Error";
  }
  return "?";
}

struct Outcome {
  State state = State::Head;
  int status = 0;
  std::string reason;
  Headers headers;
  std::string body;
  std::string error;
  std::size_t consumed = 0;
  bool until_close = false;
};

// Feeds `chunks` as a caller would: unconsumed bytes stay buffered in front of the next chunk.
// Checks on the way that feed() stops right after the head (no body byte delivered yet).
Outcome drive(const std::vector<std::string> &chunks, bool eof, bool expect_no_body) {
  Outcome out;
  ResponseReader reader([&](std::string_view b) { out.body.append(b); }, expect_no_body);
  std::string buffered;
  bool saw_body_state = false;
  for (const auto &chunk : chunks) {
    buffered += chunk;
    while (!buffered.empty() && (reader.state() == State::Head || reader.state() == State::Body)) {
      State before = reader.state();
      std::size_t n = reader.feed(buffered);
      REQUIRE(n <= buffered.size());
      if (before == State::Head && reader.state() == State::Body && !saw_body_state) {
        CHECK(out.body.empty());  // paused right after the head
        saw_body_state = true;
      }
      buffered.erase(0, n);
      out.consumed += n;
      if (n == 0) {
        // Only Error/Done may refuse bytes.
        CHECK((reader.state() == State::Error || reader.state() == State::Done));
        break;
      }
    }
  }
  if (eof && (reader.state() == State::Head || reader.state() == State::Body)) {
    State after = reader.finish();
    CHECK(after == reader.state());
  }
  out.state = reader.state();
  out.error = reader.error();
  if (out.state != State::Head) {
    out.status = reader.head().status;
    out.reason = reader.head().reason;
    out.headers = reader.head().headers;
    out.until_close = reader.body_until_close();
  }
  return out;
}

struct Case {
  std::string name;
  std::string input;
  State state;
  int status;  // checked with the headers when check_head
  Headers headers;
  std::string body;
  std::string error;  // substring of error(); "" = no error
  std::optional<std::size_t> consumed =
      std::nullopt;  // default: the whole input (not checked for Error)
  bool eof = true;   // call finish() after the last byte
  bool expect_no_body = false;
  bool check_head = true;
};

std::string repeat(const std::string &s, int n) {
  std::string out;
  for (int i = 0; i < n; ++i) out += s;
  return out;
}

std::string many_headers(int n) {
  std::string out;
  for (int i = 0; i < n; ++i) out += "X-H" + std::to_string(i) + ": v\r\n";
  return out;
}

// A complete head of exactly `size` bytes (status line, one padded field, CL: 0, blank line).
std::string head_of_size(std::size_t size) {
  std::string start = "HTTP/1.1 200 OK\r\nX-Pad: ";
  std::string end = "\r\nContent-Length: 0\r\n\r\n";
  return start + std::string(size - start.size() - end.size(), 'p') + end;
}

std::vector<Case> cases() {
  const std::string ok = "HTTP/1.1 200 OK\r\n";
  const std::string te = "Transfer-Encoding: chunked\r\n";
  const std::string cont = "HTTP/1.1 100 Continue\r\n\r\n";
  std::vector<Case> v;
  // --- valid responses of each framing ---
  v.push_back({"content-length body",
               ok + "Content-Type: text/event-stream\r\nContent-Length: 5\r\n\r\nhello",
               State::Done,
               200,
               {{"content-type", "text/event-stream"}, {"content-length", "5"}},
               "hello",
               ""});
  v.push_back({"bytes after a content-length body are not consumed",
               ok + "Content-Length: 3\r\n\r\nabcHTTP/1.1 200 OK\r\n\r\nxyz",
               State::Done,
               200,
               {{"content-length", "3"}},
               "abc",
               "",
               ok.size() + 21 + 3});
  v.push_back({"content-length 0",
               ok + "Content-Length: 0\r\n\r\n",
               State::Done,
               200,
               {{"content-length", "0"}},
               "",
               "",
               std::nullopt,
               false});
  v.push_back(
      {"chunked with trailers",
       ok + te +
           "\r\n5\r\nhello\r\n1\r\n \r\n6\r\nworld!\r\n0\r\nX-Trailer: t\r\nX-Other: u\r\n\r\n",
       State::Done,
       200,
       {{"transfer-encoding", "chunked"}},
       "hello world!",
       "",
       std::nullopt,
       false});
  v.push_back({"chunked, hex sizes in both cases and leading zeros",
               ok + te + "\r\n00a\r\n0123456789\r\nB\r\nabcdefghijk\r\n000\r\n\r\n",
               State::Done,
               200,
               {{"transfer-encoding", "chunked"}},
               "0123456789abcdefghijk",
               "",
               std::nullopt,
               false});
  v.push_back({"chunk extensions (small) are accepted and ignored",
               ok + te + "\r\n3;name\r\nabc\r\n2;a=\"b c\";d\r\nde\r\n0;last\r\n\r\n",
               State::Done,
               200,
               {{"transfer-encoding", "chunked"}},
               "abcde",
               "",
               std::nullopt,
               false});
  v.push_back({"bytes after the last chunk are not consumed",
               ok + te + "\r\n1\r\nx\r\n0\r\n\r\nGARBAGE",
               State::Done,
               200,
               {{"transfer-encoding", "chunked"}},
               "x",
               "",
               ok.size() + te.size() + 2 + 11,
               false});
  v.push_back({"close-delimited body ends cleanly at EOF",
               ok + "Content-Type: text/plain\r\n\r\ndata: 1\n\n",
               State::Done,
               200,
               {{"content-type", "text/plain"}},
               "data: 1\n\n",
               ""});
  v.push_back({"close-delimited empty body", ok + "\r\n", State::Done, 200, {}, "", ""});
  v.push_back({"HTTP/1.0 close-delimited",
               "HTTP/1.0 200 OK\r\nServer: old\r\n\r\nabc",
               State::Done,
               200,
               {{"server", "old"}},
               "abc",
               ""});
  v.push_back({"HTTP/1.0 with content-length",
               "HTTP/1.0 200 OK\r\nContent-Length: 2\r\n\r\nab",
               State::Done,
               200,
               {{"content-length", "2"}},
               "ab",
               "",
               std::nullopt,
               false});
  v.push_back({"transfer-encoding without chunked is close-delimited (RFC 9112 6.3)",
               ok + "Transfer-Encoding: gzip\r\n\r\n\x1f\x8b",
               State::Done,
               200,
               {{"transfer-encoding", "gzip"}},
               "\x1f\x8b",
               ""});
  v.push_back({"non-2xx with a body",
               "HTTP/1.1 401 Unauthorized\r\nContent-Length: 13\r\n\r\n{\"error\":\"x\"}",
               State::Done,
               401,
               {{"content-length", "13"}},
               "{\"error\":\"x\"}",
               "",
               std::nullopt,
               false});
  // --- interim responses ---
  v.push_back({"100 Continue then 200",
               cont + ok + "Content-Length: 1\r\n\r\nx",
               State::Done,
               200,
               {{"content-length", "1"}},
               "x",
               "",
               std::nullopt,
               false});
  v.push_back({"103 Early Hints headers are not kept",
               "HTTP/1.1 103 Early Hints\r\nLink: </a>; rel=preload\r\n\r\n" + ok +
                   "Content-Length: 1\r\n\r\nx",
               State::Done,
               200,
               {{"content-length", "1"}},
               "x",
               "",
               std::nullopt,
               false});
  v.push_back({"HTTP/1.0 100 then 200",
               "HTTP/1.0 100 Continue\r\n\r\nHTTP/1.0 200 OK\r\nContent-Length: 1\r\n\r\nx",
               State::Done,
               200,
               {{"content-length", "1"}},
               "x",
               "",
               std::nullopt,
               false});
  v.push_back({"1xx with Connection: close and Content-Length has no body",
               "HTTP/1.1 102 Processing\r\nConnection: close\r\nContent-Length: 5\r\n\r\n" + ok +
                   "Content-Length: 1\r\n\r\nx",
               State::Done,
               200,
               {{"content-length", "1"}},
               "x",
               "",
               std::nullopt,
               false});
  v.push_back({"10 interim responses are skipped",
               repeat(cont, 10) + ok + "Content-Length: 1\r\n\r\nx",
               State::Done,
               200,
               {{"content-length", "1"}},
               "x",
               "",
               std::nullopt,
               false});
  v.push_back({"11 interim responses are an error",
               repeat(cont, 11) + ok + "Content-Length: 1\r\n\r\nx",
               State::Error,
               0,
               {},
               "",
               "more than 10 interim (1xx) responses"});
  v.push_back(
      {"101 Switching Protocols is an error",
       "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n",
       State::Error,
       0,
       {},
       "",
       "unexpected 101 Switching Protocols"});
  v.push_back({"101 without Upgrade is an error too",
               "HTTP/1.1 101 Switching Protocols\r\n\r\n",
               State::Error,
               0,
               {},
               "",
               "unexpected 101"});
  // --- no body whatever the framing says ---
  v.push_back({"204 with Content-Length has no body",
               "HTTP/1.1 204 No Content\r\nContent-Length: 5\r\n\r\nHTTP/",
               State::Done,
               204,
               {{"content-length", "5"}},
               "",
               "",
               std::size_t(46),
               false});
  v.push_back({"304 with chunked has no body",
               "HTTP/1.1 304 Not Modified\r\n" + te + "\r\n",
               State::Done,
               304,
               {{"transfer-encoding", "chunked"}},
               "",
               "",
               std::nullopt,
               false});
  {
    Case c{"response to HEAD has no body",
           ok + "Content-Length: 100\r\n\r\n",
           State::Done,
           200,
           {{"content-length", "100"}},
           "",
           "",
           std::nullopt,
           false};
    c.expect_no_body = true;
    v.push_back(c);
  }
  // --- head details ---
  v.push_back({"repeated headers joined, names lower-cased, first position kept",
               ok + "Set-Cookie: a=1\r\nX-A: 1\r\nSET-COOKIE: b=2\r\nx-a: 2\r\nx-A: "
                    "3\r\nContent-Length: 0\r\n\r\n",
               State::Done,
               200,
               {{"set-cookie", "a=1, b=2"}, {"x-a", "1, 2, 3"}, {"content-length", "0"}},
               "",
               "",
               std::nullopt,
               false});
  v.push_back({"whitespace around values trimmed, empty values kept",
               ok + "X-A:   spaced  value \t\r\nX-Empty:\r\nX-Sp: \r\nContent-Length: 0\r\n\r\n",
               State::Done,
               200,
               {{"x-a", "spaced  value"}, {"x-empty", ""}, {"x-sp", ""}, {"content-length", "0"}},
               "",
               "",
               std::nullopt,
               false});
  v.push_back({"long header name and value arrive in pieces",
               ok + "X-" + std::string(300, 'N') + ": " + std::string(700, 'v') +
                   "\r\nContent-Length: 0\r\n\r\n",
               State::Done,
               200,
               {{"x-" + std::string(300, 'n'), std::string(700, 'v')}, {"content-length", "0"}},
               "",
               "",
               std::nullopt,
               false});
  v.push_back({"status without reason phrase",
               "HTTP/1.1 200 \r\nContent-Length: 0\r\n\r\n",
               State::Done,
               200,
               {{"content-length", "0"}},
               "",
               "",
               std::nullopt,
               false});
  v.push_back({"exactly 100 header fields",
               ok + many_headers(99) + "Content-Length: 0\r\n\r\n",
               State::Done,
               200,
               {},
               "",
               "",
               std::nullopt,
               false,
               false,
               false});
  v.push_back({"101 header fields",
               ok + many_headers(100) + "Content-Length: 0\r\n\r\n",
               State::Error,
               0,
               {},
               "",
               "more than 100 header fields"});
  v.push_back({"head of exactly 64 KiB",
               head_of_size(64 * 1024),
               State::Done,
               200,
               {},
               "",
               "",
               std::nullopt,
               false,
               false,
               false});
  v.push_back({"head of 64 KiB + 1",
               head_of_size(64 * 1024 + 1),
               State::Error,
               0,
               {},
               "",
               "response head larger than 64 KiB"});
  v.push_back({"101 trailer fields",
               ok + te + "\r\n0\r\n" + many_headers(101) + "\r\n",
               State::Error,
               200,
               {{"transfer-encoding", "chunked"}},
               "",
               "more than 100 trailer fields"});
  // --- hostile framing ---
  v.push_back({"Content-Length with Transfer-Encoding: chunked",
               ok + "Content-Length: 3\r\n" + te + "\r\n3\r\nabc\r\n0\r\n\r\n",
               State::Error,
               0,
               {},
               "",
               "Content-Length can't be present with Transfer-Encoding"});
  v.push_back({"duplicate Content-Length",
               ok + "Content-Length: 3\r\nContent-Length: 3\r\n\r\nabc",
               State::Error,
               0,
               {},
               "",
               "Duplicate Content-Length"});
  v.push_back({"negative Content-Length",
               ok + "Content-Length: -1\r\n\r\nabc",
               State::Error,
               0,
               {},
               "",
               "Invalid character in Content-Length"});
  v.push_back({"Content-Length with a plus sign",
               ok + "Content-Length: +3\r\n\r\nabc",
               State::Error,
               0,
               {},
               "",
               "Invalid character in Content-Length"});
  v.push_back({"Content-Length list",
               ok + "Content-Length: 3, 3\r\n\r\nabc",
               State::Error,
               0,
               {},
               "",
               "Content-Length"});
  v.push_back({"huge Content-Length",
               ok + "Content-Length: 184467440737095516160\r\n\r\nabc",
               State::Error,
               0,
               {},
               "",
               "Content-Length overflow"});
  v.push_back({"chunk size overflow",
               ok + te + "\r\n1ffffffffffffffff\r\nabc",
               State::Error,
               200,
               {{"transfer-encoding", "chunked"}},
               "",
               "Chunk size overflow"});
  v.push_back({"invalid chunk size",
               ok + te + "\r\nzz\r\nabc\r\n0\r\n\r\n",
               State::Error,
               200,
               {{"transfer-encoding", "chunked"}},
               "",
               "Invalid character in chunk size"});
  v.push_back({"chunk data longer than its size",
               ok + te + "\r\n3\r\nabcd\r\n0\r\n\r\n",
               State::Error,
               200,
               {{"transfer-encoding", "chunked"}},
               "abc",
               "malformed HTTP response"});
  v.push_back({"chunk extension over 4 KiB",
               ok + te + "\r\n3;x=" + std::string(5000, 'e') + "\r\nabc\r\n0\r\n\r\n",
               State::Error,
               200,
               {{"transfer-encoding", "chunked"}},
               "",
               "chunk extensions larger than 4 KiB"});
  // llhttp 8.1 does not check the CRLF after chunk data; the reader does.
  v.push_back({"chunk data not followed by CRLF",
               ok + te + "\r\n3\r\nabcXX0\r\n\r\n",
               State::Error,
               200,
               {{"transfer-encoding", "chunked"}},
               "abc",
               "chunk data not followed by CRLF"});
  v.push_back({"chunk data followed by CR and no LF",
               ok + te + "\r\n3\r\nabc\rX0\r\n\r\n",
               State::Error,
               200,
               {{"transfer-encoding", "chunked"}},
               "abc",
               "chunk data not followed by CRLF"});
  v.push_back({"two chunks, each followed by CRLF",
               ok + te + "\r\n3\r\nabc\r\n2\r\nde\r\n0\r\n\r\n",
               State::Done,
               200,
               {{"transfer-encoding", "chunked"}},
               "abcde",
               ""});
  v.push_back({"trailers that never end are capped at 64 KiB",
               ok + te + "\r\n3\r\nabc\r\n0\r\nX-T: " + std::string(70000, 't'),
               State::Error,
               200,
               {{"transfer-encoding", "chunked"}},
               "abc",
               "response trailers larger than 64 KiB",
               std::nullopt,
               false});
  v.push_back({"trailers under 64 KiB are read and ignored",
               ok + te + "\r\n3\r\nabc\r\n0\r\nX-T: " + std::string(60000, 't') + "\r\n\r\n",
               State::Done,
               200,
               {{"transfer-encoding", "chunked"}},
               "abc",
               ""});
  v.push_back({"bare CR in a header value",
               ok + "X-A: a\rb\r\nContent-Length: 0\r\n\r\n",
               State::Error,
               0,
               {},
               "",
               "malformed HTTP response"});
  v.push_back({"NUL in a header value",
               ok + std::string("X-A: a\0b\r\n", 10) + "Content-Length: 0\r\n\r\n",
               State::Error,
               0,
               {},
               "",
               "Invalid header value char"});
  v.push_back({"NUL in a header name",
               ok + std::string("X\0A: b\r\n", 8) + "Content-Length: 0\r\n\r\n",
               State::Error,
               0,
               {},
               "",
               "malformed HTTP response"});
  v.push_back({"obs-fold",
               ok + "X-A: a\r\n folded\r\nContent-Length: 0\r\n\r\n",
               State::Error,
               0,
               {},
               "",
               "obsolete line folding"});
  v.push_back({"obs-fold with a tab",
               ok + "X-A: a\r\n\tfolded\r\nContent-Length: 0\r\n\r\n",
               State::Error,
               0,
               {},
               "",
               "obsolete line folding"});
  v.push_back({"whitespace before the colon",
               ok + "X-A : a\r\nContent-Length: 0\r\n\r\n",
               State::Error,
               0,
               {},
               "",
               // llhttp's strict mode rejects it first; the reader's own check stays as a guard.
               "Invalid header token"});
  v.push_back({"whitespace before the colon of Content-Length",
               ok + "Content-Length : 3\r\n\r\nabc",
               State::Error,
               0,
               {},
               "",
               "malformed HTTP response"});
  // Two faults in one response: the same one must win however the bytes are split.
  v.push_back({"space in a name, then an invalid byte",
               ok + "X A\x01: v\r\n\r\n",
               State::Error,
               0,
               {},
               "",
               "malformed HTTP response"});
  v.push_back({"obs-fold, then an invalid byte",
               ok + "X-A: a\r\n b\x01\r\n\r\n",
               State::Error,
               0,
               {},
               "",
               "malformed HTTP response"});
  v.push_back({"long chunk extension, then an invalid byte",
               ok + te + "\r\n3;x=" + std::string(5000, 'e') + "\x01\r\nabc\r\n0\r\n\r\n",
               State::Error,
               200,
               {{"transfer-encoding", "chunked"}},
               "",
               "malformed HTTP response"});
  v.push_back({"bare LF line ends",
               "HTTP/1.1 200 OK\nContent-Length: 0\n\n",
               State::Error,
               0,
               {},
               "",
               "malformed HTTP response"});
  v.push_back({"garbage status line",
               "HTTTP/1.1 200 OK\r\n\r\n",
               State::Error,
               0,
               {},
               "",
               "malformed HTTP response: Expected HTTP/"});
  v.push_back({"HTTP/0.9-style reply",
               "<html><body>hi</body></html>",
               State::Error,
               0,
               {},
               "",
               "malformed HTTP response"});
  v.push_back({"two-digit status", "HTTP/1.1 20 OK\r\n\r\n", State::Error, 0, {}, "", "status"});
  v.push_back({"status 099",
               "HTTP/1.1 099 Odd\r\n\r\n",
               State::Error,
               0,
               {},
               "",
               "invalid status code 99"});
  v.push_back({"HTTP/2.0 status line",
               "HTTP/2.0 200 OK\r\nContent-Length: 0\r\n\r\n",
               State::Error,
               0,
               {},
               "",
               "unsupported HTTP version 2.0"});
  v.push_back({"HTTP/1.2",
               "HTTP/1.2 200 OK\r\nContent-Length: 0\r\n\r\n",
               State::Error,
               0,
               {},
               "",
               "Invalid HTTP version"});
  // --- EOF in the middle ---
  v.push_back({"EOF inside a content-length body",
               ok + "Content-Length: 5\r\n\r\nab",
               State::Error,
               200,
               {{"content-length", "5"}},
               "ab",
               "connection closed before the end of the body"});
  v.push_back({"EOF inside a chunked body",
               ok + te + "\r\n5\r\nab",
               State::Error,
               200,
               {{"transfer-encoding", "chunked"}},
               "ab",
               "connection closed before the end of the body"});
  v.push_back({"EOF before the last chunk",
               ok + te + "\r\n1\r\na\r\n",
               State::Error,
               200,
               {{"transfer-encoding", "chunked"}},
               "a",
               "connection closed before the end of the body"});
  v.push_back({"EOF right after a content-length head",
               ok + "Content-Length: 5\r\n\r\n",
               State::Error,
               200,
               {{"content-length", "5"}},
               "",
               "connection closed before the end of the body"});
  v.push_back({"EOF inside the head",
               ok + "X-A: b",
               State::Error,
               0,
               {},
               "",
               "connection closed before the response head was complete"});
  v.push_back({"EOF after an interim response",
               cont,
               State::Error,
               0,
               {},
               "",
               "connection closed before the response head was complete"});
  v.push_back({"EOF with nothing received",
               "",
               State::Error,
               0,
               {},
               "",
               "connection closed before the response head was complete"});
  // Without EOF an unfinished response simply waits for more.
  v.push_back({"unfinished body, no EOF",
               ok + "Content-Length: 5\r\n\r\nab",
               State::Body,
               200,
               {{"content-length", "5"}},
               "ab",
               "",
               std::nullopt,
               false});
  v.push_back({"unfinished head, no EOF",
               ok + "X-A",
               State::Head,
               0,
               {},
               "",
               "",
               std::nullopt,
               false,
               false,
               false});
  return v;
}

// Split points to try: all of them for small inputs, a sample (plus both ends) for big ones.
std::vector<std::size_t> split_points(std::size_t size) {
  std::vector<std::size_t> points;
  if (size <= 4096) {
    for (std::size_t i = 0; i <= size; ++i) points.push_back(i);
    return points;
  }
  for (std::size_t i = 0; i <= size; i += 509) points.push_back(i);
  for (std::size_t i = 0; i < 64; ++i) {
    points.push_back(i);
    points.push_back(size - i);
  }
  return points;
}

void check_outcome(const Case &c, const Outcome &o, const std::string &how) {
  INFO("case: " << c.name << " / fed " << how);
  INFO("state " << name(o.state) << ", error: " << o.error);
  REQUIRE(o.state == c.state);
  CHECK(o.body == c.body);
  if (c.error.empty()) {
    CHECK(o.error.empty());
  } else {
    CHECK_THAT(o.error, Catch::Matchers::Contains(c.error));
  }
  if (c.state != State::Error) CHECK(o.consumed == c.consumed.value_or(c.input.size()));
  if (c.check_head && c.status != 0) {  // status 0: the head is not valid (Error in it)
    CHECK(o.status == c.status);
    CHECK(o.headers == c.headers);
  }
}

}  // namespace

TEST_CASE("ResponseReader parsegrind: whole, every split, byte by byte", "[http][response]") {
  const auto all = cases();
  CHECK(all.size() >= 40);
  for (const auto &c : all) {
    const Outcome whole = drive({c.input}, c.eof, c.expect_no_body);
    check_outcome(c, whole, "whole");
    for (std::size_t at : split_points(c.input.size())) {
      Outcome split = drive({c.input.substr(0, at), c.input.substr(at)}, c.eof, c.expect_no_body);
      INFO("split at " << at);
      check_outcome(c, split, "split");
      // Same result whichever way it is fed, including the parts the table does not list.
      CHECK(split.headers == whole.headers);
      CHECK(split.reason == whole.reason);
      CHECK(split.error == whole.error);
      CHECK(split.until_close == whole.until_close);
    }
    std::vector<std::string> bytes;
    for (char ch : c.input) bytes.emplace_back(1, ch);
    const Outcome one = drive(bytes, c.eof, c.expect_no_body);
    check_outcome(c, one, "byte by byte");
    CHECK(one.headers == whole.headers);
    CHECK(one.error == whole.error);
  }
}

TEST_CASE("ResponseReader: feed() pauses after the head, then delivers the body",
          "[http][response]") {
  std::string body;
  ResponseReader r([&](std::string_view b) { body.append(b); });
  const std::string head = "HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\n\r\n";
  const std::string input = head + "data: x\n\n";
  std::size_t n = r.feed(input);
  CHECK(n == head.size());
  CHECK(r.state() == State::Body);
  CHECK(body.empty());
  CHECK(r.head().status == 200);
  CHECK(r.head().reason == "OK");
  CHECK(r.head().http_major == 1);
  CHECK(r.head().http_minor == 1);
  REQUIRE(r.head().find("content-type") != nullptr);
  CHECK(*r.head().find("content-type") == "text/event-stream");
  CHECK(r.head().find("Content-Type") == nullptr);  // names are looked up in lower case
  CHECK(r.body_until_close());
  CHECK(r.feed(std::string_view(input).substr(n)) == input.size() - n);
  CHECK(body == "data: x\n\n");
  CHECK(r.state() == State::Body);
  CHECK(r.finish() == State::Done);
  CHECK(r.error().empty());
}

TEST_CASE("ResponseReader: framing flags and the end of the message", "[http][response]") {
  ResponseReader chunked([](std::string_view) {});
  chunked.feed("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n");
  CHECK_FALSE(chunked.body_until_close());
  CHECK(chunked.feed("0\r\n\r\nmore") == 5);
  CHECK(chunked.state() == State::Done);
  CHECK(chunked.feed("anything") == 0);  // Done is final
  CHECK(chunked.finish() == State::Done);

  ResponseReader http10([](std::string_view) {});
  http10.feed("HTTP/1.0 404 Not Found\r\n\r\n");
  CHECK(http10.head().http_minor == 0);
  CHECK(http10.head().reason == "Not Found");
  CHECK(http10.body_until_close());

  ResponseReader bad([](std::string_view) {});
  bad.feed("garbage");
  CHECK(bad.state() == State::Error);
  CHECK(bad.feed("HTTP/1.1 200 OK\r\n\r\n") == 0);  // Error is final
  CHECK(bad.finish() == State::Error);
}

TEST_CASE("ResponseReader: a throwing sink ends in Error, not in llhttp's frames",
          "[http][response]") {
  ResponseReader r([](std::string_view) { throw std::runtime_error("sink"); });
  r.feed("HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\n");
  CHECK(r.state() == State::Body);
  r.feed("ab");
  CHECK(r.state() == State::Error);
  CHECK_THAT(r.error(), Catch::Matchers::Contains("body sink"));
}

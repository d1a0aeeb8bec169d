// session_test.cpp: the pure helpers of http/session.hpp and how reader errors are classified.
#include <catch2/catch.hpp>

#include "http/response_reader.hpp"
#include "http/session.hpp"

using namespace levhttp::http;

TEST_CASE("Content-Type names text/event-stream", "[session]") {
  CHECK(is_event_stream("text/event-stream"));
  CHECK(is_event_stream("TEXT/Event-Stream"));
  CHECK(is_event_stream("text/event-stream; charset=utf-8"));
  CHECK(is_event_stream("  text/event-stream  ;charset=utf-8"));
  CHECK(is_event_stream("text/plain, text/event-stream"));  // repeated fields, joined
  CHECK_FALSE(is_event_stream("text/html"));
  CHECK_FALSE(is_event_stream("text/event-streams"));
  CHECK_FALSE(is_event_stream("application/json; x=text/event-stream"));
  CHECK_FALSE(is_event_stream(""));
}

TEST_CASE("[DONE] and the reserved lifecycle names", "[session]") {
  CHECK(is_done_marker("[DONE]"));
  CHECK_FALSE(is_done_marker("[DONE] "));
  CHECK_FALSE(is_done_marker("[done]"));
  for (const char *n : {"connect", "open", "message", "close", "done"}) CHECK(is_lifecycle_name(n));
  for (const char *n : {"error", "delta", "Message", ""}) CHECK_FALSE(is_lifecycle_name(n));
}

TEST_CASE("error kinds have stable names", "[session]") {
  CHECK(std::string(kind_name(ErrorKind::Dns)) == "dns");
  CHECK(std::string(kind_name(ErrorKind::ContentType)) == "content_type");
  CHECK(std::string(kind_name(ErrorKind::TooLarge)) == "too_large");
  CHECK(std::string(kind_name(ErrorKind::Closed)) == "closed");
  CHECK(std::string(kind_name(ErrorKind::None)).empty());
}

TEST_CASE("reader errors: size caps are limits, bad syntax is not", "[session]") {
  auto run = [](const std::string &bytes) {
    auto r = std::make_unique<ResponseReader>([](std::string_view) {});
    std::string_view rest = bytes;
    // feed() pauses after the head: keep feeding, as the session does.
    while (!rest.empty() && r->state() != ResponseReader::State::Error &&
           r->state() != ResponseReader::State::Done) {
      std::size_t n = r->feed(rest);
      if (n == 0 && r->state() == ResponseReader::State::Head) break;
      rest.remove_prefix(n);
    }
    return r;
  };
  std::string many = "HTTP/1.1 200 OK\r\n";
  for (int i = 0; i < 101; ++i) many += "X-" + std::to_string(i) + ": v\r\n";
  auto a = run(many + "\r\n");
  REQUIRE(a->state() == ResponseReader::State::Error);
  CHECK(a->error_is_limit());

  auto b = run("HTTP/1.1 200 OK\r\nX-Big: " + std::string(70 * 1024, 'a') + "\r\n\r\n");
  REQUIRE(b->state() == ResponseReader::State::Error);
  CHECK(b->error_is_limit());

  std::string interim;
  for (int i = 0; i < 11; ++i) interim += "HTTP/1.1 100 Continue\r\n\r\n";
  auto c = run(interim + "HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n");
  REQUIRE(c->state() == ResponseReader::State::Error);
  CHECK_FALSE(c->error_is_limit());

  auto d = run("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n");
  REQUIRE(d->state() == ResponseReader::State::Error);
  CHECK_FALSE(d->error_is_limit());
}

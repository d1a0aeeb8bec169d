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

// --- the connect phase, driven by hand: poll() stands in for the loop -----------------------

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

namespace {

double now_s() {
  timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return static_cast<double>(ts.tv_sec) + static_cast<double>(ts.tv_nsec) / 1e9;
}

sockaddr_storage loopback(uint16_t port, const char *ip = "127.0.0.1") {
  sockaddr_storage ss{};
  auto *a = reinterpret_cast<sockaddr_in *>(&ss);
  a->sin_family = AF_INET;
  a->sin_port = htons(port);
  ::inet_pton(AF_INET, ip, &a->sin_addr);
  return ss;
}

// A listening socket on ip:port (port 0: any); `backlog_full` fills its accept queue so that a
// further connect() gets no answer.
struct Listener {
  int fd = -1;
  uint16_t port = 0;
  std::vector<int> fillers;
  explicit Listener(bool backlog_full = false, const char *ip = "127.0.0.1", uint16_t want = 0) {
    fd = ::socket(AF_INET, SOCK_STREAM, 0);
    int one = 1;
    ::setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    sockaddr_storage ss = loopback(want, ip);
    REQUIRE(::bind(fd, reinterpret_cast<sockaddr *>(&ss), sizeof(sockaddr_in)) == 0);
    REQUIRE(::listen(fd, backlog_full ? 0 : 16) == 0);
    socklen_t len = sizeof ss;
    ::getsockname(fd, reinterpret_cast<sockaddr *>(&ss), &len);
    port = ntohs(reinterpret_cast<sockaddr_in *>(&ss)->sin_port);
    if (!backlog_full) return;
    for (int i = 0; i < 8; ++i) {  // more than the queue holds
      int c = ::socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
      sockaddr_storage to = loopback(port, ip);
      ::connect(c, reinterpret_cast<sockaddr *>(&to), sizeof(sockaddr_in));
      fillers.push_back(c);
    }
  }
  ~Listener() {
    for (int c : fillers) ::close(c);
    ::close(fd);
  }
};

// Steps the session through waits with poll() until it reports something else.
Session::Output drive(Session &s, double limit_s) {
  double end = now_s() + limit_s;
  for (;;) {
    Session::Output o = s.step(now_s());
    if (o.kind != Session::Output::Wait || now_s() > end) return o;
    pollfd p{o.fd, static_cast<short>(o.events == 2 ? POLLOUT : POLLIN), 0};
    double wait_ms = (std::min(o.deadline, end) - now_s()) * 1000;
    ::poll(&p, 1, wait_ms > 0 ? static_cast<int>(wait_ms) + 1 : 0);
  }
}

}  // namespace

// Two addresses with the same port, as a resolver returns them: 127.0.0.2 (where nothing, or a
// silent listener, is) first, 127.0.0.1 (the server) second.
TEST_CASE("connect tries each resolved address in turn", "[session]") {
  Listener good;
  Session s;
  REQUIRE_FALSE(parse_url("http://service.test:" + std::to_string(good.port) + "/", s.request().url));
  s.start(now_s());
  REQUIRE(s.step(now_s()).kind == Session::Output::NeedResolve);
  sockaddr_storage addrs[2] = {loopback(good.port, "127.0.0.2"), loopback(good.port)};
  s.on_resolved(addrs, 2);
  CHECK(drive(s, 5).kind == Session::Output::Connected);
}

TEST_CASE("connect fails with the last address's error when none accepts", "[session]") {
  uint16_t port;
  {
    Listener gone;
    port = gone.port;
  }
  Session s;
  REQUIRE_FALSE(parse_url("http://service.test:" + std::to_string(port) + "/", s.request().url));
  s.start(now_s());
  REQUIRE(s.step(now_s()).kind == Session::Output::NeedResolve);
  sockaddr_storage addrs[2] = {loopback(port, "127.0.0.2"), loopback(port)};
  s.on_resolved(addrs, 2);
  REQUIRE(drive(s, 5).kind == Session::Output::Failed);
  CHECK(s.failure().kind == ErrorKind::Connect);
  CHECK(s.failure().message.find("127.0.0.1:" + std::to_string(port)) != std::string::npos);
  CHECK(s.failure().message.find("refused") != std::string::npos);
}

TEST_CASE("an address that never answers gets only its share of connect_timeout", "[session]") {
  Listener silent(/*backlog_full=*/true, "127.0.0.2");
  Listener good(false, "127.0.0.1", silent.port);
  Session s;
  REQUIRE_FALSE(parse_url("http://service.test:" + std::to_string(silent.port) + "/", s.request().url));
  s.options().connect_timeout = 1.0;
  double t0 = now_s();
  s.start(t0);
  REQUIRE(s.step(now_s()).kind == Session::Output::NeedResolve);
  sockaddr_storage addrs[2] = {loopback(silent.port, "127.0.0.2"), loopback(silent.port)};
  s.on_resolved(addrs, 2);
  // The first of two addresses gets half of the second left: about 0.5 s, then the next one.
  CHECK(drive(s, 5).kind == Session::Output::Connected);
  double took = now_s() - t0;
  CHECK(took >= 0.45);
  CHECK(took < 0.9);
}

TEST_CASE("connect_timeout bounds a connect that gets no answer", "[session]") {
  Listener silent(/*backlog_full=*/true);
  Session s;
  REQUIRE_FALSE(parse_url("http://127.0.0.1:" + std::to_string(silent.port) + "/", s.request().url));
  s.options().connect_timeout = 0.3;
  double t0 = now_s();
  s.start(t0);
  REQUIRE(drive(s, 5).kind == Session::Output::Failed);
  CHECK(s.failure().kind == ErrorKind::Timeout);
  double took = now_s() - t0;
  CHECK(took >= 0.29);
  CHECK(took < 1.0);
}

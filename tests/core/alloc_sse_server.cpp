// alloc_sse_server.cpp: see alloc_sse_server.hpp.
#include "alloc_sse_server.hpp"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <stdexcept>

namespace alloc_test {

namespace {

// The body: a comment, a plain event, a named event with id and retry, two JSON payloads
// (object and array) and a multi-line one. alloc_failure_test.cpp's chunk reports each one.
constexpr const char kEvents[] =
    ": a comment, not an event\n\n"
    "data: hello\n\n"
    "id: 7\nevent: tick\nretry: 1500\ndata: 1\n\n"
    "data: {\"s\":\"two\",\"n\":2}\n\n"
    "data: [1,2,3]\n\n"
    "data: line1\ndata: line2\n\n";

// The body of the 401 that /denied gets.
constexpr const char kRefusal[] = "{\"error\":\"no key\"}";

// Small chunks, so events and even field names straddle chunk boundaries.
constexpr std::size_t kChunkSize = 17;

// A client that stops talking is given up after this long (it never happens in a passing run:
// a closed client reads as end of file at once).
constexpr int kReadTimeoutMs = 10000;

std::string response_bytes() {
  std::string out =
      "HTTP/1.1 200 OK\r\n"
      "Content-Type: text/event-stream\r\n"
      "Cache-Control: no-cache\r\n"
      "Transfer-Encoding: chunked\r\n"
      "\r\n";
  std::string body = kEvents;
  for (std::size_t i = 0; i < body.size(); i += kChunkSize) {
    std::string part = body.substr(i, kChunkSize);
    char size[32];
    std::snprintf(size, sizeof size, "%zx\r\n", part.size());
    out += size;
    out += part;
    out += "\r\n";
  }
  out += "0\r\n\r\n";
  return out;
}

[[noreturn]] void fail(const char *what) {
  throw std::runtime_error(std::string("SseServer: ") + what + ": " + std::strerror(errno));
}

}  // namespace

SseServer::SseServer() {
  listen_fd_ = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
  if (listen_fd_ < 0) fail("socket");
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  addr.sin_port = 0;
  socklen_t len = sizeof addr;
  if (bind(listen_fd_, reinterpret_cast<sockaddr *>(&addr), sizeof addr) != 0 ||
      listen(listen_fd_, 64) != 0 ||
      getsockname(listen_fd_, reinterpret_cast<sockaddr *>(&addr), &len) != 0) {
    int e = errno;
    close(listen_fd_);
    errno = e;
    fail("bind/listen");
  }
  if (pipe2(stop_pipe_, O_CLOEXEC) != 0) {
    int e = errno;
    close(listen_fd_);
    errno = e;
    fail("pipe2");
  }
  std::string port = std::to_string(ntohs(addr.sin_port));
  url_ = "http://127.0.0.1:" + port + "/events";
  // localhost may also name ::1, where nothing listens: the client then tries the next address.
  url_by_name_ = "http://localhost:" + port + "/events";
  thread_ = std::thread([this] { run(); });
}

SseServer::~SseServer() {
  char byte = 1;
  if (write(stop_pipe_[1], &byte, 1) != 1) std::perror("SseServer: stop");
  thread_.join();
  close(listen_fd_);
  close(stop_pipe_[0]);
  close(stop_pipe_[1]);
}

bool SseServer::idle() {
  std::lock_guard<std::mutex> lock(mu_);
  if (open_ != 0) return false;
  pollfd p{listen_fd_, POLLIN, 0};
  return poll(&p, 1, 0) == 0;
}

bool SseServer::wait_idle(double seconds) {
  auto deadline = std::chrono::steady_clock::now() + std::chrono::duration<double>(seconds);
  while (!idle()) {
    if (std::chrono::steady_clock::now() >= deadline) return false;
    std::this_thread::sleep_for(std::chrono::microseconds(200));  // re-check the condition
  }
  return true;
}

void SseServer::run() {
  for (;;) {
    pollfd p[2] = {{listen_fd_, POLLIN, 0}, {stop_pipe_[0], POLLIN, 0}};
    if (poll(p, 2, -1) < 0) {
      if (errno == EINTR) continue;
      std::perror("SseServer: poll");
      return;
    }
    if (p[1].revents != 0) return;
    int fd;
    {
      std::lock_guard<std::mutex> lock(mu_);
      fd = accept4(listen_fd_, nullptr, nullptr, SOCK_CLOEXEC);
      if (fd >= 0) open_++;
    }
    if (fd < 0) continue;  // EAGAIN: the client gave up before we accepted
    serve(fd);
    {
      std::lock_guard<std::mutex> lock(mu_);
      close(fd);
      open_--;
    }
    served_++;
  }
}

void SseServer::serve(int fd) {
  std::string head;
  char buf[4096];
  while (head.find("\r\n\r\n") == std::string::npos) {
    pollfd p[2] = {{fd, POLLIN, 0}, {stop_pipe_[0], POLLIN, 0}};
    int n = poll(p, 2, kReadTimeoutMs);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0 || p[1].revents != 0) return;
    ssize_t got = recv(fd, buf, sizeof buf, 0);
    if (got <= 0) return;  // the client went away before sending its whole request
    head.append(buf, static_cast<std::size_t>(got));
    if (head.size() > 64 * 1024) return;
  }
  // The request line is "GET <target> HTTP/1.1": /denied gets the 401.
  bool denied = head.compare(0, head.find("\r\n"), "GET /denied HTTP/1.1") == 0;
  static const std::string stream = response_bytes();
  static const std::string refusal = std::string(
                                         "HTTP/1.1 401 Unauthorized\r\n"
                                         "Content-Type: application/json\r\n"
                                         "Content-Length: ") +
                                     std::to_string(sizeof kRefusal - 1) + "\r\n\r\n" + kRefusal;
  const std::string &response = denied ? refusal : stream;
  std::size_t sent = 0;
  while (sent < response.size()) {
    ssize_t n = send(fd, response.data() + sent, response.size() - sent, MSG_NOSIGNAL);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return;  // the client went away
    sent += static_cast<std::size_t>(n);
  }
}

}  // namespace alloc_test

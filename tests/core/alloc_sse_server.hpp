// alloc_sse_server.hpp: a tiny blocking SSE server on a thread, for alloc_failure_test.cpp.
//
// Contract: the constructor binds 127.0.0.1 on a free port and starts one thread that serves
// connections one at a time: accept, read the request head (up to the blank line, or until
// the client goes away), send one fixed response, close. GET /denied gets a 401 with a small
// JSON body (Content-Length); any other request an HTTP/1.1 200 text/event-stream response
// with a chunked body (kEvents in the .cpp, split into small chunks). The destructor stops the
// thread and closes every fd it owns.
//
// The test counts its process's open fds, and this server's fds are part of that count, so
// idle() tells when the server holds no connection fd and none waits in the listen backlog:
// once the client's fds are closed, waiting for idle() (with a deadline) makes the count
// independent of how far the server got with its last connection.
#pragma once

#include <atomic>
#include <cstddef>
#include <mutex>
#include <string>
#include <thread>

namespace alloc_test {

class SseServer {
 public:
  SseServer();
  ~SseServer();
  SseServer(const SseServer &) = delete;
  SseServer &operator=(const SseServer &) = delete;

  const std::string &url() const { return url_; }                  // http://127.0.0.1:port/...
  const std::string &url_by_name() const { return url_by_name_; }  // http://localhost:port/...
  // No open connection and no connection waiting to be accepted.
  bool idle();
  // Waits until idle(), at most `seconds`; returns idle().
  bool wait_idle(double seconds);
  // Connections served so far (accepted, answered or abandoned by the client, closed).
  std::size_t served() const { return served_.load(); }

 private:
  void run();
  void serve(int fd);

  int listen_fd_ = -1;
  int stop_pipe_[2] = {-1, -1};
  std::string url_, url_by_name_;
  std::mutex mu_;  // held while accepting and closing, so idle() never sees a half state
  int open_ = 0;   // connection fds held (0 or 1)
  std::atomic<std::size_t> served_{0};
  std::thread thread_;
};

}  // namespace alloc_test

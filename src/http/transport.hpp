// http/transport.hpp: a connected byte stream under the session: plain TCP now, TLS next.
//
// Contract: every call is non-blocking and reports what it is waiting for instead of
// waiting: Ok with a byte count, WantRead / WantWrite (retry when the fd is ready that way:
// a TLS read may need the fd writable and vice versa), Eof (the peer closed cleanly), or
// Error with a message. Writes never raise SIGPIPE (MSG_NOSIGNAL). A transport owns its fd
// and closes it in its destructor; the session tells the loop to forget the fd first.
// has_buffered() is true when bytes are already decrypted/buffered inside the transport, so
// the caller must read again before waiting on the fd (SSL_pending).
#pragma once

#include <sys/socket.h>

#include <cstddef>
#include <memory>
#include <string>

namespace levhttp::http {

struct IoResult {
  enum Status { Ok, WantRead, WantWrite, Eof, Error } status;
  std::size_t n = 0;
};

class Transport {
 public:
  virtual ~Transport() = default;
  // Finishes any protocol handshake (TLS); Ok when the stream is ready for data.
  virtual IoResult handshake() { return {IoResult::Ok, 0}; }
  virtual IoResult read(char *buf, std::size_t len) = 0;
  virtual IoResult write(const char *buf, std::size_t len) = 0;
  virtual bool has_buffered() const { return false; }
  // True when the last Error was a TLS protocol failure (an alert, a bad record), as opposed
  // to the connection breaking: the session reports the first as kind "tls", the second as
  // "closed".
  virtual bool tls_failure() const { return false; }
  // Why the last call returned Error (or why the handshake failed).
  virtual const std::string &error() const = 0;
  virtual int fd() const = 0;
};

// Plain TCP over a connected, non-blocking socket (takes ownership of fd).
class TcpTransport final : public Transport {
 public:
  explicit TcpTransport(int fd) : fd_(fd) {}
  ~TcpTransport() override;
  IoResult read(char *buf, std::size_t len) override;
  IoResult write(const char *buf, std::size_t len) override;
  const std::string &error() const override { return error_; }
  int fd() const override { return fd_; }

 private:
  int fd_;
  std::string error_;
};

// Socket helpers for the connect phase. start_connect() opens a non-blocking, close-on-exec
// TCP socket (TCP_NODELAY) and starts connecting: returns the fd (>= 0) with `in_progress`
// telling whether to wait for writability, or -1 with `err` set. finish_connect() reads
// SO_ERROR after the wait: 0 when connected, else the errno.
int start_connect(const sockaddr_storage &addr, bool &in_progress, std::string &err);
int finish_connect(int fd);
// "127.0.0.1:80" / "[::1]:80"
std::string format_address(const sockaddr_storage &addr);

}  // namespace levhttp::http

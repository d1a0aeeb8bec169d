// http/tls_transport.hpp: TLS (OpenSSL 3) over a connected non-blocking TCP socket.
//
// Contract: verified by default: the peer's chain against the system trust store
// (SSL_CTX_set_default_verify_paths, so SSL_CERT_FILE / SSL_CERT_DIR apply) or tls_cafile /
// tls_capath, and its name with SSL_set1_host (or its IP SAN for IP literals); SNI for host
// names, never for IP literals; TLS 1.2 at least. tls_no_verify turns both checks off. Every
// call is non-blocking: SSL_ERROR_WANT_READ / WANT_WRITE from any call, in either direction,
// come back as IoResult::WantRead / WantWrite. The error queue is cleared before each call,
// so one connection's failure never shows up on another. Writes go through a BIO that sends
// with MSG_NOSIGNAL (OpenSSL 3's socket BIO would raise SIGPIPE). A peer that closes without
// close_notify is an Error ("... without close_notify"); with close_notify, Eof.
//
// Contexts: one SSL_CTX per distinct TlsOptions, shared by every connection that uses the
// same options (a process-wide cache that keeps up to 16 of them, so a trust store is loaded
// once, not once per connection).
#pragma once

#include <memory>
#include <string>

#include "http/transport.hpp"

typedef struct ssl_ctx_st SSL_CTX;
typedef struct ssl_st SSL;

namespace levhttp::http {

struct TlsOptions {
  std::string cafile, capath, certfile, keyfile;
  bool no_verify = false;
  bool operator==(const TlsOptions &) const = default;
};

// A shared, reference-counted SSL_CTX for a set of options. Returns nullptr with `err` set
// when the options cannot be loaded (missing CA file, key not matching the certificate...).
std::shared_ptr<SSL_CTX> tls_context(const TlsOptions &opts, std::string &err);

class TlsTransport final : public Transport {
 public:
  // Takes ownership of fd. `host` is the name to verify and send as SNI (or an IP literal).
  TlsTransport(int fd, std::shared_ptr<SSL_CTX> ctx, const std::string &host, bool host_is_ip,
               bool verify);
  ~TlsTransport() override;
  bool ok() const { return ssl_ != nullptr; }  // false: error() says why setup failed

  IoResult handshake() override;
  IoResult read(char *buf, std::size_t len) override;
  IoResult write(const char *buf, std::size_t len) override;
  bool has_buffered() const override;
  bool tls_failure() const override { return tls_failure_; }
  const std::string &error() const override { return error_; }
  int fd() const override { return fd_; }

 private:
  IoResult result(int ret, std::size_t n, const char *what);

  int fd_;
  std::shared_ptr<SSL_CTX> ctx_;
  SSL *ssl_ = nullptr;
  std::string error_;
  bool tls_failure_ = false;
};

}  // namespace levhttp::http

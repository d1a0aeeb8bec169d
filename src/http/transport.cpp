#include "http/transport.hpp"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

namespace levhttp::http {

TcpTransport::~TcpTransport() {
  if (fd_ >= 0) ::close(fd_);
}

IoResult TcpTransport::read(char *buf, std::size_t len) {
  for (;;) {
    ssize_t n = ::recv(fd_, buf, len, 0);
    if (n > 0) return {IoResult::Ok, static_cast<std::size_t>(n)};
    if (n == 0) return {IoResult::Eof, 0};
    if (errno == EINTR) continue;
    if (errno == EAGAIN || errno == EWOULDBLOCK) return {IoResult::WantRead, 0};
    error_ = std::strerror(errno);
    return {IoResult::Error, 0};
  }
}

IoResult TcpTransport::write(const char *buf, std::size_t len) {
  for (;;) {
    // MSG_NOSIGNAL: a peer that has gone away gives EPIPE, never SIGPIPE in the host.
    ssize_t n = ::send(fd_, buf, len, MSG_NOSIGNAL);
    if (n >= 0) return {IoResult::Ok, static_cast<std::size_t>(n)};
    if (errno == EINTR) continue;
    if (errno == EAGAIN || errno == EWOULDBLOCK) return {IoResult::WantWrite, 0};
    error_ = std::strerror(errno);
    return {IoResult::Error, 0};
  }
}

int start_connect(const sockaddr_storage &addr, bool &in_progress, std::string &err) {
  in_progress = false;
  int fd = ::socket(addr.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, IPPROTO_TCP);
  if (fd < 0) {
    err = std::strerror(errno);
    return -1;
  }
  int one = 1;
  // Events are small and latency matters more than packet count.
  ::setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
  socklen_t len = addr.ss_family == AF_INET6 ? sizeof(sockaddr_in6) : sizeof(sockaddr_in);
  int rc;
  do {
    rc = ::connect(fd, reinterpret_cast<const sockaddr *>(&addr), len);
  } while (rc != 0 && errno == EINTR);
  if (rc == 0) return fd;
  if (errno == EINPROGRESS) {
    in_progress = true;
    return fd;
  }
  err = std::strerror(errno);
  ::close(fd);
  return -1;
}

int finish_connect(int fd) {
  int soerr = 0;
  socklen_t len = sizeof soerr;
  if (::getsockopt(fd, SOL_SOCKET, SO_ERROR, &soerr, &len) != 0) return errno;
  return soerr;
}

std::string format_address(const sockaddr_storage &addr) {
  char buf[INET6_ADDRSTRLEN] = "?";
  if (addr.ss_family == AF_INET6) {
    auto *a = reinterpret_cast<const sockaddr_in6 *>(&addr);
    ::inet_ntop(AF_INET6, &a->sin6_addr, buf, sizeof buf);
    return std::string("[") + buf + "]:" + std::to_string(ntohs(a->sin6_port));
  }
  auto *a = reinterpret_cast<const sockaddr_in *>(&addr);
  ::inet_ntop(AF_INET, &a->sin_addr, buf, sizeof buf);
  return std::string(buf) + ":" + std::to_string(ntohs(a->sin_port));
}

}  // namespace levhttp::http

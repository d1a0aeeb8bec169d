// sse_server_bench: the fast local SSE server (and a raw sink client) for scripts/bench.sh.
//
//   sse_server_bench serve [--tls CERT KEY]     listens on 127.0.0.1 port 0, prints "PORT <n>"
//                                               and serves until SIGTERM / SIGINT
//   sse_server_bench fetch PORT PATH [--out|--latency]  a raw HTTP/1.1 client: GETs PATH,
//                                               counts the body bytes (writes them to stdout
//                                               with --out; --latency: /latency stamps vs
//                                               the clock at recv(), printed as percentiles),
//                                               prints "<bytes> <wall s> <cpu s>" on stderr
//
// Paths (all answers are `200 text/event-stream`; `framing=close` gives a close-delimited
// body instead of the default chunked one):
//   /stream?n=N      N OpenAI-shaped `data: {json}` events (~230 bytes each, the index in
//                    the JSON), then `data: [DONE]`; the body is built once and cached
//   /paced?n=N&us=U  the same events, one every U microseconds, then [DONE]
//   /latency?n=N&us=U  N events `data: {"t":<CLOCK_MONOTONIC ns>,"i":k}` one every U us, the
//                    timestamp taken right before the write, then [DONE]
//   /line?mb=M&kind=line|short  M MiB of payload: one data line (kind=line) or short
//                    `data: x` events (kind=short), then [DONE]
//   /idle            the head, then nothing until the client closes
//
// One thread, epoll, non-blocking sockets (TLS through OpenSSL in the same loop), so one
// process can hold 11,000 connections. Benchmarks only: no limits, no hardening.
#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <signal.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <ctime>
#include <map>
#include <memory>
#include <string>
#include <vector>

namespace {

volatile sig_atomic_t g_stop = 0;
void on_signal(int) {
  g_stop = 1;
}

uint64_t mono_ns() {
  timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return static_cast<uint64_t>(ts.tv_sec) * 1000000000u + static_cast<uint64_t>(ts.tv_nsec);
}

// One OpenAI chat.completion.chunk event (~230 bytes on the wire).
std::string openai_event(std::size_t i) {
  static const char *words[] = {" the",  " quick", " brown", " fox", " jumps",
                                " over", " lazy",  " dog",   ",",    "."};
  char buf[512];
  int n = std::snprintf(buf, sizeof buf,
                        "data: {\"id\":\"chatcmpl-9xQ2mZr7kHc1aBv3LpT8sYw4\",\"object\":"
                        "\"chat.completion.chunk\",\"created\":1717171717,\"model\":\"gpt-4o-"
                        "2024-05-13\",\"system_fingerprint\":\"fp_4d5e6f\",\"choices\":[{"
                        "\"index\":%zu,\"delta\":{\"content\":\"%s\"},\"logprobs\":null,"
                        "\"finish_reason\":null}]}\n\n",
                        i, words[i % 10]);
  return std::string(buf, static_cast<std::size_t>(n));
}

const std::string kDone = "data: [DONE]\n\n";

std::string chunk(const std::string &payload) {
  char hdr[32];
  int n = std::snprintf(hdr, sizeof hdr, "%zx\r\n", payload.size());
  return std::string(hdr, static_cast<std::size_t>(n)) + payload + "\r\n";
}

std::string head(bool chunked) {
  return std::string(
             "HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nCache-Control: "
             "no-cache\r\n") +
         (chunked ? "Transfer-Encoding: chunked\r\n" : "Connection: close\r\n") + "\r\n";
}

// Body bytes framed: chunked in pieces of about `piece` bytes, or raw.
std::string frame(const std::string &body, bool chunked, std::size_t piece = 16384) {
  if (!chunked) return body;
  std::string out;
  out.reserve(body.size() + body.size() / piece * 12 + 16);
  for (std::size_t i = 0; i < body.size(); i += piece) out += chunk(body.substr(i, piece));
  out += "0\r\n\r\n";
  return out;
}

std::string query(const std::string &path, const char *key, const char *dflt) {
  std::string k = std::string(key) + "=";
  std::size_t q = path.find('?');
  while (q != std::string::npos) {
    std::size_t start = q + 1;
    if (path.compare(start, k.size(), k) == 0) {
      std::size_t end = path.find('&', start);
      return path.substr(start + k.size(), end == std::string::npos ? end : end - start - k.size());
    }
    q = path.find('&', start);
  }
  return dflt;
}

struct Conn {
  int fd = -1;
  SSL *ssl = nullptr;
  bool handshaken = false;
  std::string req;
  bool have_req = false;
  // What to send: `shared` (a cached body) or `own`, from offset `off`.
  std::shared_ptr<const std::string> shared;
  std::string own;
  std::size_t off = 0;
  // Paced modes: events left, interval, next due time.
  enum Mode { None, Bulk, Paced, Latency, Idle } mode = None;
  bool chunked = true;
  std::size_t left = 0, index = 0;
  uint64_t interval_ns = 0, due = 0;
  bool finished = false;  // everything queued; close after it is written
  bool want_out = false;
};

class Server {
 public:
  Server(SSL_CTX *ctx) : ctx_(ctx) {}
  int run();

 private:
  void accept_all();
  void on_event(Conn *c, uint32_t ev);
  bool do_read(Conn *c);
  void start_response(Conn *c);
  bool flush(Conn *c);  // false: the connection is gone
  void tick();
  void drop(Conn *c);
  void want_write(Conn *c, bool on);
  const std::string &pending(const Conn *c) const { return c->shared ? *c->shared : c->own; }
  void queue(Conn *c, const std::string &bytes);

  SSL_CTX *ctx_;
  int lfd_ = -1, ep_ = -1;
  std::map<int, std::unique_ptr<Conn>> conns_;
  std::map<std::string, std::shared_ptr<const std::string>> cache_;
};

void Server::want_write(Conn *c, bool on) {
  if (c->want_out == on) return;
  c->want_out = on;
  epoll_event e{};
  e.events = EPOLLIN | (on ? EPOLLOUT : 0u);
  e.data.fd = c->fd;
  epoll_ctl(ep_, EPOLL_CTL_MOD, c->fd, &e);
}

void Server::drop(Conn *c) {
  epoll_ctl(ep_, EPOLL_CTL_DEL, c->fd, nullptr);
  if (c->ssl) SSL_free(c->ssl);
  ::close(c->fd);
  conns_.erase(c->fd);
}

void Server::queue(Conn *c, const std::string &bytes) {
  if (c->shared) {
    c->own = c->shared->substr(c->off);
    c->shared.reset();
    c->off = 0;
  }
  if (c->off > 0 && c->off == c->own.size()) {
    c->own.clear();
    c->off = 0;
  }
  c->own += bytes;
}

bool Server::flush(Conn *c) {
  for (;;) {
    const std::string &buf = pending(c);
    if (c->off >= buf.size()) break;
    std::size_t len = buf.size() - c->off;
    if (c->ssl) {
      if (len > 16384) len = 16384;
      int n = SSL_write(c->ssl, buf.data() + c->off, static_cast<int>(len));
      if (n <= 0) {
        int e = SSL_get_error(c->ssl, n);
        if (e == SSL_ERROR_WANT_WRITE || e == SSL_ERROR_WANT_READ) {
          want_write(c, true);
          return true;
        }
        drop(c);
        return false;
      }
      c->off += static_cast<std::size_t>(n);
    } else {
      ssize_t n = ::send(c->fd, buf.data() + c->off, len, MSG_NOSIGNAL);
      if (n < 0) {
        if (errno == EINTR) continue;
        if (errno == EAGAIN) {
          want_write(c, true);
          return true;
        }
        drop(c);
        return false;
      }
      c->off += static_cast<std::size_t>(n);
    }
  }
  want_write(c, false);
  if (c->finished) {
    if (c->ssl) SSL_shutdown(c->ssl);
    ::shutdown(c->fd, SHUT_WR);
    c->mode = Conn::None;  // wait for the client to close
    c->finished = false;
  }
  return true;
}

void Server::start_response(Conn *c) {
  std::size_t sp = c->req.find(' ');
  std::string path = c->req.substr(sp + 1, c->req.find(' ', sp + 1) - sp - 1);
  c->chunked = query(path, "framing", "chunked") != "close";
  std::string route = path.substr(0, path.find('?'));
  if (route == "/stream" || route == "/line") {
    std::string key = path;
    auto it = cache_.find(key);
    if (it == cache_.end()) {
      std::string body;
      if (route == "/stream") {
        std::size_t n = std::strtoull(query(path, "n", "1000").c_str(), nullptr, 10);
        for (std::size_t i = 0; i < n; ++i) body += openai_event(i);
      } else {
        std::size_t bytes = std::strtoull(query(path, "mb", "16").c_str(), nullptr, 10) << 20;
        if (query(path, "kind", "line") == "line") {
          body = "data: " + std::string(bytes, 'z') + "\n\n";
        } else {
          while (body.size() < bytes) body += "data: x\n\n";
        }
      }
      body += kDone;
      auto all = std::make_shared<std::string>(head(c->chunked) + frame(body, c->chunked));
      it = cache_.emplace(key, std::move(all)).first;
    }
    c->shared = it->second;
    c->off = 0;
    c->mode = Conn::Bulk;
    c->finished = true;
  } else if (route == "/paced" || route == "/latency") {
    c->mode = route == "/paced" ? Conn::Paced : Conn::Latency;
    c->left = std::strtoull(query(path, "n", "100").c_str(), nullptr, 10);
    c->interval_ns = std::strtoull(query(path, "us", "1000").c_str(), nullptr, 10) * 1000u;
    c->due = mono_ns() + c->interval_ns;
    c->own = head(c->chunked);
  } else if (route == "/idle") {
    c->mode = Conn::Idle;
    c->own = head(c->chunked);
  } else {
    c->own = "HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\nConnection: close\r\n\r\n";
    c->finished = true;
  }
  flush(c);
}

bool Server::do_read(Conn *c) {
  char buf[4096];
  for (;;) {
    int n;
    if (c->ssl) {
      if (!c->handshaken) {
        int r = SSL_accept(c->ssl);
        if (r != 1) {
          int e = SSL_get_error(c->ssl, r);
          if (e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE) {
            want_write(c, e == SSL_ERROR_WANT_WRITE);
            return true;
          }
          drop(c);
          return false;
        }
        c->handshaken = true;
      }
      n = SSL_read(c->ssl, buf, sizeof buf);
      if (n <= 0) {
        int e = SSL_get_error(c->ssl, n);
        if (e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE) return true;
        drop(c);
        return false;
      }
    } else {
      ssize_t r = ::recv(c->fd, buf, sizeof buf, 0);
      if (r < 0 && errno == EINTR) continue;
      if (r < 0 && errno == EAGAIN) return true;
      if (r <= 0) {
        drop(c);
        return false;
      }
      n = static_cast<int>(r);
    }
    if (c->have_req) continue;  // anything after the request is ignored
    c->req.append(buf, static_cast<std::size_t>(n));
    if (c->req.find("\r\n\r\n") != std::string::npos) {
      c->have_req = true;
      int fd = c->fd;
      start_response(c);  // may drop c
      if (conns_.find(fd) == conns_.end()) return false;
    }
  }
}

void Server::on_event(Conn *c, uint32_t ev) {
  if (ev & (EPOLLIN | EPOLLHUP | EPOLLERR)) {
    if (!do_read(c)) return;
  }
  if (ev & EPOLLOUT) {
    if (c->ssl && !c->handshaken) {
      do_read(c);
      return;
    }
    flush(c);
  }
}

void Server::accept_all() {
  for (;;) {
    int fd = ::accept4(lfd_, nullptr, nullptr, SOCK_NONBLOCK | SOCK_CLOEXEC);
    if (fd < 0) return;
    int one = 1;
    ::setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    auto c = std::make_unique<Conn>();
    c->fd = fd;
    if (ctx_) {
      c->ssl = SSL_new(ctx_);
      SSL_set_fd(c->ssl, fd);
      SSL_set_mode(c->ssl, SSL_MODE_ENABLE_PARTIAL_WRITE | SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER |
                               SSL_MODE_RELEASE_BUFFERS);
    }
    epoll_event e{};
    e.events = EPOLLIN;
    e.data.fd = fd;
    epoll_ctl(ep_, EPOLL_CTL_ADD, fd, &e);
    conns_[fd] = std::move(c);
  }
}

// Paced connections: write every event that is due.
void Server::tick() {
  uint64_t now = mono_ns();
  std::vector<Conn *> due;
  for (auto &kv : conns_) {
    Conn *c = kv.second.get();
    if ((c->mode == Conn::Paced || c->mode == Conn::Latency) && c->due <= now) due.push_back(c);
  }
  for (Conn *c : due) {
    std::string ev;
    if (c->left == 0) {
      ev = kDone;
      c->finished = true;
    } else if (c->mode == Conn::Paced) {
      ev = openai_event(c->index);
    } else {
      char buf[96];
      int n = std::snprintf(buf, sizeof buf, "data: {\"t\":%llu,\"i\":%zu}\n\n",
                            static_cast<unsigned long long>(mono_ns()), c->index);
      ev.assign(buf, static_cast<std::size_t>(n));
    }
    if (c->left > 0) --c->left;
    ++c->index;
    c->due += c->interval_ns;
    if (c->due < now) c->due = now;  // fell behind: do not burst to catch up
    queue(c, c->chunked ? chunk(ev) + (c->finished ? "0\r\n\r\n" : "") : ev);
    if (c->finished) c->mode = Conn::Bulk;
    flush(c);
  }
}

int Server::run() {
  lfd_ = ::socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  int one = 1;
  ::setsockopt(lfd_, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (::bind(lfd_, reinterpret_cast<sockaddr *>(&a), sizeof a) != 0 || ::listen(lfd_, 4096) != 0) {
    std::perror("bind/listen");
    return 1;
  }
  socklen_t len = sizeof a;
  ::getsockname(lfd_, reinterpret_cast<sockaddr *>(&a), &len);
  std::printf("PORT %u\n", ntohs(a.sin_port));
  std::fflush(stdout);
  ep_ = epoll_create1(EPOLL_CLOEXEC);
  epoll_event e{};
  e.events = EPOLLIN;
  e.data.fd = lfd_;
  epoll_ctl(ep_, EPOLL_CTL_ADD, lfd_, &e);
  std::vector<epoll_event> evs(1024);
  while (!g_stop) {
    // Sleep until the next paced event is due (epoll_pwait2: a nanosecond timeout).
    uint64_t next = UINT64_MAX, now = mono_ns();
    for (auto &kv : conns_) {
      Conn *c = kv.second.get();
      if ((c->mode == Conn::Paced || c->mode == Conn::Latency) && c->due < next) next = c->due;
    }
    uint64_t wait_ns = 200000000u;
    if (next != UINT64_MAX) wait_ns = next <= now ? 0 : next - now;
    timespec ts{static_cast<time_t>(wait_ns / 1000000000u),
                static_cast<long>(wait_ns % 1000000000u)};
    int n = epoll_pwait2(ep_, evs.data(), static_cast<int>(evs.size()), &ts, nullptr);
    for (int i = 0; i < n; ++i) {
      if (evs[i].data.fd == lfd_) {
        accept_all();
        continue;
      }
      auto it = conns_.find(evs[i].data.fd);
      if (it != conns_.end()) on_event(it->second.get(), evs[i].events);
    }
    if (next != UINT64_MAX) tick();
  }
  return 0;
}

int fetch(int argc, char **argv) {
  if (argc < 4) return 2;
  bool out = argc > 4 && !std::strcmp(argv[4], "--out");
  // --latency: the floor for e2e_latency.lua: each `"t":<ns>` stamp is compared with
  // CLOCK_MONOTONIC as soon as recv() returns it (no parsing, no Lua).
  bool latency = argc > 4 && !std::strcmp(argv[4], "--latency");
  std::vector<double> lat;
  std::string carry;
  int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_port = htons(static_cast<uint16_t>(std::atoi(argv[2])));
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  uint64_t t0 = mono_ns();
  if (::connect(fd, reinterpret_cast<sockaddr *>(&a), sizeof a) != 0) {
    std::perror("connect");
    return 1;
  }
  std::string req = std::string("GET ") + argv[3] + " HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n";
  if (::send(fd, req.data(), req.size(), 0) < 0) return 1;
  std::vector<char> buf(1 << 16);
  std::string headbuf;
  bool in_body = false;
  std::size_t body = 0;
  for (;;) {
    ssize_t n = ::recv(fd, buf.data(), buf.size(), 0);
    if (n <= 0) break;
    const char *p = buf.data();
    std::size_t len = static_cast<std::size_t>(n);
    if (!in_body) {
      headbuf.append(p, len);
      std::size_t end = headbuf.find("\r\n\r\n");
      if (end == std::string::npos) continue;
      in_body = true;
      std::size_t skip = len - (headbuf.size() - end - 4);
      p += skip;
      len -= skip;
    }
    body += len;
    if (latency && len > 0) {
      uint64_t now = mono_ns();
      carry.append(p, len);
      std::size_t pos = 0, t;
      while ((t = carry.find("\"t\":", pos)) != std::string::npos) {
        std::size_t end = carry.find(',', t);
        if (end == std::string::npos) break;
        uint64_t stamp = std::strtoull(carry.c_str() + t + 4, nullptr, 10);
        lat.push_back(static_cast<double>(now - stamp) / 1e3);
        pos = end;
      }
      carry.erase(0, pos);
    }
    if (out && len > 0 && std::fwrite(p, 1, len, stdout) != len) return 1;
  }
  std::fflush(stdout);
  if (latency && !lat.empty()) {
    std::sort(lat.begin(), lat.end());
    auto pct = [&](double q) {
      std::size_t i = static_cast<std::size_t>(std::ceil(static_cast<double>(lat.size()) * q));
      return lat[i == 0 ? 0 : i - 1];
    };
    std::printf("events=%zu p50_us=%.1f p90_us=%.1f p99_us=%.1f max_us=%.1f min_us=%.1f\n",
                lat.size(), pct(0.5), pct(0.9), pct(0.99), lat.back(), lat.front());
  }
  rusage ru{};
  getrusage(RUSAGE_SELF, &ru);
  double cpu = static_cast<double>(ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) +
               static_cast<double>(ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) / 1e6;
  std::fprintf(stderr, "%zu %.6f %.6f\n", body, static_cast<double>(mono_ns() - t0) / 1e9, cpu);
  return 0;
}

}  // namespace

int main(int argc, char **argv) {
  if (argc >= 2 && !std::strcmp(argv[1], "fetch")) return fetch(argc, argv);
  if (argc < 2 || std::strcmp(argv[1], "serve") != 0) {
    std::fprintf(stderr, "usage: %s serve [--tls CERT KEY] | fetch PORT PATH [--out]\n", argv[0]);
    return 2;
  }
  rlimit rl{};
  if (getrlimit(RLIMIT_NOFILE, &rl) == 0) {
    rl.rlim_cur = rl.rlim_max;
    setrlimit(RLIMIT_NOFILE, &rl);
  }
  ::signal(SIGPIPE, SIG_IGN);
  ::signal(SIGTERM, on_signal);
  ::signal(SIGINT, on_signal);
  SSL_CTX *ctx = nullptr;
  if (argc >= 5 && !std::strcmp(argv[2], "--tls")) {
    ctx = SSL_CTX_new(TLS_server_method());
    if (!ctx || SSL_CTX_use_certificate_chain_file(ctx, argv[3]) != 1 ||
        SSL_CTX_use_PrivateKey_file(ctx, argv[4], SSL_FILETYPE_PEM) != 1) {
      ERR_print_errors_fp(stderr);
      return 1;
    }
  }
  Server s(ctx);
  int rc = s.run();
  if (ctx) SSL_CTX_free(ctx);
  return rc;
}

#include "http/session.hpp"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstring>

namespace levhttp::http {

namespace {

constexpr int kRead = 1, kWrite = 2;  // LEV_READ / LEV_WRITE (the core has no Lua headers)

// Reads start at kFirstRead bytes and grow to kReadChunk once a read fills the buffer; a
// stream that waits for data goes back to kFirstRead. So an idle stream holds 4 KiB, not 64
// (10,000 idle streams: 40 MB instead of 650), and a busy one still reads 64 KiB at a time.
constexpr std::size_t kFirstRead = 4096;

std::string seconds(double s) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%g s", s);
  return buf;
}

bool iequals(std::string_view a, std::string_view b) {
  if (a.size() != b.size()) return false;
  for (std::size_t i = 0; i < a.size(); ++i) {
    char x = a[i], y = b[i];
    if (x >= 'A' && x <= 'Z') x = static_cast<char>(x - 'A' + 'a');
    if (y >= 'A' && y <= 'Z') y = static_cast<char>(y - 'A' + 'a');
    if (x != y) return false;
  }
  return true;
}

std::string_view trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
  return s;
}

}  // namespace

const char *kind_name(ErrorKind kind) {
  switch (kind) {
    case ErrorKind::None:
      return "";
    case ErrorKind::Dns:
      return "dns";
    case ErrorKind::Connect:
      return "connect";
    case ErrorKind::Tls:
      return "tls";
    case ErrorKind::Timeout:
      return "timeout";
    case ErrorKind::Idle:
      return "idle";
    case ErrorKind::Http:
      return "http";
    case ErrorKind::ContentType:
      return "content_type";
    case ErrorKind::TooLarge:
      return "too_large";
    case ErrorKind::Protocol:
      return "protocol";
    case ErrorKind::Closed:
      return "closed";
  }
  return "";
}

bool is_done_marker(std::string_view data) {
  return data == "[DONE]";
}

bool is_lifecycle_name(std::string_view t) {
  return t == "connect" || t == "open" || t == "message" || t == "close" || t == "done";
}

bool is_event_stream(std::string_view ct) {
  // Repeated Content-Type fields arrive joined with ", "; any one naming the type will do.
  while (!ct.empty()) {
    std::size_t comma = ct.find(',');
    std::string_view item = ct.substr(0, comma);
    std::string_view type = trim(item.substr(0, item.find(';')));
    if (iequals(type, "text/event-stream")) return true;
    if (comma == std::string_view::npos) break;
    ct.remove_prefix(comma + 1);
  }
  return false;
}

Session::Session(std::size_t max_event_size) : parser_(max_event_size) {}

Session::~Session() {
  abandon();
}

void Session::push(Kind k) {
  pending_[static_cast<std::size_t>(npending_++)] = k;
}

void Session::start(double now) {
  close_connection();
  npending_ = 0;
  draining_ = false;
  parser_stopped_ = false;
  connected_ = false;
  resolve_requested_ = false;
  failure_ = Failure{};
  parser_.reset();
  request_.last_event_id = std::string(parser_.last_event_id());
  reader_ = std::make_unique<ResponseReader>([this](std::string_view b) { on_body(b); });
  addrs_.clear();
  next_addr_ = 0;
  sent_ = 0;
  send_error_.clear();
  in_pos_ = in_len_ = 0;
  error_body_.clear();
  error_body_full_ = false;
  connect_deadline_ = now + options_.connect_timeout;
  request_bytes_ = build(request_);

  // IP literals need no resolver.
  sockaddr_storage ss{};
  auto *v4 = reinterpret_cast<sockaddr_in *>(&ss);
  auto *v6 = reinterpret_cast<sockaddr_in6 *>(&ss);
  const std::string &h = request_.url.host;
  if (::inet_pton(AF_INET, h.c_str(), &v4->sin_addr) == 1) {
    v4->sin_family = AF_INET;
    v4->sin_port = htons(request_.url.port);
    addrs_.push_back(ss);
    phase_ = Phase::Connecting;
  } else if (::inet_pton(AF_INET6, h.c_str(), &v6->sin6_addr) == 1) {
    v6->sin6_family = AF_INET6;
    v6->sin6_port = htons(request_.url.port);
    addrs_.push_back(ss);
    phase_ = Phase::Connecting;
  } else {
    phase_ = Phase::Resolving;
  }
}

void Session::on_resolved(const sockaddr_storage *addrs, std::size_t n) {
  if (phase_ != Phase::Resolving) return;
  addrs_.assign(addrs, addrs + n);
  for (auto &a : addrs_) {
    // The resolver was asked for a numeric service, but set the port anyway.
    if (a.ss_family == AF_INET)
      reinterpret_cast<sockaddr_in *>(&a)->sin_port = htons(request_.url.port);
    if (a.ss_family == AF_INET6)
      reinterpret_cast<sockaddr_in6 *>(&a)->sin6_port = htons(request_.url.port);
  }
  phase_ = addrs_.empty() ? phase_ : Phase::Connecting;
  if (addrs_.empty()) fail(ErrorKind::Dns, "dns: no address for '" + request_.url.host + "'");
}

void Session::on_resolve_failed(std::string_view message) {
  if (phase_ != Phase::Resolving) return;
  fail(ErrorKind::Dns, "dns: cannot resolve '" + request_.url.host + "': " + std::string(message));
}

void Session::on_resolve_timeout() {
  if (phase_ != Phase::Resolving) return;
  fail(ErrorKind::Timeout, "timeout: resolving '" + request_.url.host +
                               "' took longer than connect_timeout (" +
                               seconds(options_.connect_timeout) + ")");
}

void Session::close_connection() {
  if (transport_) {
    if (hook_) hook_(hook_ctx_, transport_->fd());
    transport_.reset();
  }
  if (connecting_fd_ >= 0) {
    if (hook_) hook_(hook_ctx_, connecting_fd_);
    ::close(connecting_fd_);
    connecting_fd_ = -1;
  }
}

void Session::fail(ErrorKind kind, std::string message, int status) {
  if (draining_ || phase_ == Phase::Ended) return;
  failure_.kind = kind;
  failure_.message = std::move(message);
  failure_.status = status;
  close_connection();
  draining_ = true;
}

void Session::end_of_body() {
  // "The end of the response body ends the connection": a clean end, no failure.
  close_connection();
  draining_ = true;
}

void Session::close() {
  if (phase_ == Phase::Idle) return;
  close_connection();
  draining_ = false;
  npending_ = 0;
  failure_ = Failure{};
  if (connected_) {
    connected_ = false;
    push(Kind::Closed);
  }
  push(Kind::Ended);
  phase_ = Phase::Ended;
}

void Session::abandon() {
  close_connection();
  npending_ = 0;
  draining_ = false;
  connected_ = false;
  phase_ = phase_ == Phase::Idle ? Phase::Idle : Phase::Ended;
}

Session::Output Session::wait(int events, double deadline) {
  Output o{Kind::Wait};
  o.fd = transport_ ? transport_->fd() : connecting_fd_;
  o.events = events;
  o.deadline = deadline;
  return o;
}

Session::Output Session::step(double now, bool allow_read) {
  for (;;) {
    if (npending_ > 0) {
      Kind k = pending_[0];
      std::copy(pending_.begin() + 1, pending_.begin() + npending_, pending_.begin());
      --npending_;
      if (k == Kind::Closed) connected_ = false;
      return Output{k};
    }
    if ((phase_ == Phase::Streaming) && !parser_stopped_) {
      switch (parser_.next(event_)) {
        case sse::Parser::Result::Event:
          if (is_done_marker(event_.data)) {
            // "[DONE]": the stream is over; the caller runs done(), then close().
            close_connection();
            draining_ = false;
            if (connected_) push(Kind::Closed);
            push(Kind::Ended);
            phase_ = Phase::Ended;
            return Output{Kind::Done};
          }
          return Output{Kind::Event};
        case sse::Parser::Result::TooLarge:
          parser_stopped_ = true;
          fail(ErrorKind::TooLarge, "too_large: an SSE line or event exceeds max_event_size (" +
                                        std::to_string(parser_.max_event_size()) + " bytes)");
          continue;
        case sse::Parser::Result::NeedMore:
          break;
      }
    }
    if (draining_) {
      draining_ = false;
      if (failure_.kind != ErrorKind::None) push(Kind::Failed);
      if (connected_) push(Kind::Closed);
      push(Kind::Ended);
      phase_ = Phase::Ended;
      continue;
    }
    switch (phase_) {
      case Phase::Idle:
      case Phase::Ended:
        return Output{Kind::Ended};
      case Phase::Resolving: {
        if (resolve_requested_) {
          // The caller must answer the resolution before stepping again.
          fail(ErrorKind::Dns, "dns: resolution of '" + request_.url.host + "' was abandoned");
          continue;
        }
        resolve_requested_ = true;
        Output o{Kind::NeedResolve};
        o.deadline = connect_deadline_;
        return o;
      }
      case Phase::Connecting: {
        if (auto o = step_connect(now)) return *o;
        continue;
      }
      case Phase::Handshaking: {
        if (auto o = step_handshake(now)) return *o;
        continue;
      }
      case Phase::Sending: {
        if (auto o = step_send(now)) return *o;
        continue;
      }
      case Phase::ReadingHead:
      case Phase::ReadingErrorBody:
      case Phase::Streaming: {
        if (auto o = step_read(now, allow_read)) return *o;
        continue;
      }
    }
  }
}

std::optional<Session::Output> Session::step_connect(double now) {
  for (;;) {
    if (connecting_fd_ >= 0) {
      int err = finish_connect(connecting_fd_);
      if (err == 0) {
        sockaddr_storage peer{};
        socklen_t len = sizeof peer;
        if (::getpeername(connecting_fd_, reinterpret_cast<sockaddr *>(&peer), &len) == 0) {
          if (!request_.url.tls) {
            transport_ = std::make_unique<TcpTransport>(connecting_fd_);
            connecting_fd_ = -1;
            connected_ = true;
            phase_ = Phase::Sending;
            send_deadline_ = now + options_.send_timeout;
            return Output{Kind::Connected};
          }
          std::string err;
          auto ctx = tls_context(options_.tls, err);
          if (!ctx) {
            fail(ErrorKind::Tls, std::move(err));
            return std::nullopt;
          }
          auto tls =
              std::make_unique<TlsTransport>(connecting_fd_, std::move(ctx), request_.url.host,
                                             request_.url.host_is_ip, !options_.tls.no_verify);
          connecting_fd_ = -1;  // the transport owns it now, even if it failed
          bool ok = tls->ok();
          transport_ = std::move(tls);
          if (!ok) {
            fail(ErrorKind::Tls, transport_->error());
            return std::nullopt;
          }
          phase_ = Phase::Handshaking;
          return std::nullopt;
        }
        if (errno != ENOTCONN) err = errno;
      }
      if (err == 0) {
        // Still in progress.
        if (now < attempt_deadline_) return wait(kWrite, attempt_deadline_);
        last_connect_error_ = format_address(addrs_[next_addr_ - 1]) + ": no answer";
      } else {
        last_connect_error_ = format_address(addrs_[next_addr_ - 1]) + ": " + std::strerror(err);
      }
      if (hook_) hook_(hook_ctx_, connecting_fd_);
      ::close(connecting_fd_);
      connecting_fd_ = -1;
    }
    if (now >= connect_deadline_) {
      fail(ErrorKind::Timeout, "timeout: connecting to " + request_.url.host_header() +
                                   " took longer than connect_timeout (" +
                                   seconds(options_.connect_timeout) + ")" +
                                   (last_connect_error_.empty() ? "" : "; " + last_connect_error_));
      return std::nullopt;
    }
    if (next_addr_ >= addrs_.size()) {
      fail(ErrorKind::Connect, "connect: " + last_connect_error_);
      return std::nullopt;
    }
    const sockaddr_storage &addr = addrs_[next_addr_++];
    bool in_progress = false;
    std::string err;
    int fd = start_connect(addr, in_progress, err);
    if (fd < 0) {
      last_connect_error_ = format_address(addr) + ": " + err;
      continue;
    }
    connecting_fd_ = fd;
    // Each remaining address gets an equal share of the time left, so one address that
    // never answers cannot use up the whole connect_timeout.
    std::size_t left = addrs_.size() - next_addr_ + 1;
    attempt_deadline_ = now + (connect_deadline_ - now) / static_cast<double>(left);
    if (in_progress) return wait(kWrite, attempt_deadline_);
  }
}

std::optional<Session::Output> Session::step_handshake(double now) {
  IoResult r = transport_->handshake();
  switch (r.status) {
    case IoResult::Ok:
      connected_ = true;
      phase_ = Phase::Sending;
      send_deadline_ = now + options_.send_timeout;
      return Output{Kind::Connected};
    case IoResult::WantRead:
    case IoResult::WantWrite:
      if (now >= connect_deadline_) {
        fail(ErrorKind::Timeout, "timeout: the TLS handshake with " + request_.url.host_header() +
                                     " did not finish within connect_timeout (" +
                                     seconds(options_.connect_timeout) + ")");
        return std::nullopt;
      }
      return wait(r.status == IoResult::WantRead ? kRead : kWrite, connect_deadline_);
    case IoResult::Eof:
      fail(ErrorKind::Tls, "tls: the server closed the connection during the handshake");
      return std::nullopt;
    case IoResult::Error:
      fail(ErrorKind::Tls, transport_->error());
      return std::nullopt;
  }
  return std::nullopt;
}

std::optional<Session::Output> Session::step_send(double now) {
  while (sent_ < request_bytes_.size()) {
    IoResult r = transport_->write(request_bytes_.data() + sent_, request_bytes_.size() - sent_);
    switch (r.status) {
      case IoResult::Ok:
        sent_ += r.n;
        continue;
      case IoResult::WantWrite:
      case IoResult::WantRead:
        if (now >= send_deadline_) {
          fail(ErrorKind::Timeout, "timeout: sending the request took longer than send_timeout (" +
                                       seconds(options_.send_timeout) + ")");
          return std::nullopt;
        }
        return wait(r.status == IoResult::WantWrite ? kWrite : kRead, send_deadline_);
      case IoResult::Eof:
      case IoResult::Error:
        if (transport_->tls_failure()) {
          fail(ErrorKind::Tls, transport_->error());
          return std::nullopt;
        }
        // The server may have answered early and closed (a 401 or 413 before the whole body,
        // a TLS alert): read what it sent before reporting the broken send, as curl does.
        send_error_ = "closed: the connection broke while sending the request (" +
                      transport_->error() + ")";
        sent_ = request_bytes_.size();
        break;
    }
  }
  request_bytes_.clear();
  request_bytes_.shrink_to_fit();
  phase_ = Phase::ReadingHead;
  head_deadline_ = now + options_.headers_timeout;
  if (inbuf_.empty()) inbuf_.resize(kFirstRead);
  return std::nullopt;  // the request is out: step() goes on reading
}

double Session::read_deadline() const {
  if (phase_ != Phase::Streaming) return head_deadline_;
  return options_.has_idle_timeout ? last_byte_ + options_.idle_timeout : kNoDeadline;
}

std::optional<Session::Output> Session::step_read(double now, bool allow_read) {
  if (in_pos_ < in_len_) {
    feed_reader();
    return std::nullopt;
  }
  if (!allow_read && phase_ == Phase::Streaming) return Output{Kind::WouldRead};
  // Everything read has been consumed here: the buffer may be resized freely.
  if (in_len_ == inbuf_.size() && inbuf_.size() < kReadChunk) inbuf_.resize(kReadChunk);
  IoResult r = transport_->read(inbuf_.data(), inbuf_.size());
  switch (r.status) {
    case IoResult::Ok:
      in_pos_ = 0;
      in_len_ = r.n;
      last_byte_ = now;
      feed_reader();
      return std::nullopt;
    case IoResult::WantRead:
    case IoResult::WantWrite: {
      double deadline = read_deadline();
      if (now >= deadline) {
        if (phase_ == Phase::Streaming) {
          fail(ErrorKind::Idle, "idle: no data from the server for " +
                                    seconds(options_.idle_timeout) + " (idle_timeout)");
        } else if (phase_ == Phase::ReadingErrorBody) {
          finish_error_body();
        } else {
          fail(ErrorKind::Timeout, "timeout: no response head within headers_timeout (" +
                                       seconds(options_.headers_timeout) + ")");
        }
        return std::nullopt;
      }
      if (inbuf_.size() > kFirstRead) {
        std::vector<char>(kFirstRead).swap(inbuf_);  // going idle: give the big buffer back
        in_pos_ = in_len_ = 0;
      }
      return wait(r.status == IoResult::WantRead ? kRead : kWrite, deadline);
    }
    case IoResult::Eof: {
      ResponseReader::State st = reader_->finish();
      if (phase_ == Phase::ReadingErrorBody) {
        finish_error_body();
      } else if (st == ResponseReader::State::Done) {
        if (phase_ == Phase::ReadingHead) on_head();  // cannot happen: a head precedes Done
        end_of_body();
      } else if (!send_error_.empty() && phase_ == Phase::ReadingHead) {
        fail(ErrorKind::Closed, send_error_);
      } else {
        fail(ErrorKind::Closed, "closed: " + reader_->error());
      }
      return std::nullopt;
    }
    case IoResult::Error:
      if (phase_ == Phase::ReadingErrorBody) {
        finish_error_body();
      } else if (transport_->tls_failure()) {
        fail(ErrorKind::Tls, transport_->error());
      } else if (!send_error_.empty() && phase_ == Phase::ReadingHead) {
        fail(ErrorKind::Closed, send_error_);
      } else {
        fail(ErrorKind::Closed,
             "closed: the connection broke " +
                 std::string(phase_ == Phase::Streaming ? "in the middle of the stream"
                                                        : "before the response head") +
                 " (" + transport_->error() + ")");
      }
      return std::nullopt;
  }
  return std::nullopt;
}

void Session::feed_reader() {
  while (in_pos_ < in_len_ && !draining_) {
    std::size_t n = reader_->feed(std::string_view(inbuf_.data() + in_pos_, in_len_ - in_pos_));
    in_pos_ += n;
    if (phase_ == Phase::ReadingErrorBody && error_body_full_) {
      // 64 KiB of an error body is enough to say what went wrong; stop reading.
      finish_error_body();
      in_pos_ = in_len_;
      return;
    }
    switch (reader_->state()) {
      case ResponseReader::State::Head:
        break;
      case ResponseReader::State::Body:
        if (phase_ == Phase::ReadingHead) {
          on_head();
          // Let the caller see the head (Open) before any event of the body.
          if (npending_ > 0) return;
        }
        break;
      case ResponseReader::State::Done:
        if (phase_ == Phase::ReadingHead) on_head();
        if (phase_ == Phase::ReadingErrorBody) {
          finish_error_body();
        } else if (!draining_) {
          end_of_body();
        }
        in_pos_ = in_len_;  // bytes after the end of the message are ignored
        return;
      case ResponseReader::State::Error:
        if (phase_ == Phase::ReadingErrorBody) {
          finish_error_body();
        } else {
          bool limit = reader_->error_is_limit();
          fail(limit ? ErrorKind::TooLarge : ErrorKind::Protocol,
               std::string(limit ? "too_large: " : "protocol: ") + reader_->error());
        }
        in_pos_ = in_len_;
        return;
    }
    if (n == 0 && reader_->state() == ResponseReader::State::Head) break;
  }
}

void Session::on_head() {
  const ResponseHead &h = reader_->head();
  if (h.status < 200 || h.status > 299) {
    phase_ = Phase::ReadingErrorBody;
    head_deadline_ = last_byte_ + options_.headers_timeout;
    return;
  }
  const std::string *ct = h.find("content-type");
  if (ct && !is_event_stream(*ct)) {
    fail(ErrorKind::ContentType,
         "content_type: expected text/event-stream, got '" + ct->substr(0, 200) + "'");
    return;
  }
  phase_ = Phase::Streaming;
  push(Kind::Open);
}

void Session::on_body(std::string_view bytes) {
  if (phase_ == Phase::Streaming) {
    parser_.feed(bytes);
  } else if (phase_ == Phase::ReadingErrorBody && !error_body_full_) {
    std::size_t room = kMaxErrorBody - error_body_.size();
    error_body_.append(bytes.substr(0, room));
    if (error_body_.size() >= kMaxErrorBody) error_body_full_ = true;
  }
}

void Session::finish_error_body() {
  const ResponseHead &h = reader_->head();
  std::string msg = "HTTP " + std::to_string(h.status);
  if (!error_body_.empty()) {
    msg += ": " + error_body_;
  } else if (!h.reason.empty()) {
    msg += " " + h.reason;
  }
  fail(ErrorKind::Http, std::move(msg), h.status);
}

}  // namespace levhttp::http

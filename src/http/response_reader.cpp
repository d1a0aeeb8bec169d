// http/response_reader.cpp: ResponseReader on llhttp 8.1 (contract in response_reader.hpp).
//
// How llhttp is driven:
// - HTTP_RESPONSE mode, no lenient flag: llhttp itself rejects Content-Length together with
//   Transfer-Encoding, bad or duplicate Content-Length values, chunk-size overflow, bare CR,
//   NUL and obs-fold in the head, garbage status lines and HTTP/0.9 replies.
// - Each 1xx (except 101) is a complete message to llhttp: on_message_complete pauses, feed()
//   resets the parser and goes on with the next bytes as a new response (a reset, not a plain
//   continue, so an HTTP/1.0 or "Connection: close" 1xx does not make llhttp refuse what
//   follows). 101 is an error: this client never asks for an upgrade.
// - on_headers_complete pauses when a body follows, so feed() returns right after the head and
//   the caller sees it before any body byte; on_message_complete pauses so bytes after the
//   message are never consumed. In both cases llhttp_get_error_pos() tells how much of the
//   input was used.
// - Limits: the head (status line + fields + blank line) of each response is at most
//   kMaxHeadBytes: in the Head state at most the remaining allowance is handed to llhttp, so
//   the check is exact whatever the split. Header fields are counted (kMaxHeaders); trailer
//   fields after the last chunk are parsed, ignored and capped the same way; chunk extensions
//   are capped at kMaxChunkExtension bytes per chunk header. Trailers and extensions are
//   never stored, so they are checked when each one is complete: the result (including which
//   error wins) is then the same however the input is split.
// - Responses to HEAD (expect_no_body) and 1xx/204/304 responses have no body whatever their
//   framing headers say (RFC 9112 6.3): F_SKIPBODY is set in on_headers_complete.
#include "http/response_reader.hpp"

#include <algorithm>

namespace levhttp::http {
namespace {

constexpr std::size_t kMaxChunkExtension = 4 * 1024;

char to_lower(char c) {
  return (c >= 'A' && c <= 'Z') ? static_cast<char>(c - 'A' + 'a') : c;
}

ResponseReader *self(llhttp_t *p) {
  return static_cast<ResponseReader *>(p->data);
}

}  // namespace

const std::string *ResponseHead::find(std::string_view lower_name) const {
  for (const auto &h : headers)
    if (h.first == lower_name) return &h.second;
  return nullptr;
}

ResponseReader::ResponseReader(BodySink sink, bool expect_no_body)
    : sink_(std::move(sink)), expect_no_body_(expect_no_body) {
  llhttp_settings_init(&settings_);
  settings_.on_message_begin = &ResponseReader::on_message_begin;
  settings_.on_status = &ResponseReader::on_status;
  settings_.on_header_field = &ResponseReader::on_header_field;
  settings_.on_header_value = &ResponseReader::on_header_value;
  settings_.on_header_field_complete = &ResponseReader::on_header_field_complete;
  settings_.on_header_value_complete = &ResponseReader::on_header_value_complete;
  settings_.on_headers_complete = &ResponseReader::on_headers_complete;
  settings_.on_body = &ResponseReader::on_body;
  settings_.on_message_complete = &ResponseReader::on_message_complete;
  settings_.on_chunk_header = &ResponseReader::on_chunk_header;
  settings_.on_chunk_extension_name = &ResponseReader::on_chunk_extension;
  settings_.on_chunk_extension_value = &ResponseReader::on_chunk_extension;
  settings_.on_chunk_extension_name_complete = &ResponseReader::on_chunk_extension_complete;
  settings_.on_chunk_extension_value_complete = &ResponseReader::on_chunk_extension_complete;
  llhttp_init(&parser_, HTTP_RESPONSE, &settings_);
  parser_.data = this;
}

ResponseReader::~ResponseReader() = default;

ResponseReader::State ResponseReader::state() const {
  return state_;
}
const ResponseHead &ResponseReader::head() const {
  return head_;
}
const std::string &ResponseReader::error() const {
  return error_;
}
bool ResponseReader::body_until_close() const {
  return until_close_;
}

int ResponseReader::fail(std::string message, bool limit) {
  if (state_ != State::Error) {
    state_ = State::Error;
    error_ = std::move(message);
    limit_error_ = limit;
  }
  return HPE_USER;
}

void ResponseReader::fail_from_parser(llhttp_errno_t err) {
  if (state_ == State::Error) return;  // a callback already said why
  const char *reason = llhttp_get_error_reason(&parser_);
  std::string why = reason && *reason ? reason : llhttp_errno_name(err);
  fail("malformed HTTP response: " + why);
}

void ResponseReader::start_message() {
  head_ = ResponseHead{};
  fields_ = 0;
  in_value_ = false;
  name_has_space_ = false;
  folded_ = false;
  name_.clear();
  value_.clear();
}

void ResponseReader::commit_field() {
  if (state_ == State::Head) {
    for (char &c : name_) c = to_lower(c);
    // RFC 9110 5.5: the field value excludes leading and trailing whitespace.
    std::size_t end = value_.size();
    while (end > 0 && (value_[end - 1] == ' ' || value_[end - 1] == '\t')) --end;
    std::size_t begin = 0;
    while (begin < end && (value_[begin] == ' ' || value_[begin] == '\t')) ++begin;
    std::string_view value(value_.data() + begin, end - begin);
    bool joined = false;
    for (auto &h : head_.headers) {
      if (h.first == name_) {
        h.second += ", ";
        h.second += value;
        joined = true;
        break;
      }
    }
    if (!joined) head_.headers.emplace_back(name_, std::string(value));
  }  // else a trailer field: parsed, counted, ignored
  name_.clear();
  value_.clear();
  in_value_ = false;
  name_has_space_ = false;
  folded_ = false;
}

int ResponseReader::on_message_begin(llhttp_t *p) {
  self(p)->start_message();
  return 0;
}

int ResponseReader::on_status(llhttp_t *p, const char *at, std::size_t len) {
  self(p)->head_.reason.append(at, len);
  return 0;
}

// Span callbacks only record; every check of ours runs in a *_complete callback, whose
// position in the stream does not depend on how the bytes were split into feeds (a span is
// also reported at the end of each llhttp_execute, so a check there could fire before an
// llhttp error on one split and not on another).
int ResponseReader::on_header_field(llhttp_t *p, const char *at, std::size_t len) {
  ResponseReader *r = self(p);
  for (std::size_t i = 0; i < len; ++i)
    if (at[i] == ' ' || at[i] == '\t') r->name_has_space_ = true;
  if (r->state_ == State::Head) {
    r->name_.append(at, len);
  } else {
    r->trailer_bytes_ += len;
  }
  return 0;
}

int ResponseReader::on_header_field_complete(llhttp_t *p) {
  ResponseReader *r = self(p);
  // RFC 9112 5.1: no whitespace between the field name and the colon. llhttp 8.1 rejects it
  // only for the names it interprets (Content-Length, ...), so it is checked here for all.
  if (r->name_has_space_) return r->fail("whitespace before the colon of a header field");
  if (++r->fields_ > kMaxHeaders)
    return r->fail(r->state_ == State::Head ? "more than 100 header fields"
                                            : "more than 100 trailer fields",
                   true);
  return 0;
}

int ResponseReader::on_header_value(llhttp_t *p, const char *at, std::size_t len) {
  ResponseReader *r = self(p);
  unsigned long long offset = r->exec_offset_ + static_cast<unsigned long long>(at - r->exec_base_);
  if (r->in_value_ && offset != r->value_end_) r->folded_ = true;
  r->value_end_ = offset + len;
  r->in_value_ = true;
  if (r->state_ == State::Head) {
    r->value_.append(at, len);
  } else {
    r->trailer_bytes_ += len;
  }
  return 0;
}

int ResponseReader::on_header_value_complete(llhttp_t *p) {
  ResponseReader *r = self(p);
  if (r->folded_) return r->fail("obsolete line folding in a header field (RFC 9112 5.2)");
  if (r->state_ != State::Head && r->trailer_bytes_ > kMaxHeadBytes)
    return r->fail("response trailers larger than 64 KiB", true);
  r->commit_field();
  return 0;
}

int ResponseReader::on_headers_complete(llhttp_t *p) {
  ResponseReader *r = self(p);
  int status = p->status_code;
  if (p->http_major != 1)
    return r->fail("unsupported HTTP version " + std::to_string(p->http_major) + "." +
                   std::to_string(p->http_minor));
  if (status < 100) return r->fail("invalid status code " + std::to_string(status));
  if (status == 101) return r->fail("unexpected 101 Switching Protocols");
  r->head_.status = status;
  r->head_.http_major = p->http_major;
  r->head_.http_minor = p->http_minor;
  if (status < 200) {
    // Interim: no body; on_message_complete pauses and feed() starts over.
    if (++r->interim_ > kMaxInterim) return r->fail("more than 10 interim (1xx) responses");
    p->flags |= F_SKIPBODY;
    return 0;
  }
  if (r->expect_no_body_ || status == 204 || status == 304) p->flags |= F_SKIPBODY;
  bool skip = (p->flags & F_SKIPBODY) != 0;
  r->until_close_ = !skip && llhttp_message_needs_eof(p);
  bool has_body =
      !skip && ((p->flags & (F_CHUNKED | F_TRANSFER_ENCODING)) != 0 ||
                ((p->flags & F_CONTENT_LENGTH) && p->content_length > 0) || r->until_close_);
  r->state_ = State::Body;
  r->fields_ = 0;  // from here on, fields are trailers
  // Without a body llhttp completes the message at once (and on_message_complete pauses).
  return has_body ? HPE_PAUSED : 0;
}

bool ResponseReader::check_chunk_crlf(const char *from, const char *end) {
  unsigned long long pos = exec_offset_ + static_cast<unsigned long long>(from - exec_base_);
  while (crlf_seen_ < 2 && from < end) {
    if (pos != crlf_at_ + static_cast<unsigned long long>(crlf_seen_)) return true;
    if (*from != (crlf_seen_ == 0 ? '\r' : '\n')) return false;
    ++crlf_seen_;
    ++from;
    ++pos;
  }
  return true;
}

int ResponseReader::on_body(llhttp_t *p, const char *at, std::size_t len) {
  ResponseReader *r = self(p);
  if (len == 0 || r->state_ != State::Body) return 0;
  try {
    r->sink_(std::string_view(at, len));
  } catch (...) {
    // Never unwind through llhttp's C frames; feed() reports the failure as an Error.
    return r->fail("the body sink failed");
  }
  if (p->flags & F_CHUNKED) {
    r->chunk_left_ -= std::min<unsigned long long>(r->chunk_left_, len);
    if (r->chunk_left_ == 0) {
      // RFC 9112 7.1: chunk-data is followed by CRLF. Check what of it is in this buffer now;
      // feed() checks the rest at the start of the next buffer. Either way the error comes
      // at the same stream offset, after the same body bytes, however the input was split.
      r->crlf_at_ = r->exec_offset_ + static_cast<unsigned long long>(at + len - r->exec_base_);
      r->crlf_seen_ = 0;
      if (!r->check_chunk_crlf(at + len, r->exec_end_))
        return r->fail("malformed HTTP response: chunk data not followed by CRLF");
    }
  }
  return 0;
}

int ResponseReader::on_message_complete(llhttp_t *p) {
  ResponseReader *r = self(p);
  if (r->state_ == State::Head) {
    r->paused_interim_ = true;  // a 1xx ended
  } else if (r->state_ == State::Body) {
    r->state_ = State::Done;
  }
  return HPE_PAUSED;
}

int ResponseReader::on_chunk_header(llhttp_t *p) {
  ResponseReader *r = self(p);
  r->extension_bytes_ = 0;  // the chunk header just ended
  r->chunk_left_ = p->content_length;
  if (p->content_length == 0) {
    // The last chunk: trailers follow. Pause so feed() learns where they start.
    r->in_trailers_ = true;
    r->trailer_pause_ = true;
    return HPE_PAUSED;
  }
  return 0;
}

int ResponseReader::on_chunk_extension(llhttp_t *p, const char *, std::size_t len) {
  self(p)->extension_bytes_ += len;
  return 0;
}

int ResponseReader::on_chunk_extension_complete(llhttp_t *p) {
  ResponseReader *r = self(p);
  if (r->extension_bytes_ > kMaxChunkExtension)
    return r->fail("chunk extensions larger than 4 KiB", true);
  return 0;
}

std::size_t ResponseReader::feed(std::string_view bytes) {
  std::size_t total = 0;
  while (total < bytes.size() && (state_ == State::Head || state_ == State::Body)) {
    const char *data = bytes.data() + total;
    std::size_t len = bytes.size() - total;
    const bool in_head = state_ == State::Head;
    if (in_head) {
      if (head_bytes_ >= kMaxHeadBytes) {
        fail("response head larger than 64 KiB", true);
        break;
      }
      len = std::min(len, kMaxHeadBytes - head_bytes_);
    }
    if (in_trailers_) {
      unsigned long long used_so_far = stream_pos_ + total - trailer_start_;
      if (used_so_far >= kMaxHeadBytes) {
        fail("response trailers larger than 64 KiB", true);
        break;
      }
      len = std::min<std::size_t>(len, kMaxHeadBytes - used_so_far);
    }
    exec_base_ = data;
    exec_end_ = data + len;
    exec_offset_ = stream_pos_ + total;
    if (crlf_seen_ < 2 && !check_chunk_crlf(data, exec_end_)) {
      fail("malformed HTTP response: chunk data not followed by CRLF");
      break;
    }
    llhttp_errno_t err = llhttp_execute(&parser_, data, len);
    std::size_t used = len;
    if (err == HPE_PAUSED) {
      used = static_cast<std::size_t>(llhttp_get_error_pos(&parser_) - data);
      llhttp_resume(&parser_);
      if (trailer_pause_) {
        trailer_pause_ = false;
        trailer_start_ = stream_pos_ + total + used;
      }
    } else if (err != HPE_OK) {
      const char *pos = llhttp_get_error_pos(&parser_);
      if (pos >= data && pos <= data + len) used = static_cast<std::size_t>(pos - data);
      fail_from_parser(err);
      total += used;
      break;
    }
    total += used;
    if (in_head) head_bytes_ += used;
    if (paused_interim_) {
      // The 1xx is over: the next bytes are a new response with its own head allowance.
      paused_interim_ = false;
      llhttp_reset(&parser_);
      head_bytes_ = 0;
      start_message();
      continue;
    }
    if (in_head && state_ != State::Head) break;  // the head is complete: let the caller look
  }
  stream_pos_ += total;
  return total;
}

ResponseReader::State ResponseReader::finish() {
  if (state_ == State::Head) {
    fail("connection closed before the response head was complete");
  } else if (state_ == State::Body) {
    // An empty execute runs the steps llhttp postponed when it paused after the head (it
    // decides the framing there), so llhttp_finish() sees the real body state.
    exec_base_ = "";
    exec_end_ = exec_base_;
    exec_offset_ = stream_pos_;
    llhttp_errno_t err = llhttp_execute(&parser_, exec_base_, 0);
    if (err == HPE_OK) err = llhttp_finish(&parser_);
    if (state_ == State::Done || state_ == State::Error) return state_;
    if (err == HPE_OK || err == HPE_INVALID_EOF_STATE || err == HPE_PAUSED) {
      fail("connection closed before the end of the body");
    } else {
      fail_from_parser(err);
    }
  }
  return state_;
}

}  // namespace levhttp::http

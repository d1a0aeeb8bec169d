// sse/parser.cpp: the SSE stream parser (see parser.hpp for the contract).
//
// Shape: input bytes sit in one buffer; next() scans forward from where the previous call
// stopped (scan_), so each byte is looked at once however the input was split. A complete
// line is interpreted in place; the data of a block's first data line is kept as a view into
// the buffer and copied only when a second data line arrives or the buffer has to move.
#include "sse/parser.hpp"

#include <algorithm>
#include <cstring>
#include <utility>

#include "sse/utf8.hpp"

namespace levhttp::sse {

namespace {

constexpr std::size_t kMinCapacity = 16u * 1024u;
// reset() gives back a buffer grown beyond this by a huge line or event.
constexpr std::size_t kKeepCapacity = 1024u * 1024u;
constexpr char kBom[3] = {'\xEF', '\xBB', '\xBF'};
constexpr std::string_view kMessage = "message";

// "If the field value consists of only ASCII digits, then interpret the field value as an
// integer in base ten" (WHATWG). An empty value or one too big for uint64 is ignored.
bool parse_retry(const char *s, std::size_t n, uint64_t &out) {
  if (n == 0) return false;
  uint64_t v = 0;
  for (std::size_t i = 0; i < n; ++i) {
    unsigned d = static_cast<unsigned char>(s[i]) - static_cast<unsigned>('0');
    if (d > 9) return false;
    if (v > (UINT64_MAX - d) / 10) return false;
    v = v * 10 + d;
  }
  out = v;
  return true;
}

}  // namespace

Parser::Parser(std::size_t max_event_size) : max_event_size_(max_event_size) {}

void Parser::feed(std::string_view bytes) {
  if (failed_ || bytes.empty()) return;  // after TooLarge the stream is over: drop input
  ensure_space(bytes.size());
  std::memcpy(buf_.get() + tail_, bytes.data(), bytes.size());
  tail_ += bytes.size();
  work_ += bytes.size();
}

std::span<char> Parser::prepare(std::size_t min_size) {
  if (failed_) head_ = scan_ = tail_ = 0;  // nothing more will be parsed; reuse the space
  ensure_space(min_size == 0 ? 1 : min_size);
  return {buf_.get() + tail_, capacity_ - tail_};
}

void Parser::commit(std::size_t n) {
  if (failed_) return;
  tail_ += std::min(n, capacity_ - tail_);
  work_ += n;
}

// Makes room for n more bytes after tail_. Moving the unconsumed bytes to the front is done
// only when at least as many bytes were consumed before them (so each move is paid for by
// consumed input); otherwise the buffer doubles. Either way the total work stays linear.
void Parser::ensure_space(std::size_t n) {
  // Eagerly move a small remainder (a partial line after the last complete one) to the
  // front: the bytes moved are at most a quarter of those consumed, and a long line that
  // follows then grows from offset 0 and never has to be moved itself.
  if (head_ != 0 && !data_is_view_ && tail_ - head_ <= head_ / 4) {
    std::size_t live = tail_ - head_;
    std::memmove(buf_.get(), buf_.get() + head_, live);
    work_ += live;
    scan_ -= head_;
    tail_ = live;
    head_ = 0;
  }
  if (capacity_ - tail_ >= n) return;
  // The pending data view points into the buffer: copy it out before the buffer moves.
  if (data_is_view_) materialize_data_view();
  std::size_t live = tail_ - head_;
  if (live + n <= capacity_ && head_ >= live) {
    std::memmove(buf_.get(), buf_.get() + head_, live);
  } else {
    std::size_t cap = std::max({capacity_ * 2, live + n, kMinCapacity});
    // Zero-initialized once, so the scanner's reads past tail_ never see indeterminate bytes.
    std::unique_ptr<char[]> bigger(new char[cap + detail::kScanPadding]());
    if (live != 0) std::memcpy(bigger.get(), buf_.get() + head_, live);
    buf_ = std::move(bigger);
    capacity_ = cap;
  }
  work_ += live;
  scan_ -= head_;
  tail_ = live;
  head_ = 0;
}

void Parser::materialize_data_view() {
  data_.assign(buf_.get() + data_view_off_, data_view_len_);
  work_ += data_view_len_;
  data_is_view_ = false;
}

void Parser::release_storage() {
  if (capacity_ > kKeepCapacity) {
    buf_.reset();
    capacity_ = 0;
  }
  for (std::string *s : {&data_, &type_, &out_data_, &out_type_}) {
    if (s->capacity() > kKeepCapacity) std::string().swap(*s);
  }
}

Parser::Result Parser::next(Event &out) {
  if (failed_) return Result::TooLarge;
  char *const b = buf_.get();
  if (bom_ == Bom::Pending) {
    // "One leading U+FEFF BYTE ORDER MARK character must be ignored if any are present."
    std::size_t avail = tail_ - head_;
    if (avail == 0) return Result::NeedMore;
    std::size_t k = std::min<std::size_t>(avail, 3);
    if (std::memcmp(b + head_, kBom, k) == 0) {
      if (k < 3) return Result::NeedMore;  // a BOM split across feeds: wait for the rest
      head_ += 3;
      scan_ = head_;
    }
    bom_ = Bom::Done;
  }
  for (;;) {
    if (skip_lf_) {
      // The previous line ended with a CR at the end of the input: a LF now belongs to it.
      if (head_ == tail_) return Result::NeedMore;
      if (b[head_] == '\n') scan_ = ++head_;
      skip_lf_ = false;
    }
    const char *line = b + head_;
    const char *from = b + scan_;
    const char *end = b + tail_;
    bool non_ascii = line_non_ascii_;
    const char *eol = detail::scan_line_end(from, end, non_ascii);
    work_ += static_cast<std::size_t>(eol - from);
    std::size_t len = static_cast<std::size_t>(eol - line);
    if (len + data_size() > max_event_size_) {
      failed_ = true;
      return Result::TooLarge;
    }
    if (eol == end) {
      scan_ = tail_;
      line_non_ascii_ = non_ascii;
      return Result::NeedMore;
    }
    // "Lines must be separated by either a U+000D CARRIAGE RETURN U+000A LINE FEED (CRLF)
    // character pair, a single U+000A LINE FEED (LF) character, or a single U+000D CARRIAGE
    // RETURN (CR) character." A CR ends the line at once (nothing waits for more input).
    std::size_t next_line = static_cast<std::size_t>(eol - b) + 1;
    if (*eol == '\r') {
      if (eol + 1 == end) {
        skip_lf_ = true;
      } else if (eol[1] == '\n') {
        ++next_line;
      }
    }
    line_non_ascii_ = false;
    head_ = scan_ = next_line;
    if (len == 0) {
      if (dispatch(out)) return Result::Event;
      continue;
    }
    // The common first data line of a block: ASCII, `data:` — keep a view, nothing else.
    if (!has_data_ && !non_ascii && len >= 5 && std::memcmp(line, "data:", 5) == 0) {
      std::size_t skip = (len > 5 && line[5] == ' ') ? 6 : 5;
      has_data_ = true;
      data_is_view_ = true;
      data_view_off_ = static_cast<std::size_t>(line - b) + skip;
      data_view_len_ = len - skip;
      continue;
    }
    if (process_line(line, len, non_ascii, out)) return Result::Event;
    if (failed_) return Result::TooLarge;
  }
}

// Stores a field value into dst, decoded (U+FFFD for invalid UTF-8).
void Parser::store_field(std::string &dst, const char *value, std::size_t len, bool non_ascii) {
  dst.clear();
  if (!non_ascii || detail::is_valid_utf8(value, len)) {
    dst.append(value, len);
  } else {
    detail::append_utf8_replacing(dst, value, len);
  }
  work_ += len;
}

// Interprets one complete line; true when it dispatched an event into `out`.
bool Parser::process_line(const char *line, std::size_t len, bool non_ascii, Event &out) {
  // "If the line is empty (a blank line): Dispatch the event."
  if (len == 0) return dispatch(out);
  // "If the line starts with a U+003A COLON character (:): Ignore the line."
  if (line[0] == ':') return false;

  // "If the line contains a U+003A COLON character: collect the characters on the line
  // before the first colon as the field name, and after it as the value; if value starts
  // with a U+0020 SPACE character, remove it. Otherwise, the whole line is the field name,
  // and the value is the empty string."
  std::size_t name_len;
  const char *value;
  std::size_t value_len;
  if (len >= 5 && std::memcmp(line, "data:", 5) == 0) {
    name_len = 4;  // the common case, without searching for the colon
  } else {
    const void *colon = std::memchr(line, ':', len);
    name_len = colon ? static_cast<std::size_t>(static_cast<const char *>(colon) - line) : len;
  }
  if (name_len < len) {
    value = line + name_len + 1;
    value_len = len - name_len - 1;
    if (value_len != 0 && *value == ' ') {
      ++value;
      --value_len;
    }
  } else {
    value = line + len;
    value_len = 0;
  }

  // Field names are compared case-sensitively; anything else is ignored.
  if (name_len == 4 && std::memcmp(line, "data", 4) == 0) {
    // "Append the field value to the data buffer, then append a single U+000A LINE FEED
    // character to the data buffer." Stored here without the final LF, which dispatch
    // would remove anyway: a LF goes between lines instead.
    if (!has_data_) {
      has_data_ = true;
      if (!non_ascii || detail::is_valid_utf8(value, value_len)) {
        data_is_view_ = true;
        data_view_off_ = static_cast<std::size_t>(value - buf_.get());
        data_view_len_ = value_len;
      } else {
        data_.clear();
        detail::append_utf8_replacing(data_, value, value_len);
      }
    } else {
      if (data_is_view_) materialize_data_view();
      data_.push_back('\n');
      if (!non_ascii || detail::is_valid_utf8(value, value_len)) {
        data_.append(value, value_len);
      } else {
        detail::append_utf8_replacing(data_, value, value_len);
      }
      work_ += value_len;
    }
    if (data_size() > max_event_size_) failed_ = true;  // U+FFFD grew it past the cap
    return false;
  }
  if (name_len == 5 && std::memcmp(line, "event", 5) == 0) {
    // "Set the event type buffer to field value."
    store_field(type_, value, value_len, non_ascii);
    return false;
  }
  if (name_len == 2 && line[0] == 'i' && line[1] == 'd') {
    // "If the field value does not contain U+0000 NULL, then set the last event ID buffer
    // to the field value. Otherwise, ignore the field."
    if (value_len == 0 || std::memchr(value, '\0', value_len) == nullptr) {
      store_field(id_buffer_, value, value_len, non_ascii);
      id_changed_ = true;
    }
    return false;
  }
  if (name_len == 5 && std::memcmp(line, "retry", 5) == 0) {
    uint64_t v;
    if (parse_retry(value, value_len, v)) {
      retry_ = v;
      block_retry_ = v;
      block_has_retry_ = true;
    }
    return false;
  }
  return false;
}

// "When the user agent is required to dispatch the event": the last event ID string takes
// the buffer's value; with an empty data buffer nothing is dispatched but the data and
// event type buffers are reset; otherwise the final LF is removed (never stored here) and
// the type defaults to "message".
inline bool Parser::dispatch(Event &out) {
  if (id_changed_) {
    last_id_ = id_buffer_;
    id_changed_ = false;
  }
  if (!has_data_) {
    type_.clear();
    block_has_retry_ = false;
    return false;
  }
  if (data_is_view_) {
    out.data = std::string_view(buf_.get() + data_view_off_, data_view_len_);
  } else {
    std::swap(data_, out_data_);
    data_.clear();
    out.data = out_data_;
  }
  if (type_.empty()) {
    out.type = kMessage;
  } else {
    std::swap(type_, out_type_);
    type_.clear();
    out.type = out_type_;
  }
  out.id = last_id_;
  out.retry = block_has_retry_ ? std::optional<uint64_t>(block_retry_) : std::nullopt;
  has_data_ = false;
  data_is_view_ = false;
  block_has_retry_ = false;
  return true;
}

void Parser::reset() {
  head_ = scan_ = tail_ = 0;
  line_non_ascii_ = false;
  skip_lf_ = false;
  failed_ = false;
  bom_ = Bom::Pending;
  has_data_ = false;
  data_is_view_ = false;
  block_has_retry_ = false;
  data_.clear();
  type_.clear();
  // A new stream starts from the last event ID the previous one completed (as a browser
  // re-creates the parser with it on reconnection).
  id_buffer_ = last_id_;
  id_changed_ = false;
  release_storage();
}

std::string_view Parser::last_event_id() const {
  return last_id_;
}
std::optional<uint64_t> Parser::retry() const {
  return retry_;
}
std::size_t Parser::max_event_size() const {
  return max_event_size_;
}
std::size_t Parser::buffered() const {
  return tail_ - head_;
}

}  // namespace levhttp::sse

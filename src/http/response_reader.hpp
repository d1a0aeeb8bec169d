// http/response_reader.hpp: reads one HTTP/1.x response with llhttp 8.1 (no lenient flags).
//
// Contract: bytes in (feed), then head and body out; knows nothing of sockets. Interim 1xx
// responses are skipped (at most 10, then an error). The head is capped at 64 KiB and 100
// header fields; each field name is lower-cased, repeated fields are joined with ", ".
// Body bytes (de-chunked) are handed to the caller's sink as they are parsed; Content-Length,
// chunked and close-delimited framing are supported; finish() at EOF tells a clean end from
// truncation. Any framing or syntax error is final: state() becomes Error and error() says
// why (llhttp's reason, e.g. "Invalid character in chunk size").
#pragma once

#include <llhttp.h>

#include <cstddef>
#include <functional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace levhttp::http {

struct ResponseHead {
  int status = 0;
  int http_major = 1, http_minor = 1;
  std::string reason;
  std::vector<std::pair<std::string, std::string>> headers;  // lower-case names, joined values
  // The joined value of a header (name in lower case), or nullptr.
  const std::string *find(std::string_view lower_name) const;
};

class ResponseReader {
 public:
  enum class State {
    Head,   // waiting for (more of) the final response head
    Body,   // head complete; body bytes flow to the sink
    Done,   // the message is complete (Content-Length reached, last chunk, or clean EOF)
    Error,  // malformed or over a limit; see error()
  };
  // Receives body bytes as they are parsed. It must not call back into the reader.
  using BodySink = std::function<void(std::string_view)>;

  static constexpr std::size_t kMaxHeadBytes = 64 * 1024;
  static constexpr std::size_t kMaxHeaders = 100;
  static constexpr int kMaxInterim = 10;

  // `expect_no_body` for responses to HEAD (not used by the SSE client, but correct).
  explicit ResponseReader(BodySink sink, bool expect_no_body = false);
  ~ResponseReader();
  ResponseReader(const ResponseReader &) = delete;
  ResponseReader &operator=(const ResponseReader &) = delete;

  // Parses bytes. Returns the number consumed: all of them, except that parsing pauses right
  // after the head is complete (so the caller can look at it before any body byte is
  // delivered) and stops at Done (bytes after the end of the message are not consumed) or
  // Error. Call feed() again with the rest.
  std::size_t feed(std::string_view bytes);
  // The peer closed the connection: a close-delimited body ends cleanly (Done); anything
  // else unfinished becomes Error ("connection closed before the response head was
  // complete" / "...before the end of the body"). Returns the state after.
  State finish();

  State state() const;
  const ResponseHead &head() const;  // valid from Body on
  const std::string &error() const;
  // True when the Error is a size cap (head, header count, trailers, chunk extensions)
  // rather than malformed input: the client reports it as kind too_large.
  bool error_is_limit() const { return limit_error_; }
  // True when the body is close-delimited (neither Content-Length nor chunked).
  bool body_until_close() const;

 private:
  // llhttp callbacks (C function pointers); `parser_.data` points at the reader.
  static int on_message_begin(llhttp_t *p);
  static int on_status(llhttp_t *p, const char *at, std::size_t len);
  static int on_header_field(llhttp_t *p, const char *at, std::size_t len);
  static int on_header_value(llhttp_t *p, const char *at, std::size_t len);
  static int on_header_field_complete(llhttp_t *p);
  static int on_header_value_complete(llhttp_t *p);
  static int on_headers_complete(llhttp_t *p);
  static int on_body(llhttp_t *p, const char *at, std::size_t len);
  static int on_message_complete(llhttp_t *p);
  static int on_chunk_header(llhttp_t *p);
  static int on_chunk_extension(llhttp_t *p, const char *at, std::size_t len);
  static int on_chunk_extension_complete(llhttp_t *p);

  void start_message();           // forget the head of a skipped interim response
  void commit_field();            // the field in name_/value_ is complete
  // Records the error; returns HPE_USER for llhttp. `limit`: a size cap, not bad syntax.
  int fail(std::string message, bool limit = false);
  void fail_from_parser(llhttp_errno_t err);

  BodySink sink_;
  bool expect_no_body_;
  State state_ = State::Head;
  std::string error_;
  bool limit_error_ = false;
  ResponseHead head_;
  llhttp_settings_t settings_;
  llhttp_t parser_;
  // Head accounting, per message (reset after each skipped 1xx).
  std::size_t head_bytes_ = 0;   // bytes of the current head handed to llhttp so far
  std::size_t fields_ = 0;       // header (or trailer) fields completed
  bool in_value_ = false;        // the last span was a value (a new name starts a field)
  std::string name_, value_;     // the field being accumulated
  bool name_has_space_ = false;  // SP/HTAB seen in the field name
  bool folded_ = false;          // a gap (obs-fold) seen inside the field value
  // Stream offsets, to see a gap inside one field value: llhttp 8.1 accepts obs-fold and
  // reports the folded lines as value spans with the CRLF left out; RFC 9112 5.2 lets a
  // client reject it, and we do.
  unsigned long long stream_pos_ = 0;   // bytes consumed by feed() so far
  const char *exec_base_ = nullptr;     // start of the buffer handed to llhttp_execute
  unsigned long long exec_offset_ = 0;  // its offset in the stream
  unsigned long long value_end_ = 0;    // stream offset just after the last value span
  int interim_ = 0;                     // 1xx responses skipped so far
  bool paused_interim_ = false;         // llhttp paused at the end of a 1xx: reset and go on
  bool until_close_ = false;
  std::size_t trailer_bytes_ = 0;    // trailer fields after the last chunk (ignored, capped)
  // llhttp 8.1 does not check the CRLF that ends each chunk's data: we do. chunk_left_ counts
  // the data bytes of the current chunk still to come; crlf_at_ is the stream offset where the
  // CRLF must start and crlf_seen_ how many of its two bytes were checked.
  unsigned long long chunk_left_ = 0;
  unsigned long long crlf_at_ = 0;
  int crlf_seen_ = 2;  // 2: nothing to check
  const char *exec_end_ = nullptr;  // end of the buffer handed to llhttp_execute
  // The trailer section starts at this stream offset (after the last chunk's size line) and
  // may take kMaxHeadBytes: feed() hands llhttp no more than that, as for the head.
  bool in_trailers_ = false;
  unsigned long long trailer_start_ = 0;
  bool trailer_pause_ = false;  // on_chunk_header paused llhttp to let feed() note the offset
  // Checks the bytes of [from, end) that belong to the chunk-ending CRLF; false on a mismatch.
  bool check_chunk_crlf(const char *from, const char *end);
  std::size_t extension_bytes_ = 0;  // chunk extensions of the current chunk header (capped)
};

}  // namespace levhttp::http

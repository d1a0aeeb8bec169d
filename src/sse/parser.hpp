// sse/parser.hpp: the Server-Sent Events stream parser (WHATWG HTML "event stream" rules).
//
// Contract: a pure function of the bytes fed to it. Bytes go in with feed() (copied) or
// prepare()/commit() (written in place, e.g. by recv()); completed events come out one at a
// time from next(), in order, each exactly once. The parser never blocks, never calls out,
// and keeps at most max_event_size bytes of a pending line or event: beyond that next()
// reports Result::TooLarge and the stream is over (reset() starts a new one). Each byte is
// scanned a bounded number of times however the input is split, so the cost is linear.
//
// What max_event_size counts: at every point, the length of the unfinished line (raw bytes,
// line end excluded) plus the length of the event's data so far (decoded, the LFs joining
// its lines included) must not exceed it. Checking both keeps a line that never ends and an
// event of endless data lines bounded, and the outcome does not depend on how the input was
// split. A line of exactly max_event_size bytes is fine; one byte more is TooLarge, whatever
// the line is (a comment too). Memory stays within a small multiple of max_event_size plus
// one read however long the stream, provided next() is drained between reads.
//
// Rules (WHATWG HTML, "Parsing an event stream"), and the choices where it is silent:
// - one leading U+FEFF BOM is stripped (also when split across feeds; again after reset());
// - invalid UTF-8 becomes U+FFFD per maximal subpart, as the WHATWG decoder does;
// - an `id` field sets the last event ID buffer when seen (unless its value contains NUL);
//   the blank line copies it to the last event ID, which is what last_event_id() returns and
//   what the event carries: an id in a block that never completes is not reported;
// - `retry` is accepted when its value is one or more ASCII digits that fit in uint64 (a
//   bigger number is ignored, as is an empty value); it takes effect at once (retry()), and
//   the event of that block carries it.
//
// Pull, not push: the client dispatches each event into Lua, which may raise (a longjmp) or
// yield between two events; with next() the parser's state is consistent at every point
// between calls, and events not yet pulled stay buffered.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>

namespace levhttp::sse {

inline constexpr std::size_t kDefaultMaxEventSize = 16u * 1024u * 1024u;

// One dispatched event. The views stay valid until the next call of next(), feed(),
// prepare(), commit() or reset() on the parser that produced it.
struct Event {
  std::string_view type;          // "message" when the block had no (or an empty) event field
  std::string_view data;          // data lines joined with "\n", final LF removed; valid UTF-8
  std::string_view id;            // last event ID in effect after this block ("" if none)
  std::optional<uint64_t> retry;  // set when this event's block had an accepted retry field
};

class Parser {
 public:
  enum class Result {
    Event,     // `out` holds the next event
    NeedMore,  // every complete event has been pulled; feed more bytes
    TooLarge,  // a line or event exceeded max_event_size; the stream is over
  };

  explicit Parser(std::size_t max_event_size = kDefaultMaxEventSize);

  // Appends bytes to the input (copies them).
  void feed(std::string_view bytes);
  // Zero-copy input: a writable span of at least `min_size` bytes at the end of the input
  // buffer; commit(n) then appends the first n bytes written there.
  std::span<char> prepare(std::size_t min_size);
  void commit(std::size_t n);

  // Parses buffered input until one event completes (Result::Event) or input runs out.
  Result next(Event &out);

  // End of one stream: drops the unfinished event, any partial line and unparsed input;
  // keeps the last event ID and retry (as for a reconnection); the next byte may be a BOM.
  void reset();

  std::string_view last_event_id() const;  // as of the last blank line (see above)
  std::optional<uint64_t> retry() const;   // the last accepted retry value, in ms
  std::size_t max_event_size() const;
  std::size_t buffered() const;  // bytes fed but not yet consumed by next()

  // ... private state chosen by the implementation ...
 private:
  friend struct ParserProbe;  // lets tests read the work counter; no public surface

  enum class Bom : uint8_t { Pending, Done };

  bool process_line(const char *line, std::size_t len, bool non_ascii, Event &out);
  bool dispatch(Event &out);
  void store_field(std::string &dst, const char *value, std::size_t len, bool non_ascii);
  void materialize_data_view();
  void ensure_space(std::size_t n);
  void release_storage();
  std::size_t data_size() const { return data_is_view_ ? data_view_len_ : data_.size(); }

  // Input buffer: [head_, tail_) is unconsumed; [head_, scan_) is the start of the current
  // line, already scanned (no line end in it); kScanPadding zeroed bytes follow capacity_.
  std::unique_ptr<char[]> buf_;
  std::size_t capacity_ = 0;
  std::size_t head_ = 0;
  std::size_t scan_ = 0;
  std::size_t tail_ = 0;
  bool line_non_ascii_ = false;  // a byte >= 0x80 in [head_, scan_)
  bool skip_lf_ = false;         // the last line ended with a CR: a LF next is part of it
  bool failed_ = false;          // TooLarge was reported; sticky until reset()
  Bom bom_ = Bom::Pending;

  // The event being built. The data of a block whose only data line is still in buf_ is
  // kept as a view (data_view_off_/len_) and copied into data_ only if needed.
  bool has_data_ = false;
  bool data_is_view_ = false;
  bool block_has_retry_ = false;
  bool id_changed_ = false;  // id_buffer_ differs from last_id_
  std::size_t data_view_off_ = 0;
  std::size_t data_view_len_ = 0;
  std::string data_;
  std::string type_;
  uint64_t block_retry_ = 0;

  // What the last dispatched event refers to (kept until the next call).
  std::string out_data_;
  std::string out_type_;

  std::string id_buffer_;  // WHATWG "last event ID buffer": set when an id field is seen
  std::string last_id_;    // WHATWG "last event ID string": set from the buffer at dispatch
  std::optional<uint64_t> retry_;
  std::size_t max_event_size_;
  uint64_t work_ = 0;  // bytes scanned + copied + moved: the linearity tests bound this
};

}  // namespace levhttp::sse

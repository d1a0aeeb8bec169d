// sse/parser.hpp: the Server-Sent Events stream parser (WHATWG HTML "event stream" rules).
//
// Contract: a pure function of the bytes fed to it. Bytes go in with feed() (copied) or
// prepare()/commit() (written in place, e.g. by recv()); completed events come out one at a
// time from next(), in order, each exactly once. The parser never blocks, never calls out,
// and keeps at most max_event_size bytes of a pending line or event: beyond that next()
// reports Result::TooLarge and the stream is over (reset() starts a new one). Each byte is
// scanned a bounded number of times however the input is split, so the cost is linear.
//
// Pull, not push: the client dispatches each event into Lua, which may raise (a longjmp) or
// yield between two events; with next() the parser's state is consistent at every point
// between calls, and events not yet pulled stay buffered.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>

namespace levhttp::sse {

inline constexpr std::size_t kDefaultMaxEventSize = 16u * 1024u * 1024u;

// One dispatched event. The views stay valid until the next call of next(), feed(),
// prepare(), commit() or reset() on the parser that produced it.
struct Event {
  std::string_view type;        // "message" when the block had no (or an empty) event field
  std::string_view data;        // data lines joined with "\n", final LF removed; valid UTF-8
  std::string_view id;          // last event ID in effect after this block ("" if none)
  std::optional<uint64_t> retry; // set when this event's block had an accepted retry field
};

class Parser {
 public:
  enum class Result {
    Event,    // `out` holds the next event
    NeedMore, // every complete event has been pulled; feed more bytes
    TooLarge, // a line or event exceeded max_event_size; the stream is over
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

  std::string_view last_event_id() const;
  std::optional<uint64_t> retry() const; // the last accepted retry value, in ms
  std::size_t max_event_size() const;
  std::size_t buffered() const; // bytes fed but not yet consumed by next()

  // ... private state chosen by the implementation ...
};

}  // namespace levhttp::sse

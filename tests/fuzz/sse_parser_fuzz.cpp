// libFuzzer target for levhttp::sse::Parser. Invariants: no crash (ASan/UBSan watch memory);
// the same events, last event ID, retry and TooLarge outcome whether the input is fed whole,
// split at one point, or in small pieces through prepare()/commit(); every type, data and id
// is valid UTF-8. The first two input bytes choose the split point, the piece size and the
// max_event_size; the rest is the stream.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "sse/parser.hpp"
namespace {

using levhttp::sse::Event;
using levhttp::sse::Parser;

struct Ev {
  std::string type, data, id;
  std::optional<uint64_t> retry;
  bool operator==(const Ev &) const = default;
};

struct Outcome {
  std::vector<Ev> events;
  bool too_large = false;
  std::string last_id;
  std::optional<uint64_t> retry;
  bool operator==(const Outcome &) const = default;
};

// Well-formed UTF-8 (RFC 3629), written independently of the parser's decoder.
bool valid_utf8(std::string_view s) {
  std::size_t i = 0;
  while (i < s.size()) {
    unsigned c = static_cast<unsigned char>(s[i]);
    std::size_t n;
    uint32_t cp;
    if (c < 0x80) {
      ++i;
      continue;
    } else if ((c & 0xE0) == 0xC0) {
      n = 1;
      cp = c & 0x1F;
    } else if ((c & 0xF0) == 0xE0) {
      n = 2;
      cp = c & 0x0F;
    } else if ((c & 0xF8) == 0xF0) {
      n = 3;
      cp = c & 0x07;
    } else {
      return false;
    }
    if (i + n >= s.size()) return false;  // truncated
    for (std::size_t k = 1; k <= n; ++k) {
      unsigned d = static_cast<unsigned char>(s[i + k]);
      if ((d & 0xC0) != 0x80) return false;
      cp = (cp << 6) | (d & 0x3F);
    }
    static const uint32_t kMin[] = {0, 0x80, 0x800, 0x10000};
    if (cp < kMin[n] || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF)) return false;
    i += n + 1;
  }
  return true;
}

void drain(Parser &p, Outcome &o) {
  if (o.too_large) return;
  Event ev;
  for (;;) {
    Parser::Result r = p.next(ev);
    if (r == Parser::Result::NeedMore) return;
    if (r == Parser::Result::TooLarge) {
      o.too_large = true;
      return;
    }
    if (!valid_utf8(ev.type) || !valid_utf8(ev.data) || !valid_utf8(ev.id)) __builtin_trap();
    if (ev.type.empty()) __builtin_trap();  // "message" by default
    o.events.push_back(
        Ev{std::string(ev.type), std::string(ev.data), std::string(ev.id), ev.retry});
  }
}

Outcome finish(const Parser &p, Outcome o) {
  o.last_id = std::string(p.last_event_id());
  o.retry = p.retry();
  if (!valid_utf8(o.last_id)) __builtin_trap();
  return o;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t *data, std::size_t size) {
  if (size < 2) return 0;
  const unsigned a = data[0], b = data[1];
  std::string_view in(reinterpret_cast<const char *>(data + 2), size - 2);
  const std::size_t max =
      (a & 1) ? 8 + (b & 0x3F) * 8 : levhttp::sse::kDefaultMaxEventSize;  // often tiny
  const std::size_t cut = in.size() * (a >> 1) / 127;
  const std::size_t piece = 1 + (b >> 3);

  Parser whole_p(max);
  Outcome whole;
  whole_p.feed(in);
  drain(whole_p, whole);
  whole = finish(whole_p, whole);

  Parser split_p(max);
  Outcome split;
  split_p.feed(in.substr(0, cut));
  drain(split_p, split);
  split_p.feed(in.substr(cut));
  drain(split_p, split);
  split = finish(split_p, split);

  Parser piece_p(max);
  Outcome pieces;
  for (std::size_t i = 0; i < in.size(); i += piece) {
    std::size_t n = in.size() - i < piece ? in.size() - i : piece;
    std::span<char> room = piece_p.prepare(n);
    if (room.size() < n) __builtin_trap();
    std::memcpy(room.data(), in.data() + i, n);
    piece_p.commit(n);
    drain(piece_p, pieces);
  }
  pieces = finish(piece_p, pieces);

  if (!(whole == split) || !(whole == pieces)) __builtin_trap();

  // After reset the same parser must parse the input again from scratch (same events).
  whole_p.reset();
  Outcome again;
  whole_p.feed(in);
  drain(whole_p, again);
  if (!whole.too_large && again.events != whole.events) {
    // Only the ids may differ: the first stream's last id carries over, as on reconnection.
    if (again.events.size() != whole.events.size()) __builtin_trap();
    for (std::size_t i = 0; i < again.events.size(); ++i) {
      if (again.events[i].data != whole.events[i].data) __builtin_trap();
      if (again.events[i].type != whole.events[i].type) __builtin_trap();
    }
  }
  return 0;
}

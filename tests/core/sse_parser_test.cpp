// Tests of levhttp::sse::Parser, written from the WHATWG "event stream" rules: a data-driven
// table of streams, each ground whole, byte by byte, at every split point, at random
// multi-splits and through prepare()/commit(); a randomized differential test against the
// simple reference model below; size cap, reset and work-counting (linearity)
// tests.
#include <algorithm>
#include <catch2/catch.hpp>
#include <cstdio>
#include <cstring>
#include <optional>
#include <random>
#include <string>
#include <vector>

#include "sse/parser.hpp"

// --- the reference model: deliberately simple, written from the specs, not optimized ---
namespace sse_test {

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

// The Encoding Standard's UTF-8 decoder, step by step (bytes needed / seen, lower / upper
// boundary; a byte out of range emits U+FFFD and is processed again).
std::vector<uint32_t> decode_utf8(const std::string &bytes) {
  std::vector<uint32_t> out;
  uint32_t cp = 0;
  int needed = 0, seen = 0;
  unsigned lower = 0x80, upper = 0xBF;
  std::size_t i = 0;
  while (i < bytes.size()) {
    unsigned b = static_cast<unsigned char>(bytes[i]);
    if (needed == 0) {
      if (b <= 0x7F) {
        out.push_back(b);
      } else if (b >= 0xC2 && b <= 0xDF) {
        needed = 1;
        cp = b & 0x1F;
      } else if (b >= 0xE0 && b <= 0xEF) {
        if (b == 0xE0) lower = 0xA0;
        if (b == 0xED) upper = 0x9F;
        needed = 2;
        cp = b & 0xF;
      } else if (b >= 0xF0 && b <= 0xF4) {
        if (b == 0xF0) lower = 0x90;
        if (b == 0xF4) upper = 0x8F;
        needed = 3;
        cp = b & 0x7;
      } else {
        out.push_back(0xFFFD);
      }
      ++i;
      continue;
    }
    if (b < lower || b > upper) {
      cp = 0;
      needed = seen = 0;
      lower = 0x80;
      upper = 0xBF;
      out.push_back(0xFFFD);
      continue;  // "prepend byte to stream": decode it again
    }
    lower = 0x80;
    upper = 0xBF;
    cp = (cp << 6) | (b & 0x3F);
    ++i;
    if (++seen == needed) {
      out.push_back(cp);
      cp = 0;
      needed = seen = 0;
    }
  }
  if (needed != 0) out.push_back(0xFFFD);
  return out;
}

std::string encode_utf8(const std::vector<uint32_t> &cps) {
  std::string s;
  for (uint32_t c : cps) {
    if (c < 0x80) {
      s += static_cast<char>(c);
    } else if (c < 0x800) {
      s += static_cast<char>(0xC0 | (c >> 6));
      s += static_cast<char>(0x80 | (c & 0x3F));
    } else if (c < 0x10000) {
      s += static_cast<char>(0xE0 | (c >> 12));
      s += static_cast<char>(0x80 | ((c >> 6) & 0x3F));
      s += static_cast<char>(0x80 | (c & 0x3F));
    } else {
      s += static_cast<char>(0xF0 | (c >> 18));
      s += static_cast<char>(0x80 | ((c >> 12) & 0x3F));
      s += static_cast<char>(0x80 | ((c >> 6) & 0x3F));
      s += static_cast<char>(0x80 | (c & 0x3F));
    }
  }
  return s;
}

// The whole stream at once: strip one BOM, cut lines at CRLF / LF / CR, decode each line,
// apply the field rules. The size cap: raw line length plus data so far (joining LFs
// included, decoded) must stay <= max, checked for every line, also an unfinished last one.
Outcome reference_parse(const std::string &input, std::size_t max) {
  std::string s = input;
  if (s.size() >= 3 && s.compare(0, 3, "\xEF\xBB\xBF") == 0) s.erase(0, 3);
  Outcome o;
  std::string data, type, id_buffer, last_id;
  bool has_data = false;
  std::optional<uint64_t> retry, block_retry;
  std::size_t i = 0;
  for (;;) {
    std::size_t j = i;
    while (j < s.size() && s[j] != '\r' && s[j] != '\n') ++j;
    std::size_t data_len = has_data ? data.size() - 1 : 0;  // without the final LF
    if ((j - i) + data_len > max) {
      o.too_large = true;
      break;
    }
    if (j == s.size()) break;  // an unfinished line (and event) is discarded
    std::string line = encode_utf8(decode_utf8(s.substr(i, j - i)));
    i = j + 1;
    if (s[j] == '\r' && i < s.size() && s[i] == '\n') ++i;
    if (line.empty()) {
      last_id = id_buffer;
      if (has_data) {
        data.pop_back();
        o.events.push_back(Ev{type.empty() ? "message" : type, data, last_id, block_retry});
      }
      data.clear();
      type.clear();
      has_data = false;
      block_retry.reset();
      continue;
    }
    if (line[0] == ':') continue;
    std::string name = line, value;
    std::size_t colon = line.find(':');
    if (colon != std::string::npos) {
      name = line.substr(0, colon);
      value = line.substr(colon + 1);
      if (!value.empty() && value[0] == ' ') value.erase(0, 1);
    }
    if (name == "data") {
      data += value + "\n";
      has_data = true;
      if (data.size() - 1 > max) {
        o.too_large = true;
        break;
      }
    } else if (name == "event") {
      type = value;
    } else if (name == "id") {
      if (value.find('\0') == std::string::npos) id_buffer = value;
    } else if (name == "retry") {
      bool digits = !value.empty();
      for (char ch : value) digits = digits && ch >= '0' && ch <= '9';
      std::size_t nz = value.find_first_not_of('0');
      std::string sig = nz == std::string::npos ? "0" : value.substr(nz);
      bool fits = sig.size() < 20 || (sig.size() == 20 && sig <= "18446744073709551615");
      if (digits && fits) {
        retry = std::stoull(sig);
        block_retry = retry;
      }
    }
  }
  o.last_id = last_id;
  o.retry = retry;
  return o;
}

}  // namespace sse_test

namespace levhttp::sse {
// Declared a friend by Parser: reads the private counters the linearity tests bound.
struct ParserProbe {
  static uint64_t work(const Parser &p) { return p.work_; }
  static std::size_t capacity(const Parser &p) { return p.capacity_; }
};
}  // namespace levhttp::sse

using levhttp::sse::Event;
using levhttp::sse::kDefaultMaxEventSize;
using levhttp::sse::Parser;
using levhttp::sse::ParserProbe;
using sse_test::Ev;
using sse_test::Outcome;
using namespace std::string_literals;

namespace {

// Pulls every complete event out of the parser into `o`.
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
    o.events.push_back(
        Ev{std::string(ev.type), std::string(ev.data), std::string(ev.id), ev.retry});
  }
}

Outcome finish(Parser &p, Outcome o) {
  o.last_id = std::string(p.last_event_id());
  o.retry = p.retry();
  return o;
}

Outcome run_pieces(const std::vector<std::string> &pieces, std::size_t max) {
  Parser p(max);
  Outcome o;
  for (const std::string &s : pieces) {
    p.feed(s);
    drain(p, o);
  }
  return finish(p, o);
}

Outcome run_prepare(const std::vector<std::string> &pieces, std::size_t max) {
  Parser p(max);
  Outcome o;
  for (const std::string &s : pieces) {
    std::span<char> room = p.prepare(s.size());
    REQUIRE(room.size() >= s.size());
    std::memcpy(room.data(), s.data(), s.size());
    p.commit(s.size());
    drain(p, o);
  }
  return finish(p, o);
}

std::vector<std::string> split_at(const std::string &s, std::vector<std::size_t> cuts) {
  std::sort(cuts.begin(), cuts.end());
  std::vector<std::string> out;
  std::size_t prev = 0;
  for (std::size_t c : cuts) {
    out.push_back(s.substr(prev, c - prev));
    prev = c;
  }
  out.push_back(s.substr(prev));
  return out;
}

std::vector<std::string> bytewise(const std::string &s) {
  std::vector<std::string> out;
  for (char c : s) out.emplace_back(1, c);
  return out;
}

std::string describe(const Outcome &o) {
  std::string s = "too_large=" + std::to_string(o.too_large) + " last_id=[" + o.last_id +
                  "] retry=" + (o.retry ? std::to_string(*o.retry) : "none") + " events:";
  for (const Ev &e : o.events) {
    s += "\n  {" + e.type + "|" + e.data + "|" + e.id + "|" +
         (e.retry ? std::to_string(*e.retry) : "-") + "}";
  }
  return s;
}

// Feeds `input` every way the grind rules ask and checks each outcome equals `expected`.
void grind(const std::string &input, const Outcome &expected, std::size_t max) {
  auto check = [&](const Outcome &got, const char *how) {
    INFO(how);
    INFO("expected: " << describe(expected));
    INFO("got:      " << describe(got));
    REQUIRE(got == expected);
  };
  check(run_pieces({input}, max), "whole");
  check(run_prepare({input}, max), "whole via prepare/commit");
  check(run_pieces(bytewise(input), max), "byte by byte");
  check(run_prepare(bytewise(input), max), "byte by byte via prepare/commit");
  // Every single split point (sampled for long inputs to keep the run short).
  std::size_t step = input.size() <= 4096 ? 1 : input.size() / 509 + 1;
  for (std::size_t i = 0; i <= input.size(); i += step) {
    INFO("split at " << i);
    check(run_pieces(split_at(input, {i}), max), "one split");
  }
  std::mt19937 rng(12345);
  for (int round = 0; round < 8; ++round) {
    std::vector<std::size_t> cuts;
    std::size_t n = 1 + rng() % 6;
    for (std::size_t k = 0; k < n; ++k) cuts.push_back(rng() % (input.size() + 1));
    INFO("random multi-split round " << round);
    check(run_pieces(split_at(input, cuts), max), "multi split");
    check(run_prepare(split_at(input, cuts), max), "multi split via prepare/commit");
  }
}

struct Case {
  const char *name;
  std::string input;
  std::vector<Ev> events;
  std::string last_id = "";
  std::optional<uint64_t> retry = std::nullopt;
  bool too_large = false;
  std::size_t max = kDefaultMaxEventSize;
};

Ev msg(std::string data, std::string id = "", std::optional<uint64_t> retry = std::nullopt) {
  return Ev{"message", std::move(data), std::move(id), retry};
}
Ev typed(std::string type, std::string data, std::string id = "") {
  return Ev{std::move(type), std::move(data), std::move(id), std::nullopt};
}

const std::string FFFD = "\xEF\xBF\xBD";
const std::string BOM = "\xEF\xBB\xBF";

std::string repeat(const std::string &s, std::size_t n) {
  std::string out;
  for (std::size_t i = 0; i < n; ++i) out += s;
  return out;
}

std::string numbered_lines(std::size_t n, const char *prefix, const char *sep) {
  std::string out;
  for (std::size_t i = 0; i < n; ++i) out += prefix + std::to_string(i) + sep;
  return out;
}

std::vector<Case> cases() {
  std::vector<Case> c = {
      // --- fields and values ---
      {"simple data", "data: hello\n\n", {msg("hello")}},
      {"no space after colon", "data:hello\n\n", {msg("hello")}},
      {"only one leading space removed", "data:  two\n\n", {msg(" two")}},
      {"trailing spaces kept", "data: x  \n\n", {msg("x  ")}},
      {"tab is not stripped", "data:\tx\n\n", {msg("\tx")}},
      {"two data lines joined with LF", "data: a\ndata: b\n\n", {msg("a\nb")}},
      {"two events", "data: a\n\ndata: b\n\n", {msg("a"), msg("b")}},
      {"data without colon is empty data", "data\n\n", {msg("")}},
      {"data with colon and no value", "data:\n\n", {msg("")}},
      {"two empty data lines", "data:\ndata:\n\n", {msg("\n")}},
      {"data then empty data", "data: a\ndata:\n\n", {msg("a\n")}},
      {"empty data then data", "data\ndata: a\n\n", {msg("\na")}},
      {"data with single space value", "data: \n\n", {msg("")}},
      {"empty events back to back", "data:\n\ndata\n\n", {msg(""), msg("")}},
      {"colons in the value", "data: a:b:c\n\n", {msg("a:b:c")}},
      {"value starting with colon", "data:: x\n\n", {msg(": x")}},
      {"thousands of data lines", numbered_lines(3000, "data: ", "\n") + "\n", {msg([] {
         std::string s = numbered_lines(3000, "", "\n");
         s.pop_back();
         return s;
       }())}},
      {"thousand events", numbered_lines(1000, "data: ", "\n\n"),
       [] {
         std::vector<Ev> v;
         for (int i = 0; i < 1000; ++i) v.push_back(msg(std::to_string(i)));
         return v;
       }()},
      {"huge data line",
       "data: " + std::string(100000, 'a') + "\n\n",
       {msg(std::string(100000, 'a'))}},
      {"huge comment line", ":" + std::string(100000, 'c') + "\ndata: x\n\n", {msg("x")}},
      {"NUL in data", "data: a\0b\n\n"s, {msg("a\0b"s)}},
      {"NUL as data", "data: \0\n\n"s, {msg("\0"s)}},
      // --- event type ---
      {"event type", "event: foo\ndata: x\n\n", {typed("foo", "x")}},
      {"event type without space", "event:foo\ndata: x\n\n", {typed("foo", "x")}},
      {"empty event type is message", "event: \ndata: x\n\n", {msg("x")}},
      {"event without colon is message", "event\ndata: x\n\n", {msg("x")}},
      {"last event field wins", "event: a\nevent: b\ndata: x\n\n", {typed("b", "x")}},
      {"event after data in block", "data: x\nevent: late\n\n", {typed("late", "x")}},
      {"type reset by block without data", "event: foo\n\ndata: x\n\n", {msg("x")}},
      {"type reset after dispatch",
       "event: foo\ndata: a\n\ndata: b\n\n",
       {typed("foo", "a"), msg("b")}},
      {"NUL in event type", "event: a\0b\ndata: x\n\n"s, {typed("a\0b"s, "x")}},
      {"event type with spaces", "event: a b \ndata: x\n\n", {typed("a b ", "x")}},
      // --- names are case-sensitive; unknown fields ignored ---
      {"mis-cased Event", "Event: foo\ndata: x\n\n", {msg("x")}},
      {"upper-case DATA ignored", "DATA: x\n\n", {}},
      {"Data ignored", "Data: x\n\n", {}},
      {"space before colon makes another name", "data : x\n\n", {}},
      {"leading space makes another name", " data: x\n\n", {}},
      {"unknown field ignored", "foo: bar\ndata: x\n\n", {msg("x")}},
      {"prefix of data is unknown", "dat: x\n\n", {}},
      {"longer name is unknown", "datas: x\n\n", {}},
      {"data without colon but with text", "data x\n\n", {}},
      // --- comments and blank lines ---
      {"comment ignored", ": comment\ndata: x\n\n", {msg("x")}},
      {"bare colon comment", ":\n\n", {}},
      {"comment only block", ": keep-alive\n\n", {}},
      {"comment between data lines", "data: x\n: c\ndata: y\n\n", {msg("x\ny")}},
      {"comment ends no block", "data: x\n:\n: more\n\n", {msg("x")}},
      {"blank lines only", "\n\n\n", {}},
      {"whitespace-only line is a field", "   \n\n", {}},
      {"whitespace-only line does not dispatch", "data: x\n   \n\n", {msg("x")}},
      {"tab-only line", "data: x\n\t\n\n", {msg("x")}},
      // --- end of stream ---
      {"EOF without blank line", "data: x", {}},
      {"EOF after one line end", "data: x\n", {}},
      {"EOF discards only the last event", "data: x\n\ndata: y\n", {msg("x")}},
      {"EOF after CR-terminated data", "data: x\r", {}},
      {"empty stream", "", {}},
      // --- line ends ---
      {"CRLF", "data: x\r\n\r\n", {msg("x")}},
      {"CR", "data: x\r\r", {msg("x")}},
      {"CR joined data", "data: a\rdata: b\r\r", {msg("a\nb")}},
      {"mixed line ends", "data: a\r\ndata: b\ndata: c\r\r\n", {msg("a\nb\nc")}},
      {"LF then CRLF", "data: x\n\r\n", {msg("x")}},
      {"CRLF then LF", "data: x\r\n\n", {msg("x")}},
      {"LF then CR", "data: x\n\r", {msg("x")}},
      {"CRLF then CR", "data: x\r\n\r", {msg("x")}},
      {"CR inside a line splits it", "data: a\rb\n\n", {msg("a")}},
      {"CR CR LF LF", "data: x\r\r\n\n", {msg("x")}},
      {"leading blank CRLFs", "\r\n\r\ndata: x\r\n\r\n", {msg("x")}},
      {"two CRLF events", "data: a\r\n\r\ndata: b\r\r", {msg("a"), msg("b")}},
      {"LF CR CR", "data: x\n\r\r", {msg("x")}},
      {"CR then LF line", "data: a\r\ndata: b\r\n\r\n", {msg("a\nb")}},
      {"CR at EOF dispatches", "data: x\r\r", {msg("x")}},
      {"LF CR LF CR", "data: a\n\r\ndata: b\r\n\r", {msg("a"), msg("b")}},
      // --- BOM ---
      {"leading BOM stripped", BOM + "data: x\n\n", {msg("x")}},
      {"two BOMs: second is part of the name", BOM + BOM + "data: x\n\n", {}},
      {"BOM alone on a line after BOM", BOM + BOM + "\ndata: x\n\n", {msg("x")}},
      {"BOM mid-stream", "data: x\n\n" + BOM + "data: y\n\n", {msg("x")}},
      {"BOM in a value kept", BOM + "data: " + BOM + "\n\n", {msg(BOM)}},
      {"BOM prefix only is invalid UTF-8",
       "\xEF\xBB"
       "data: x\n\n",
       {}},
      {"BOM first byte only",
       "\xEF"
       "data: x\n\n",
       {}},
      {"BOM tail only",
       "\xBB\xBF"
       "data: x\n\n",
       {}},
      {"stream is only a BOM", BOM, {}},
      {"BOM then blank lines", BOM + "\n\ndata: x\n\n", {msg("x")}},
      {"BOM prefix then LF",
       "\xEF\xBB\n"
       "data: x\n\n",
       {msg("x")}},
      // --- id ---
      {"id", "id: 1\ndata: x\n\n", {msg("x", "1")}, "1"},
      {"id in block without data still updates", "id: 1\n\ndata: x\n\n", {msg("x", "1")}, "1"},
      {"id without colon resets",
       "id: 1\ndata: x\n\nid\ndata: y\n\n",
       {msg("x", "1"), msg("y", "")},
       ""},
      {"empty id resets", "id: 1\ndata: x\n\nid:\ndata: y\n\n", {msg("x", "1"), msg("y", "")}, ""},
      {"id with NUL ignored",
       "id: 1\ndata: x\n\nid: a\0b\ndata: y\n\n"s,
       {msg("x", "1"), msg("y", "1")},
       "1"},
      {"id with only NUL ignored", "id: \0\ndata: y\n\n"s, {msg("y", "")}, ""},
      {"id persists", "id: 1\ndata: x\n\ndata: y\n\n", {msg("x", "1"), msg("y", "1")}, "1"},
      {"id of unfinished block not committed", "id: 1\ndata: x", {}, ""},
      {"id of unfinished block after event",
       "id: 1\ndata: x\n\nid: 2\ndata: y\n",
       {msg("x", "1")},
       "1"},
      {"ID mis-cased", "ID: 1\ndata: x\n\n", {msg("x")}, ""},
      {"last id field wins", "id: 1\nid: 2\ndata: x\n\n", {msg("x", "2")}, "2"},
      {"id keeps extra space", "id:  1\ndata: x\n\n", {msg("x", " 1")}, " 1"},
      {"id invalid UTF-8 replaced", "id: \xFF\ndata: x\n\n", {msg("x", FFFD)}, FFFD},
      {"id after data in block", "data: x\nid: 5\n\n", {msg("x", "5")}, "5"},
      {"id with spaces and colons", "id: a:b c\ndata: x\n\n", {msg("x", "a:b c")}, "a:b c"},
      // --- retry ---
      {"retry", "retry: 1000\ndata: x\n\n", {msg("x", "", 1000)}, "", 1000},
      {"retry with letters ignored", "retry: 10a\ndata: x\n\n", {msg("x")}, "", std::nullopt},
      {"negative retry ignored", "retry: -1\ndata: x\n\n", {msg("x")}},
      {"empty retry ignored", "retry: \ndata: x\n\n", {msg("x")}},
      {"retry without colon ignored", "retry\ndata: x\n\n", {msg("x")}},
      {"retry with extra space ignored", "retry:  100\ndata: x\n\n", {msg("x")}},
      {"decimal retry ignored", "retry: 1.5\ndata: x\n\n", {msg("x")}},
      {"retry trailing space ignored", "retry: 15 \ndata: x\n\n", {msg("x")}},
      {"retry in block without data", "retry: 100\n\ndata: x\n\n", {msg("x")}, "", 100},
      {"retry max uint64",
       "retry: 18446744073709551615\ndata: x\n\n",
       {msg("x", "", UINT64_MAX)},
       "",
       UINT64_MAX},
      {"retry overflow ignored", "retry: 18446744073709551616\ndata: x\n\n", {msg("x")}},
      {"retry zero", "retry: 0\ndata: x\n\n", {msg("x", "", 0)}, "", 0},
      {"bad retry keeps earlier", "retry: 5\nretry: x\ndata: y\n\n", {msg("y", "", 5)}, "", 5},
      {"Retry mis-cased", "Retry: 5\ndata: x\n\n", {msg("x")}},
      {"retry leading zeros", "retry: 007\ndata: x\n\n", {msg("x", "", 7)}, "", 7},
      {"retry non-ASCII digits ignored", "retry: \xD9\xA1\xD9\xA2\ndata: x\n\n", {msg("x")}},
      {"retry only in its block",
       "retry: 9\ndata: a\n\ndata: b\n\n",
       {msg("a", "", 9), msg("b")},
       "",
       9},
      // --- UTF-8 ---
      {"valid multi-byte",
       "data: h\xC3\xA9llo \xE2\x82\xAC \xF0\x9D\x84\x9E\n\n",
       {msg("h\xC3\xA9llo \xE2\x82\xAC \xF0\x9D\x84\x9E")}},
      {"invalid byte FF", "data: \xFF\n\n", {msg(FFFD)}},
      {"overlong 2-byte", "data: \xC0\xAF\n\n", {msg(FFFD + FFFD)}},
      {"overlong C1", "data: \xC1\xBF\n\n", {msg(FFFD + FFFD)}},
      {"overlong 3-byte", "data: \xE0\x80\xAF\n\n", {msg(FFFD + FFFD + FFFD)}},
      {"overlong 4-byte", "data: \xF0\x80\x80\x80\n\n", {msg(repeat(FFFD, 4))}},
      {"surrogate", "data: \xED\xA0\x80\n\n", {msg(repeat(FFFD, 3))}},
      {"above U+10FFFF", "data: \xF4\x90\x80\x80\n\n", {msg(repeat(FFFD, 4))}},
      {"F5 lead", "data: \xF5\x80\n\n", {msg(FFFD + FFFD)}},
      {"truncated 3-byte at line end", "data: \xE2\x82\n\n", {msg(FFFD)}},
      {"truncated 3-byte then ASCII", "data: \xE2\x82x\n\n", {msg(FFFD + "x")}},
      {"truncated 4-byte", "data: \xF0\x9F\x98\n\n", {msg(FFFD)}},
      {"emoji then lone lead", "data: \xF0\x9F\x98\x80\xF0\n\n", {msg("\xF0\x9F\x98\x80" + FFFD)}},
      {"lone continuations", "data: \x80\x80\n\n", {msg(FFFD + FFFD)}},
      {"sequence split by line end",
       "data: a\xE2\x82\ndata: \xAC\n\n",
       {msg("a" + FFFD + "\n" + FFFD)}},
      {"truncated before CRLF", "data: \xE2\x82\r\n\r\n", {msg(FFFD)}},
      {"no-break space", "data: \xC2\xA0\n\n", {msg("\xC2\xA0")}},
      {"non-ASCII field name", "dat\xC3\xA1: x\n\n", {}},
      {"invalid field name",
       "\xFF"
       "data: x\n\n",
       {}},
      {"three invalid bytes", "data:\xFF\xFE\xFD\n\n", {msg(repeat(FFFD, 3))}},
      {"real U+FFFD kept", "data: \xEF\xBF\xBD\n\n", {msg(FFFD)}},
      {"U+10000", "data: \xF0\x90\x80\x80\n\n", {msg("\xF0\x90\x80\x80")}},
      {"U+10FFFF", "data: \xF4\x8F\xBF\xBF\n\n", {msg("\xF4\x8F\xBF\xBF")}},
      {"U+D7FF", "data: \xED\x9F\xBF\n\n", {msg("\xED\x9F\xBF")}},
      {"U+E000", "data: \xEE\x80\x80\n\n", {msg("\xEE\x80\x80")}},
      {"truncated 3-byte at U+0800", "data: \xE0\xA0\n\n", {msg(FFFD)}},
      {"truncated 4-byte at U+10000", "data: \xF0\x90\x80\n\n", {msg(FFFD)}},
      {"invalid in second data line", "data: ok\ndata: \xC3\n\n", {msg("ok\n" + FFFD)}},
      {"invalid event type", "event: \xC3(\ndata: x\n\n", {typed(FFFD + "(", "x")}},
      {"long valid non-ASCII line",
       "data: " + repeat("\xD0\xB6", 5000) + "\n\n",
       {msg(repeat("\xD0\xB6", 5000))}},
      {"long line with one invalid byte",
       "data: " + std::string(3000, 'a') + "\x80" + "b\n\n",
       {msg(std::string(3000, 'a') + FFFD + "b")}},
      // --- size cap (max_event_size = 10 unless said) ---
      {"line exactly at the cap", "data: 0123\n\n", {msg("0123")}, "", {}, false, 10},
      {"line one over the cap", "data: 01234\n\n", {}, "", {}, true, 10},
      {"event before an oversize line",
       "data: a\n\ndata: 0123456789\n\n",
       {msg("a")},
       "",
       {},
       true,
       10},
      {"data accumulates to the cap", "data: 01\ndata: 01\ndata: 01\n\n", {}, "", {}, true, 10},
      {"data within the cap", "data: 0\ndata: 1\n\n", {msg("0\n1")}, "", {}, false, 10},
      {"comment over the cap", ": 123456789\n\n", {}, "", {}, true, 10},
      {"unterminated line over the cap", "data: 01234", {}, "", {}, true, 10},
      {"replacement grows data over the cap", "data: \xFF\xFF\xFF\xFF\n\n", {}, "", {}, true, 10},
      {"cap is per event",
       "data: 0123\n\ndata: 0123\n\n",
       {msg("0123"), msg("0123")},
       "",
       {},
       false,
       10},
      {"event line over the cap", "event: 0123\ndata: x\n\n", {}, "", {}, true, 10},
      {"nothing after the cap", "data: 0123456789\n\ndata: a\n\n", {}, "", {}, true, 10},
  };
  return c;
}

}  // namespace

TEST_CASE("the case table has at least 80 streams", "[sse]") {
  REQUIRE(cases().size() >= 80);
}

TEST_CASE("parser: data-driven cases, whole, byte by byte and at every split", "[sse]") {
  for (const Case &k : cases()) {
    SECTION(k.name) {
      Outcome expected{k.events, k.too_large, k.last_id, k.retry};
      // The table is the specification; the reference model must agree with it too.
      Outcome ref = sse_test::reference_parse(k.input, k.max);
      INFO("reference: " << describe(ref));
      CHECK(ref.events == expected.events);
      CHECK(ref.too_large == expected.too_large);
      CHECK(ref.last_id == expected.last_id);
      CHECK(ref.retry == expected.retry);
      grind(k.input, expected, k.max);
    }
  }
}

TEST_CASE("parser: default type, id and retry of a plain event", "[sse]") {
  Parser p;
  p.feed("data: x\n\n");
  Event ev;
  REQUIRE(p.next(ev) == Parser::Result::Event);
  CHECK(ev.type == "message");
  CHECK(ev.data == "x");
  CHECK(ev.id == "");
  CHECK_FALSE(ev.retry.has_value());
  CHECK(p.next(ev) == Parser::Result::NeedMore);
  CHECK_FALSE(p.retry().has_value());
  CHECK(p.last_event_id() == "");
  CHECK(p.max_event_size() == kDefaultMaxEventSize);
}

TEST_CASE("parser: an event is available as soon as its blank line arrives", "[sse]") {
  Parser p;
  Event ev;
  p.feed("data: x\n");
  CHECK(p.next(ev) == Parser::Result::NeedMore);
  p.feed("\r");  // a CR at the end of the input ends the line without waiting for a LF
  REQUIRE(p.next(ev) == Parser::Result::Event);
  CHECK(ev.data == "x");
  p.feed("\ndata: y\n\n");  // that LF belongs to the CR: no extra blank line
  REQUIRE(p.next(ev) == Parser::Result::Event);
  CHECK(ev.data == "y");
  CHECK(p.next(ev) == Parser::Result::NeedMore);
}

TEST_CASE("parser: buffered() counts bytes not yet consumed", "[sse]") {
  Parser p;
  Event ev;
  p.feed("data: a\n\ndata: b");
  CHECK(p.buffered() == 16);
  REQUIRE(p.next(ev) == Parser::Result::Event);
  CHECK(p.buffered() == 7);
  CHECK(p.next(ev) == Parser::Result::NeedMore);
  CHECK(p.buffered() == 7);  // the partial line stays buffered
}

TEST_CASE("parser: reset discards the partial event and keeps id and retry", "[sse]") {
  Parser p;
  Event ev;
  p.feed("id: 7\nretry: 300\ndata: a\n\nid: 8\nevent: t\ndata: partial\ndata: more");
  REQUIRE(p.next(ev) == Parser::Result::Event);
  CHECK(ev.id == "7");
  CHECK(p.next(ev) == Parser::Result::NeedMore);
  p.reset();
  CHECK(p.buffered() == 0);
  CHECK(p.last_event_id() == "7");
  CHECK(p.retry() == std::optional<uint64_t>(300));
  // A new stream: a BOM is stripped again; the unfinished block's id/type/data are gone.
  p.feed(BOM + "data: b\n\n");
  REQUIRE(p.next(ev) == Parser::Result::Event);
  CHECK(ev.type == "message");
  CHECK(ev.data == "b");
  CHECK(ev.id == "7");
  CHECK_FALSE(ev.retry.has_value());
}

TEST_CASE("parser: reset drops a pending CR so a LF starts a blank line", "[sse]") {
  Parser p;
  Event ev;
  p.feed("data: a\r");
  CHECK(p.next(ev) == Parser::Result::NeedMore);
  p.reset();
  p.feed("data: b\n\n");
  REQUIRE(p.next(ev) == Parser::Result::Event);
  CHECK(ev.data == "b");
  p.reset();
  p.feed("data: c\r");
  CHECK(p.next(ev) == Parser::Result::NeedMore);
  p.reset();
  p.feed("\ndata: d\n\n");  // the LF is a blank line of the new stream, not part of the CR
  REQUIRE(p.next(ev) == Parser::Result::Event);
  CHECK(ev.data == "d");
}

TEST_CASE("parser: TooLarge is sticky until reset", "[sse]") {
  Parser p(16);
  Event ev;
  p.feed("data: ok\n\ndata: " + std::string(100, 'x') + "\n\ndata: later\n\n");
  REQUIRE(p.next(ev) == Parser::Result::Event);
  CHECK(ev.data == "ok");
  CHECK(p.next(ev) == Parser::Result::TooLarge);
  CHECK(p.next(ev) == Parser::Result::TooLarge);
  p.feed("data: more\n\n");
  CHECK(p.next(ev) == Parser::Result::TooLarge);
  p.reset();
  p.feed("data: again\n\n");
  REQUIRE(p.next(ev) == Parser::Result::Event);
  CHECK(ev.data == "again");
}

TEST_CASE("parser: a line that never ends stops at the cap with bounded memory", "[sse]") {
  const std::size_t max = 1u << 20;
  Parser p(max);
  Event ev;
  std::string chunk(16384, 'x');
  std::size_t fed = 0;
  Parser::Result r = Parser::Result::NeedMore;
  p.feed("data: ");
  while (fed < 64 * max && r == Parser::Result::NeedMore) {
    p.feed(chunk);
    fed += chunk.size();
    r = p.next(ev);
  }
  CHECK(r == Parser::Result::TooLarge);
  CHECK(fed <= max + chunk.size());
  CHECK(ParserProbe::capacity(p) <= 2 * (max + chunk.size()));
}

TEST_CASE("parser: endless data lines stop at the cap", "[sse]") {
  const std::size_t max = 1u << 16;
  Parser p(max);
  Event ev;
  std::size_t fed = 0;
  Parser::Result r = Parser::Result::NeedMore;
  while (fed < 64 * max && r == Parser::Result::NeedMore) {
    p.feed("data: 0123456789\n");
    fed += 17;
    r = p.next(ev);
  }
  CHECK(r == Parser::Result::TooLarge);
  CHECK(fed <= max * 17 / 11 + 64);
}

TEST_CASE("parser: memory stays bounded over a long stream", "[sse]") {
  Parser p;
  Event ev;
  std::string piece;
  while (piece.size() < 16384) piece += "data: {\"x\":" + std::to_string(piece.size()) + "}\n\n";
  std::size_t events = 0;
  for (int i = 0; i < 2000; ++i) {  // ~32 MB
    p.feed(piece);
    while (p.next(ev) == Parser::Result::Event) ++events;
  }
  CHECK(events > 2000 * 500);
  CHECK(ParserProbe::capacity(p) <= 4 * piece.size());
}

// Linearity: count the bytes the parser scans, copies and moves (not time).
TEST_CASE("parser: a huge line fed one byte at a time costs a constant times one feed", "[sse]") {
  const std::size_t n = 4u << 20;
  std::string stream = "data: " + std::string(n, 'y') + "\n\n";
  Parser whole;
  Event ev;
  whole.feed(stream);
  REQUIRE(whole.next(ev) == Parser::Result::Event);
  REQUIRE(ev.data.size() == n);
  uint64_t work_whole = ParserProbe::work(whole);

  Parser bytes;
  std::size_t got = 0;
  for (char c : stream) {
    bytes.feed(std::string_view(&c, 1));
    while (bytes.next(ev) == Parser::Result::Event) got += ev.data.size();
  }
  REQUIRE(got == n);
  uint64_t work_bytes = ParserProbe::work(bytes);
  INFO("work whole " << work_whole << ", byte by byte " << work_bytes);
  CHECK(work_whole <= 3 * stream.size());
  CHECK(work_bytes <= 5 * stream.size());
}

TEST_CASE("parser: many data lines fed one byte at a time stay linear", "[sse]") {
  std::string stream = numbered_lines(200000, "data: ", "\n") + "\n";
  Parser p;
  Event ev;
  std::size_t events = 0;
  for (std::size_t i = 0; i < stream.size(); i += 3) {
    p.feed(std::string_view(stream).substr(i, 3));
    while (p.next(ev) == Parser::Result::Event) ++events;
  }
  CHECK(events == 1);
  CHECK(ParserProbe::work(p) <= 6 * stream.size());
}

TEST_CASE("parser: prepare returns at least the requested room", "[sse]") {
  Parser p;
  for (std::size_t want : {std::size_t{1}, std::size_t{100}, std::size_t{70000}}) {
    std::span<char> room = p.prepare(want);
    CHECK(room.size() >= want);
    p.commit(0);
  }
  std::span<char> room = p.prepare(9);
  std::memcpy(room.data(), "data: z\n\n", 9);
  p.commit(9);
  Event ev;
  REQUIRE(p.next(ev) == Parser::Result::Event);
  CHECK(ev.data == "z");
}

TEST_CASE("parser: event views survive parsing up to the next call", "[sse]") {
  Parser p;
  Event a;
  p.feed("event: t1\ndata: one\ndata: two\nid: i\n\nevent: t2\ndata: three\n\n");
  REQUIRE(p.next(a) == Parser::Result::Event);
  std::string type(a.type), data(a.data), id(a.id);
  CHECK(type == "t1");
  CHECK(data == "one\ntwo");
  CHECK(id == "i");
  Event b;
  REQUIRE(p.next(b) == Parser::Result::Event);
  CHECK(b.type == "t2");
  CHECK(b.data == "three");
}

// --- randomized differential test against the reference model ---

namespace {

std::string random_stream(std::mt19937 &rng) {
  static const char *names[] = {"data", "data", "data", "event", "id",  "retry", "Data",
                                "dat",  "",     "ID",   "datas", "foo", " data"};
  static const char *seps[] = {": ", ":", ":  ", "", ": ", ":"};
  static const char *ends[] = {"\n", "\n", "\r\n", "\r"};
  static const std::string pieces[] = {"a",
                                       "Z",
                                       " ",
                                       ":",
                                       "0",
                                       "9",
                                       "42",
                                       "\0"s,
                                       "\xC3\xA9",
                                       "\xE2\x82\xAC",
                                       "\xF0\x9F\x98\x80",
                                       BOM,
                                       "\xFF",
                                       "\xC3",
                                       "\xE2\x82",
                                       "\xED\xA0\x80",
                                       "\x80",
                                       "\xF4\x90",
                                       "\xC0\xAF",
                                       "\r",
                                       "\n"};
  std::string s;
  if (rng() % 4 == 0) s += BOM;
  int lines = static_cast<int>(rng() % 24);
  for (int i = 0; i < lines; ++i) {
    unsigned kind = rng() % 10;
    if (kind == 0) {
      s += ends[rng() % 4];  // blank line
      continue;
    }
    if (kind == 1) s += ":";  // comment
    s += names[rng() % (sizeof names / sizeof *names)];
    s += seps[rng() % (sizeof seps / sizeof *seps)];
    int n = static_cast<int>(rng() % 6);
    for (int k = 0; k < n; ++k) {
      // Mostly ordinary value bytes; now and then an embedded line end.
      const std::string &p = pieces[rng() % (sizeof pieces / sizeof *pieces)];
      if ((p == "\r" || p == "\n") && rng() % 3 != 0) continue;
      s += p;
    }
    if (rng() % 8 == 0) s += std::to_string(rng());
    s += ends[rng() % 4];
    if (rng() % 3 == 0) s += ends[rng() % 4];
  }
  return s;
}

}  // namespace

TEST_CASE("parser: randomized differential test against the reference model", "[sse]") {
  std::mt19937 rng(20240603);
  int mismatches = 0;
  for (int i = 0; i < 4000; ++i) {
    std::string s = random_stream(rng);
    std::size_t max = (i % 3 == 0) ? 8 + rng() % 40 : kDefaultMaxEventSize;
    Outcome ref = sse_test::reference_parse(s, max);
    std::vector<std::size_t> cuts;
    std::size_t ncuts = rng() % 5;
    for (std::size_t k = 0; k < ncuts; ++k) cuts.push_back(rng() % (s.size() + 1));
    Outcome whole = run_pieces({s}, max);
    Outcome split = run_pieces(split_at(s, cuts), max);
    Outcome prep = run_prepare(split_at(s, cuts), max);
    if (!(whole == ref && split == ref && prep == ref)) {
      ++mismatches;
      if (mismatches <= 3) {
        std::string esc;
        for (unsigned char ch : s) {
          char buf[8];
          std::snprintf(buf, sizeof buf, (ch < 32 || ch > 126) ? "\\x%02X" : "%c", ch);
          esc += buf;
        }
        INFO("stream #" << i << ": " << esc << " max=" << max);
        INFO("reference: " << describe(ref));
        INFO("whole:     " << describe(whole));
        INFO("split:     " << describe(split));
        CHECK(whole == ref);
        CHECK(split == ref);
        CHECK(prep == ref);
      }
    }
  }
  CHECK(mismatches == 0);
}

TEST_CASE("parser: differential test on byte-by-byte feeding", "[sse]") {
  std::mt19937 rng(777);
  for (int i = 0; i < 500; ++i) {
    std::string s = random_stream(rng);
    Outcome ref = sse_test::reference_parse(s, kDefaultMaxEventSize);
    INFO("stream #" << i);
    REQUIRE(run_pieces(bytewise(s), kDefaultMaxEventSize) == ref);
  }
}

// libFuzzer target for ResponseReader: the same result whether the response is fed whole or
// split at fuzzer-chosen points (state, error, head, body bytes, bytes consumed); nothing
// crashes or leaks under ASan/UBSan.
#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>
#include <string_view>
#include <vector>

#include "http/response_reader.hpp"

namespace {

using levhttp::http::ResponseReader;
using State = ResponseReader::State;

void require(bool ok) {
  if (!ok) abort();
}

struct Outcome {
  State state;
  std::string error, body, reason;
  int status = 0;
  std::vector<std::pair<std::string, std::string>> headers;
  size_t consumed = 0;
};

Outcome drive(std::string_view input, const std::vector<size_t> &cuts, bool no_body, bool eof) {
  Outcome o;
  ResponseReader r([&](std::string_view b) { o.body.append(b); }, no_body);
  std::string buffered;
  size_t prev = 0;
  std::vector<size_t> ends = cuts;
  ends.push_back(input.size());
  for (size_t end : ends) {
    buffered.append(input.substr(prev, end - prev));
    prev = end;
    while (!buffered.empty() && (r.state() == State::Head || r.state() == State::Body)) {
      State before = r.state();
      size_t body_before = o.body.size();
      size_t n = r.feed(buffered);
      require(n <= buffered.size());
      // feed() returns right after the head: no body byte in the same call.
      if (before == State::Head && r.state() == State::Body) require(o.body.size() == body_before);
      buffered.erase(0, n);
      o.consumed += n;
      if (n == 0) {
        require(r.state() == State::Done || r.state() == State::Error);
        break;
      }
    }
  }
  if (eof && (r.state() == State::Head || r.state() == State::Body)) {
    State s = r.finish();
    require(s == State::Done || s == State::Error);
  }
  o.state = r.state();
  o.error = r.error();
  require(o.error.empty() == (o.state != State::Error));
  if (o.state != State::Head) {
    o.status = r.head().status;
    o.reason = r.head().reason;
    o.headers = r.head().headers;
  }
  return o;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  if (size < 3) return 0;
  const bool no_body = data[0] & 1;
  const bool eof = data[0] & 2;
  std::string_view input(reinterpret_cast<const char *>(data + 3), size - 3);
  size_t a = ((size_t(data[1]) << 8) | data[2]) % (input.size() + 1);
  size_t b = (a * 7 + 13) % (input.size() + 1);
  std::vector<size_t> one{a}, two{std::min(a, b), std::max(a, b)};
  Outcome whole = drive(input, {}, no_body, eof);
  for (const auto &cuts : {one, two}) {
    Outcome split = drive(input, cuts, no_body, eof);
    require(split.state == whole.state);
    require(split.error == whole.error);
    require(split.body == whole.body);
    require(split.status == whole.status && split.reason == whole.reason);
    require(split.headers == whole.headers);
    if (whole.state != State::Error) require(split.consumed == whole.consumed);
  }
  return 0;
}

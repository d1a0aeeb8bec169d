// Benchmark of levhttp::sse::Parser: throughput for (a) OpenAI-shaped ~230-byte events,
// (b) 1 MB events and (c) tiny `data: N` events, each stream fed in 16 KiB pieces through
// feed() and drained with next(); plus one 16 MB line fed one byte at a time vs at once.
// Prints the median of 5 runs. Numbers only: never a pass/fail test.
#include <algorithm>
#include <cstdio>
#include <ctime>
#include <string>
#include <vector>

#include "sse/parser.hpp"

using levhttp::sse::Event;
using levhttp::sse::Parser;

namespace {

// Thread CPU time, not wall time: the machine is shared (2 cores, other builds running), and
// time spent descheduled says nothing about the parser.
double now() {
  timespec ts;
  clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
  return static_cast<double>(ts.tv_sec) + static_cast<double>(ts.tv_nsec) * 1e-9;
}

std::string openai_stream(std::size_t target) {
  static const char *words[] = {" dog",   " the",  " quick", " brown", " fox",
                                " jumps", " over", " lazy",  ",",      "."};
  std::string s;
  for (std::size_t i = 0; s.size() < target; ++i) {
    s += "data: {\"id\":\"chatcmpl-9xQ2mZr7kHc1aBv3LpT8sYw4\",\"object\":\"chat.completion.chunk\","
         "\"created\":1717171717,\"model\":\"gpt-4o-2024-05-13\",\"system_fingerprint\":"
         "\"fp_4d5e6f\",\"choices\":[{\"index\":0,\"delta\":{\"content\":\"";
    s += words[i % 10];
    s += "\"},\"logprobs\":null,\"finish_reason\":null}]}\n\n";
  }
  return s;
}

std::string big_event_stream(std::size_t target, std::size_t event_size) {
  std::string payload(event_size, 'x');
  for (std::size_t i = 0; i < payload.size(); i += 61) payload[i] = static_cast<char>('a' + i % 26);
  std::string s;
  while (s.size() < target) s += "data: " + payload + "\n\n";
  return s;
}

std::string tiny_stream(std::size_t target) {
  std::string s;
  for (std::size_t i = 0; s.size() < target; ++i) s += "data: " + std::to_string(i % 1000) + "\n\n";
  return s;
}

struct Run {
  double seconds;
  std::size_t events;
};

Run parse_in_pieces(const std::string &stream, std::size_t piece) {
  Parser p;
  Event ev;
  std::size_t events = 0, sink = 0;
  double t0 = now();
  for (std::size_t i = 0; i < stream.size(); i += piece) {
    p.feed(std::string_view(stream).substr(i, piece));
    while (p.next(ev) == Parser::Result::Event) {
      ++events;
      sink += ev.data.size();
    }
  }
  double t = now() - t0;
  if (sink == 0) std::puts("");  // keep the loop observable
  return {t, events};
}

double median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return v[v.size() / 2];
}

void report(const char *name, const std::string &stream, int repeat_inside) {
  std::vector<double> secs;
  std::size_t events = 0;
  for (int run = 0; run < 5; ++run) {
    double total = 0;
    for (int k = 0; k < repeat_inside; ++k) {
      Run r = parse_in_pieces(stream, 16384);
      total += r.seconds;
      events = r.events;
    }
    secs.push_back(total / repeat_inside);
  }
  double t = median(secs);
  std::printf("%-28s %7.0f MB/s %12.0f events/s  (%zu bytes, %zu events)\n", name,
              stream.size() / t / 1e6, events / t, stream.size(), events);
}

void huge_line() {
  const std::size_t n = 16u << 20;
  std::string stream = "data: " + std::string(n, 'z') + "\n\n";
  std::vector<double> once, bytewise;
  for (int run = 0; run < 5; ++run) {
    Event ev;
    std::size_t got = 0;
    {
      Parser p(2 * n);  // above the 16 MiB default
      double t0 = now();
      p.feed(stream);
      while (p.next(ev) == Parser::Result::Event) got += ev.data.size();
      once.push_back(now() - t0);
    }
    {
      Parser p(2 * n);  // above the 16 MiB default
      double t0 = now();
      for (char c : stream) {
        p.feed(std::string_view(&c, 1));
        while (p.next(ev) == Parser::Result::Event) got += ev.data.size();
      }
      bytewise.push_back(now() - t0);
    }
    if (got != 2 * n) std::printf("unexpected size %zu\n", got);
  }
  double a = median(once), b = median(bytewise);
  std::printf("16 MB line at once                 %8.2f ms  (%.0f MB/s)\n", a * 1e3,
              stream.size() / a / 1e6);
  std::printf("16 MB line one byte per feed       %8.2f ms  (%.2f ns/byte)\n", b * 1e3,
              b / stream.size() * 1e9);
  std::printf("ratio byte-by-byte / at once       %8.1f\n", b / a);
}

}  // namespace

int main() {
  std::printf("median of 5 runs (thread CPU time), 16 KiB feeds\n");
  report("(a) OpenAI-shaped events", openai_stream(32u << 20), 4);
  report("(b) 1 MB events", big_event_stream(32u << 20, 1u << 20), 4);
  report("(c) tiny `data: N` events", tiny_stream(32u << 20), 4);
  huge_line();
  return 0;
}

// libFuzzer target for the request builder: a request built from fuzzed method, headers,
// body and Last-Event-ID that validate() accepts never carries a CR or LF inside a header
// line (the output is parsed back line by line), every header line is "token: value", the
// framing matches the body, and llhttp (strict, as a server would) parses it back with the
// same method, target and body.
#include <fuzzer/FuzzedDataProvider.h>
#include <llhttp.h>

#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>
#include <string_view>

#include "http/request.hpp"
#include <algorithm>
#include <cstdio>

namespace {

void require(bool ok) {
  if (!ok) abort();
}

bool is_tchar(char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
         std::string_view("!#$%&'*+-.^_`|~").find(c) != std::string_view::npos;
}

struct Parsed {
  std::string url, body;
  bool complete = false;
};

int on_url(llhttp_t *p, const char *at, size_t len) {
  static_cast<Parsed *>(p->data)->url.append(at, len);
  return 0;
}
int on_body(llhttp_t *p, const char *at, size_t len) {
  static_cast<Parsed *>(p->data)->body.append(at, len);
  return 0;
}
int on_complete(llhttp_t *p) {
  static_cast<Parsed *>(p->data)->complete = true;
  return HPE_PAUSED;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  using namespace levhttp::http;
  FuzzedDataProvider in(data, size);
  Request req;
  const char *urls[] = {"http://h/", "https://u:p@[::1]:8443/a?b", "http://x.example:81/p%20q"};
  require(!parse_url(urls[in.ConsumeIntegralInRange<int>(0, 2)], req.url).has_value());
  req.method = in.ConsumeRandomLengthString(16);
  int n = in.ConsumeIntegralInRange<int>(0, 8);
  for (int i = 0; i < n; ++i) {
    HeaderOverride h;
    h.name = in.ConsumeRandomLengthString(24);
    if (in.ConsumeBool()) h.value = in.ConsumeRandomLengthString(64);
    req.headers.push_back(h);
  }
  if (in.ConsumeBool()) req.body = in.ConsumeRandomLengthString(64);
  req.last_event_id = in.ConsumeRandomLengthString(16);
  if (validate(req)) return 0;

  const std::string out = build(req);
  const size_t end = out.find("\r\n\r\n");
  require(end != std::string::npos);
  // Line by line: CRLF-terminated lines, no other CR or LF inside.
  std::string_view head(out.data(), end + 2);
  size_t pos = 0, lines = 0;
  bool has_length = false;
  while (pos < head.size()) {
    size_t eol = head.find("\r\n", pos);
    require(eol != std::string_view::npos);
    std::string_view line = head.substr(pos, eol - pos);
    require(line.find('\r') == std::string_view::npos && line.find('\n') == std::string_view::npos);
    if (lines == 0) {
      require(line == req.method + " " + req.url.target + " HTTP/1.1");
    } else {
      size_t colon = line.find(": ");
      require(colon != std::string_view::npos && colon > 0);
      for (char c : line.substr(0, colon)) require(is_tchar(c));
      std::string_view name = line.substr(0, colon);
      if (name == "Content-Length") {
        require(!has_length && req.body &&
                line.substr(colon + 2) == std::to_string(req.body->size()));
        has_length = true;
      }
    }
    ++lines;
    pos = eol + 2;
  }
  require(has_length == req.body.has_value());
  require(out.substr(end + 4) == req.body.value_or(""));

  // A strict HTTP/1.1 server parser reads the same request.
  llhttp_settings_t settings;
  llhttp_settings_init(&settings);
  settings.on_url = on_url;
  settings.on_body = on_body;
  settings.on_message_complete = on_complete;
  llhttp_t parser;
  llhttp_init(&parser, HTTP_REQUEST, &settings);
  Parsed parsed;
  parser.data = &parsed;
  llhttp_errno_t err = llhttp_execute(&parser, out.data(), out.size());
  // llhttp knows a fixed list of methods: a valid token it does not know is not our bug. And
  // it reads a request line starting with "PRI" as the HTTP/2 connection preface, which a
  // "PRI <target> HTTP/1.1" request is not.
  // (llhttp also knows RTSP methods such as SETUP and refuses them with HTTP/1.1.)
  if (err == HPE_INVALID_METHOD) return 0;
  if (err == HPE_INVALID_CONSTANT && std::string_view(llhttp_get_error_reason(&parser)) ==
                                         "Invalid method for HTTP/x.x request")
    return 0;
  if (req.method == "PRI") return 0;
  // Strict llhttp also rejects obs-text (bytes >= 0x80) in header values, which RFC 9110
  // allows and the builder passes through (UTF-8 in a custom header, say).
  auto obs_text = [](const std::string &v) {
    return std::any_of(v.begin(), v.end(),
                       [](char c) { return static_cast<unsigned char>(c) >= 0x80; });
  };
  if (obs_text(req.last_event_id)) return 0;
  for (const auto &h : req.headers)
    if (h.value && obs_text(*h.value)) return 0;
  if (!(err == HPE_PAUSED && parsed.complete))
    fprintf(stderr, "llhttp: %s / %s\n%s\n", llhttp_errno_name(err), llhttp_get_error_reason(&parser), out.c_str());
  require(err == HPE_PAUSED && parsed.complete);
  require(llhttp_get_error_pos(&parser) == out.data() + out.size());
  require(parsed.url == req.url.target);
  require(parsed.body == req.body.value_or(""));
  return 0;
}

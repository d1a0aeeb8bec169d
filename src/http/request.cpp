// http/request.cpp: validate() and build() for the request the client sends (contract in
// request.hpp).
//
// The header list is built in two steps:
//   1. the defaults, in this order: Host, User-Agent, Accept, Cache-Control, Accept-Encoding,
//      then with a body Content-Type and Content-Length, then Authorization (only when the URL
//      has user information) and Last-Event-ID (only when last_event_id is not empty);
//   2. the caller's headers, in the caller's order: a name equal to a default's
//      (case-insensitively) replaces that default in place, with the caller's spelling of the
//      name (the last such caller header wins); a removal (nullopt) drops the default and is a
//      no-op for any other name; every other caller header is appended.
// Content-Length belongs to the library: it is sent exactly when there is a body (an empty
// body sends "Content-Length: 0"), its value is the body's size, and any caller
// Content-Length header (value or removal) is ignored, so the framing of what we send can
// never disagree with the bytes we send. Header values may not contain CR, LF, NUL (they
// could split the request) nor other control characters except HTAB (RFC 9110 5.5). The body is never chunk-encoded, so validate()
// rejects a caller Transfer-Encoding header instead of sending a request a server would
// misread.
#include "http/request.hpp"

#include <cstddef>

#ifndef LEVHTTP_VERSION
#error "LEVHTTP_VERSION must be defined by the build (CMake does)"
#endif

namespace levhttp::http {
namespace {

char to_lower(char c) {
  return (c >= 'A' && c <= 'Z') ? static_cast<char>(c - 'A' + 'a') : c;
}

bool iequals(std::string_view a, std::string_view b) {
  if (a.size() != b.size()) return false;
  for (std::size_t i = 0; i < a.size(); ++i)
    if (to_lower(a[i]) != to_lower(b[i])) return false;
  return true;
}

// RFC 9110 5.6.2: tchar = "!" / "#" / "$" / "%" / "&" / "'" / "*" / "+" / "-" / "." /
//                         "^" / "_" / "`" / "|" / "~" / DIGIT / ALPHA
bool is_tchar(char c) {
  if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9')) return true;
  switch (c) {
    case '!':
    case '#':
    case '$':
    case '%':
    case '&':
    case '\'':
    case '*':
    case '+':
    case '-':
    case '.':
    case '^':
    case '_':
    case '`':
    case '|':
    case '~':
      return true;
    default:
      return false;
  }
}

bool is_token(std::string_view s) {
  if (s.empty()) return false;
  for (char c : s)
    if (!is_tchar(c)) return false;
  return true;
}

bool has_crlf_nul(std::string_view s) {
  return s.find_first_of(std::string_view("\r\n\0", 3)) != std::string_view::npos;
}

// The text quoted in an error message, with control and non-ASCII bytes escaped (\xHH) so
// the message itself stays one printable line.
std::string quoted(std::string_view s) {
  static const char hex[] = "0123456789ABCDEF";
  std::string out = "'";
  for (unsigned char c : s) {
    if (c < 0x20 || c >= 0x7f) {
      out += "\\x";
      out += hex[c >> 4];
      out += hex[c & 15];
    } else {
      out += static_cast<char>(c);
    }
  }
  out += "'";
  return out;
}

struct Field {
  std::string name, value;
};

}  // namespace

std::optional<std::string> validate_method(std::string_view method) {
  if (method.empty()) return std::string("empty method");
  if (has_crlf_nul(method)) return "method " + quoted(method) + " contains CR, LF or NUL";
  if (!is_token(method)) return "method " + quoted(method) + " is not a token";
  return std::nullopt;
}

std::optional<std::string> validate_header(std::string_view name, std::string_view value) {
  if (name.empty()) return std::string("empty header name");
  if (has_crlf_nul(name)) return "header name " + quoted(name) + " contains CR, LF or NUL";
  if (!is_token(name)) return "header name " + quoted(name) + " is not a token";
  if (has_crlf_nul(value)) return "header " + quoted(name) + " value contains CR, LF or NUL";
  // RFC 9110 5.5: a field value is visible characters, obs-text, SP and HTAB; other control
  // characters cannot split a request, but a server may reject it (400), so say so here.
  for (unsigned char c : value)
    if ((c < 0x20 && c != '\t') || c == 0x7f)
      return "header " + quoted(name) + " value contains a control character";
  return std::nullopt;
}

std::optional<std::string> validate(const Request &req) {
  if (auto err = validate_method(req.method)) return err;
  // The target normally comes from parse_url(), which already excludes these; checked again
  // because a request line is split by them.
  if (req.url.target.empty()) return std::string("empty request target");
  for (unsigned char c : req.url.target)
    if (c <= 0x20 || c >= 0x7f)
      return "request target " + quoted(req.url.target) +
             " contains whitespace, control or non-ASCII bytes";
  for (const auto &h : req.headers) {
    if (h.value) {
      if (auto err = validate_header(h.name, *h.value)) return err;
    } else {
      if (auto err = validate_header(h.name, "")) return err;
    }
    if (iequals(h.name, "Transfer-Encoding") && h.value)
      return std::string(
          "header 'Transfer-Encoding' is not supported (the body is sent with Content-Length)");
  }
  if (has_crlf_nul(req.last_event_id)) return std::string("Last-Event-ID contains CR, LF or NUL");
  return std::nullopt;
}

std::string base64(std::string_view in) {
  static const char alphabet[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  std::string out;
  out.reserve((in.size() + 2) / 3 * 4);
  std::size_t i = 0;
  for (; i + 3 <= in.size(); i += 3) {
    unsigned v = (static_cast<unsigned char>(in[i]) << 16) |
                 (static_cast<unsigned char>(in[i + 1]) << 8) |
                 static_cast<unsigned char>(in[i + 2]);
    out += alphabet[(v >> 18) & 63];
    out += alphabet[(v >> 12) & 63];
    out += alphabet[(v >> 6) & 63];
    out += alphabet[v & 63];
  }
  std::size_t left = in.size() - i;
  if (left > 0) {
    unsigned v = static_cast<unsigned char>(in[i]) << 16;
    if (left == 2) v |= static_cast<unsigned char>(in[i + 1]) << 8;
    out += alphabet[(v >> 18) & 63];
    out += alphabet[(v >> 12) & 63];
    out += left == 2 ? alphabet[(v >> 6) & 63] : '=';
    out += '=';
  }
  return out;
}

std::string build(const Request &req) {
  std::vector<Field> fields;
  fields.push_back({"Host", req.url.host_header()});
  fields.push_back({"User-Agent", "lev-http/" LEVHTTP_VERSION});
  fields.push_back({"Accept", "text/event-stream"});
  fields.push_back({"Cache-Control", "no-cache"});
  fields.push_back({"Accept-Encoding", "identity"});
  if (req.body) {
    fields.push_back({"Content-Type", "application/json"});
    // Never matched by a caller header: those named Content-Length are skipped below.
    fields.push_back({"Content-Length", std::to_string(req.body->size())});
  }
  if (req.url.user) {
    std::string credentials = *req.url.user + ":" + req.url.password.value_or("");
    fields.push_back({"Authorization", "Basic " + base64(credentials)});
  }
  // The ID comes from the server (an SSE `id:` field can hold any character but CR, LF and
  // NUL): one that is not a valid field value (RFC 9110 5.5: a control character) is not
  // sent rather than sent malformed.
  if (!req.last_event_id.empty() && !validate_header("Last-Event-ID", req.last_event_id))
    fields.push_back({"Last-Event-ID", req.last_event_id});
  const std::size_t defaults = fields.size();
  std::vector<bool> removed(defaults, false);

  for (const auto &h : req.headers) {
    if (iequals(h.name, "Content-Length")) continue;  // always computed from the body
    std::size_t i = 0;
    while (i < defaults && !iequals(fields[i].name, h.name)) ++i;
    if (i < defaults) {
      if (h.value) {
        fields[i] = {h.name, *h.value};
        removed[i] = false;
      } else {
        removed[i] = true;
      }
    } else if (h.value) {
      fields.push_back({h.name, *h.value});
    }
  }

  std::string out;
  out.reserve(256 + (req.body ? req.body->size() : 0));
  out += req.method;
  out += ' ';
  out += req.url.target;
  out += " HTTP/1.1\r\n";
  for (std::size_t i = 0; i < fields.size(); ++i) {
    if (i < defaults && removed[i]) continue;
    out += fields[i].name;
    out += ": ";
    out += fields[i].value;
    out += "\r\n";
  }
  out += "\r\n";
  if (req.body) out += *req.body;
  return out;
}

}  // namespace levhttp::http

// http/url.cpp: parse_url() and the Url helpers (contract in url.hpp).
//
// The grammar is RFC 3986's, narrowed to what an HTTP client should send:
//   URL       = scheme "://" [ userinfo "@" ] host [ ":" port ] path-abempty [ "?" query ]
//               [ "#" fragment ]
//   host      = "[" IPv6address "]" / IPv4address / reg-name
// Choices made here (and documented in the README):
// - The whole URL is checked first for whitespace, control characters and non-ASCII bytes, so
//   no later field can contain them.
// - reg-name is restricted to letters, digits, '-', '.' and '_' (what DNS and TLS SNI can
//   carry); percent-encoded host names are rejected. A host made only of digits and dots must
//   be a valid dotted-quad IPv4 address (inet_pton), so "1.2.3" or "0x7f.1" never reaches the
//   resolver as a surprising shorthand.
// - IPv6 literals are validated with inet_pton; zone identifiers ("%25eth0") and IPvFuture
//   are rejected.
// - The port is 1..65535, digits only; an empty port ("host:") is rejected.
// - userinfo is split at its first ':' and each part percent-decoded. RFC 7617 forbids a ':'
//   in the user-id and control characters in both parts, so those are rejected too. An empty
//   userinfo ("http://@host") means no credentials.
// - The path and query are kept byte for byte; an empty path becomes "/".
#include "http/url.hpp"

#include <arpa/inet.h>

#include <cstddef>

namespace levhttp::http {
namespace {

bool is_alpha(char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
}
bool is_digit(char c) {
  return c >= '0' && c <= '9';
}
char to_lower(char c) {
  return (c >= 'A' && c <= 'Z') ? static_cast<char>(c - 'A' + 'a') : c;
}

std::string lower(std::string_view s) {
  std::string out(s);
  for (char &c : out) c = to_lower(c);
  return out;
}

int hex_value(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

// RFC 3986: unreserved / sub-delims / ":" are allowed literally in userinfo.
bool is_userinfo_char(char c) {
  if (is_alpha(c) || is_digit(c)) return true;
  switch (c) {
    case '-':
    case '.':
    case '_':
    case '~':  // unreserved
    case '!':
    case '$':
    case '&':
    case '\'':
    case '(':
    case ')':
    case '*':  // sub-delims
    case '+':
    case ',':
    case ';':
    case '=':
    case ':':
      return true;
    default:
      return false;
  }
}

bool is_host_char(char c) {
  return is_alpha(c) || is_digit(c) || c == '-' || c == '.' || c == '_';
}

// Percent-decodes `in` into `out`; false on a malformed escape.
bool percent_decode(std::string_view in, std::string &out) {
  out.clear();
  for (std::size_t i = 0; i < in.size(); ++i) {
    if (in[i] != '%') {
      out.push_back(in[i]);
      continue;
    }
    if (i + 2 >= in.size()) return false;  // fewer than two characters follow the '%'
    int hi = hex_value(in[i + 1]), lo = hex_value(in[i + 2]);
    if (hi < 0 || lo < 0) return false;
    out.push_back(static_cast<char>(hi * 16 + lo));
    i += 2;
  }
  return true;
}

bool has_control(std::string_view s) {
  for (unsigned char c : s)
    if (c < 0x20 || c == 0x7f) return true;
  return false;
}

std::optional<std::string> parse_userinfo(std::string_view info, Url &out) {
  for (char c : info) {
    if (c != '%' && !is_userinfo_char(c))
      return "invalid character '" + std::string(1, c) + "' in the URL's user information";
  }
  std::size_t colon = info.find(':');
  std::string_view user = info.substr(0, colon);
  std::string decoded;
  if (!percent_decode(user, decoded))
    return std::string("invalid percent-encoding in the URL's user name");
  if (decoded.find(':') != std::string::npos)
    return std::string("the URL's user name contains ':'");
  if (has_control(decoded)) return std::string("the URL's user name contains a control character");
  out.user = decoded;
  if (colon != std::string_view::npos) {
    if (!percent_decode(info.substr(colon + 1), decoded))
      return std::string("invalid percent-encoding in the URL's password");
    if (has_control(decoded)) return std::string("the URL's password contains a control character");
    out.password = decoded;
  }
  return std::nullopt;
}

std::optional<std::string> parse_port(std::string_view digits, Url &out) {
  if (digits.empty()) return std::string("URL has an empty port");
  unsigned long value = 0;
  for (char c : digits) {
    if (!is_digit(c)) return "invalid port '" + std::string(digits) + "' (digits only)";
    if (value <= 65535) value = value * 10 + static_cast<unsigned long>(c - '0');  // no overflow
  }
  if (value < 1 || value > 65535) return "port " + std::string(digits) + " out of range (1..65535)";
  out.port = static_cast<uint16_t>(value);
  out.port_explicit = true;
  return std::nullopt;
}

std::optional<std::string> parse_host(std::string_view host, Url &out) {
  if (host.empty()) return std::string("URL has an empty host");
  if (host.front() == '[') {
    std::size_t close = host.find(']');
    if (close == std::string_view::npos) return std::string("unterminated IPv6 literal in URL");
    if (close != host.size() - 1) return std::string("unexpected character after IPv6 literal");
    std::string literal(host.substr(1, close - 1));
    if (literal.find('%') != std::string::npos)
      return std::string("IPv6 zone identifiers are not supported in URLs");
    in6_addr addr6;
    if (literal.empty() || inet_pton(AF_INET6, literal.c_str(), &addr6) != 1)
      return "invalid IPv6 address '" + literal + "'";
    out.host = lower(literal);
    out.host_is_ipv6 = true;
    out.host_is_ip = true;
    return std::nullopt;
  }
  bool digits_and_dots = true;
  for (char c : host) {
    if (!is_host_char(c)) return "invalid character '" + std::string(1, c) + "' in host";
    if (!is_digit(c) && c != '.') digits_and_dots = false;
  }
  std::string name = lower(host);
  if (digits_and_dots) {
    in_addr addr4;
    if (inet_pton(AF_INET, name.c_str(), &addr4) != 1) return "invalid IPv4 address '" + name + "'";
    out.host_is_ip = true;
  }
  out.host = std::move(name);
  return std::nullopt;
}

}  // namespace

std::optional<std::string> parse_url(std::string_view text, Url &out) {
  out = Url{};
  if (text.empty()) return std::string("empty URL");
  for (unsigned char c : text) {
    if (c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' || c == '\v')
      return std::string("URL contains whitespace");
    if (c < 0x20 || c == 0x7f) return std::string("URL contains a control character");
    if (c >= 0x80) return std::string("URL contains a non-ASCII byte");
  }

  // scheme = ALPHA *( ALPHA / DIGIT / "+" / "-" / "." ), then "://"
  std::size_t sep = text.find("://");
  std::size_t i = 0;
  if (sep != std::string_view::npos && sep > 0 && is_alpha(text[0])) {
    for (i = 1; i < sep; ++i) {
      char c = text[i];
      if (!is_alpha(c) && !is_digit(c) && c != '+' && c != '-' && c != '.') break;
    }
  }
  if (sep == std::string_view::npos || sep == 0 || i != sep)
    return std::string("URL has no scheme (expected http:// or https://)");
  std::string scheme = lower(text.substr(0, sep));
  if (scheme != "http" && scheme != "https")
    return "unsupported scheme '" + std::string(text.substr(0, sep)) + "' (expected http or https)";
  out.scheme = scheme;
  out.tls = scheme == "https";
  out.port = out.tls ? 443 : 80;

  std::string_view rest = text.substr(sep + 3);
  std::size_t auth_end = rest.find_first_of("/?#");
  std::string_view authority = rest.substr(0, auth_end);
  std::string_view tail =
      auth_end == std::string_view::npos ? std::string_view() : rest.substr(auth_end);

  // userinfo: everything before the last '@' of the authority.
  std::size_t at = authority.rfind('@');
  if (at != std::string_view::npos) {
    if (at > 0) {
      if (auto err = parse_userinfo(authority.substr(0, at), out)) return err;
    }
    authority = authority.substr(at + 1);
  }

  // host [":" port]; an IPv6 literal's colons are inside the brackets.
  std::string_view host = authority, port;
  bool has_port = false;
  if (!authority.empty() && authority.front() == '[') {
    std::size_t close = authority.find(']');
    if (close != std::string_view::npos && close + 1 < authority.size()) {
      if (authority[close + 1] != ':')
        return std::string("unexpected character after IPv6 literal");
      host = authority.substr(0, close + 1);
      port = authority.substr(close + 2);
      has_port = true;
    }
  } else {
    std::size_t colon = authority.find(':');
    if (colon != std::string_view::npos) {
      host = authority.substr(0, colon);
      port = authority.substr(colon + 1);
      has_port = true;
    }
  }
  if (auto err = parse_host(host, out)) return err;
  if (has_port) {
    if (auto err = parse_port(port, out)) return err;
  }

  // path-abempty ["?" query], kept as given; the fragment is never sent.
  std::size_t hash = tail.find('#');
  std::string_view target = tail.substr(0, hash);
  if (target.empty() || target.front() != '/') out.target = "/";
  out.target.append(target);
  return std::nullopt;
}

std::string Url::host_header() const {
  std::string out = host_is_ipv6 ? "[" + host + "]" : host;
  uint16_t default_port = tls ? 443 : 80;
  if (port != default_port) out += ":" + std::to_string(port);
  return out;
}

std::string Url::origin() const {
  return scheme + "://" + host_header();
}

}  // namespace levhttp::http

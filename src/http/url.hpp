// http/url.hpp: parses the absolute http:// and https:// URLs the client accepts.
//
// Contract: parse_url() either fills a Url or returns an error message that names the
// problem ("unsupported scheme 'ftp' (expected http or https)", "URL contains whitespace",
// ...). It accepts: scheme (case-insensitive) "://" [userinfo "@"] host [":" port] [path]
// ["?" query] ["#fragment" (dropped)]; host is a reg-name, an IPv4 literal, or an "[IPv6]"
// literal; the port is 1..65535 (default 80 / 443). Path and query are kept exactly as given
// (no normalisation, no re-encoding); an empty path becomes "/". Whitespace, control
// characters (< 0x20, 0x7f) and non-ASCII bytes anywhere are rejected. userinfo
// "user:pass" is percent-decoded into `user` and `password` (the client turns it into
// Authorization: Basic).
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace levhttp::http {

struct Url {
  bool tls = false;          // https
  std::string scheme;        // "http" or "https", lower-cased
  std::string host;          // without brackets for IPv6, lower-cased for names
  bool host_is_ipv6 = false; // was a [literal]
  bool host_is_ip = false;   // IPv4 or IPv6 literal (no SNI, IP SAN checks)
  uint16_t port = 0;         // explicit or default
  bool port_explicit = false;
  std::string target;        // path + ("?" query), as sent in the request line
  std::optional<std::string> user, password;

  // "host" or "host:port" (port only when not the default), brackets for IPv6: the Host header.
  std::string host_header() const;
  // scheme://host[:port] — the origin, for later same-origin checks (redirects).
  std::string origin() const;
};

// Returns the error message, or std::nullopt on success.
std::optional<std::string> parse_url(std::string_view text, Url &out);

}  // namespace levhttp::http

// Tests for http/url.hpp: a table of valid URLs (every field checked) and a table of invalid
// ones (the error message must name the problem).
#include "http/url.hpp"

#include <catch2/catch.hpp>
#include <optional>
#include <string>

using levhttp::http::parse_url;
using levhttp::http::Url;

namespace {

struct ValidCase {
  std::string input;
  std::string scheme, host;
  uint16_t port;
  bool port_explicit, is_ip, is_ipv6;
  std::string target;
  std::optional<std::string> user, password;
  std::string host_header, origin;
};

const std::optional<std::string> none;

const ValidCase kValid[] = {
    {"http://example.com", "http", "example.com", 80, false, false, false, "/", none, none,
     "example.com", "http://example.com"},
    {"https://example.com/", "https", "example.com", 443, false, false, false, "/", none, none,
     "example.com", "https://example.com"},
    {"HTTP://Example.COM/Path?Q=A", "http", "example.com", 80, false, false, false, "/Path?Q=A",
     none, none, "example.com", "http://example.com"},
    {"HtTpS://API.openai.com/v1/chat", "https", "api.openai.com", 443, false, false, false,
     "/v1/chat", none, none, "api.openai.com", "https://api.openai.com"},
    {"http://localhost:8080/sse", "http", "localhost", 8080, true, false, false, "/sse", none, none,
     "localhost:8080", "http://localhost:8080"},
    {"http://h:80/", "http", "h", 80, true, false, false, "/", none, none, "h", "http://h"},
    {"https://h:443/x", "https", "h", 443, true, false, false, "/x", none, none, "h", "https://h"},
    {"https://h:80/x", "https", "h", 80, true, false, false, "/x", none, none, "h:80",
     "https://h:80"},
    {"http://h:443/", "http", "h", 443, true, false, false, "/", none, none, "h:443",
     "http://h:443"},
    {"http://h:1", "http", "h", 1, true, false, false, "/", none, none, "h:1", "http://h:1"},
    {"http://h:65535", "http", "h", 65535, true, false, false, "/", none, none, "h:65535",
     "http://h:65535"},
    {"http://h:00080/", "http", "h", 80, true, false, false, "/", none, none, "h", "http://h"},
    {"http://127.0.0.1:9000/events", "http", "127.0.0.1", 9000, true, true, false, "/events", none,
     none, "127.0.0.1:9000", "http://127.0.0.1:9000"},
    {"http://10.1.2.3", "http", "10.1.2.3", 80, false, true, false, "/", none, none, "10.1.2.3",
     "http://10.1.2.3"},
    {"http://[::1]/", "http", "::1", 80, false, true, true, "/", none, none, "[::1]",
     "http://[::1]"},
    {"http://[::1]:8443/a", "http", "::1", 8443, true, true, true, "/a", none, none, "[::1]:8443",
     "http://[::1]:8443"},
    {"https://[2001:DB8::A]/", "https", "2001:db8::a", 443, false, true, true, "/", none, none,
     "[2001:db8::a]", "https://[2001:db8::a]"},
    {"http://[::ffff:1.2.3.4]:81", "http", "::ffff:1.2.3.4", 81, true, true, true, "/", none, none,
     "[::ffff:1.2.3.4]:81", "http://[::ffff:1.2.3.4]:81"},
    {"http://h?x=1", "http", "h", 80, false, false, false, "/?x=1", none, none, "h", "http://h"},
    {"http://h?", "http", "h", 80, false, false, false, "/?", none, none, "h", "http://h"},
    {"http://h/p?q#frag", "http", "h", 80, false, false, false, "/p?q", none, none, "h",
     "http://h"},
    {"http://h#frag", "http", "h", 80, false, false, false, "/", none, none, "h", "http://h"},
    {"http://h/a%20b/%2F/../c?x=%41&y=a/b?c", "http", "h", 80, false, false, false,
     "/a%20b/%2F/../c?x=%41&y=a/b?c", none, none, "h", "http://h"},
    {"http://h//double//slash", "http", "h", 80, false, false, false, "//double//slash", none, none,
     "h", "http://h"},
    {"http://h/{}|^`\"<>", "http", "h", 80, false, false, false, "/{}|^`\"<>", none, none, "h",
     "http://h"},
    {"http://user:pass@h/", "http", "h", 80, false, false, false, "/", "user", "pass", "h",
     "http://h"},
    {"http://user@h/", "http", "h", 80, false, false, false, "/", "user", none, "h", "http://h"},
    {"http://user:@h/", "http", "h", 80, false, false, false, "/", "user", "", "h", "http://h"},
    {"http://:pw@h/", "http", "h", 80, false, false, false, "/", "", "pw", "h", "http://h"},
    {"http://@h/", "http", "h", 80, false, false, false, "/", none, none, "h", "http://h"},
    {"http://us%40er:p%3Aa%20ss@h:81/", "http", "h", 81, true, false, false, "/", "us@er", "p:a ss",
     "h:81", "http://h:81"},
    {"http://u:a:b@h", "http", "h", 80, false, false, false, "/", "u", "a:b", "h", "http://h"},
    {"https://u:p@[::1]:9/x", "https", "::1", 9, true, true, true, "/x", "u", "p", "[::1]:9",
     "https://[::1]:9"},
    {"http://my_host.local", "http", "my_host.local", 80, false, false, false, "/", none, none,
     "my_host.local", "http://my_host.local"},
    {"http://example.com.", "http", "example.com.", 80, false, false, false, "/", none, none,
     "example.com.", "http://example.com."},
    {"http://1.2.3.4.example", "http", "1.2.3.4.example", 80, false, false, false, "/", none, none,
     "1.2.3.4.example", "http://1.2.3.4.example"},
    {"http://h:8080?q", "http", "h", 8080, true, false, false, "/?q", none, none, "h:8080",
     "http://h:8080"},
};

struct InvalidCase {
  std::string input;
  std::string error;  // a substring of the message
};

const InvalidCase kInvalid[] = {
    {"", "empty URL"},
    {"example.com/path", "no scheme"},
    {"//example.com/", "no scheme"},
    {"http:/example.com", "no scheme"},
    {"http:example.com", "no scheme"},
    {"1http://h/", "no scheme"},
    {"ftp://example.com/", "unsupported scheme 'ftp' (expected http or https)"},
    {"ws://h/", "unsupported scheme 'ws'"},
    {"file:///etc/passwd", "unsupported scheme 'file'"},
    {"http://", "empty host"},
    {"http:///path", "empty host"},
    {"http://:80/", "empty host"},
    {"http://user@/", "empty host"},
    {"http://exa mple.com/", "whitespace"},
    {"http://h/a b", "whitespace"},
    {"http://h/\tx", "whitespace"},
    {" http://h/", "whitespace"},
    {"http://h/\r\nX: y", "whitespace"},
    {std::string("http://h/\0x", 10), "control character"},
    {"http://h/\x01", "control character"},
    {"http://h/\x7f", "control character"},
    {"http://h/caf\xc3\xa9", "non-ASCII"},
    {"http://b\xc3\xbc"
     "cher.de/",
     "non-ASCII"},
    {"http://h:0/", "port 0 out of range (1..65535)"},
    {"http://h:65536/", "port 65536 out of range"},
    {"http://h:99999999999999999999/", "out of range"},
    {"http://h:/", "empty port"},
    {"http://h:8a/", "invalid port '8a' (digits only)"},
    {"http://h:-1/", "digits only"},
    {"http://h:+80/", "digits only"},
    {"http://h:80:81/", "digits only"},
    {"http://[::1/", "unterminated IPv6"},
    {"http://[::1]x/", "after IPv6 literal"},
    {"http://[::1]:/", "empty port"},
    {"http://[fe80::1%25eth0]/", "zone identifiers"},
    {"http://[::g]/", "invalid IPv6 address '::g'"},
    {"http://[]/", "invalid IPv6 address"},
    {"http://[1.2.3.4]/", "invalid IPv6 address"},
    {"http://[v1.fe]/", "invalid IPv6 address"},
    {"http://::1/", "empty host"},
    {"http://256.1.1.1/", "invalid IPv4 address '256.1.1.1'"},
    {"http://1.2.3/", "invalid IPv4 address"},
    {"http://127.1/", "invalid IPv4 address"},
    {"http://1234/", "invalid IPv4 address"},
    {"http://1.2.3.4./", "invalid IPv4 address"},
    {"http://ex%41mple.com/", "invalid character '%' in host"},
    {"http://a,b/", "invalid character ',' in host"},
    {"http://a]b/", "invalid character ']' in host"},
    {"http://a\\b/", "invalid character '\\' in host"},
    {"http://u[@h/", "invalid character '[' in the URL's user information"},
    {"http://a@b@h/", "invalid character '@'"},
    {"http://u:%zz@h/", "invalid percent-encoding in the URL's password"},
    {"http://%4@h/", "invalid percent-encoding in the URL's user name"},
    {"http://u%3Av:p@h/", "user name contains ':'"},
    {"http://u%00:p@h/", "user name contains a control character"},
    {"http://u:p%0D%0A@h/", "password contains a control character"},
};

}  // namespace

TEST_CASE("parse_url accepts valid URLs and fills every field", "[http][url]") {
  for (const auto &c : kValid) {
    INFO("URL: " << c.input);
    Url url;
    auto err = parse_url(c.input, url);
    REQUIRE_FALSE(err.has_value());
    CHECK(url.scheme == c.scheme);
    CHECK(url.tls == (c.scheme == "https"));
    CHECK(url.host == c.host);
    CHECK(url.port == c.port);
    CHECK(url.port_explicit == c.port_explicit);
    CHECK(url.host_is_ip == c.is_ip);
    CHECK(url.host_is_ipv6 == c.is_ipv6);
    CHECK(url.target == c.target);
    CHECK(url.user == c.user);
    CHECK(url.password == c.password);
    CHECK(url.host_header() == c.host_header);
    CHECK(url.origin() == c.origin);
  }
}

TEST_CASE("parse_url rejects invalid URLs with a message naming the problem", "[http][url]") {
  for (const auto &c : kInvalid) {
    INFO("URL: " << c.input);
    Url url;
    auto err = parse_url(c.input, url);
    REQUIRE(err.has_value());
    CHECK_THAT(*err, Catch::Matchers::Contains(c.error));
  }
}

TEST_CASE("parse_url resets the output on every call", "[http][url]") {
  Url url;
  REQUIRE_FALSE(parse_url("https://u:p@[::1]:9/x", url).has_value());
  REQUIRE_FALSE(parse_url("http://h", url).has_value());
  CHECK_FALSE(url.user.has_value());
  CHECK_FALSE(url.password.has_value());
  CHECK_FALSE(url.host_is_ipv6);
  CHECK_FALSE(url.port_explicit);
  CHECK(url.port == 80);
  CHECK(url.target == "/");
}

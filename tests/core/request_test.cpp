// Tests for http/request.hpp: the exact bytes build() produces for tables of requests, the
// validation errors, and base64 against RFC 4648's test vectors.
#include "http/request.hpp"

#include <catch2/catch.hpp>
#include <optional>
#include <string>
#include <vector>

using levhttp::http::base64;
using levhttp::http::build;
using levhttp::http::HeaderOverride;
using levhttp::http::parse_url;
using levhttp::http::Request;
using levhttp::http::validate;
using levhttp::http::validate_header;
using levhttp::http::validate_method;

namespace {

const std::string kUA = "User-Agent: lev-http/" LEVHTTP_VERSION "\r\n";
const std::string kTail =
    "Accept: text/event-stream\r\nCache-Control: no-cache\r\nAccept-Encoding: identity\r\n";

Request make(const std::string &url, std::vector<HeaderOverride> headers = {},
             std::optional<std::string> body = std::nullopt, std::string method = "GET",
             std::string last_event_id = "") {
  Request r;
  REQUIRE_FALSE(parse_url(url, r.url).has_value());
  r.headers = std::move(headers);
  r.body = std::move(body);
  r.method = std::move(method);
  r.last_event_id = std::move(last_event_id);
  return r;
}

HeaderOverride put(std::string name, std::string value) {
  return {std::move(name), value};
}
HeaderOverride drop(std::string name) {
  return {std::move(name), std::nullopt};
}

struct BuildCase {
  std::string name;
  Request request;
  std::string expected;
};

}  // namespace

TEST_CASE("build() emits the exact request bytes", "[http][request]") {
  const std::vector<BuildCase> cases = {
      {"defaults", make("http://example.com/sse?x=1#frag"),
       "GET /sse?x=1 HTTP/1.1\r\nHost: example.com\r\n" + kUA + kTail + "\r\n"},
      {"non-default port and IPv6 in Host", make("https://[::1]:8443/"),
       "GET / HTTP/1.1\r\nHost: [::1]:8443\r\n" + kUA + kTail + "\r\n"},
      {"default port omitted from Host", make("https://h:443/a"),
       "GET /a HTTP/1.1\r\nHost: h\r\n" + kUA + kTail + "\r\n"},
      {"override keeps position, caller's spelling",
       make("http://h/", {put("accept", "application/json"), put("USER-AGENT", "me/1")}),
       "GET / HTTP/1.1\r\nHost: h\r\nUSER-AGENT: me/1\r\naccept: application/json\r\n"
       "Cache-Control: no-cache\r\nAccept-Encoding: identity\r\n\r\n"},
      {"override Host", make("http://h/", {put("host", "other.example")}),
       "GET / HTTP/1.1\r\nhost: other.example\r\n" + kUA + kTail + "\r\n"},
      {"removal of defaults", make("http://h/", {drop("Cache-Control"), drop("user-agent")}),
       "GET / HTTP/1.1\r\nHost: h\r\nAccept: text/event-stream\r\n"
       "Accept-Encoding: identity\r\n\r\n"},
      {"removing a non-default name is a no-op", make("http://h/", {drop("X-Nothing")}),
       "GET / HTTP/1.1\r\nHost: h\r\n" + kUA + kTail + "\r\n"},
      {"removed then set again", make("http://h/", {drop("Accept"), put("ACCEPT", "*/*")}),
       "GET / HTTP/1.1\r\nHost: h\r\n" + kUA +
           "ACCEPT: */*\r\nCache-Control: no-cache\r\nAccept-Encoding: identity\r\n\r\n"},
      {"last override of the same default wins",
       make("http://h/", {put("Accept", "a/1"), put("accept", "b/2")}),
       "GET / HTTP/1.1\r\nHost: h\r\n" + kUA +
           "accept: b/2\r\nCache-Control: no-cache\r\nAccept-Encoding: identity\r\n\r\n"},
      {"extra headers appended in caller order",
       make("http://h/", {put("X-B", "2"), put("X-A", "1"), put("x-b", "3")}),
       "GET / HTTP/1.1\r\nHost: h\r\n" + kUA + kTail + "X-B: 2\r\nX-A: 1\r\nx-b: 3\r\n\r\n"},
      {"empty header value", make("http://h/", {put("X-Empty", "")}),
       "GET / HTTP/1.1\r\nHost: h\r\n" + kUA + kTail + "X-Empty: \r\n\r\n"},
      {"body: Content-Type and Content-Length",
       make("http://h/v1", {}, std::string("{\"a\":1}"), "POST"),
       "POST /v1 HTTP/1.1\r\nHost: h\r\n" + kUA + kTail +
           "Content-Type: application/json\r\nContent-Length: 7\r\n\r\n{\"a\":1}"},
      {"empty body still sends Content-Length: 0", make("http://h/", {}, std::string(), "POST"),
       "POST / HTTP/1.1\r\nHost: h\r\n" + kUA + kTail +
           "Content-Type: application/json\r\nContent-Length: 0\r\n\r\n"},
      {"body with binary bytes", make("http://h/", {}, std::string("a\0\r\nb", 5), "PUT"),
       "PUT / HTTP/1.1\r\nHost: h\r\n" + kUA + kTail +
           "Content-Type: application/json\r\nContent-Length: 5\r\n\r\n" +
           std::string("a\0\r\nb", 5)},
      {"caller Content-Length replaced when there is a body",
       make("http://h/", {put("content-length", "999"), put("Content-Type", "text/plain")},
            std::string("abc"), "POST"),
       "POST / HTTP/1.1\r\nHost: h\r\n" + kUA + kTail +
           "Content-Type: text/plain\r\nContent-Length: 3\r\n\r\nabc"},
      {"caller Content-Length removal ignored with a body",
       make("http://h/", {drop("Content-Length"), drop("Content-Type")}, std::string("abc"),
            "POST"),
       "POST / HTTP/1.1\r\nHost: h\r\n" + kUA + kTail + "Content-Length: 3\r\n\r\nabc"},
      {"caller Content-Length dropped without a body",
       make("http://h/", {put("Content-Length", "5")}, std::nullopt, "POST"),
       "POST / HTTP/1.1\r\nHost: h\r\n" + kUA + kTail + "\r\n"},
      {"Content-Type is not a default without a body",
       make("http://h/", {put("content-type", "x/y")}),
       "GET / HTTP/1.1\r\nHost: h\r\n" + kUA + kTail + "content-type: x/y\r\n\r\n"},
      {"Basic auth from userinfo", make("http://Aladdin:open%20sesame@h/"),
       "GET / HTTP/1.1\r\nHost: h\r\n" + kUA + kTail +
           "Authorization: Basic QWxhZGRpbjpvcGVuIHNlc2FtZQ==\r\n\r\n"},
      {"Basic auth, user only", make("http://user@h/"),
       "GET / HTTP/1.1\r\nHost: h\r\n" + kUA + kTail + "Authorization: Basic dXNlcjo=\r\n\r\n"},
      {"caller Authorization wins (any case)",
       make("http://u:p@h/", {put("X-A", "1"), put("authorization", "Bearer tok")}),
       "GET / HTTP/1.1\r\nHost: h\r\n" + kUA + kTail +
           "authorization: Bearer tok\r\nX-A: 1\r\n\r\n"},
      {"caller Authorization without userinfo is appended",
       make("http://h/", {put("Authorization", "Bearer tok")}),
       "GET / HTTP/1.1\r\nHost: h\r\n" + kUA + kTail + "Authorization: Bearer tok\r\n\r\n"},
      {"Authorization from userinfo removed by the caller",
       make("http://u:p@h/", {drop("AUTHORIZATION")}),
       "GET / HTTP/1.1\r\nHost: h\r\n" + kUA + kTail + "\r\n"},
      {"Last-Event-ID when set", make("http://h/", {}, std::nullopt, "GET", "42"),
       "GET / HTTP/1.1\r\nHost: h\r\n" + kUA + kTail + "Last-Event-ID: 42\r\n\r\n"},
      {"a server ID with a control character is not sent",
       make("http://h/", {}, std::nullopt, "GET", "a\x01b"),
       "GET / HTTP/1.1\r\nHost: h\r\n" + kUA + kTail + "\r\n"},
      {"a server ID with UTF-8 is sent as is",
       make("http://h/", {}, std::nullopt, "GET", "caf\xc3\xa9"),
       "GET / HTTP/1.1\r\nHost: h\r\n" + kUA + kTail + "Last-Event-ID: caf\xc3\xa9\r\n\r\n"},
      {"no Last-Event-ID when empty", make("http://h/", {}, std::nullopt, "GET", ""),
       "GET / HTTP/1.1\r\nHost: h\r\n" + kUA + kTail + "\r\n"},
      {"caller Last-Event-ID wins",
       make("http://h/", {put("last-event-id", "7")}, std::nullopt, "GET", "42"),
       "GET / HTTP/1.1\r\nHost: h\r\n" + kUA + kTail + "last-event-id: 7\r\n\r\n"},
      {"caller Last-Event-ID without a reconnection id is appended",
       make("http://h/", {put("Last-Event-ID", "7")}),
       "GET / HTTP/1.1\r\nHost: h\r\n" + kUA + kTail + "Last-Event-ID: 7\r\n\r\n"},
      {"everything together",
       make("https://u:p@api.example:8443/v1/x?stream=1",
            {put("X-Trace", "t"), put("accept", "text/event-stream, */*"), drop("Accept-Encoding")},
            std::string("{}"), "POST", "ev-9"),
       "POST /v1/x?stream=1 HTTP/1.1\r\nHost: api.example:8443\r\n" + kUA +
           "accept: text/event-stream, */*\r\nCache-Control: no-cache\r\n"
           "Content-Type: application/json\r\nContent-Length: 2\r\n"
           "Authorization: Basic dTpw\r\nLast-Event-ID: ev-9\r\nX-Trace: t\r\n\r\n{}"},
      {"custom method, token characters", make("http://h/", {}, std::nullopt, "M-SEARCH"),
       "M-SEARCH / HTTP/1.1\r\nHost: h\r\n" + kUA + kTail + "\r\n"},
  };
  for (const auto &c : cases) {
    INFO("case: " << c.name);
    REQUIRE_FALSE(validate(c.request).has_value());
    CHECK(build(c.request) == c.expected);
  }
}

TEST_CASE("validate() rejects what could split or corrupt the request", "[http][request]") {
  struct Case {
    std::string name;
    Request request;
    std::string error;
  };
  const std::vector<Case> cases = {
      {"empty method", make("http://h/", {}, std::nullopt, ""), "empty method"},
      {"method with CRLF", make("http://h/", {}, std::nullopt, "GET\r\nX: y"),
       "method 'GET\\x0D\\x0AX: y' contains CR, LF or NUL"},
      {"method with NUL", make("http://h/", {}, std::nullopt, std::string("GE\0T", 4)),
       "contains CR, LF or NUL"},
      {"method with space", make("http://h/", {}, std::nullopt, "GET /x"),
       "method 'GET /x' is not a token"},
      {"method with non-ASCII", make("http://h/", {}, std::nullopt, "G\xc3\x89T"),
       "is not a token"},
      {"empty header name", make("http://h/", {put("", "v")}), "empty header name"},
      {"header name with space", make("http://h/", {put("X A", "v")}),
       "header name 'X A' is not a token"},
      {"header name with colon", make("http://h/", {put("X:", "v")}), "is not a token"},
      {"header name with LF", make("http://h/", {put("X\nY", "v")}),
       "header name 'X\\x0AY' contains CR, LF or NUL"},
      {"header removal with bad name", make("http://h/", {drop("X\r")}), "contains CR, LF or NUL"},
      {"header value with CR", make("http://h/", {put("X-A", "a\rb")}),
       "header 'X-A' value contains CR, LF or NUL"},
      {"header value with LF", make("http://h/", {put("X-A", "a\nInjected: 1")}),
       "header 'X-A' value contains CR, LF or NUL"},
      {"header value with NUL", make("http://h/", {put("X-A", std::string("a\0b", 3))}),
       "header 'X-A' value contains CR, LF or NUL"},
      {"header value with another control character", make("http://h/", {put("X-A", "a\x01b")}),
       "header 'X-A' value contains a control character"},
      {"header value with DEL", make("http://h/", {put("X-A", "a\x7f")}),
       "value contains a control character"},
      {"default header override with CRLF", make("http://h/", {put("Accept", "x\r\n\r\nGET /")}),
       "header 'Accept' value contains CR, LF or NUL"},
      {"Transfer-Encoding", make("http://h/", {put("transfer-encoding", "chunked")}),
       "header 'Transfer-Encoding' is not supported"},
      {"Last-Event-ID with LF", make("http://h/", {}, std::nullopt, "GET", "1\n2"),
       "Last-Event-ID contains CR, LF or NUL"},
  };
  for (const auto &c : cases) {
    INFO("case: " << c.name);
    auto err = validate(c.request);
    REQUIRE(err.has_value());
    CHECK_THAT(*err, Catch::Matchers::Contains(c.error));
  }

  // A target that did not come from parse_url is checked too.
  Request r = make("http://h/");
  r.url.target = "/a b";
  CHECK(validate(r).has_value());
  r.url.target = "";
  CHECK(validate(r).has_value());

  // The two helpers agree with validate().
  CHECK(validate_method("POST") == std::nullopt);
  CHECK(validate_header("X-Ok", "any value\twith tab and \x80 bytes") == std::nullopt);
  CHECK(validate_header("X-A", "a\r").has_value());
  // Removing Transfer-Encoding is harmless (it is not a default): allowed.
  CHECK_FALSE(validate(make("http://h/", {drop("Transfer-Encoding")})).has_value());
}

TEST_CASE("base64 follows RFC 4648 (test vectors of section 10)", "[http][request]") {
  const std::pair<std::string, std::string> vectors[] = {
      {"", ""},
      {"f", "Zg=="},
      {"fo", "Zm8="},
      {"foo", "Zm9v"},
      {"foob", "Zm9vYg=="},
      {"fooba", "Zm9vYmE="},
      {"foobar", "Zm9vYmFy"},
      {std::string("\xff\xfe\x00", 3), "//4A"},
  };
  for (const auto &[in, out] : vectors) {
    INFO("input size " << in.size());
    CHECK(base64(in) == out);
  }
}

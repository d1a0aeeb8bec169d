// http/request.hpp: builds the HTTP/1.1 request bytes the client sends.
//
// Contract: a Request is validated (validate()) before anything is sent; build() then
// cannot produce a request that a caller's input could split: the method must be an RFC 9110
// token, header names tokens, header values free of CR, LF and NUL. Default headers (in this
// order) are Host, User-Agent, Accept: text/event-stream, Cache-Control: no-cache,
// Accept-Encoding: identity and, when there is a body, Content-Type: application/json;
// a caller header whose name matches a default case-insensitively replaces it in place, a
// caller header set to "remove" (Lua's `false`) drops the default. Content-Length is always
// computed from the body when there is one (a caller value is replaced, never trusted), and
// Authorization: Basic is added from URL userinfo unless the caller set Authorization.
// Last-Event-ID is added when last_event_id is non-empty (a reconnection).
#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "http/url.hpp"

namespace levhttp::http {

struct HeaderOverride {
  std::string name;
  std::optional<std::string> value; // nullopt = remove the default header of that name
};

struct Request {
  std::string method = "GET";
  Url url;
  std::vector<HeaderOverride> headers; // caller's headers, in the caller's order
  std::optional<std::string> body;
  std::string last_event_id;           // sent as Last-Event-ID when not empty
};

// Returns an error message naming the problem (e.g. "header 'X-A' value contains CR, LF or
// NUL"), or nullopt.
std::optional<std::string> validate(const Request &req);
std::optional<std::string> validate_method(std::string_view method);
std::optional<std::string> validate_header(std::string_view name, std::string_view value);

// The complete request: request line, headers, blank line, body. Call validate() first.
std::string build(const Request &req);

// Base64 (RFC 4648, with padding), for Authorization: Basic.
std::string base64(std::string_view in);

}  // namespace levhttp::http

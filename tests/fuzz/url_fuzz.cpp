// libFuzzer target for parse_url(): never crashes; a URL it accepts has fields free of
// whitespace, control characters and non-ASCII bytes (userinfo: free of control characters),
// and re-parsing origin() + target gives the same scheme, host, port and target.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>
#include <string_view>

#include "http/url.hpp"

namespace {

void require(bool ok) {
  if (!ok) abort();
}

bool clean(std::string_view s) {  // no whitespace, no control, no non-ASCII
  for (unsigned char c : s)
    if (c <= 0x20 || c >= 0x7f) return false;
  return true;
}

bool no_control(std::string_view s) {
  for (unsigned char c : s)
    if (c < 0x20 || c == 0x7f) return false;
  return true;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  using levhttp::http::parse_url;
  using levhttp::http::Url;
  std::string_view text(reinterpret_cast<const char *>(data), size);
  Url url;
  auto err = parse_url(text, url);
  if (err) {
    require(!err->empty());
    return 0;
  }
  require(url.scheme == "http" || url.scheme == "https");
  require(url.tls == (url.scheme == "https"));
  require(!url.host.empty() && clean(url.host));
  require(!url.target.empty() && url.target[0] == '/' && clean(url.target));
  require(url.target.find('#') == std::string::npos);
  require(url.port != 0);
  require(!url.host_is_ipv6 || url.host_is_ip);
  if (url.user) require(no_control(*url.user) && url.user->find(':') == std::string::npos);
  if (url.password) require(no_control(*url.password));
  require(clean(url.host_header()) && clean(url.origin()));

  Url again;
  require(!parse_url(url.origin() + url.target, again).has_value());
  require(again.scheme == url.scheme && again.host == url.host && again.port == url.port &&
          again.target == url.target && again.host_is_ip == url.host_is_ip &&
          again.host_is_ipv6 == url.host_is_ipv6 && !again.user && !again.password);
  return 0;
}

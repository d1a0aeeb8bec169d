// tls_context_test.cpp: the shared SSL_CTX cache of http/tls_transport.hpp.
#include <catch2/catch.hpp>

#include "http/tls_transport.hpp"

using levhttp::http::tls_context;
using levhttp::http::TlsOptions;

TEST_CASE("one SSL_CTX per distinct set of TLS options, shared while in use", "[tls]") {
  std::string err;
  TlsOptions a;  // system trust store, verification on
  TlsOptions b;
  b.no_verify = true;
  auto ctx1 = tls_context(a, err);
  auto ctx2 = tls_context(a, err);
  auto ctx3 = tls_context(b, err);
  REQUIRE(ctx1);
  REQUIRE(ctx3);
  CHECK(ctx1.get() == ctx2.get());
  CHECK(ctx1.get() != ctx3.get());
  CHECK(ctx1.use_count() == 3);  // ctx1, ctx2 and the cache: the trust store is loaded once
}

TEST_CASE("TLS options that cannot be loaded give a message naming the file", "[tls]") {
  std::string err;
  TlsOptions o;
  o.cafile = "/nonexistent/ca.pem";
  CHECK_FALSE(tls_context(o, err));
  CHECK(err.find("tls_cafile '/nonexistent/ca.pem'") != std::string::npos);

  TlsOptions k;
  k.keyfile = "/nonexistent/key.pem";
  err.clear();
  CHECK_FALSE(tls_context(k, err));
  CHECK(err == "tls: tls_keyfile given without tls_certfile");

  TlsOptions c;
  c.certfile = "/nonexistent/cert.pem";
  err.clear();
  CHECK_FALSE(tls_context(c, err));
  CHECK(err.find("cannot load tls_certfile") != std::string::npos);
}

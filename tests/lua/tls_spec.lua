-- tls_spec.lua: https:// through http.sse_client against python3 `ssl` servers, with a test PKI
-- made by the `openssl` command for this run (tests/servers/make_pki.sh).
local lev = require("lev")
local http = require("http")
local helpers = require("helpers.server")

local source_dir = os.getenv("LEVHTTP_SOURCE_DIR") or "."
local pki = os.tmpname()
os.remove(pki)

local function sh_quote(s)
  return "'" .. tostring(s):gsub("'", "'\\''") .. "'"
end

local servers = {}

-- Starts tests/servers/tls_server.py with the given arguments; returns {port=, stop=}.
local function tls_server(args)
  local s = helpers.start_script("tls_server.py", args)
  servers[#servers + 1] = s
  return s
end

local function cert(name)
  return { "--cert", pki .. "/" .. name .. ".pem", "--key", pki .. "/" .. name .. ".key" }
end

local function with(args, extra)
  local out = {}
  for _, a in ipairs(args) do out[#out + 1] = a end
  for _, a in ipairs(extra or {}) do out[#out + 1] = a end
  return out
end

-- Runs one client to its end inside lev.run; returns a record of what happened.
local function stream(url, options)
  local rec = { events = {}, errors = {}, closed = 0 }
  helpers.run(function()
    local c = http.sse_client(url, options, {
      message = function(data, ev) rec.events[#rec.events + 1] = ev.data end,
      error = function(msg, status, kind) rec.errors[#rec.errors + 1] = { msg = msg, status = status, kind = kind } end,
      close = function() rec.closed = rec.closed + 1 end,
    })
    local t0 = lev.now()
    local ok, err, status, kind = c:connect()
    rec.connect_ok, rec.err, rec.kind = ok, err, kind
    if ok then
      local alive, e2, _, k2
      repeat
        alive, e2, _, k2 = c:update()
      until not alive
      rec.err, rec.kind = e2, k2
    end
    rec.elapsed = lev.now() - t0
  end, 60)
  return rec
end

describe("https:// (OpenSSL 3)", function()
  setup(function()
    local ok = os.execute("bash " .. sh_quote(source_dir .. "/tests/servers/make_pki.sh") .. " " .. sh_quote(pki) .. " >/dev/null")
    assert(ok, "make_pki.sh failed")
  end)

  teardown(function()
    for _, s in ipairs(servers) do s.stop() end
    os.execute("rm -rf " .. sh_quote(pki))
  end)

  it("verifies a valid chain given with tls_cafile", function()
    local s = tls_server(with(cert("server"), { "--events", "5" }))
    local r = stream("https://localhost:" .. s.port .. "/", { tls_cafile = pki .. "/ca.pem" })
    assert.is_true(r.connect_ok, r.err)
    assert.are.equal(5, #r.events)
    assert.is_nil(r.kind)
    assert.are.equal(1, r.closed)
  end)

  it("verifies a valid chain given with tls_capath (a hashed directory)", function()
    local s = tls_server(with(cert("server"), { "--events", "2" }))
    local r = stream("https://localhost:" .. s.port .. "/", { tls_capath = pki .. "/capath" })
    assert.is_true(r.connect_ok, r.err)
    assert.are.equal(2, #r.events)
  end)

  it("checks an IP literal against the certificate's IP SAN", function()
    local s = tls_server(with(cert("server"), { "--events", "1" }))
    local r = stream("https://127.0.0.1:" .. s.port .. "/", { tls_cafile = pki .. "/ca.pem" })
    assert.is_true(r.connect_ok, r.err)
    assert.are.equal(1, #r.events)
  end)

  it("uses the system trust store by default (SSL_CERT_FILE is honoured)", function()
    -- Without tls_cafile the test CA is unknown: the default store must not trust it.
    local s = tls_server(cert("server"))
    local r = stream("https://localhost:" .. s.port .. "/", {})
    assert.is_nil(r.connect_ok)
    assert.are.equal("tls", r.kind)
    assert.matches("certificate verify failed", r.err)
  end)

  it("trusts what SSL_CERT_FILE names when no tls_cafile is given", function()
    local s = tls_server(with(cert("server"), { "--events", "2" }))
    local script = table.concat({
      'local lev, http = require("lev"), require("http")',
      "local n = 0",
      "lev.run(function()",
      '  local c = http.sse_client("https://localhost:' .. s.port .. '/", {}, { message = function() n = n + 1 end })',
      "  local ok, err = c:connect()",
      "  if not ok then io.write(err) os.exit(1) end",
      "  while c:update() do end",
      "end)",
      "io.write(n)",
    }, "\n")
    local cmd = "SSL_CERT_FILE=" .. sh_quote(pki .. "/ca.pem") .. " lua5.4 -e " .. sh_quote(script) .. " 2>&1"
    local p = assert(io.popen(cmd, "r"))
    local out = p:read("a")
    p:close()
    assert.are.equal("2", out)
  end)

  for _, case in ipairs({
    { name = "an unknown CA", cert = "unknown", want = "unable to get local issuer certificate" },
    { name = "a wrong host name", cert = "wrongname", want = "hostname mismatch" },
    { name = "an expired certificate", cert = "expired", want = "certificate has expired" },
    { name = "a self-signed certificate", cert = "selfsigned", want = "self.signed certificate" },
  }) do
    it("rejects " .. case.name .. " with kind tls", function()
      local s = tls_server(cert(case.cert))
      local r = stream("https://localhost:" .. s.port .. "/", { tls_cafile = pki .. "/ca.pem" })
      assert.is_nil(r.connect_ok)
      assert.are.equal("tls", r.kind)
      assert.matches("^tls: certificate verify failed: " .. case.want, r.err)
      assert.are.equal(1, #r.errors)
      assert.are.equal(0, r.closed) -- connect() never ran: no close()
    end)
  end

  it("accepts a self-signed certificate with tls_no_verify", function()
    local s = tls_server(with(cert("selfsigned"), { "--events", "3" }))
    local r = stream("https://localhost:" .. s.port .. "/", { tls_no_verify = true })
    assert.is_true(r.connect_ok, r.err)
    assert.are.equal(3, #r.events)
  end)

  it("does mutual TLS with a client certificate", function()
    local s = tls_server(with(cert("server"), { "--client-ca", pki .. "/ca.pem", "--events", "2" }))
    local r = stream("https://localhost:" .. s.port .. "/", {
      tls_cafile = pki .. "/ca.pem",
      tls_certfile = pki .. "/client.pem",
      tls_keyfile = pki .. "/client.key",
    })
    assert.is_true(r.connect_ok, r.err)
    assert.are.equal(2, #r.events)
  end)

  it("fails with kind tls when the server requires a client certificate and none is given", function()
    local s = tls_server(with(cert("server"), { "--client-ca", pki .. "/ca.pem" }))
    local r = stream("https://localhost:" .. s.port .. "/", { tls_cafile = pki .. "/ca.pem" })
    assert.is_nil(r.connect_ok)
    assert.are.equal("tls", r.kind)
    assert.matches("^tls: ", r.err)
  end)

  it("rejects a client key that does not match the certificate", function()
    local s = tls_server(cert("server"))
    local r = stream("https://localhost:" .. s.port .. "/", {
      tls_cafile = pki .. "/ca.pem",
      tls_certfile = pki .. "/client.pem",
      tls_keyfile = pki .. "/server.key",
    })
    assert.is_nil(r.connect_ok)
    assert.are.equal("tls", r.kind)
    assert.matches("tls_keyfile.*mismatch", r.err)
  end)

  it("fails with kind tls, quickly, for https:// to a plain-text server", function()
    local s = tls_server({ "--mode", "garbage" })
    local r = stream("https://localhost:" .. s.port .. "/", { tls_cafile = pki .. "/ca.pem", connect_timeout = 5 })
    assert.is_nil(r.connect_ok)
    assert.are.equal("tls", r.kind)
    assert.is_true(r.elapsed < 5)
  end)

  it("fails within headers_timeout for http:// to a TLS server", function()
    local s = tls_server(cert("server"))
    local r = stream("http://localhost:" .. s.port .. "/", { headers_timeout = 1 })
    assert.is_nil(r.connect_ok)
    assert.is_true(r.kind == "closed" or r.kind == "protocol" or r.kind == "timeout", tostring(r.kind))
    assert.is_true(r.elapsed < 3, "took " .. r.elapsed)
  end)

  it("hits connect_timeout when the server never answers the handshake", function()
    local s = tls_server({ "--mode", "hang" })
    local r = stream("https://localhost:" .. s.port .. "/", { tls_cafile = pki .. "/ca.pem", connect_timeout = 0.3 })
    assert.is_nil(r.connect_ok)
    assert.are.equal("timeout", r.kind)
    assert.matches("handshake", r.err)
    assert.is_true(r.elapsed >= 0.29 and r.elapsed < 2, "took " .. r.elapsed)
  end)

  it("reports a missing close_notify mid-body as kind closed, after the complete events", function()
    local s = tls_server(with(cert("server"), { "--mode", "truncate" }))
    local r = stream("https://localhost:" .. s.port .. "/", { tls_cafile = pki .. "/ca.pem" })
    assert.is_true(r.connect_ok, r.err)
    assert.are.equal(3, #r.events)
    assert.are.equal("closed", r.kind)
    assert.matches("close_notify", r.err)
    assert.are.equal(1, r.closed)
  end)

  it("ends a close-delimited body with close_notify cleanly", function()
    local s = tls_server(with(cert("server"), { "--mode", "close", "--events", "4" }))
    local r = stream("https://localhost:" .. s.port .. "/", { tls_cafile = pki .. "/ca.pem" })
    assert.is_true(r.connect_ok, r.err)
    assert.are.equal(4, #r.events)
    assert.is_nil(r.kind)
  end)

  it("delivers a 20,000-event stream whole", function()
    local s = tls_server(with(cert("server"), { "--events", "20000" }))
    local r = stream("https://localhost:" .. s.port .. "/", { tls_cafile = pki .. "/ca.pem" })
    assert.is_true(r.connect_ok, r.err)
    assert.is_nil(r.kind, r.err)
    assert.are.equal(20000, #r.events)
    for i = 1, 20000, 997 do
      assert.are.equal(string.format('{"n": %d, "text": "event number %d"}', i, i), r.events[i])
    end
  end)
end)

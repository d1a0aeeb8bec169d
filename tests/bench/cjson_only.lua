-- cjson_only.lua N: how fast lua-cjson alone decodes N payloads of the /stream body (the same
-- JSON texts, already Lua strings); prints "events=<n> wall=<s> cpu=<s>". The ceiling for any
-- Lua client that hands decoded tables to a callback. The texts cycle through the first 1,000
-- payloads so that they are in cache, as a payload just read from the socket is (200,000
-- distinct strings, 46 MB, would make cjson look ~40% slower than it is).
local cjson = require("cjson.safe")
local n = tonumber(arg[1])
local words = { " the", " quick", " brown", " fox", " jumps", " over", " lazy", " dog", ",", "." }
local payloads = {}
local distinct = math.min(n, 1000)
for i = 0, distinct - 1 do
  payloads[i + 1] = string.format('{"id":"chatcmpl-9xQ2mZr7kHc1aBv3LpT8sYw4","object":'
    .. '"chat.completion.chunk","created":1717171717,"model":"gpt-4o-2024-05-13",'
    .. '"system_fingerprint":"fp_4d5e6f","choices":[{"index":%d,"delta":{"content":"%s"},'
    .. '"logprobs":null,"finish_reason":null}]}', i, words[i % 10 + 1])
end
local decode, ok = cjson.decode, 0
local c0 = os.clock()
collectgarbage()
for i = 0, n - 1 do
  if type(decode(payloads[i % distinct + 1])) == "table" then ok = ok + 1 end
end
local cpu = os.clock() - c0
print(string.format("events=%d wall=%.6f cpu=%.6f", ok, cpu, cpu))
if ok ~= n then os.exit(1) end

-- wrk script: POST /v1/checkin for a random agent of 100,000, all registered on
-- the current certificate (build/bin/fakefleet REG agent 100000 THUMBPRINT).
--   TP=<current thumbprint> wrk -t2 -c64 -d10s -s bench/checkin_wrk.lua http://127.0.0.1:PORT/
-- Baseline in the same run: bench/bare_mhd.c (a fixed body) on another port.
local tp = os.getenv("TP") or string.rep("0", 64)
math.randomseed(os.time())
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
request = function()
  local id = math.random(0, 99999)
  local body = '{"agent_id":"agent-' .. id .. '","hostname":"host-' .. id .. '","port":0,"version":"0.1.0","thumbprint":"' .. tp .. '"}'
  return wrk.format(nil, "/v1/checkin", nil, body)
end

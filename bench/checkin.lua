-- wrk script: check-ins (docs/protocol.md) cycling through COUNT agent ids
-- PREFIX-0 .. PREFIX-(COUNT-1), each reporting THUMBPRINT.
--   wrk ... -s bench/checkin.lua URL -- PREFIX COUNT THUMBPRINT
-- Each wrk thread starts at its own offset so that threads do not send the
-- same ids at the same moment.
local prefix, count, thumb
local n = 0
local threads = 0

function setup(thread)
   thread:set("offset", threads * 7919)
   threads = threads + 1
end

function init(args)
   prefix = args[1] or "ci"
   count = tonumber(args[2] or "100000")
   thumb = args[3] or ""
   n = tonumber(offset or 0) % count
   wrk.method = "POST"
   wrk.path = "/v1/checkin"
   wrk.headers["Content-Type"] = "application/json"
end

function request()
   local id = prefix .. "-" .. n
   n = (n + 1) % count
   local body = '{"agent_id":"' .. id .. '","hostname":"host-' .. n ..
      '","port":0,"version":"wrk","thumbprint":"' .. thumb .. '"}'
   return wrk.format(nil, nil, nil, body)
end

function done(summary, latency, requests)
   local errs = summary.errors
   io.write(string.format("RESULT rps %.1f p50_ms %.3f p99_ms %.3f non2xx %d errors %d requests %d\n",
      summary.requests / (summary.duration / 1e6),
      latency:percentile(50) / 1000, latency:percentile(99) / 1000,
      errs.status, errs.connect + errs.read + errs.write + errs.timeout,
      summary.requests))
end

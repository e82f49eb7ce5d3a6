-- wrk script: check-ins (docs/protocol.md) cycling through COUNT agent ids
-- PREFIX-FIRST .. PREFIX-(FIRST+COUNT-1), each reporting THUMBPRINT.
--   [CHECKIN_QFILE=FILE] wrk ... -s bench/checkin.lua URL -- PREFIX COUNT THUMBPRINT [FIRST [START]]
-- Each wrk thread starts at its own offset so that threads do not send the
-- same ids at the same moment; START moves every thread's start on (a run
-- in slices goes on where the last slice stopped). CHECKIN_QFILE: where to write the request
-- count and the latency quantiles 0.1% .. 100% in steps of 0.1% ("permille
-- microseconds" a line), so that bench/wrkmerge.py can merge the
-- percentiles of several wrk runs (two nodes, one wrk each).
local prefix, count, thumb, first
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
   first = tonumber(args[4] or "0")
   n = (tonumber(offset or 0) + tonumber(args[5] or "0")) % count
   wrk.method = "POST"
   wrk.path = "/v1/checkin"
   wrk.headers["Content-Type"] = "application/json"
end

function request()
   local i = first + n
   local id = prefix .. "-" .. i
   n = (n + 1) % count
   local body = '{"agent_id":"' .. id .. '","hostname":"host-' .. i ..
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
   -- done() gets no script arguments: QFILE comes through the environment.
   local path = os.getenv("CHECKIN_QFILE")
   if path ~= nil and path ~= "" then
      local f = assert(io.open(path, "w"))
      f:write(string.format("requests %d\n", summary.requests))
      for k = 1, 1000 do
         f:write(string.format("%d %d\n", k, latency:percentile(k / 10)))
      end
      f:close()
   end
end

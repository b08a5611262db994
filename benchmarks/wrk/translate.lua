-- wrk script: POST one single-sentence JSON body per request, cycling through a file of bodies
-- (one JSON object per line), and print the result as one JSON line for benchmarks/service_load.py.
--   wrk -t1 -c32 -d10s --timeout 60s -s translate.lua http://127.0.0.1:8000 -- bodies.jsonl
local bodies = {}
local next_body = 0
local headers = { ["Content-Type"] = "application/json" }

function init(args)
  for line in io.lines(args[1]) do
    bodies[#bodies + 1] = line
  end
  -- Each wrk thread starts at a different point of the file.
  next_body = math.random(#bodies)
end

function request()
  next_body = next_body % #bodies + 1
  return wrk.format("POST", "/v1/translate", headers, bodies[next_body])
end

function done(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    '\nRESULT {"requests": %d, "duration_us": %d, "non_2xx": %d, "socket_errors": %d, ' ..
    '"p50_us": %d, "p99_us": %d, "max_us": %d}\n',
    summary.requests, summary.duration, e.status, e.connect + e.read + e.write + e.timeout,
    latency:percentile(50), latency:percentile(99), latency.max))
end

-- Shared by every scenario script (bench/wrk.py puts it first): a per-thread request cap,
-- a count of answers by status, and one machine-readable result line at the end.
--
-- Environment: BENCH_CAP_PER_THREAD (answers after which a thread stops; 0 = no cap).

local cap = tonumber(os.getenv("BENCH_CAP_PER_THREAD") or "0")
local threads = {}

-- Per thread (each wrk thread has its own Lua state): answers counted by status.
statuses = {}
answered = 0

function setup(thread)
  table.insert(threads, thread)
end

function response(status, headers, body)
  statuses[status] = (statuses[status] or 0) + 1
  answered = answered + 1
  if cap > 0 and answered >= cap then
    wrk.thread:stop()
  end
end

-- A different seed in every thread state (the address of a fresh table differs).
function seed()
  local address = tonumber(tostring({}):match("0x(%x+)") or "0", 16) or 0
  math.randomseed(os.time() + address % 1000003)
end

function done(summary, latency, requests)
  local merged = {}
  for _, thread in ipairs(threads) do
    for status, count in pairs(thread:get("statuses") or {}) do
      merged[status] = (merged[status] or 0) + count
    end
  end
  local parts = {}
  for status, count in pairs(merged) do
    table.insert(parts, string.format('"%d":%d', status, count))
  end
  local e = summary.errors
  io.write(string.format(
    'BENCH_RESULT {"requests":%d,"duration_us":%d,"bytes":%d,' ..
    '"errors":{"connect":%d,"read":%d,"write":%d,"status":%d,"timeout":%d},' ..
    '"latency_us":{"p50":%d,"p90":%d,"p99":%d,"max":%d,"mean":%.1f},"statuses":{%s}}\n',
    summary.requests, summary.duration, summary.bytes,
    e.connect, e.read, e.write, e.status, e.timeout,
    latency:percentile(50), latency:percentile(90), latency:percentile(99), latency.max,
    latency.mean, table.concat(parts, ",")))
end

-- wrk script for the inbound-webhook benchmark (driven by bench/inbound.py).
--
-- Every request is a distinct, pre-signed Twilio inbound webhook read from a file made by
-- bench/inbound.py: one line per request, "<X-Twilio-Signature>\t<urlencoded form body>".
-- Each wrk thread reads its own file (<prefix>.<thread index>), so threads never share a
-- request and no MessageSid is sent twice in a run unless the file runs out (then it wraps
-- and counts `repeats`, which bench/inbound.py reports as a sizing problem). The file must
-- end with a newline.
--
-- Environment (wrk passes it to every thread's Lua state):
--   BENCH_REQUESTS  file prefix (required)      BENCH_PATH  request path (required)
--   BENCH_THREADS   wrk -t value (default 1)    BENCH_RATE  total req/s; 0 or unset = flat out
--
-- With BENCH_RATE > 0 the script defines delay(): each thread keeps an absolute schedule of
-- send slots (rate / threads per second) and every connection that is ready to send waits
-- for the next free slot. A slot already in the past is sent at once (catch-up), so the
-- offered rate holds as long as there are enough connections. Latency is measured by wrk
-- from the actual send, so (unlike wrk2) queueing behind a slow response is not counted.
--
-- done() prints one line "BENCH_JSON {...}" with requests, errors and latency in ms.

local prefix = os.getenv("BENCH_REQUESTS")
local path = os.getenv("BENCH_PATH")
local nthreads = tonumber(os.getenv("BENCH_THREADS") or "1")
local rate = tonumber(os.getenv("BENCH_RATE") or "0") or 0

-- ---- main state: one entry per thread --------------------------------------------------

local threads = {}

function setup(thread)
   thread:set("tid", #threads)
   table.insert(threads, thread)
end

-- ---- thread state ----------------------------------------------------------------------

local data = ""
local size = 0
local pos = 1
local wrapped = false
repeats = 0
non200 = 0
first_bad = ""

-- wrk runs init() for thread N+1 after thread N has started sending, and starts its clock
-- after the last init(), so init() only slurps the file (tens of ms); request() walks it.
function init(args)
   local file = prefix .. "." .. tostring(tid)
   local fh = io.open(file, "rb")
   if fh == nil then
      error("cannot open request file " .. file)
   end
   data = fh:read("*a")
   fh:close()
   size = #data
   if size == 0 then
      error("request file " .. file .. " is empty")
   end
end

local headers = {
   ["Content-Type"] = "application/x-www-form-urlencoded",
   ["X-Twilio-Signature"] = "",
}

function request()
   if pos > size then
      pos = 1
      wrapped = true
   end
   if wrapped then
      repeats = repeats + 1
   end
   local tab = data:find("\t", pos, true)
   local nl = data:find("\n", tab, true) or (size + 1)
   headers["X-Twilio-Signature"] = data:sub(pos, tab - 1)
   local body = data:sub(tab + 1, nl - 1)
   pos = nl + 1
   return wrk.format("POST", path, headers, body)
end

function response(status, hdrs, body)
   if status ~= 200 then
      non200 = non200 + 1
      if first_bad == "" then
         first_bad = tostring(status) .. " " .. string.sub(body or "", 1, 200)
      end
   end
end

if rate > 0 then
   local ffi = require("ffi")
   ffi.cdef([[
      typedef struct { long tv_sec; long tv_nsec; } bench_timespec;
      int clock_gettime(int clk_id, bench_timespec *tp);
   ]])
   local ts = ffi.new("bench_timespec")
   local CLOCK_MONOTONIC = 1
   local interval = 1000.0 * nthreads / rate -- ms between sends, per thread
   local next_slot = nil

   local function now_ms()
      ffi.C.clock_gettime(CLOCK_MONOTONIC, ts)
      return tonumber(ts.tv_sec) * 1000.0 + tonumber(ts.tv_nsec) / 1e6
   end

   function delay()
      local now = now_ms()
      if next_slot == nil then
         -- spread the threads' first slots over one interval
         next_slot = now + interval * tid / nthreads
      end
      local slot = next_slot
      next_slot = slot + interval
      local wait = slot - now
      if wait < 0 then
         return 0
      end
      return math.floor(wait + 0.5)
   end
end

-- ---- main state again: report ----------------------------------------------------------

local function q(s)
   s = string.gsub(s, '[%c"\\]', function(c)
      return string.format("\\u%04x", string.byte(c))
   end)
   return '"' .. s .. '"'
end

function done(summary, latency, requests)
   local non2xx, reps, bad = 0, 0, ""
   for _, thread in ipairs(threads) do
      non2xx = non2xx + (thread:get("non200") or 0)
      reps = reps + (thread:get("repeats") or 0)
      local fb = thread:get("first_bad") or ""
      if bad == "" then
         bad = fb
      end
   end
   local e = summary.errors
   local socket_errors = e.connect + e.read + e.write + e.timeout
   local seconds = summary.duration / 1e6
   local function ms(p)
      return latency:percentile(p) / 1000.0
   end
   io.write(string.format(
      'BENCH_JSON {"requests":%d,"duration_s":%.3f,"rps":%.1f,"errors":%d,"non200":%d,'
         .. '"socket_errors":{"connect":%d,"read":%d,"write":%d,"timeout":%d},'
         .. '"repeats":%d,"latency_ms":{"p50":%.3f,"p90":%.3f,"p99":%.3f,"p999":%.3f,'
         .. '"max":%.3f,"mean":%.3f},"first_bad":%s}\n',
      summary.requests, seconds, summary.requests / seconds, non2xx + socket_errors, non2xx,
      e.connect, e.read, e.write, e.timeout, reps,
      ms(50), ms(90), ms(99), ms(99.9), latency.max / 1000.0, latency.mean / 1000.0, q(bad)
   ))
end

-- Request generator for wrk, used by bench/run.py. Every request carries a bearer token
-- (round-robin over BENCH_TOKENS) and its own Idempotency-Key, as a production client's would.
--   BENCH_PATH       request path; "{id}" is replaced by the next id from BENCH_IDS
--   BENCH_BODY_FILE  the JSON body to POST
--   BENCH_IDS        optional file of ids, one per line, split among wrk's threads
--   BENCH_RUN        a prefix that makes the idempotency keys unique to this run
local next_thread = 0
local counter = 0
local tokens = {}
local ids = {}
local body = nil
local path_template = nil
local run = nil

function setup(thread)
  thread:set("tid", next_thread)
  next_thread = next_thread + 1
end

function init(args)
  for t in string.gmatch(os.getenv("BENCH_TOKENS"), "[^,]+") do
    table.insert(tokens, t)
  end
  path_template = os.getenv("BENCH_PATH")
  run = os.getenv("BENCH_RUN")
  local f = assert(io.open(os.getenv("BENCH_BODY_FILE"), "r"))
  body = f:read("*a")
  f:close()
  local ids_file = os.getenv("BENCH_IDS")
  if ids_file and ids_file ~= "" then
    local threads = tonumber(os.getenv("BENCH_THREADS"))
    local n = 0
    for line in io.lines(ids_file) do
      if n % threads == tid then
        table.insert(ids, line)
      end
      n = n + 1
    end
  end
end

function request()
  counter = counter + 1
  local path = path_template
  if #ids > 0 then
    local id = ids[((counter - 1) % #ids) + 1]
    path = string.gsub(path, "{id}", id)
  end
  local headers = {
    ["Content-Type"] = "application/json",
    ["Authorization"] = "Bearer " .. tokens[(counter % #tokens) + 1],
    ["Idempotency-Key"] = run .. "-" .. tid .. "-" .. counter,
  }
  return wrk.format("POST", path, headers, body)
end

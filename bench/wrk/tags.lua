-- wrk script for bench/shapes.py: PUT one manifest under COUNT consecutive tags.
--   wrk -tT -cC -dLONG -s tags.lua URL -- FIRST COUNT T REPO MANIFEST_FILE CONTENT_TYPE MARKS
-- Thread i PUTs the tags t<FIRST + i*COUNT/T> ... (zero-padded to 6 digits, so they sort
-- as numbers do); connections with no tag left send GET /v2/ meanwhile. Once all its PUTs
-- were answered, a thread appends a line to the file MARKS and stops. wrk itself runs for
-- its whole -d, so the caller times the run by watching MARKS and then interrupts wrk.
-- done() prints "TAGS done=N errors=E" (E: PUTs answered other than 201).

local threads = {}
local counter = 0

function setup(thread)
  thread:set("tid", counter)
  counter = counter + 1
  table.insert(threads, thread)
end

function init(args)
  local first, count, nthreads = tonumber(args[1]), tonumber(args[2]), tonumber(args[3])
  repo = args[4]
  local f = assert(io.open(args[5], "rb"))
  manifest = f:read("*a")
  f:close()
  -- wrk.format with its own header table would drop wrk.headers (-H: Authorization)
  wrk.headers["Content-Type"] = args[6]
  marks = args[7]
  per = math.floor(count / nthreads)
  base = first + tid * per
  sent, done, errors = 0, 0, 0
  -- wrk calls request() of its first thread once before the run, to check the request,
  -- and throws that one away: it must not use up a tag.
  discard = tid == 0
end

function request()
  if discard then
    discard = false
    return wrk.format("GET", "/v2/")
  end
  if sent < per then
    local tag = string.format("t%06d", base + sent)
    sent = sent + 1
    return wrk.format("PUT", "/v2/" .. repo .. "/manifests/" .. tag, nil, manifest)
  end
  return wrk.format("GET", "/v2/")
end

function response(status, headers, body)
  if status ~= 200 then -- 200 is a filler GET /v2/
    done = done + 1
    if status ~= 201 then
      errors = errors + 1
    end
    if done == per then
      local f = assert(io.open(marks, "a"))
      f:write("done\n")
      f:close()
      wrk.thread:stop()
    end
  end
end

function done(summary, latency, requests)
  local d, e = 0, 0
  for _, t in ipairs(threads) do
    d = d + t:get("done")
    e = e + t:get("errors")
  end
  io.write(string.format("TAGS done=%d errors=%d\n", d, e))
end

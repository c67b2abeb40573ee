-- Record a batch of item results: first write wins, counters move only for
-- ids seen for the first time, so re-deliveries and retries never double count.
-- A crawl page's result also carries what it discovered (_links, _images,
-- _words): admitted in this same call, so a page is never "done" before its
-- children are known, and the job cannot end while anything is still to come.
-- A page's depth is read from `urls` (it may have been lowered since dispatch).
-- KEYS: job, items, done, stats, urls, frontier, inflight, leases, words, links, unsettled, beyond
-- ARGV: now, result-json...
-- Returns {newly_recorded, finished_by_this_call}
local job, items, done, stats = KEYS[1], KEYS[2], KEYS[3], KEYS[4]
local urls, frontier, inflight, leases, words = KEYS[5], KEYS[6], KEYS[7], KEYS[8], KEYS[9]
local now = ARGV[1]
local crawl = {job = job, items = items, done = done, stats = stats, urls = urls, frontier = frontier,
  inflight = inflight, links = KEYS[10], unsettled = KEYS[11], beyond = KEYS[12]}
local low = nil  -- lowest_open(crawl) before this call, once a crawl page is seen

local function present(v)
  return v ~= nil and v ~= cjson.null and v ~= ''
end

local added = 0
for i = 2, #ARGV do
  local r = cjson.decode(ARGV[i])
  local links, images, page_words = r._links, r._images, r._words
  r._links, r._images, r._words = nil, nil, nil
  local depth = page_depth(crawl, r)
  if depth and not low then
    low = lowest_open(crawl_limits(crawl))
  end
  redis.call('ZREM', inflight, r.id)
  redis.call('ZREM', leases, r.id)
  if redis.call('SISMEMBER', items, r.id) == 0 then
    redis.call('HINCRBY', stats, 'unexpected', 1)
  elseif redis.call('HSETNX', done, r.id, cjson.encode(r)) == 1 then
    added = added + 1
    local outcome = 'failed'
    if r.ok then outcome = 'ok' end
    redis.call('HINCRBY', stats, outcome, 1)
    if present(r.kind) then
      redis.call('HINCRBY', stats, outcome .. ':' .. r.kind, 1)
    end
    if r.ok then
      if present(r.format) then
        redis.call('HINCRBY', stats, 'fmt:' .. r.format, 1)
      end
      if type(r.meta) == 'table' and r.meta.cached == true then
        redis.call('HINCRBY', stats, 'cache_hits', 1)
      end
    else
      local reason = 'error'
      if present(r.reason) then reason = r.reason end
      redis.call('HINCRBY', stats, 'fail:' .. reason, 1)
    end
    redis.call('HINCRBY', stats, 'bytes_in', tonumber(r.bytes_in) or 0)
    redis.call('HINCRBY', stats, 'bytes_out', tonumber(r.bytes_out) or 0)
    if type(r.timings) == 'table' then
      for stage, seconds in pairs(r.timings) do
        redis.call('HINCRBYFLOAT', stats, 't:' .. stage, tonumber(seconds) or 0)
      end
    end
    if type(page_words) == 'table' then
      for _, pair in ipairs(page_words) do
        redis.call('ZINCRBY', words, pair[2], pair[1])
      end
    end
    if depth then
      discovered(crawl, r.id, depth, links, images, low)
    end
  else
    redis.call('HINCRBY', stats, 'duplicates', 1)
  end
end
if redis.call('HGET', job, 'state') == 'queued' then
  redis.call('HSET', job, 'state', 'running', 'started_at', now)
end
if redis.call('HEXISTS', job, 'total') == 1 then
  redis.call('HSET', job, 'total', redis.call('SCARD', items))
end
if low then
  settle(crawl)
end
return {added, maybe_finish(job, stats, now)}

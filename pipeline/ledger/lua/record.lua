-- Record a batch of item results: first write wins, counters move only for
-- ids seen for the first time, so re-deliveries and retries never double count.
-- A crawl page's result also carries what it discovered (_links, _images,
-- _words, and _offsite: images per host the scope leaves out): admitted in
-- this same call, so a page is never "done" before its children are known,
-- and the job cannot end while anything is still to come. A scrape page's
-- items (_items, JSON lines) go to `feed` with the first write of its result
-- only, so a re-delivered page never adds them twice.
-- A page's depth is read from `urls` (it may have been lowered since dispatch).
-- KEYS: job, items, done, stats, urls, frontier, inflight, leases, words, links, unsettled, beyond, offsite, feed
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

-- Counters and word counts are summed here and written once per field at the
-- end: a batch of pages shares most of its words and every result bumps the
-- same few counters, so this turns ~50 commands per page into a few per call.
local counts, seconds_sum, word_counts, off_site = {}, {}, {}, {}
local function bump(field, n)
  counts[field] = (counts[field] or 0) + n
end

local added = 0
for i = 2, #ARGV do
  local r = cjson.decode(ARGV[i])
  local links, images, page_words, page_off_site = r._links, r._images, r._words, r._offsite
  local feed_items = r._items
  r._links, r._images, r._words, r._offsite, r._items = nil, nil, nil, nil, nil
  local depth = page_depth(crawl, r)
  if depth and not low then
    low = lowest_open(crawl_limits(crawl))
  end
  redis.call('ZREM', inflight, r.id)
  redis.call('ZREM', leases, r.id)
  if redis.call('SISMEMBER', items, r.id) == 0 then
    bump('unexpected', 1)
  elseif redis.call('HSETNX', done, r.id, cjson.encode(r)) == 1 then
    added = added + 1
    if present(feed_items) then
      redis.call('HSET', KEYS[14], r.id, feed_items)
    end
    local outcome = 'failed'
    if r.ok then outcome = 'ok' end
    bump(outcome, 1)
    if present(r.kind) then
      bump(outcome .. ':' .. r.kind, 1)
    end
    if r.ok then
      if present(r.format) then
        bump('fmt:' .. r.format, 1)
      end
      if type(r.meta) == 'table' and r.meta.cached == true then
        bump('cache_hits', 1)
      end
    else
      local reason = 'error'
      if present(r.reason) then reason = r.reason end
      bump('fail:' .. reason, 1)
    end
    bump('bytes_in', tonumber(r.bytes_in) or 0)
    bump('bytes_out', tonumber(r.bytes_out) or 0)
    if type(r.timings) == 'table' then
      for stage, seconds in pairs(r.timings) do
        local field = 't:' .. stage
        seconds_sum[field] = (seconds_sum[field] or 0) + (tonumber(seconds) or 0)
      end
    end
    if type(page_words) == 'table' then
      for _, pair in ipairs(page_words) do
        word_counts[pair[1]] = (word_counts[pair[1]] or 0) + (tonumber(pair[2]) or 0)
      end
    end
    if type(page_off_site) == 'table' then
      for _, pair in ipairs(page_off_site) do
        off_site[pair[1]] = (off_site[pair[1]] or 0) + (tonumber(pair[2]) or 0)
      end
    end
    if depth then
      discovered(crawl, r.id, depth, links, images, low)
    end
  else
    bump('duplicates', 1)
  end
end
for field, n in pairs(counts) do
  redis.call('HINCRBY', stats, field, n)
end
for field, x in pairs(seconds_sum) do
  redis.call('HINCRBYFLOAT', stats, field, x)
end
for word, n in pairs(word_counts) do
  redis.call('ZINCRBY', words, n, word)
end
for host, n in pairs(off_site) do
  redis.call('ZINCRBY', KEYS[13], n, host)
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

-- Hand out crawl items to send as tasks: expired leases first (their task was
-- lost or its worker died), then images, then pages, shallowest first. Pages
-- do not wait for shallower ones to finish: record.lua corrects a depth when
-- a shorter path turns up later (see admit.lua), so one slow page does not
-- stall the crawl. While many recorded pages are still unsettled (their links
-- kept in Redis for such corrections), only pages within one level of the
-- shallowest open page go out, which are settled when recorded: that bounds
-- the memory a crawl stuck on a slow page can use. So it is from half the
-- --max-pages cap on: a branch that ran ahead (a fast chain of pages beside a
-- slow one) then waits for the others, so the pages admitted when the cap is
-- reached are the shallowest ones (admit.lua swaps a deeper waiting page for a
-- shallower link at the cap). A window bounds what is in
-- flight, so cancelling is quick and leases measure work, not queueing.
-- KEYS: job, frontier, inflight, leases, urls, unsettled
-- ARGV: now, lease_s, default window, min window, image batch size, limit (0: the window's room)
-- (a job's own `window` field, set at submit from its concurrency, wins)
-- Returns a flat list of {id, url, depth, kind} JSON strings.
local UNSETTLED_LIMIT = 5000
local job, frontier, inflight, leases, urls, unsettled = KEYS[1], KEYS[2], KEYS[3], KEYS[4], KEYS[5], KEYS[6]
local now, lease_s = tonumber(ARGV[1]), tonumber(ARGV[2])
local window = math.max(tonumber(redis.call('HGET', job, 'window') or ARGV[3]), tonumber(ARGV[4] or 0))
local state = redis.call('HGET', job, 'state')
if state ~= 'queued' and state ~= 'running' then
  return {}
end
local out = {}
local function hand_out(id)
  redis.call('ZADD', leases, now + lease_s, id)
  local raw = redis.call('HGET', urls, id)
  if raw then
    local u = cjson.decode(raw)
    out[#out + 1] = cjson.encode({id, u[1], u[2], u[3]})
  end
end
-- A crawl batch topping itself up (a limit, ARGV[6]) claims no more pages than it
-- can start, images only in whole batches, and leaves expired leases to the ticker.
local limit = tonumber(ARGV[6] or 0)
local topping_up = limit > 0
if not topping_up then
  for _, id in ipairs(redis.call('ZRANGEBYSCORE', leases, '-inf', now, 'LIMIT', 0, window)) do
    hand_out(id)
  end
end
local room = window - redis.call('ZCARD', leases)
if room <= 0 then
  return out
end
-- Images go out in whole batches (ARGV[5], the batch size) while more wait
-- than fit: handing out only the room one finished batch left would split the
-- job into ever smaller batches. A crawl's images wait for a whole batch while
-- pages are still to come (they will find more): sent as found, a page's two
-- or three made a task each, and a task costs a worker more than fetching and
-- transforming a small image. The last ones go once no page is left.
local take, batch = room, math.min(tonumber(ARGV[5] or 1), window)
local images = redis.call('ZCOUNT', frontier, -1, -1)
if batch > 1 and images > room then
  take = room - room % batch
elseif batch > 1 and images < batch
    and (redis.call('ZCARD', inflight) > 0 or redis.call('ZCOUNT', frontier, 0, '+inf') > 0) then
  take = 0
end
if topping_up then
  take = math.min(room, images)
  take = take - take % batch
end
for _, id in ipairs(take > 0 and redis.call('ZRANGEBYSCORE', frontier, -1, -1, 'LIMIT', 0, take) or {}) do
  redis.call('ZREM', frontier, id)
  hand_out(id)
  room = room - 1
end
if topping_up then
  room = math.min(room, limit)
end
if room <= 0 then
  return out
end
local waiting = redis.call('ZRANGEBYSCORE', frontier, 0, '+inf', 'WITHSCORES', 'LIMIT', 0, room)
if #waiting == 0 then
  return out
end
local deepest = math.huge
local max_pages = tonumber(redis.call('HGET', job, 'max_pages') or '-1')
local near_cap = max_pages >= 0 and tonumber(redis.call('HGET', job, 'pages_admitted') or '0') * 2 >= max_pages
if near_cap or redis.call('ZCARD', unsettled) >= UNSETTLED_LIMIT then
  deepest = tonumber(waiting[2]) + 1
  local running = redis.call('ZRANGE', inflight, 0, 0, 'WITHSCORES')
  if #running > 0 then deepest = math.min(deepest, tonumber(running[2]) + 1) end
end
for i = 1, #waiting, 2 do
  local id, depth = waiting[i], tonumber(waiting[i + 1])
  if depth > deepest then
    break
  end
  redis.call('ZREM', frontier, id)
  redis.call('ZADD', inflight, depth, id)
  hand_out(id)
end
return out

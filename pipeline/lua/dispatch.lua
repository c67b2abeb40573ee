-- Hand out crawl items to send as tasks: expired leases first (their task was
-- lost or its worker died), then images, then pages of the shallowest depth
-- still waiting, but only once no page of a smaller depth is in flight. That
-- barrier makes every page's depth its breadth-first depth, so --max-depth
-- means what it says however many workers race. A window bounds what is in
-- flight, so cancelling is quick and leases measure work, not queueing.
-- KEYS: job, frontier, inflight, leases, urls     ARGV: now, lease_s, default window
-- (a job's own `window` field, set at submit from its concurrency, wins)
-- Returns a flat list of {id, url, depth, kind} JSON strings.
local job, frontier, inflight, leases, urls = KEYS[1], KEYS[2], KEYS[3], KEYS[4], KEYS[5]
local now, lease_s = tonumber(ARGV[1]), tonumber(ARGV[2])
local window = tonumber(redis.call('HGET', job, 'window') or ARGV[3])
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
for _, id in ipairs(redis.call('ZRANGEBYSCORE', leases, '-inf', now, 'LIMIT', 0, window)) do
  hand_out(id)
end
local room = window - redis.call('ZCARD', leases)
if room <= 0 then
  return out
end
for _, id in ipairs(redis.call('ZRANGEBYSCORE', frontier, -1, -1, 'LIMIT', 0, room)) do
  redis.call('ZREM', frontier, id)
  hand_out(id)
  room = room - 1
end
local lowest = redis.call('ZRANGEBYSCORE', frontier, 0, '+inf', 'WITHSCORES', 'LIMIT', 0, 1)
if room > 0 and #lowest > 0 then
  local depth = tonumber(lowest[2])
  if redis.call('ZCOUNT', inflight, '-inf', '(' .. depth) == 0 then
    for _, id in ipairs(redis.call('ZRANGEBYSCORE', frontier, depth, depth, 'LIMIT', 0, room)) do
      redis.call('ZREM', frontier, id)
      redis.call('ZADD', inflight, depth, id)
      hand_out(id)
    end
  end
end
return out

-- Keep one result-cache entry, and the whole cache under its total size (workers/result_cache.py).
--
-- KEYS: entry, index (ZSET entry -> expiry time), sizes (HASH entry -> bytes), total (bytes kept)
-- ARGV: value, ttl_s, now (unix s), max_total_bytes (0 = no cap)
--
-- Entries leave by their TTL (Redis expires them; the index forgets them here, a
-- bounded number per call) or, when the total would pass the cap, soonest to
-- expire first. The cache shares Redis's memory with queues and ledgers that
-- must never be evicted, so it must not be the thing that fills it.
-- Returns 1 if the entry was kept, 0 if it alone is over the cap.
local entry, index, sizes, total = KEYS[1], KEYS[2], KEYS[3], KEYS[4]
local value, ttl, now, cap = ARGV[1], tonumber(ARGV[2]), tonumber(ARGV[3]), tonumber(ARGV[4])
local kept = tonumber(redis.call('GET', total) or '0')

local function forget(key)
  local size = redis.call('HGET', sizes, key)
  if size then
    kept = kept - tonumber(size)
    redis.call('HDEL', sizes, key)
  end
  redis.call('ZREM', index, key)
end

for _, key in ipairs(redis.call('ZRANGEBYSCORE', index, '-inf', now, 'LIMIT', 0, 64)) do
  forget(key)
  redis.call('DEL', key)
end
forget(entry)  -- an overwrite (a repaired entry) replaces the old size
if cap > 0 and #value > cap then
  redis.call('DEL', entry)
  redis.call('SET', total, math.max(kept, 0))
  return 0
end
while cap > 0 and kept + #value > cap do
  local soonest = redis.call('ZRANGE', index, 0, 0)
  if #soonest == 0 then
    kept = 0  -- nothing indexed is left: the count had drifted (keys deleted by hand)
    break
  end
  forget(soonest[1])
  redis.call('DEL', soonest[1])
end
redis.call('SET', entry, value, 'EX', ttl)
redis.call('ZADD', index, now + ttl, entry)
redis.call('HSET', sizes, entry, #value)
redis.call('SET', total, math.max(kept, 0) + #value)
return 1

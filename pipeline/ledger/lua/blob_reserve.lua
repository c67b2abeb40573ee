-- Reserve room in the blobs' budget before their bytes are written (ledger/blobs.py).
--
-- KEYS: held (ZSET blob -> expiry time), sizes (HASH blob -> bytes), total (bytes held)
-- ARGV: now (unix s), expiry_s, budget (bytes), then blob key, size, blob key, size...
--
-- Every worker reserves here, so the budget is cluster-wide. A reservation
-- lasts as long as its blob (the same expiry): a worker that dies holding one
-- leaks it only until then; an expired one is forgotten (and its blob deleted)
-- by the next call, a bounded number per call. A blob reserved again (its item
-- re-sent) trades its old room for the new (the write that follows replaces
-- the bytes; a transform reading them meanwhile finds one copy or the other).
-- Grants in order while they fit; a
-- blob that does not fit now is skipped, not queued: the caller waits and asks again.
-- Returns the 1-based positions of the blobs granted.
local held, sizes, total = KEYS[1], KEYS[2], KEYS[3]
local now, expiry, budget = tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3])
local kept = tonumber(redis.call('GET', total) or '0')

local function forget(key)
  local size = redis.call('HGET', sizes, key)
  if size then
    kept = kept - tonumber(size)
    redis.call('HDEL', sizes, key)
  end
  redis.call('ZREM', held, key)
end

for _, key in ipairs(redis.call('ZRANGEBYSCORE', held, '-inf', now, 'LIMIT', 0, 64)) do
  forget(key)
  redis.call('DEL', key)
end
if redis.call('ZCARD', held) == 0 then
  kept = 0  -- nothing is held: the count had drifted (keys deleted by hand)
end
local granted = {}
for i = 4, #ARGV, 2 do
  local key, size = ARGV[i], tonumber(ARGV[i + 1])
  local before = tonumber(redis.call('HGET', sizes, key) or '0')  -- an earlier copy of this item's bytes
  if kept - before + size <= budget then
    kept = kept - before
    redis.call('ZADD', held, now + expiry, key)
    redis.call('HSET', sizes, key, size)
    kept = kept + size
    granted[#granted + 1] = (i - 2) / 2
  end
end
redis.call('SET', total, math.max(kept, 0))
return granted

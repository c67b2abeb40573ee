-- Delete blobs and give their room back to the budget, in one step (ledger/blobs.py).
--
-- KEYS: held (ZSET blob -> expiry time), sizes (HASH blob -> bytes), total (bytes held)
-- ARGV: blob keys
-- Deleting never needs memory: this runs even when Redis is full, and is what empties it.
-- Returns the bytes released.
local held, sizes, total = KEYS[1], KEYS[2], KEYS[3]
local released = 0
for _, key in ipairs(ARGV) do
  local size = redis.call('HGET', sizes, key)
  if size then
    released = released + tonumber(size)
    redis.call('HDEL', sizes, key)
  end
  redis.call('ZREM', held, key)
  redis.call('UNLINK', key)
end
if released > 0 then
  local kept = tonumber(redis.call('GET', total) or '0') - released
  if kept <= 0 or redis.call('ZCARD', held) == 0 then
    redis.call('DEL', total)
  else
    redis.call('SET', total, kept)
  end
end
return released

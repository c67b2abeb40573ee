-- A task has started on a worker: its items are now held by that worker
-- (NODE|INSTANCE), so that if it dies they can be re-sent at once instead of
-- after the visibility timeout (see takeover.lua). A later holder overwrites
-- an earlier one: the item's lease follows whoever runs it now.
-- KEYS: held (item -> owner), owners (every owner that held items of the job)
-- ARGV: owner, ttl_s, item ids...
local held, owners, owner = KEYS[1], KEYS[2], ARGV[1]
local ttl = tonumber(ARGV[2])
for i = 3, #ARGV, 500 do
  local pairs_ = {}
  for j = i, math.min(i + 499, #ARGV) do
    pairs_[#pairs_ + 1] = ARGV[j]
    pairs_[#pairs_ + 1] = owner
  end
  redis.call('HSET', held, unpack(pairs_))
end
redis.call('SADD', owners, owner)
redis.call('EXPIRE', held, ttl)
redis.call('EXPIRE', owners, ttl)
return #ARGV - 2

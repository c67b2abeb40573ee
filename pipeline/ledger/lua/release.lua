-- A task has ended (its items are recorded, or back in the queue): forget that
-- this worker holds them, unless another worker has taken them since.
-- KEYS: held
-- ARGV: owner, item ids...
local held, owner = KEYS[1], ARGV[1]
local released = 0
for i = 2, #ARGV do
  if redis.call('HGET', held, ARGV[i]) == owner then
    redis.call('HDEL', held, ARGV[i])
    released = released + 1
  end
end
return released

-- Delete a schedule with its state, history and any fire still waiting to be submitted.
-- KEYS: defs, paused, state, history, pending, rev      ARGV: name
-- Returns 1, or 0 for an unknown name.
local defs, paused, state, history, pending, rev = KEYS[1], KEYS[2], KEYS[3], KEYS[4], KEYS[5], KEYS[6]
local name = ARGV[1]
if redis.call('HDEL', defs, name) == 0 then return 0 end
redis.call('SREM', paused, name)
redis.call('DEL', state, history)
local prefix = name .. '@'
for _, field in ipairs(redis.call('HKEYS', pending)) do
  if string.sub(field, 1, #prefix) == prefix then redis.call('HDEL', pending, field) end
end
redis.call('INCR', rev)
return 1

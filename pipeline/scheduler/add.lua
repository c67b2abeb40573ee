-- Create (or with replace=1, overwrite) a schedule definition.
-- KEYS: defs, paused, state, history, rev      ARGV: name, definition, now_ms, replace
-- Returns 1, or 0 when the name is taken and replace is 0.
local defs, paused, state, history, rev = KEYS[1], KEYS[2], KEYS[3], KEYS[4], KEYS[5]
local name, definition, now_ms = ARGV[1], ARGV[2], ARGV[3]
local exists = redis.call('HEXISTS', defs, name) == 1
if exists and ARGV[4] ~= '1' then return 0 end
if not exists then
  redis.call('DEL', state, history)
  redis.call('SREM', paused, name)
end
redis.call('HSET', defs, name, definition)
-- The cursor starts now: a new (or changed) timetable never catches up on fire
-- times from before it existed.
local cursor = tonumber(redis.call('HGET', state, 'cursor') or '0')
if tonumber(now_ms) > cursor then redis.call('HSET', state, 'cursor', now_ms) end
redis.call('INCR', rev)
return 1

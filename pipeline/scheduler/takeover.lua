-- Adopt a pending fire: one whose owner died before committing it, or one that
-- waited for the previous job (overlap=queue) and may go now.
-- KEYS: pending, state, paused
-- ARGV: field, expected entry, new entry, job_id, job key prefix, final states, name
-- Returns 1 if the caller now owns the entry (and must submit, then commit), else 0.
local pending, state, paused = KEYS[1], KEYS[2], KEYS[3]
local field, expected, entry, job_id = ARGV[1], ARGV[2], ARGV[3], ARGV[4]
local job_prefix, finals, name = ARGV[5], ARGV[6], ARGV[7]

if redis.call('HGET', pending, field) ~= expected then return 0 end
local after = cjson.decode(expected).after
if after then
  if redis.call('SISMEMBER', paused, name) == 1 then return 0 end
  local inflight = redis.call('HGET', state, 'inflight')
  if inflight and inflight ~= '' then return 0 end
  if job_running(job_prefix, after, finals) then return 0 end
end
redis.call('HSET', pending, field, entry)
redis.call('HSET', state, 'inflight', job_id)
if redis.call('HGET', state, 'waiting') == field then redis.call('HDEL', state, 'waiting') end
return 1

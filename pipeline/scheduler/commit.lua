-- Record the outcome of a fire this owner submitted (or failed to), and release it.
-- KEYS: defs, state, pending, history
-- ARGV: name, field, expected entry, fire_ms, outcome ('submitted'|'failed'), job_id, detail, now_ms, history cap
-- Returns 1, or 0 if the entry is no longer the caller's (adopted by another replica, or the schedule removed).
local defs, state, pending, history = KEYS[1], KEYS[2], KEYS[3], KEYS[4]
local name, field, expected, fire_ms, outcome = ARGV[1], ARGV[2], ARGV[3], ARGV[4], ARGV[5]
local job_id, detail, now_ms, cap = ARGV[6], ARGV[7], ARGV[8], ARGV[9]

if redis.call('HGET', pending, field) ~= expected then return 0 end
redis.call('HDEL', pending, field)
if redis.call('HEXISTS', defs, name) == 0 then return 0 end
if redis.call('HGET', state, 'inflight') == job_id then redis.call('HDEL', state, 'inflight') end
if outcome == 'submitted' then
  redis.call('HSET', state, 'last_job', job_id, 'last_fire', fire_ms, 'last_run_at', now_ms)
else
  job_id = ''
end
record_outcome(state, history, fire_ms, outcome, job_id, detail, now_ms, cap)
return 1

-- Link a job submitted by `schedule run-now` to its schedule (it becomes the last job).
-- KEYS: defs, state, history      ARGV: name, job_id, now_ms, history cap
-- Returns 1, or 0 if the schedule was removed meanwhile.
local defs, state, history = KEYS[1], KEYS[2], KEYS[3]
local name, job_id, now_ms, cap = ARGV[1], ARGV[2], ARGV[3], ARGV[4]
if redis.call('HEXISTS', defs, name) == 0 then return 0 end
redis.call('HSET', state, 'last_job', job_id, 'last_run_at', now_ms)
record_outcome(state, history, now_ms, 'run-now', job_id, 'submitted by schedule run-now', now_ms, cap)
return 1

-- Shared by the scheduler scripts that record what a fire time became.

-- A fire time gets exactly one outcome: submitted, skipped, missed or failed
-- (a run-now job is recorded the same way, at the time it was asked for).
local function record_outcome(state, history, fire_ms, outcome, job, detail, now_ms, cap)
  redis.call('HINCRBY', state, 'n:' .. outcome, 1)
  redis.call('HSET', state, 'last_outcome', outcome, 'last_detail', detail, 'last_outcome_at', now_ms)
  local entry = cjson.encode({fire_ms = tonumber(fire_ms), outcome = outcome, job = job,
                              detail = detail, at = tonumber(now_ms)})
  redis.call('ZADD', history, fire_ms, entry)
  redis.call('ZREMRANGEBYRANK', history, 0, -(tonumber(cap) + 1))
end

-- finals: the final job states, space-separated (pipeline.core.document.FINAL_STATES)
local function is_final(job_state, finals)
  return string.find(' ' .. finals .. ' ', ' ' .. job_state .. ' ', 1, true) ~= nil
end

-- A job blocks the next one while its ledger record says it is not final;
-- a job that is gone (retention expired) blocks nothing.
local function job_running(job_prefix, job, finals)
  if not job or job == '' then return false end
  local job_state = redis.call('HGET', job_prefix .. job, 'state')
  return job_state and not is_final(job_state, finals)
end

-- Claim one fire time of a schedule, and decide what it becomes, in one step.
--
-- Each schedule has a cursor: the latest fire time any replica has claimed
-- (epoch ms). It only moves forward, so a fire time is claimed at most once:
-- the replica that comes second, late, or back from a restart finds its fire
-- time at or behind the cursor and does nothing. Every replica walks its fire
-- times in ascending order from the cursor it last read, so none is skipped
-- unless the coalescing policy skips it on purpose.
--
-- KEYS: defs, paused, state, pending, history
-- ARGV: name, fire_ms, field, owner, job_id, overlap ('skip'|'queue'), late ('1'|'0'),
--       now_ms, history cap, job key prefix, final states
-- Returns {status, previous cursor, detail}:
--   'gone' | 'paused' | 'taken'   nothing recorded
--   'missed' | 'skipped'          recorded as this fire time's outcome
--   'deferred'                    waits in pending (no owner) until job <detail> ends
--   'submit'                      pending under this owner; detail = the entry to commit
local defs, paused, state, pending, history = KEYS[1], KEYS[2], KEYS[3], KEYS[4], KEYS[5]
local name, fire_ms, field, owner, job_id = ARGV[1], ARGV[2], ARGV[3], ARGV[4], ARGV[5]
local overlap, late, now_ms, cap, job_prefix, finals = ARGV[6], ARGV[7], ARGV[8], ARGV[9], ARGV[10], ARGV[11]

if redis.call('HEXISTS', defs, name) == 0 then return {'gone', '0', ''} end
if redis.call('SISMEMBER', paused, name) == 1 then return {'paused', '0', ''} end
local cursor = redis.call('HGET', state, 'cursor') or '0'
if tonumber(fire_ms) <= tonumber(cursor) then return {'taken', cursor, ''} end
redis.call('HSET', state, 'cursor', fire_ms)

if late == '1' then
  record_outcome(state, history, fire_ms, 'missed', '', 'later than the misfire grace time', now_ms, cap)
  return {'missed', cursor, ''}
end

-- A fire already waiting for the previous job (overlap=queue) absorbs this one.
local waiting = redis.call('HGET', state, 'waiting')
if waiting and waiting ~= '' then
  record_outcome(state, history, fire_ms, 'skipped', '', 'an earlier fire is already waiting to run', now_ms, cap)
  return {'skipped', cursor, ''}
end

-- The previous job blocks this one while it is being submitted (inflight) or runs.
local previous = redis.call('HGET', state, 'inflight')
if not previous or previous == '' then
  previous = redis.call('HGET', state, 'last_job')
  if not job_running(job_prefix, previous, finals) then previous = false end
end

if previous then
  if overlap == 'queue' then
    redis.call('HSET', pending, field, cjson.encode({owner = '', job = job_id, after = previous}))
    redis.call('HSET', state, 'waiting', field, 'last_outcome', 'waiting',
               'last_detail', 'for job ' .. previous .. ' to end', 'last_outcome_at', now_ms)
    return {'deferred', cursor, previous}
  end
  record_outcome(state, history, fire_ms, 'skipped', '', 'previous job ' .. previous .. ' still running', now_ms, cap)
  return {'skipped', cursor, previous}
end

local entry = cjson.encode({owner = owner, job = job_id})
redis.call('HSET', pending, field, entry)
redis.call('HSET', state, 'inflight', job_id)
return {'submit', cursor, entry}

-- Claim an output folder for a job: refused (returns the owner's job id) while
-- another job that still exists holds it, unless that job came from the same
-- schedule or the caller overwrites. Otherwise the folder is now this job's.
-- KEYS: outputs        ARGV: folder, job id, schedule ('' if none), overwrite ('1'/'0'), job key prefix
local held = redis.call('HGET', KEYS[1], ARGV[1])
if held and ARGV[4] ~= '1' then
  local owner = cjson.decode(held)
  local same_schedule = ARGV[3] ~= '' and owner.schedule == ARGV[3]
  if owner.job ~= ARGV[2] and not same_schedule and redis.call('EXISTS', ARGV[5] .. owner.job) == 1 then
    return owner.job
  end
end
redis.call('HSET', KEYS[1], ARGV[1], cjson.encode({job = ARGV[2], schedule = ARGV[3]}))
return false

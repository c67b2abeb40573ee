-- Owners that stopped beating are dead: expire the leases of the items they
-- held, so the next pump (any worker's ticker, every 2 s) re-sends them. The
-- ledger keeps the first result per item, so a holder that was only frozen and
-- records later changes no count.
-- KEYS: held (item -> owner), owners, leases (item -> lease expiry)
-- ARGV: dead owners...
-- Returns the number of items whose lease was expired.
local held, owners, leases = KEYS[1], KEYS[2], KEYS[3]
local dead = {}
for i = 1, #ARGV do
  dead[ARGV[i]] = true
  redis.call('SREM', owners, ARGV[i])
end
local entries = redis.call('HGETALL', held)
local expired = 0
for i = 1, #entries, 2 do
  local id, owner = entries[i], entries[i + 1]
  if dead[owner] then
    redis.call('HDEL', held, id)
    -- Only items still leased: one recorded since has no lease, and must not be sent again.
    if redis.call('ZSCORE', leases, id) then
      redis.call('ZADD', leases, 'XX', 0, id)
      expired = expired + 1
    end
  end
end
return expired

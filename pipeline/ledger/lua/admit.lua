-- Admission into a crawl's frontier and breadth-first depths (shared by record.lua and seed.lua).
--
-- A URL is admitted once per job (the items set is the seen-set); a page only
-- within --max-depth and while fewer than --max-pages pages were admitted, or
-- in place of a deeper page still waiting (evict_deeper).
-- Pages wait in the frontier scored by depth; images are scored -1.
--
-- Pages are dispatched shallowest first but without waiting for a depth to
-- finish (dispatch.lua), so one slow page does not stall the crawl. A page's
-- depth is therefore provisional, the length of the shortest path found so
-- far, until it is settled: once no page two or more levels shallower is
-- still open (in the frontier or in flight), no shorter path can appear (new
-- and corrected depths are always deeper than the shallowest open page). A
-- page recorded before it is settled keeps its links (`links`, indexed by
-- depth in `unsettled`); when a shorter path to an admitted page turns up,
-- `relax` lowers its depth wherever it is -- frontier, in flight, or recorded,
-- and then through its kept links -- and admits links that were refused as
-- too deep. At the end every depth is the breadth-first depth and the set of
-- pages is exactly those within --max-depth. `beyond` counts refusals per
-- URL, so links_beyond_depth only counts links to URLs that were never
-- admitted, whatever the order pages finished in.
--
-- `c` is the crawl's keys (job, items, urls, frontier, stats, inflight,
-- done, links, unsettled, beyond; seed.lua has the first five) and limits.
local function crawl_limits(c)
  local max_depth, max_pages = unpack(redis.call('HMGET', c.job, 'max_depth', 'max_pages'))
  c.max_depth, c.max_pages = tonumber(max_depth or '-1'), tonumber(max_pages or '-1')
  return c
end

-- At the --max-pages cap, a page still waiting deeper than `depth` gives its place to a link at
-- `depth`: the admitted pages stay the shallowest ones found (`capped` counts the one let go, which
-- becomes a refused link). Pages already sent out keep their place; dispatch.lua holds deep pages
-- back from half the cap on, so few are. True if a place was freed (the count stays the same).
local function evict_deeper(c, depth)
  local deepest = redis.call('ZREVRANGEBYSCORE', c.frontier, '+inf', depth + 1, 'WITHSCORES', 'LIMIT', 0, 1)
  if #deepest == 0 then
    return false
  end
  local id = deepest[1]
  redis.call('ZREM', c.frontier, id)
  redis.call('SREM', c.items, id)
  redis.call('HDEL', c.urls, id)
  return true
end

local function admit(c, id, url, depth, kind)
  if redis.call('SISMEMBER', c.items, id) == 1 then
    return 0
  end
  if kind == 'p' then
    if c.max_depth >= 0 and depth > c.max_depth then
      redis.call('HINCRBY', c.stats, 'beyond_depth', 1)
      if c.beyond then redis.call('HINCRBY', c.beyond, id, 1) end
      return 0
    end
    local admitted = tonumber(redis.call('HGET', c.job, 'pages_admitted') or '0')
    if c.max_pages >= 0 and admitted >= c.max_pages then
      redis.call('HINCRBY', c.stats, 'capped', 1)
      if not evict_deeper(c, depth) then
        return 0
      end
    else
      redis.call('HINCRBY', c.job, 'pages_admitted', 1)
    end
    redis.call('ZADD', c.frontier, depth, id)
    if c.beyond then
      local refused = redis.call('HGET', c.beyond, id)
      if refused then
        redis.call('HINCRBY', c.stats, 'beyond_depth', -tonumber(refused))
        redis.call('HDEL', c.beyond, id)
      end
    end
  else
    redis.call('ZADD', c.frontier, -1, id)
  end
  redis.call('SADD', c.items, id)
  redis.call('HSET', c.urls, id, cjson.encode({url, depth, kind}))
  return 1
end

-- The depth of the shallowest page still to be recorded (math.huge if none).
local function lowest_open(c)
  local low = math.huge
  local waiting = redis.call('ZRANGEBYSCORE', c.frontier, 0, '+inf', 'WITHSCORES', 'LIMIT', 0, 1)
  if #waiting > 0 then low = tonumber(waiting[2]) end
  local running = redis.call('ZRANGE', c.inflight, 0, 0, 'WITHSCORES')
  if #running > 0 then low = math.min(low, tonumber(running[2])) end
  return low
end

-- A path of length `depth` to admitted page `id`: if shorter than its depth, lower it, then its links'.
local function relax(c, id, depth)
  local queue, head = {{id, depth}}, 1
  while head <= #queue do
    local page, d = queue[head][1], queue[head][2]
    head = head + 1
    local known = redis.call('ZSCORE', c.frontier, page) or redis.call('ZSCORE', c.inflight, page)
      or redis.call('ZSCORE', c.unsettled, page)
    if known and tonumber(known) > d then
      local u = cjson.decode(redis.call('HGET', c.urls, page))
      u[2] = d
      redis.call('HSET', c.urls, page, cjson.encode(u))
      if redis.call('ZSCORE', c.frontier, page) then
        redis.call('ZADD', c.frontier, d, page)
      elseif redis.call('ZSCORE', c.inflight, page) then
        redis.call('ZADD', c.inflight, d, page)  -- its result takes the depth from `urls`
      else
        redis.call('ZADD', c.unsettled, d, page)
        local raw = redis.call('HGET', c.done, page)
        if raw then
          local r = cjson.decode(raw)
          if type(r.meta) == 'table' then r.meta.depth = d end
          redis.call('HSET', c.done, page, cjson.encode(r))
        end
        local links = redis.call('HGET', c.links, page)
        if links then
          for _, link in ipairs(cjson.decode(links)) do
            if admit(c, link[1], link[2], d + 1, 'p') == 0 then
              queue[#queue + 1] = {link[1], d + 1}
            end
          end
        end
      end
    end
  end
end

-- The depth of a crawl page's result (written into its meta), or nil if it is no crawl page.
local function page_depth(c, r)
  local raw = redis.call('HGET', c.urls, r.id)
  if not raw then return nil end
  local u = cjson.decode(raw)
  if u[3] ~= 'p' then return nil end
  if type(r.meta) == 'table' and r.meta.depth ~= nil then r.meta.depth = u[2] end
  return tonumber(u[2])
end

-- A recorded page's discoveries, at its current depth + 1; `low` is lowest_open() before this record.
local function discovered(c, id, depth, links, images, low)
  if type(links) == 'table' then
    for _, link in ipairs(links) do
      if admit(c, link[1], link[2], depth + 1, 'p') == 0 then
        relax(c, link[1], depth + 1)
      end
    end
  end
  if type(images) == 'table' then
    for _, image in ipairs(images) do
      admit(c, image[1], image[2], depth + 1, 'i')
    end
  end
  if depth > low + 1 then  -- not settled yet: a shorter path may still turn up
    redis.call('ZADD', c.unsettled, depth, id)
    if type(links) == 'table' and #links > 0 then
      redis.call('HSET', c.links, id, cjson.encode(links))
    end
  end
end

-- Forget the kept links of pages that are settled now (all of them once nothing is open).
local function settle(c)
  local low = lowest_open(c)
  local upto = '+inf'
  if low < math.huge then upto = low + 1 end
  local ids = redis.call('ZRANGEBYSCORE', c.unsettled, '-inf', upto)
  for i = 1, #ids, 1000 do
    redis.call('HDEL', c.links, unpack(ids, i, math.min(i + 999, #ids)))
  end
  if #ids > 0 then
    redis.call('ZREMRANGEBYSCORE', c.unsettled, '-inf', upto)
  end
end

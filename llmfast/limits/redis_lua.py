"""The Lua scripts behind ``RedisBudget``: each runs atomically inside Redis.

A sliding-window log per limit: a sorted set of admissions scored by their time in
microseconds (Redis's own ``TIME``, so machines with skewed clocks agree). An
admission is scored ``margin`` late, and ``SETTLE`` moves it back to the moment its
reply was in (the request has reached the provider by then), so the log holds as the
provider counts arrivals. Request entries are named ``"<seq>"``, token entries
``"<amount>:<seq>"``; corrections are extra entries at the score of the admission
they correct, so they leave the window with it. A running sum keeps the token count
O(1) per call. Every key expires once idle for a period.
"""

from __future__ import annotations

__all__ = ["CORRECT", "PAUSE", "RESERVE", "SETTLE"]

_NOW = """
local clock = redis.call('TIME')
local now = tonumber(clock[1]) * 1000000 + tonumber(clock[2])
"""

RESERVE = (
    _NOW
    + """
-- KEYS: 1 requests log, 2 tokens log, 3 tokens sum, 4 paused-until, 5 sequence
-- ARGV: 1 period us, 2 request limit (0: none), 3 token limit (0: none), 4 tokens,
--       5 margin us
-- returns {wait us (0: admitted), the admission's score us, requests in window,
--          tokens in window, seq}
local period = tonumber(ARGV[1])
local request_limit = tonumber(ARGV[2])
local token_limit = tonumber(ARGV[3])
local tokens = tonumber(ARGV[4])
local margin = tonumber(ARGV[5])
local horizon = now - period
local wait = 0
local paused = tonumber(redis.call('GET', KEYS[4]) or '0')
if paused > now then wait = paused - now end

local requests = 0
if request_limit > 0 then
  redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', horizon)
  requests = redis.call('ZCARD', KEYS[1])
  if requests >= request_limit then
    local index = requests - request_limit
    local oldest = redis.call('ZRANGE', KEYS[1], index, index, 'WITHSCORES')
    wait = math.max(wait, tonumber(oldest[2]) + period - now)
  end
end

local used = 0
if token_limit > 0 then
  local expired = redis.call('ZRANGEBYSCORE', KEYS[2], '-inf', horizon)
  if #expired > 0 then
    local gone = 0
    for _, member in ipairs(expired) do
      gone = gone + tonumber(string.match(member, '^(-?%d+):'))
    end
    redis.call('ZREMRANGEBYSCORE', KEYS[2], '-inf', horizon)
    redis.call('DECRBY', KEYS[3], gone)
  end
  if redis.call('ZCARD', KEYS[2]) == 0 then
    redis.call('DEL', KEYS[3])
  end
  used = tonumber(redis.call('GET', KEYS[3]) or '0')
  if used > 0 and used + tokens > token_limit then
    local need = used + tokens - token_limit
    if tokens > token_limit then need = used end  -- admitted alone, once the window is empty
    local entries = redis.call('ZRANGE', KEYS[2], 0, -1, 'WITHSCORES')
    local freed, at, i = 0, nil, 1
    while i <= #entries do
      local score = entries[i + 1]
      while i <= #entries and entries[i + 1] == score do
        freed = freed + tonumber(string.match(entries[i], '^(-?%d+):'))
        i = i + 2
      end
      if freed >= need then
        at = tonumber(score)
        break
      end
    end
    if at == nil then at = tonumber(entries[#entries]) end
    wait = math.max(wait, at + period - now)
  end
end

if wait > 0 then
  return {math.ceil(wait), now, requests, used, 0}
end
local seq = redis.call('INCR', KEYS[5])
local ttl = math.ceil((period + margin) / 1000) + 1000
local stamp = now + margin
if request_limit > 0 then
  redis.call('ZADD', KEYS[1], stamp, seq)
  redis.call('PEXPIRE', KEYS[1], ttl)
  requests = requests + 1
end
if token_limit > 0 then
  redis.call('ZADD', KEYS[2], stamp, tokens .. ':' .. seq)
  used = redis.call('INCRBY', KEYS[3], tokens)
  redis.call('PEXPIRE', KEYS[2], ttl)
  redis.call('PEXPIRE', KEYS[3], ttl)
end
redis.call('PEXPIRE', KEYS[5], ttl)
return {0, stamp, requests, used, seq}
"""
)

_CORRECTION = """
local function correct(log, sum, sequence, stamp, delta, ttl)
  local seq = redis.call('INCR', sequence)
  redis.call('ZADD', log, stamp, delta .. ':' .. seq)
  redis.call('INCRBY', sum, delta)
  redis.call('PEXPIRE', log, ttl)
  redis.call('PEXPIRE', sum, ttl)
  redis.call('PEXPIRE', sequence, ttl)
end
"""

CORRECT = (
    _CORRECTION
    + """
-- KEYS: 1 tokens log, 2 tokens sum, 3 sequence
-- ARGV: 1 the admission's token entry, 2 tokens to add (negative: refund), 3 ttl ms
local stamp = redis.call('ZSCORE', KEYS[1], ARGV[1])
if not stamp then return 0 end  -- it has left the window
correct(KEYS[1], KEYS[2], KEYS[3], stamp, ARGV[2], ARGV[3])
return 1
"""
)

SETTLE = (
    _NOW
    + _CORRECTION
    + """
-- KEYS: 1 requests log, 2 tokens log, 3 tokens sum, 4 sequence
-- ARGV: 1 the admission's score us, 2 its request entry ('': none), 3 its token entry
--       ('': none), 4 tokens to add, 5 ttl ms
-- The reply is in, so the request reached the provider by now: score it now, unless
-- its admission plus the margin is earlier. Returns the score.
local at = math.min(now, tonumber(ARGV[1]))
if ARGV[2] ~= '' and redis.call('ZSCORE', KEYS[1], ARGV[2]) then
  redis.call('ZADD', KEYS[1], at, ARGV[2])
end
if ARGV[3] ~= '' and redis.call('ZSCORE', KEYS[2], ARGV[3]) then
  redis.call('ZADD', KEYS[2], at, ARGV[3])
  if ARGV[4] ~= '0' then correct(KEYS[2], KEYS[3], KEYS[4], at, ARGV[4], ARGV[5]) end
end
return at
"""
)

PAUSE = (
    _NOW
    + """
-- KEYS: 1 paused-until; ARGV: 1 pause us
local pause = tonumber(ARGV[1])
local until_us = now + pause
if until_us > tonumber(redis.call('GET', KEYS[1]) or '0') then
  redis.call('SET', KEYS[1], string.format('%.0f', until_us), 'PX', math.ceil(pause / 1000) + 1)
end
return 1
"""
)

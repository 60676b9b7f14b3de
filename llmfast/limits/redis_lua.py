"""The Lua scripts behind ``RedisBudget``: each runs atomically inside Redis.

A sliding-window log per limit: a sorted set of admissions scored by their time in
microseconds (Redis's own ``TIME``, so machines with skewed clocks agree). Token
entries are named ``"<amount>:<seq>"``; corrections are extra entries at the time
of the admission they correct, so they leave the window with it. A running sum
keeps the token count O(1) per call. Every key expires once idle for a period.
"""

from __future__ import annotations

__all__ = ["CORRECT", "PAUSE", "RESERVE"]

_NOW = """
local clock = redis.call('TIME')
local now = tonumber(clock[1]) * 1000000 + tonumber(clock[2])
"""

RESERVE = (
    _NOW
    + """
-- KEYS: 1 requests log, 2 tokens log, 3 tokens sum, 4 paused-until, 5 sequence
-- ARGV: 1 period us, 2 request limit (0: none), 3 token limit (0: none), 4 tokens
-- returns {wait us (0: admitted), now us, requests in window, tokens in window}
local period = tonumber(ARGV[1])
local request_limit = tonumber(ARGV[2])
local token_limit = tonumber(ARGV[3])
local tokens = tonumber(ARGV[4])
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
  return {math.ceil(wait), now, requests, used}
end
local seq = redis.call('INCR', KEYS[5])
local ttl = math.ceil(period / 1000) + 1000
if request_limit > 0 then
  redis.call('ZADD', KEYS[1], now, seq)
  redis.call('PEXPIRE', KEYS[1], ttl)
  requests = requests + 1
end
if token_limit > 0 then
  redis.call('ZADD', KEYS[2], now, tokens .. ':' .. seq)
  used = redis.call('INCRBY', KEYS[3], tokens)
  redis.call('PEXPIRE', KEYS[2], ttl)
  redis.call('PEXPIRE', KEYS[3], ttl)
end
redis.call('PEXPIRE', KEYS[5], ttl)
return {0, now, requests, used}
"""
)

CORRECT = (
    _NOW
    + """
-- KEYS: 1 tokens log, 2 tokens sum, 3 sequence
-- ARGV: 1 period us, 2 the admission's time us, 3 tokens to add (negative: refund)
local period = tonumber(ARGV[1])
local stamp = tonumber(ARGV[2])
if stamp <= now - period then return 0 end
local seq = redis.call('INCR', KEYS[3])
local ttl = math.ceil(period / 1000) + 1000
redis.call('ZADD', KEYS[1], stamp, ARGV[3] .. ':' .. seq)
redis.call('INCRBY', KEYS[2], ARGV[3])
redis.call('PEXPIRE', KEYS[1], ttl)
redis.call('PEXPIRE', KEYS[2], ttl)
redis.call('PEXPIRE', KEYS[3], ttl)
return 1
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

-- Shared by every script of the stores (concatenated before each by `lua!`).
-- Times come from the server's clock, so every process and node agrees on them.

-- The server's time in milliseconds since the Unix epoch.
local function now_ms()
  local t = redis.call('TIME')
  return tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
end

-- The server's time in microseconds since the Unix epoch.
local function now_us()
  local t = redis.call('TIME')
  return tonumber(t[1]) * 1000000 + tonumber(t[2])
end


-- KEYS[1] stream; ARGV: after id, count (0: none), byte budget.
-- Returns {exists, trimmed count, first retained id, last id, entries}: at most `count`
-- entries, and no more bytes (id, field names and values) than the budget, except that a
-- single entry larger than the budget is still returned alone. Reads in small chunks so a
-- page of large entries never materialises more than it returns plus one chunk.
if redis.call('EXISTS', KEYS[1]) == 0 then return {0, 0, '0-0', '0-0', {}} end
local info = redis.call('XINFO', 'STREAM', KEYS[1])
local len, added, first, last = 0, 0, '0-0', '0-0'
for i = 1, #info, 2 do
  local k, v = info[i], info[i + 1]
  if k == 'length' then len = v
  elseif k == 'entries-added' then added = v
  elseif k == 'first-entry' and v then first = v[1]
  elseif k == 'last-generated-id' then last = v end
end
local entries, want, budget = {}, tonumber(ARGV[2]), tonumber(ARGV[3])
local from, bytes = '(' .. ARGV[1], 0
while #entries < want do
  local ask = math.min(want - #entries, 16)
  local chunk = redis.call('XRANGE', KEYS[1], from, '+', 'COUNT', ask)
  for _, entry in ipairs(chunk) do
    local size = #entry[1]
    for _, field in ipairs(entry[2]) do size = size + #field end
    if #entries > 0 and bytes + size > budget then
      return {1, added - len, first, last, entries}
    end
    entries[#entries + 1] = entry
    bytes = bytes + size
  end
  if #chunk < ask then break end
  from = '(' .. chunk[#chunk][1]
end
return {1, added - len, first, last, entries}

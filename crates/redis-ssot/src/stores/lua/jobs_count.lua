-- Per-user job counts of one partition: a hash (the `users` key), field the user id, value
-- the user's jobs in the stream, from enqueue until ack or dead letter; a field at zero is
-- removed. Composed before the scripts that delete jobs.
-- Takes one job of the user named in `fields` (an entry's flat field list) off `counts`.
-- Called only when the entry was really deleted (`XDEL` returned 1), so each job is taken
-- off exactly once.
local function uncount(counts, fields)
  for i = 1, #fields, 2 do
    if fields[i] == 'user' then
      if redis.call('HINCRBY', counts, fields[i + 1], -1) <= 0 then
        redis.call('HDEL', counts, fields[i + 1])
      end
      return
    end
  end
end

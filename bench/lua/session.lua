-- GET the URL's path with a session cookie, as a mini-program sends it by hand.
--
-- Environment: BENCH_COOKIES, a file with one whole Cookie header value a line
-- ("sessionid=<id>" for minisession, "connect.sid=s%3A..." for the peer). Each thread walks
-- the list from a random place, so many sessions are read, not one.

function init(args)
  seed()
  local cookies = {}
  for line in io.lines(os.getenv("BENCH_COOKIES")) do
    if #line > 0 then
      table.insert(cookies, wrk.format("GET", nil, {["Cookie"] = line}, nil))
    end
  end
  if #cookies == 0 then
    error("no cookies in " .. os.getenv("BENCH_COOKIES"))
  end
  requests_by_cookie = cookies
  next_index = math.random(#cookies)
end

function request()
  next_index = next_index % #requests_by_cookie + 1
  return requests_by_cookie[next_index]
end

-- POST /login, each request with a fresh WeChat code for a new user, so every request is a
-- genuine first login: a code2Session call to the fake WeChat, a new user and a new session
-- in the store (no login reuse, which only applies to the same openid).
--
-- The fake WeChat's magic code "user:<openid>:<tail>" logs in as <openid> and works once.
-- Environment: BENCH_RUN, a short tag that makes openids unique across runs.

function init(args)
  -- Unique among the threads: the address of a table kept alive in this thread's state.
  thread_anchor = {}
  thread_tag = tostring(thread_anchor):match("0x(%x+)") or "t"
  run_tag = os.getenv("BENCH_RUN") or "run"
  counter = 0
end

function request()
  counter = counter + 1
  local openid = string.format("b%s%sn%d", run_tag, thread_tag, counter)
  local body = string.format('{"code":"user:%s:%d"}', openid, counter)
  return wrk.format("POST", nil, {["Content-Type"] = "application/json"}, body)
end

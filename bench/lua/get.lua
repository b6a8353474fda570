-- GET the URL's path, nothing else (the baseline).

function init(args)
  request_text = wrk.format("GET", nil, nil, nil)
end

function request()
  return request_text
end

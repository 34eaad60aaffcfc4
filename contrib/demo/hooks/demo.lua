-- A sample hook for the demo: logs every domain event and refuses
-- domain names that start with "admin".
ophook.on("domain.*", function(ev)
  ophook.log.info(string.format("demo hook saw %s for %s", ev.type, ev.subject))
end)

ophook.pre("domain.add", function(req)
  if req.domain and req.domain:match("^admin") then
    return ophook.deny("domain names starting with 'admin' are reserved")
  end
end)

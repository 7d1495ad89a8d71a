-- wrk script for bench/run.sh: counts blackbox_exporter answers whose probe
-- failed (a 200 with probe_success 0), summed over wrk's threads.
local threads = {}

function setup(thread)
    table.insert(threads, thread)
end

function init(args)
    failures = 0
end

function response(status, headers, body)
    if status ~= 200 or not body:find("probe_success 1", 1, true) then
        failures = failures + 1
    end
end

function done(summary, latency, requests)
    local total = 0
    for _, t in ipairs(threads) do
        total = total + t:get("failures")
    end
    io.write(string.format("probe_failures=%d\n", total))
end

# Shared by soak.sh and keyflood.sh (sourced): start the release server, sample its memory.

# start_server CONFIG: builds, starts espresso-server with CONFIG, sets $server_pid and $server_url.
start_server() {
    cargo build --release -q -p espresso-server -p espresso-benches --bins
    RUST_LOG=warn target/release/espresso-server --config "$1" >/dev/null &
    server_pid=$!
    trap 'kill $server_pid 2>/dev/null || true' EXIT
    server_url=http://$(sed -n 's/^listen = "\(.*\)"/\1/p' "$1")
    until curl -sf "$server_url/healthz" >/dev/null; do sleep 0.2; done
}

# rss_kib: the server's resident memory now, in KiB.
rss_kib() {
    awk '/^VmRSS/ {print $2}' "/proc/$server_pid/status"
}

# metric NAME: the sum of every series of NAME on /metrics.
metric() {
    curl -sf "$server_url/metrics" | awk -v name="$1" '$1 ~ "^"name"({|$)" {sum += $2} END {print sum + 0}'
}

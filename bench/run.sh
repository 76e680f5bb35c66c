#!/usr/bin/env bash
# Load test of clerk_auth against a bare Caddy, in one run on this machine.
#
#   bash bench/run.sh            # 10 s per scenario
#   DURATION=30 bash bench/run.sh
#
# Caddy is pinned to CPU 0; wrk (1 thread, 32 connections) and the upstream
# to CPU 1, when the machine has two CPUs. Every load stops by itself after
# DURATION seconds; everything listens on 127.0.0.1 only.
set -euo pipefail
cd "$(dirname "$0")/.."

DURATION=${DURATION:-10}
CONNECTIONS=${CONNECTIONS:-32}
BASE_PORT=${BASE_PORT:-18080}

if ! command -v wrk >/dev/null; then
	echo "installing wrk"
	(apt-get update -qq && apt-get install -y -qq wrk) >/dev/null
fi

pin_server=() pin_load=()
if command -v taskset >/dev/null && [ "$(nproc)" -ge 2 ]; then
	pin_server=(taskset -c 0) pin_load=(taskset -c 1)
fi

out=$(mktemp -d)
pids=()
cleanup() {
	for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
	wait 2>/dev/null || true
	rm -rf "$out"
}
trap cleanup EXIT

go build -o "$out/caddy" ./cmd/caddy
go build -o "$out/harness" ./bench/harness

"${pin_load[@]}" "$out/harness" -dir "$out" -base-port "$BASE_PORT" &
pids+=($!)
for _ in $(seq 100); do [ -f "$out/ready" ] && break; sleep 0.1; done
[ -f "$out/ready" ] || { echo "harness did not start"; exit 1; }

"${pin_server[@]}" "$out/caddy" run --config "$out/Caddyfile" >"$out/caddy.log" 2>&1 &
pids+=($!)
for _ in $(seq 100); do
	curl -fs "http://127.0.0.1:$BASE_PORT/" >/dev/null 2>&1 && break
	sleep 0.1
done

token=$(cat "$out/token.txt")
api_key=$(cat "$out/api_key.txt")
export TOKENS_FILE="$out/tokens.txt"

# load NAME PORT [wrk args...]: runs wrk and prints "NAME rps p50 p99".
load() {
	local name=$1 port=$2
	shift 2
	local log="$out/wrk-$name.txt"
	"${pin_load[@]}" wrk -t1 -c"$CONNECTIONS" -d"${DURATION}s" --timeout 5s --latency "$@" \
		"http://127.0.0.1:$port/" >"$log"
	if grep -q "Non-2xx" "$log"; then
		echo "scenario $name had failed requests:" >&2
		cat "$log" >&2
		exit 1
	fi
	local rps p50 p99
	rps=$(awk '/^Requests\/sec/ {print $2}' "$log")
	p50=$(awk '$1 == "50%" {print $2}' "$log")
	p99=$(awk '$1 == "99%" {print $2}' "$log")
	echo "$name $rps $p50 $p99"
}

auth=(-H "Authorization: Bearer $token")
key_auth=(-H "Authorization: Bearer $api_key")
# Warm up every site (JWKS fetch, connections, cache) before measuring; the
# API key's warm-up is its one Backend API call of the run (DURATION under
# machine_cache_ttl, 30 s; longer runs add one call per 30 s).
for p in 0 1 2 3 4; do
	curl -fs "${auth[@]}" "http://127.0.0.1:$((BASE_PORT + p))/" >/dev/null
done
curl -fs "${key_auth[@]}" "http://127.0.0.1:$((BASE_PORT + 5))/" >/dev/null
# (g) signs its one assertion, (h) makes its one Backend API call for the
# user (DURATION under the 5-minute enrichment TTL).
for p in 6 7; do
	curl -fs "${auth[@]}" "http://127.0.0.1:$((BASE_PORT + p))/" >/dev/null
done

# The baselines get the same Authorization header, so each ratio is the
# cost of clerk_auth alone, not of parsing and forwarding a larger request.
# (f), (g) and (h) measure bare Caddy again right before, so that a busy
# machine's drift over the run weighs less on their ratios.
results=$(
	load a_respond "$BASE_PORT" "${auth[@]}"
	load b_clerk_cached "$((BASE_PORT + 1))" "${auth[@]}"
	load c_clerk_nocache "$((BASE_PORT + 2))" "${auth[@]}"
	load d_clerk_1000_tokens "$((BASE_PORT + 1))" -s bench/rotate.lua
	load e_proxy "$((BASE_PORT + 3))" "${auth[@]}"
	load e_proxy_clerk "$((BASE_PORT + 4))" "${auth[@]}"
	load f_respond_key "$BASE_PORT" "${key_auth[@]}"
	load f_clerk_opaque_cached "$((BASE_PORT + 5))" "${key_auth[@]}"
	load g_respond "$BASE_PORT" "${auth[@]}"
	load g_clerk_assertion "$((BASE_PORT + 6))" "${auth[@]}"
	load h_respond "$BASE_PORT" "${auth[@]}"
	load h_clerk_enrich_user "$((BASE_PORT + 7))" "${auth[@]}"
	# (i) 100,000 revoked sessions, none the token's, put in the storage as
	# another instance would share them; measured once Caddy has read them
	# (the denied token's session is one of them), on the plain cached site.
	mkdir -p "$out/storage/clerk_auth/denylist"
	cp "$out/denylist.json" "$out/storage/clerk_auth/denylist/bench.json"
	denied=$(cat "$out/denied_token.txt")
	for _ in $(seq 300); do
		[ "$(curl -s -o /dev/null -w '%{http_code}' -H "Authorization: Bearer $denied" "http://127.0.0.1:$((BASE_PORT + 1))/")" = 401 ] && break
		sleep 0.1
	done
	[ "$(curl -s -o /dev/null -w '%{http_code}' -H "Authorization: Bearer $denied" "http://127.0.0.1:$((BASE_PORT + 1))/")" = 401 ] ||
		{ echo "Caddy never read the 100,000 denied sessions" >&2; exit 1; }
	load i_respond "$BASE_PORT" "${auth[@]}"
	load i_clerk_cached_100k_denied "$((BASE_PORT + 1))" "${auth[@]}"
)

echo
echo "clerk_auth load test: $(nproc) CPUs ($(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs)), $(go version | cut -d' ' -f3), wrk -t1 -c$CONNECTIONS -d${DURATION}s"
echo "$results" | awk '
	{ rps[$1] = $2; p50[$1] = $3; p99[$1] = $4; order[NR] = $1 }
	END {
		base["a_respond"] = "";
		base["b_clerk_cached"] = "a_respond"; base["c_clerk_nocache"] = "a_respond";
		base["d_clerk_1000_tokens"] = "a_respond"; base["e_proxy"] = ""; base["e_proxy_clerk"] = "e_proxy";
		base["f_respond_key"] = ""; base["f_clerk_opaque_cached"] = "f_respond_key";
		base["g_respond"] = ""; base["g_clerk_assertion"] = "g_respond";
		base["h_respond"] = ""; base["h_clerk_enrich_user"] = "h_respond";
		base["i_respond"] = ""; base["i_clerk_cached_100k_denied"] = "i_respond";
		printf "%-27s %12s %10s %10s %31s\n", "scenario", "req/s", "p50", "p99", "ratio to baseline";
		for (i = 1; i <= NR; i++) {
			n = order[i]; r = "-";
			if (base[n] != "") r = sprintf("%.2f (vs %s)", rps[n] / rps[base[n]], base[n]);
			printf "%-27s %12.0f %10s %10s %31s\n", n, rps[n], p50[n], p99[n], r;
		}
	}'

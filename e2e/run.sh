#!/usr/bin/env bash
# Real-browser test of clerk_auth's session cookie and sign-in redirect:
# headless Chromium (Debian's package) driven by playwright-core, against the
# demo (./cmd/demo) on free 127.0.0.1 ports. Installs what it needs, so it
# runs on a fresh machine with Go, Node and apt.
#
# Prints a last line such as "e2e: 3 passed, 0 failed" and exits non-zero if
# any test failed or the run timed out.
set -euo pipefail
cd "$(dirname "$0")"

chromium=${CHROMIUM:-/usr/bin/chromium}
if [ ! -x "$chromium" ]; then
	echo "== installing chromium"
	apt-get update -qq
	DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null
fi
"$chromium" --version

echo "== npm ci"
npm ci --no-audit --no-fund

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

# Compiling Caddy can take minutes on a cold cache: build before the clock
# below starts, so that its timeout is about the browser flow.
echo "== go build ./cmd/demo"
(cd .. && go build -o "$work/demo" ./cmd/demo)

echo "== browser test"
log="$work/test.log"
status=0
DEMO_BIN="$work/demo" timeout --kill-after=10s 300s \
	node --test --test-reporter=tap --test-timeout=120000 browser.test.mjs >"$log" 2>&1 || status=$?
cat "$log"
if [ "$status" -eq 124 ] || [ "$status" -eq 137 ]; then
	echo "e2e: timed out after 300s"
fi
echo "e2e: $(sed -n 's/^# pass //p' "$log" | tail -1) passed, $(sed -n 's/^# fail //p' "$log" | tail -1) failed"
exit "$status"

#!/usr/bin/env bash
# The system programs the test suite starts its own instances of, on 127.0.0.1:
# redis-server (the Redis rate-limit, fleet-limit and two-level cache tests) and nginx
# (the benchmark smoke test). Installs the missing ones with apt-get when run as root
# on Debian/Ubuntu; otherwise says so, and those tests skip with the reason (a failure
# under CI=true). Safe to re-run; LLMFAST_NO_APT=1 skips it.
set -euo pipefail
[ "${LLMFAST_NO_APT:-}" = 1 ] && exit 0
missing=()
command -v redis-server >/dev/null 2>&1 || missing+=(redis-server)
{ command -v nginx >/dev/null 2>&1 || [ -x /usr/sbin/nginx ]; } || missing+=(nginx-light)
[ ${#missing[@]} -eq 0 ] && exit 0
if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    echo "== installing ${missing[*]} (apt-get; the tests start their own instances) =="
    export DEBIAN_FRONTEND=noninteractive
    if ! { apt-get update -qq && apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null; }; then
        echo "note: apt-get could not install ${missing[*]}: their tests will skip" >&2
    fi
else
    echo "note: ${missing[*]} not installed and not root: their tests will skip" \
        "(sudo apt-get install ${missing[*]})" >&2
fi

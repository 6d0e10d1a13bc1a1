#!/usr/bin/env bash
# Fuzzes a live master's API with schemathesis, from the OpenAPI document the master serves at
# /openapi.json: every operation, a bounded number of generated requests each, with a key of
# every role (so agent routes are reached too). Any 5xx answer fails the run.
#   SCHEMATHESIS_MAX_EXAMPLES  examples per operation (default 20)
#   FFRTMP_MASTER_BIN          master binary (default target/debug/ffrtmp-master, built if missing)
set -euo pipefail
cd "$(dirname "$0")/.."

venv=target/schemathesis-venv
max_examples=${SCHEMATHESIS_MAX_EXAMPLES:-20}
master=${FFRTMP_MASTER_BIN:-target/debug/ffrtmp-master}

# Pinned major version: the command line below is schemathesis 3's. Schemathesis 3 breaks
# with Hypothesis 6.131.15 and later ("'many' object has no attribute 'more'").
pins=("schemathesis>=3.39,<4" "hypothesis>=6.103.4,<6.131.15")
if [ "$(cat "$venv/pins" 2>/dev/null)" != "${pins[*]}" ]; then
    echo "schemathesis.sh: installing ${pins[*]} into $venv"
    python3 -m venv "$venv"
    "$venv/bin/pip" install -q "${pins[@]}"
    echo "${pins[*]}" > "$venv/pins"
fi
if [ ! -x "$master" ]; then
    cargo build -q -p ffrtmp --bin ffrtmp-master --features ffrtmp-sched/postgres,ffrtmp-power/nvml
fi

work=$(mktemp -d /tmp/ffrtmp-schemathesis.XXXXXX)
master_pid=
cleanup() {
    if [ -n "$master_pid" ]; then kill "$master_pid" 2>/dev/null || true; wait "$master_pid" 2>/dev/null || true; fi
    rm -rf "$work"
}
trap cleanup EXIT

key=$(od -An -tx1 -N16 /dev/urandom | tr -d ' \n')
printf '%s\n' "$key" > "$work/keys"
chmod 600 "$work/keys"
"$master" --port 0 --db "$work/master.db" --ready-file "$work/ready" --api-key-file "$work/keys" \
    --log-format json > "$work/master.log" 2>&1 &
master_pid=$!
for _ in $(seq 1 600); do
    [ -s "$work/ready" ] && break
    kill -0 "$master_pid" 2>/dev/null || { cat "$work/master.log"; echo "schemathesis.sh: the master exited"; exit 1; }
    sleep 0.1
done
[ -s "$work/ready" ] || { cat "$work/master.log"; echo "schemathesis.sh: the master did not start within 60 s"; exit 1; }
url=$(cat "$work/ready")
echo "schemathesis.sh: master at $url, $max_examples examples per operation"

set +e
"$venv/bin/schemathesis" run "$url/openapi.json" \
    --checks not_a_server_error \
    --exclude-path /events \
    --hypothesis-max-examples "$max_examples" \
    --hypothesis-deadline 30000 \
    --request-tls-verify "$work/tls/cert.pem" \
    --request-timeout 40000 \
    -H "Authorization: Bearer $key" \
    --no-color > "$work/run.txt" 2>&1
rc=$?
set -e
cat "$work/run.txt"
if grep -q '"level":"ERROR"' "$work/master.log"; then
    echo "schemathesis.sh: errors in the master's log:"
    grep '"level":"ERROR"' "$work/master.log" | head -20
fi
# The summary line, e.g. "=== 15 passed in 41.20s ===".
summary=$(grep -E '^=+ .*(passed|failed|errored).* =+$' "$work/run.txt" | tail -1)
echo "schemathesis summary: ${summary:-none}"
exit "$rc"

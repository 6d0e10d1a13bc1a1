#!/usr/bin/env bash
# Demo on one machine: installs ffmpeg if missing, builds release binaries, starts a master
# (TLS, self-signed certificate, generated API key) and an agent on loopback, runs real
# transcode jobs across scenarios, prints a results table, streams a short live job through a
# local nginx RTMP server and prints its QoE line, writes demo-out/report.md, and stops them all.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$(pwd)
OUT="$ROOT/demo-out"

as_root() { if [ "$(id -u)" -eq 0 ]; then "$@"; else sudo "$@"; fi; }
# ffmpeg runs the jobs; the font draws the text of the report's PNG charts.
missing=()
command -v ffmpeg >/dev/null || missing+=(ffmpeg)
[ -e /usr/share/fonts/truetype/dejavu/DejaVuSans.ttf ] || missing+=(fonts-dejavu-core)
# nginx with the RTMP module is the live stream's server.
command -v nginx >/dev/null || missing+=(nginx)
[ -e /usr/lib/nginx/modules/ngx_rtmp_module.so ] || missing+=(libnginx-mod-rtmp)
if [ "${#missing[@]}" -gt 0 ]; then
    echo "demo: installing ${missing[*]}"
    as_root apt-get -o DPkg::Lock::Timeout=300 update -qq
    as_root env DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=300 install -y -qq "${missing[@]}" >/dev/null
fi
command -v cargo >/dev/null || { echo "demo: cargo is required (https://rustup.rs)"; exit 1; }

echo "demo: building release binaries"
cargo build --release -q -p ffrtmp --bins
BIN="$ROOT/target/release"

rm -rf "$OUT"
# The agent creates output/ itself: as root it hands it to the unprivileged user that runs
# the encodes, and refuses an existing directory someone else owns.
mkdir -p "$OUT/input"
MASTER_API_KEY=$(head -c 32 /dev/urandom | od -An -tx1 | tr -d ' \n')
export MASTER_API_KEY

pids=()
cleanup() {
    for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
    wait 2>/dev/null || true
}
trap cleanup EXIT

"$BIN/ffrtmp-master" --port 0 --db "$OUT/master.db" --ready-file "$OUT/master.url" \
    --heartbeat-interval 2s 2>"$OUT/master.log" &
master_pid=$!
pids+=("$master_pid")
for _ in $(seq 1 300); do [ -s "$OUT/master.url" ] && break; sleep 0.1; done
[ -s "$OUT/master.url" ] || { echo "demo: master did not start; see $OUT/master.log"; exit 1; }
FFRTMP_MASTER=$(cat "$OUT/master.url")
FFRTMP_CA_CERT="$OUT/tls/cert.pem"
export FFRTMP_MASTER FFRTMP_CA_CERT
echo "demo: master at $FFRTMP_MASTER (TLS, certificate $FFRTMP_CA_CERT)"

# A local RTMP server for the live job: its own config, logs and pid file under $OUT/nginx.
RTMP_PORT=$(( 20000 + RANDOM % 20000 ))
mkdir -p "$OUT/nginx"
cat >"$OUT/nginx/nginx.conf" <<NGINX
load_module /usr/lib/nginx/modules/ngx_rtmp_module.so;
daemon off;
master_process off;
worker_processes 1;
pid $OUT/nginx/nginx.pid;
error_log $OUT/nginx/error.log info;
events { worker_connections 64; }
rtmp { server { listen 127.0.0.1:$RTMP_PORT; application live { live on; record off; } } }
NGINX
nginx -p "$OUT/nginx" -c "$OUT/nginx/nginx.conf" -e "$OUT/nginx/error.log" 2>"$OUT/nginx/stderr.log" &
nginx_pid=$!
pids+=("$nginx_pid")
for _ in $(seq 1 100); do (exec 3<>"/dev/tcp/127.0.0.1/$RTMP_PORT") 2>/dev/null && break; sleep 0.1; done
echo "demo: nginx RTMP server at rtmp://127.0.0.1:$RTMP_PORT/live/"

"$BIN/ffrtmp-agent" --max-concurrent-jobs 2 --heartbeat-interval 2s --name demo-agent \
    --output-dir "$OUT/output" --input-dir "$OUT/input" \
    --rtmp-url "rtmp://127.0.0.1:$RTMP_PORT/live/{job_id}" \
    --allow-output-prefix "rtmp://127.0.0.1:$RTMP_PORT/live/" 2>"$OUT/agent.log" &
agent_pid=$!
pids+=("$agent_pid")

ids=()
submit() { ids+=("$("$BIN/ffrtmp" jobs submit "$@")"); }
submit --scenario 720p-h264 --bitrate 2M --duration 4
submit --scenario 1080p-h264 --bitrate 5M --duration 3
submit --scenario 720p-h265 --bitrate 2M --duration 2
submit --scenario 1080p-h265 --bitrate 4M --duration 2 --max-cpu-percent 100 --max-memory-mb 1024
submit --scenario 720p-vp9 --bitrate 2M --duration 2
submit --scenario 720p-av1 --bitrate 2M --duration 2 --output-mode null
echo "demo: submitted ${#ids[@]} jobs; waiting"

"$BIN/ffrtmp" jobs wait "${ids[@]}" --timeout 10m --output json >"$OUT/results.json" || {
    echo "demo: not every job completed"
}
"$BIN/ffrtmp" jobs list --limit 100 | tee "$OUT/results.txt"

echo "demo: a 10 s live stream through nginx-rtmp"
live_id=$("$BIN/ffrtmp" jobs submit --scenario live-rtmp --engine ffmpeg --duration 10 --bitrate 2M \
    --preset veryfast --queue live --output-mode rtmp)
"$BIN/ffrtmp" jobs wait "$live_id" --timeout 2m --output json >"$OUT/live.json" || echo "demo: the live job did not complete"
"$BIN/ffrtmp" jobs status "$live_id" >"$OUT/live.txt" || true
live_qoe=$(grep '^live QoE:' "$OUT/live.txt" || echo "live QoE: none (see $OUT/live.txt)")
echo "demo: $live_qoe"
"$BIN/ffrtmp" nodes list >"$OUT/nodes.txt"

echo "demo: benchmark matrix (3 repeats per cell) and HTML report"
cat >"$OUT/matrix.json" <<'JSON'
{"scenarios": ["720p-h264", "720p-h265"], "bitrates": ["1M", "3M"], "duration": 2, "output_mode": "null"}
JSON
"$BIN/ffrtmp" bench run --matrix "$OUT/matrix.json" --repeat 3 --warmup 1 --idle-window 0s \
    --out "$OUT/bench" >"$OUT/bench.txt"
"$BIN/ffrtmp" bench report "$OUT/bench/runs.json" --title "ffrtmp demo" --out "$OUT/report.html" >/dev/null

{
    echo "# ffrtmp demo report"
    echo
    echo "Generated $(date -u +%Y-%m-%dT%H:%M:%SZ) on $(uname -n) ($(nproc) cores)."
    echo
    echo "## Jobs"
    echo
    echo '```'
    cat "$OUT/results.txt"
    echo '```'
    echo
    echo "## Nodes"
    echo
    echo '```'
    cat "$OUT/nodes.txt"
    echo '```'
    echo
    echo "## Live stream (nginx-rtmp)"
    echo
    echo "$live_qoe"
    echo
    echo "Energy: $(grep -o '"unavailable_reason": *"[^"]*"' "$OUT/results.json" | head -1 | sed 's/.*: *//' || true)"
    echo
    echo "## Benchmark matrix"
    echo
    echo '```'
    cat "$OUT/bench.txt"
    echo '```'
    echo
    echo "Charts: report.html (and report-*.png). Per-run data: bench/runs.json, bench/runs.csv."
    echo "Full job results: results.json. Logs: master.log, agent.log."
} >"$OUT/report.md"

kill -TERM "$agent_pid"; wait "$agent_pid" || true
kill -TERM "$master_pid"; wait "$master_pid" || true
kill -TERM "$nginx_pid"; wait "$nginx_pid" || true
pids=()
echo "demo: report written to $OUT/report.md and $OUT/report.html"
grep -q '"state": "failed"\|"state": "canceled"' "$OUT/results.json" "$OUT/live.json" && exit 1
exit 0

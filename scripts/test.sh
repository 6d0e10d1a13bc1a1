#!/usr/bin/env bash
# Installs what the tests need, then runs every check: format, lints, the whole test suite.
set -euo pipefail
cd "$(dirname "$0")/.."

as_root() { if [ "$(id -u)" -eq 0 ]; then "$@"; else sudo "$@"; fi; }
apt_updated=0
apt_install() {
    if [ "$apt_updated" -eq 0 ]; then as_root apt-get -o DPkg::Lock::Timeout=300 update -qq; apt_updated=1; fi
    as_root env DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=300 install -y -qq "$@" >/dev/null
}

command -v ffmpeg >/dev/null || { echo "test.sh: installing ffmpeg"; apt_install ffmpeg; }
command -v gst-launch-1.0 >/dev/null || {
    echo "test.sh: installing gstreamer"
    apt_install gstreamer1.0-tools gstreamer1.0-plugins-base gstreamer1.0-plugins-good gstreamer1.0-plugins-bad \
        gstreamer1.0-plugins-ugly gstreamer1.0-libav
}
command -v python3 >/dev/null || { echo "test.sh: installing python3"; apt_install python3; }
# A virtual environment for schemathesis (scripts/schemathesis.sh); Debian's python3 needs python3-venv.
python3 -c 'import ensurepip, venv' 2>/dev/null || { echo "test.sh: installing python3-venv"; apt_install python3-venv; }
# `script` (util-linux) runs a binary on a pseudo-terminal for the colour test.
command -v script >/dev/null || { echo "test.sh: installing bsdutils"; apt_install bsdutils; }
# A font for the text of bench report's PNG charts (the PNG test fails without one).
[ -e /usr/share/fonts/truetype/dejavu/DejaVuSans.ttf ] || { echo "test.sh: installing fonts-dejavu-core"; apt_install fonts-dejavu-core; }
# A real RTMP server (nginx with the RTMP module) for the live-streaming tests.
{ command -v nginx >/dev/null && [ -e /usr/lib/nginx/modules/ngx_rtmp_module.so ]; } || {
    echo "test.sh: installing nginx and libnginx-mod-rtmp"; apt_install nginx libnginx-mod-rtmp; }
# A real browser for the dashboard test, and a real Prometheus (with promtool) for the metrics test.
command -v chromium >/dev/null || { echo "test.sh: installing chromium"; apt_install chromium chromium-driver; }
{ command -v prometheus >/dev/null && command -v promtool >/dev/null; } || {
    echo "test.sh: installing prometheus"; apt_install prometheus; }
command -v cargo >/dev/null || { echo "test.sh: cargo is required (https://rustup.rs)"; exit 1; }
if ! cargo fmt --version >/dev/null 2>&1 || ! cargo clippy --version >/dev/null 2>&1; then
    if command -v rustup >/dev/null; then
        rustup component add rustfmt clippy
    else
        apt_install rustfmt rust-clippy
    fi
fi

# --- PostgreSQL for the PgStore tests (feature ffrtmp-sched/postgres) -------------------------
# Unless FFRTMP_TEST_PG_URL already names a server, start a private, throw-away cluster on a
# free loopback port (trust auth, socket in its own directory) and stop it on exit. Each test
# creates and drops its own database in it.
pg_dir=""
pg_bin=""
pg_user=""
pg_as() { if [ -n "$pg_user" ]; then runuser -u "$pg_user" -- "$@"; else "$@"; fi; }
stop_private_pg() {
    if [ -n "$pg_dir" ] && [ -d "$pg_dir" ]; then
        pg_as "$pg_bin/pg_ctl" -D "$pg_dir/data" -m fast -w stop >/dev/null 2>&1 || true
        rm -rf "$pg_dir"
    fi
}
start_private_pg() {
    pg_bin=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -1 || true)
    if [ -z "$pg_bin" ] || [ ! -x "$pg_bin/initdb" ]; then
        echo "test.sh: installing postgresql"
        apt_install postgresql
        pg_bin=$(ls -d /usr/lib/postgresql/*/bin | sort -V | tail -1)
    fi
    if [ "$(id -u)" -eq 0 ]; then
        # initdb and postgres refuse to run as root: run them as an unprivileged system user.
        pg_user=ffrtmp-pg
        id -u "$pg_user" >/dev/null 2>&1 \
            || useradd --system --no-create-home --home-dir /nonexistent --shell /usr/sbin/nologin "$pg_user"
    fi
    pg_dir=$(mktemp -d /tmp/ffrtmp-pg.XXXXXX)
    trap stop_private_pg EXIT
    chmod 755 "$pg_dir"
    if [ -n "$pg_user" ]; then chown "$pg_user" "$pg_dir"; fi
    local port
    port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
    pg_as "$pg_bin/initdb" -D "$pg_dir/data" -U ffrtmp --auth=trust -E UTF8 --no-sync >"$pg_dir/initdb.log" 2>&1 \
        || { cat "$pg_dir/initdb.log"; echo "test.sh: initdb failed"; exit 1; }
    # No durability needed for a throw-away cluster; fsync off makes CREATE DATABASE fast.
    pg_as "$pg_bin/pg_ctl" -D "$pg_dir/data" -l "$pg_dir/data/server.log" -w -t 60 \
        -o "-p $port -k $pg_dir -c listen_addresses=127.0.0.1 -c fsync=off -c max_connections=200" start >/dev/null \
        || { cat "$pg_dir/data/server.log"; echo "test.sh: PostgreSQL did not start"; exit 1; }
    export FFRTMP_TEST_PG_URL="postgres://ffrtmp@127.0.0.1:$port/postgres"
    echo "test.sh: private PostgreSQL $("$pg_bin/postgres" --version | awk '{print $3}') on 127.0.0.1:$port"
}
# The binary-level PostgreSQL tests create their databases with psql.
if [ "${FFRTMP_SKIP_PG:-0}" != "1" ] && ! command -v psql >/dev/null; then
    echo "test.sh: installing postgresql-client"
    apt_install postgresql-client
fi
if [ -z "${FFRTMP_TEST_PG_URL:-}" ] && [ "${FFRTMP_SKIP_PG:-0}" != "1" ]; then
    start_private_pg
fi
# ----------------------------------------------------------------------------------------------

echo "== cargo fmt --check"
cargo fmt --all -- --check
echo "== cargo clippy -D warnings"
cargo clippy --workspace --all-targets --features ffrtmp-sched/postgres,ffrtmp-sched/conformance,ffrtmp-power/nvml -- -D warnings
echo "== cargo doc (warnings are errors: broken links, missing docs)"
RUSTDOCFLAGS="-D warnings" cargo doc --workspace --no-deps --features ffrtmp-sched/postgres,ffrtmp-sched/conformance,ffrtmp-power/nvml -q
echo "== cargo package (every library crate packs: manifest metadata, README, file list)"
# --no-verify: verifying builds each crate against the registry, where unpublished siblings are
# missing. The archives go to a temporary directory, never into the work tree.
pkg_dir=$(mktemp -d /tmp/ffrtmp-package.XXXXXX)
cargo package --no-verify --allow-dirty -q --target-dir "$pkg_dir" \
    -p ffrtmp-core -p ffrtmp-sched -p ffrtmp-exec -p ffrtmp-power -p ffrtmp-http -p ffrtmp-farm -p ffrtmp-bench
ls "$pkg_dir/package"/*.crate
rm -rf "$pkg_dir"
# The stable runs of the fuzz targets (tests/fuzz_inputs.rs of core, exec, power and http) are
# part of the workspace tests below.
echo "== cargo test"
mkdir -p target
set +e
cargo test --workspace --features ffrtmp-sched/postgres,ffrtmp-sched/conformance,ffrtmp-power/nvml --no-fail-fast 2>&1 | tee target/test-output.txt
status=${PIPESTATUS[0]}
set -e
# Every example runs and checks its own outcome (each takes seconds).
for example in custom_executor custom_power_source custom_transport recording_store embedded_farm; do
    echo "== cargo run --example $example"
    if ! timeout 120 cargo run -q -p ffrtmp-examples --features ffrtmp-sched/postgres,ffrtmp-power/nvml \
        --example "$example" 2>&1 | tee -a target/test-output.txt; then
        echo "example $example failed" | tee -a target/test-output.txt
        status=1
    fi
done
# A live master fuzzed from its OpenAPI document: no request may get a 5xx.
echo "== schemathesis (scripts/schemathesis.sh)"
if ! timeout 600 scripts/schemathesis.sh 2>&1 | tee target/schemathesis-output.txt; then
    echo "schemathesis failed" | tee -a target/test-output.txt
    status=1
fi
passed=$(grep -Eo '^test result: [a-zA-Z]+\. [0-9]+ passed' target/test-output.txt | awk '{s+=$4} END {print s+0}')
failed=$(grep -Eo '[0-9]+ failed;' target/test-output.txt | awk '{s+=$1} END {print s+0}')
echo "$passed passed, $failed failed"
exit "$status"

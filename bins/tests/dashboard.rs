//! The web dashboard as a person uses it: the real master and agent binaries, a real ffmpeg
//! encode, and Debian's headless Chromium driven over WebDriver (chromium-driver). The test
//! fails, not skips, when Chromium is missing (scripts/test.sh installs it).
//!
//! `FFRTMP_UPDATE_SCREENSHOT=1` writes the screenshot to docs/dashboard.png (the README's);
//! otherwise it goes to the test's temporary directory.

use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use fantoccini::{Client, ClientBuilder, Locator};
use ffrtmp_power::compare::{write_json, RunSample};
use serde_json::{json, Value};

#[path = "support/procs.rs"]
mod procs;
use procs::{log_file, Proc};

#[path = "support/cluster.rs"]
mod cluster;
use cluster::Cli;

const KEY: &str = "dashboard-all-roles-key-0123456789";
const USER_KEY: &str = "dashboard-user-key-0123456789";
const READ_KEY: &str = "dashboard-read-key-0123456789";
const CHROMIUM: &str = "/usr/bin/chromium";
const CHROMEDRIVER: &str = "/usr/bin/chromedriver";

/// Master (dashboard charts sampled every second, bench results of two sets) and one agent,
/// both heartbeating every 500 ms so progress reaches the master quickly.
struct Farm {
    dir: tempfile::TempDir,
    url: String,
    cli: Cli,
    _procs: Vec<Proc>,
}

impl Farm {
    fn start() -> Farm {
        let dir = cluster::shared_dir();
        let d = dir.path();
        std::fs::write(d.join("user.keys"), format!("{USER_KEY}\n")).unwrap();
        std::fs::write(d.join("read.keys"), format!("{READ_KEY}\n")).unwrap();
        write_bench_results(&d.join("bench"));
        let (master, url) = cluster::master(d, KEY)
            .args([
                "--port",
                "0",
                "--heartbeat-interval",
                "500ms",
                "--dashboard-interval",
                "1s",
            ])
            .path("--user-key-file", "user.keys")
            .path("--read-key-file", "read.keys")
            .path("--bench-results", "bench")
            .start();
        let agent = cluster::agent(d, &url, KEY)
            .args(["--heartbeat-interval", "500ms", "--claim-wait", "2s"])
            .args(["--max-concurrent-jobs", "1", "--name", "agent-0"])
            .path("--powercap-root", "no-powercap")
            .spawn();
        Farm {
            cli: Cli::new(d, &url, KEY),
            dir,
            url,
            _procs: vec![master, agent],
        }
    }

    fn logs(&self) -> String {
        cluster::logs(self.dir.path())
    }
}

/// A baseline and a set 20 % slower: the Bench tab must say `worse`.
fn write_bench_results(dir: &Path) {
    for (name, fps) in [("baseline", 100.0), ("slower-preset", 80.0)] {
        let set = dir.join(name);
        std::fs::create_dir_all(&set).unwrap();
        let runs: Vec<RunSample> = (0..5)
            .map(|i| {
                let fps = fps + f64::from(i) * 0.1;
                RunSample {
                    scenario: "720p-h264".into(),
                    run: i,
                    frames: 300,
                    wall_s: 300.0 / fps,
                    fps,
                    energy_joules: None,
                    joules_per_frame: None,
                    energy_model: None,
                }
            })
            .collect();
        write_json(std::fs::File::create(set.join("runs.json")).unwrap(), &runs).unwrap();
    }
}

/// chromedriver on a free loopback port, and a headless Chromium session through it.
async fn browser(farm: &Farm) -> (Proc, Client) {
    for tool in [CHROMIUM, CHROMEDRIVER] {
        assert!(
            Path::new(tool).exists(),
            "{tool} is missing: install Debian's chromium and chromium-driver (scripts/test.sh does)"
        );
    }
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let driver = Command::new(CHROMEDRIVER)
        .arg(format!("--port={port}"))
        .stdout(Stdio::null())
        .stderr(log_file(farm.dir.path(), "chromedriver.log"))
        .spawn()
        .unwrap();
    let driver = Proc(driver);
    let deadline = Instant::now() + Duration::from_secs(20);
    while TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(
            Instant::now() < deadline,
            "chromedriver did not listen\n{}",
            farm.logs()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    let profile = farm.dir.path().join("chromium-profile");
    let caps = json!({
        "browserName": "chrome",
        // The master's certificate is the harness's own self-signed one.
        "acceptInsecureCerts": true,
        "goog:chromeOptions": {
            "binary": CHROMIUM,
            "args": [
                "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                "--disable-background-networking", "--disable-component-update", "--disable-sync",
                "--disable-dev-shm-usage", "--ignore-certificate-errors", "--window-size=1400,1000",
                format!("--user-data-dir={}", profile.display()),
            ],
        },
    });
    let Value::Object(caps) = caps else { unreachable!() };
    let connector = hyper_util::client::legacy::connect::HttpConnector::new();
    let client = ClientBuilder::new(connector)
        .capabilities(caps)
        .connect(&format!("http://127.0.0.1:{port}"))
        .await
        .unwrap_or_else(|e| panic!("starting Chromium through chromedriver: {e}\n{}", farm.logs()));
    (driver, client)
}

/// Runs `script` (a function body returning JSON) in the page.
async fn js(client: &Client, script: &str) -> Value {
    client.execute(script, vec![]).await.unwrap()
}

/// Waits until `script` returns something other than `null`/`false`, and returns it.
async fn wait_js(client: &Client, farm: &Farm, what: &str, within: Duration, script: &str) -> Value {
    let deadline = Instant::now() + within;
    loop {
        let v = js(client, script).await;
        if !(v.is_null() || v == Value::Bool(false)) {
            return v;
        }
        if Instant::now() > deadline {
            let text = js(client, "return document.body.innerText").await;
            panic!(
                "{what}: not within {within:?}\npage:\n{}\n{}",
                text.as_str().unwrap_or(""),
                farm.logs()
            );
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

async fn sign_in(client: &Client, key: &str) {
    let input = client.find(Locator::Css("#key")).await.unwrap();
    input.clear().await.unwrap();
    input.send_keys(key).await.unwrap();
    client
        .find(Locator::Css("#login-btn"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
}

fn row(id: &str, then: &str) -> String {
    format!("const r = document.querySelector('#jobs tr[data-id=\"{id}\"]'); {then}")
}

fn screenshot_path(farm: &Farm) -> PathBuf {
    if std::env::var_os("FFRTMP_UPDATE_SCREENSHOT").is_some_and(|v| v == "1") {
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../docs/dashboard.png")
    } else {
        farm.dir.path().join("dashboard.png")
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_dashboard_shows_a_jobs_progress_and_cancels_it_in_headless_chromium() {
    let farm = Farm::start();
    let (_driver, client) = browser(&farm).await;
    let long = Duration::from_secs(60);
    client.goto(&format!("{}/ui/", farm.url)).await.unwrap();

    // A wrong key is refused with a message, and the app stays hidden.
    sign_in(&client, "not-a-key-of-this-master").await;
    let err = wait_js(
        &client,
        &farm,
        "the wrong-key message",
        long,
        "const t = document.getElementById('login-error').textContent; return t || null",
    )
    .await;
    assert!(err.as_str().unwrap().contains("refused this API key"), "{err}");
    assert_eq!(js(&client, "return document.getElementById('app').hidden").await, true);

    // A read-only key sees the farm.
    sign_in(&client, READ_KEY).await;
    wait_js(
        &client,
        &farm,
        "signed in",
        long,
        "return !document.getElementById('app').hidden",
    )
    .await;
    let stored = js(&client, "return sessionStorage.getItem('ffrtmp-key')").await;
    assert_eq!(stored, READ_KEY, "the key lives in the tab's session storage");
    assert_eq!(js(&client, "return localStorage.length").await, 0, "and nowhere else");
    let mode = js(&client, "return document.getElementById('mode').textContent").await;
    assert!(
        !mode.as_str().unwrap().is_empty(),
        "the page says how it updates: {mode}"
    );

    // A real encode submitted through the API shows up, and its progress bar advances.
    let job = farm
        .cli
        .json(&["jobs", "submit", "--scenario", "720p-h264", "--duration", "300"]);
    let id = job["id"].as_str().unwrap().to_string();
    wait_js(
        &client,
        &farm,
        "the job in the table",
        long,
        &row(&id, "return r !== null"),
    )
    .await;
    let progress = row(
        &id,
        "const b = r && r.querySelector('progress'); return b && b.hasAttribute('value') && b.value > 0 ? b.value : null",
    );
    let first = wait_js(&client, &farm, "progress on the bar", long, &progress)
        .await
        .as_f64()
        .unwrap();
    let advance = row(
        &id,
        &format!("const b = r && r.querySelector('progress'); return b && b.value > {first} ? b.value : null"),
    );
    let later = wait_js(&client, &farm, "the progress bar advancing", long, &advance)
        .await
        .as_f64()
        .unwrap();
    assert!(later > first && later < 100.0, "{first} -> {later}");

    // A read-only key cannot cancel: the page says why, and the job runs on.
    let cancel = row(
        &id,
        "const b = r && r.querySelector('button.cancel'); if (b) b.click(); return b !== null",
    );
    assert_eq!(js(&client, &cancel).await, true, "a running job has a Cancel button");
    let msg = wait_js(
        &client,
        &farm,
        "the read-only cancel message",
        long,
        "const t = document.getElementById('notice').textContent; return t || null",
    )
    .await;
    assert!(msg.as_str().unwrap().contains("needs a user key"), "{msg}");
    assert_eq!(farm.cli.json(&["jobs", "status", &id])["state"], "running");

    // Signed in with a user key: job detail, a screenshot, then cancel from the page.
    client
        .find(Locator::Css("#logout"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    assert_eq!(
        js(&client, "return sessionStorage.getItem('ffrtmp-key')").await,
        Value::Null
    );
    sign_in(&client, USER_KEY).await;
    wait_js(
        &client,
        &farm,
        "the job after signing in again",
        long,
        &row(&id, "return r !== null"),
    )
    .await;
    js(&client, &row(&id, "r.querySelector('td').click(); return true")).await;
    let detail = wait_js(
        &client,
        &farm,
        "the job's detail",
        long,
        "const d = document.getElementById('detail'); const t = d.textContent; \
         return !d.hidden && (t.includes('queued → assigned') || t.includes('assigned → running')) ? t : null",
    )
    .await;
    let detail = detail.as_str().unwrap();
    assert!(
        detail.contains("queued → assigned") || detail.contains("assigned → running"),
        "{detail}"
    );
    assert!(detail.contains("Limits"), "{detail}");
    let shot = client.screenshot().await.unwrap();
    assert!(shot.starts_with(b"\x89PNG"), "a PNG screenshot");
    std::fs::write(screenshot_path(&farm), &shot).unwrap();

    assert_eq!(js(&client, &cancel).await, true);
    wait_js(
        &client,
        &farm,
        "the row showing canceled",
        long,
        &row(
            &id,
            "const s = r && r.querySelector('td.state'); return s && s.textContent === 'canceled'",
        ),
    )
    .await;
    assert_eq!(
        farm.cli.json(&["jobs", "status", &id])["state"],
        "canceled",
        "and the API agrees"
    );
    for id in ["message", "notice"] {
        let msg = js(&client, &format!("return document.getElementById('{id}').textContent")).await;
        assert_eq!(msg, "", "no error shown in #{id}");
    }

    // Filters: by state, the canceled job leaves the `running` view and is in the `canceled` one.
    let filter = |state: &str| {
        format!(
            "const f = document.getElementById('f-state'); f.value = '{state}'; \
             f.dispatchEvent(new Event('change')); return true"
        )
    };
    js(&client, &filter("running")).await;
    wait_js(
        &client,
        &farm,
        "the running filter hiding the job",
        long,
        &row(&id, "return r === null"),
    )
    .await;
    js(&client, &filter("canceled")).await;
    wait_js(
        &client,
        &farm,
        "the canceled filter showing it",
        long,
        &row(&id, "return r !== null"),
    )
    .await;

    // The node: online, its slots and encoders.
    client
        .find(Locator::Css("#tabs button[data-tab=nodes]"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    let nodes = wait_js(
        &client,
        &farm,
        "the node table",
        long,
        "const t = document.getElementById('nodes').innerText; return t.includes('agent-0') ? t : null",
    )
    .await;
    let nodes = nodes.as_str().unwrap();
    assert!(nodes.contains("online") && nodes.contains("libx264"), "{nodes}");

    // Charts of the last hour were sampled while the job ran; the Bench tab shows verdicts.
    client
        .find(Locator::Css("#tabs button[data-tab=charts]"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    wait_js(
        &client,
        &farm,
        "the throughput chart",
        long,
        "return document.querySelector('#chart-fps svg path') !== null",
    )
    .await;
    client
        .find(Locator::Css("#tabs button[data-tab=bench]"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    let bench = wait_js(
        &client,
        &farm,
        "the bench comparison",
        long,
        "const t = document.getElementById('bench').textContent; return t.includes('against') ? t : null",
    )
    .await;
    let bench = bench.as_str().unwrap();
    assert!(bench.contains("slower-preset against baseline"), "{bench}");
    assert!(bench.contains("720p-h264: worse"), "{bench}");
    client.close().await.unwrap();
}

//! Operating the binaries by the book, on the real binaries: the OpenAPI document a live
//! master serves, `--config` files and their precedence, `--check-config`, the systemd units'
//! command lines, shell completions, and logs without colour codes off a terminal.

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::Duration;

use ffrtmp_http::{CallOptions, ClientConfig, HttpClient};
use http::Method;

#[path = "support/procs.rs"]
mod procs;
use procs::{wait_for_file, Proc};

const KEY: &str = "operations-all-roles-key-0001";

/// A key file readable by its owner only (the master warns about others).
fn key_file(dir: &Path) -> PathBuf {
    use std::os::unix::fs::PermissionsExt;
    let path = dir.join("all.keys");
    std::fs::write(&path, format!("{KEY}\n")).unwrap();
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).unwrap();
    path
}

/// A binary with none of the variables a developer's shell may have set.
fn bin(name: &str) -> Command {
    let path = match name {
        "ffrtmp-master" => env!("CARGO_BIN_EXE_ffrtmp-master"),
        "ffrtmp-agent" => env!("CARGO_BIN_EXE_ffrtmp-agent"),
        "ffrtmp" => env!("CARGO_BIN_EXE_ffrtmp"),
        other => panic!("no binary {other}"),
    };
    let mut command = Command::new(path);
    for var in [
        "MASTER_API_KEY",
        "MASTER_API_KEY_FILE",
        "MASTER_DB",
        "MASTER_PORT",
        "FFRTMP_MASTER_CONFIG",
        "FFRTMP_AGENT_CONFIG",
        "NO_COLOR",
        "RUST_LOG",
    ] {
        command.env_remove(var);
    }
    command
}

fn stdout(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_served_openapi_document_is_public_and_every_operation_in_it_is_routed() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let ready = d.join("ready");
    let master = bin("ffrtmp-master")
        .args(["--port", "0", "--log-format", "json"])
        .arg("--db")
        .arg(d.join("master.db"))
        .arg("--ready-file")
        .arg(&ready)
        .arg("--api-key-file")
        .arg(key_file(d))
        .stdout(Stdio::null())
        .stderr(Stdio::from(std::fs::File::create(d.join("master.log")).unwrap()))
        .spawn()
        .unwrap();
    let _master = Proc(master);
    let url = wait_for_file(&ready, Duration::from_secs(30));
    let client =
        |key: &str| HttpClient::new(ClientConfig::new(url.clone(), key).with_ca_cert(d.join("tls/cert.pem"))).unwrap();

    // No key needed, and it is the document kept in the repository.
    let anonymous = client("");
    let served = anonymous
        .send(Method::GET, "/openapi.json", None, CallOptions::default())
        .await
        .unwrap();
    assert_eq!(served.status, 200);
    assert_eq!(
        std::str::from_utf8(&served.body).unwrap(),
        ffrtmp_http::openapi::DOCUMENT
    );
    let doc: serde_json::Value = serde_json::from_slice(&served.body).unwrap();

    // Real ids, so that id routes answer from a handler rather than "no route".
    let keyed = client(KEY);
    let json = |v: serde_json::Value| Some(bytes::Bytes::from(v.to_string()));
    let node = keyed
        .send(
            Method::POST,
            "/nodes/register",
            json(serde_json::json!({"name": "n", "cpu_cores": 1, "memory_mb": 64, "max_concurrent_jobs": 1})),
            CallOptions::default(),
        )
        .await
        .unwrap();
    assert_eq!(node.status, 201, "{:?}", node.body);
    let node_id = serde_json::from_slice::<serde_json::Value>(&node.body).unwrap()["id"]
        .as_str()
        .unwrap()
        .to_string();
    let job = keyed
        .send(
            Method::POST,
            "/jobs",
            json(serde_json::json!({"scenario": "720p-h264"})),
            CallOptions::default(),
        )
        .await
        .unwrap();
    assert_eq!(job.status, 201, "{:?}", job.body);
    let job_id = serde_json::from_slice::<serde_json::Value>(&job.body).unwrap()["id"]
        .as_str()
        .unwrap()
        .to_string();

    let mut operations = 0;
    for (template, item) in doc["paths"].as_object().unwrap() {
        let id = if template.starts_with("/jobs/") {
            &job_id
        } else {
            &node_id
        };
        let path = template.replace("{id}", id);
        for (method, operation) in item.as_object().unwrap() {
            // An event stream never ends: opening it (a 2xx answer) is what counts.
            if operation["responses"]["200"]["content"]
                .get("text/event-stream")
                .is_some()
            {
                if let Err(e) = keyed.stream(&path).await {
                    panic!("{method} {template} is documented but does not open: {e}");
                }
                operations += 1;
                continue;
            }
            let method = Method::from_bytes(method.to_uppercase().as_bytes()).unwrap();
            let body = (method == Method::POST).then(|| bytes::Bytes::from_static(b"{}"));
            let answer = keyed
                .send(method.clone(), &path, body, CallOptions::default())
                .await
                .unwrap();
            let status = answer.status.as_u16();
            let no_route = status == 404 && answer.error().is_some_and(|e| e.message.starts_with("no route"));
            assert!(
                !no_route && status != 405,
                "{method} {template} is documented but answers {status}"
            );
            assert!(status < 500, "{method} {template}: {status} {:?}", answer.body);
            operations += 1;
        }
    }
    assert!(operations >= 15, "only {operations} operations documented");
}

/// `ffrtmp-master --check-config` with `args`, its config file holding `toml`.
fn check_master(dir: &Path, toml: &str, args: &[&str], env: &[(&str, &str)]) -> Output {
    let config = dir.join("master.toml");
    std::fs::write(&config, toml).unwrap();
    bin("ffrtmp-master")
        .arg("--config")
        .arg(&config)
        .args(args)
        .arg("--check-config")
        .envs(env.iter().copied())
        .output()
        .unwrap()
}

#[test]
fn flags_beat_the_environment_which_beats_the_config_file() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let keys = key_file(d);
    let toml = format!(
        "db = \"{}\"\napi-key-file = \"{}\"\n",
        d.join("file.db").display(),
        keys.display()
    );
    let env_db = d.join("env.db").display().to_string();
    let flag_db = d.join("flag.db").display().to_string();

    let out = check_master(d, &toml, &[], &[]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(stdout(&out).contains("configuration OK"), "{}", stdout(&out));
    assert!(stdout(&out).contains("file.db"), "{}", stdout(&out));
    let out = check_master(d, &toml, &[], &[("MASTER_DB", &env_db)]);
    assert!(stdout(&out).contains("env.db"), "{}{}", stdout(&out), stderr(&out));
    let out = check_master(d, &toml, &["--db", &flag_db], &[("MASTER_DB", &env_db)]);
    assert!(stdout(&out).contains("flag.db"), "{}{}", stdout(&out), stderr(&out));
    // Checking creates nothing.
    for db in ["file.db", "env.db", "flag.db"] {
        assert!(!d.join(db).exists(), "--check-config created {db}");
    }

    // The file may also come from the environment.
    std::fs::write(d.join("from-env.toml"), &toml).unwrap();
    let out = bin("ffrtmp-master")
        .arg("--check-config")
        .env("FFRTMP_MASTER_CONFIG", d.join("from-env.toml"))
        .output()
        .unwrap();
    assert!(stdout(&out).contains("file.db"), "{}{}", stdout(&out), stderr(&out));
}

#[test]
fn bad_config_files_and_unusable_files_fail_the_check_with_a_clear_message() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let keys = key_file(d);
    let good = format!(
        "db = \"{}\"\napi-key-file = \"{}\"\n",
        d.join("m.db").display(),
        keys.display()
    );
    let fails = |toml: &str, args: &[&str], expected: &str| {
        let out = check_master(d, toml, args, &[]);
        let err = stderr(&out);
        assert!(!out.status.success(), "{toml} {args:?} passed the check");
        assert!(err.contains(expected), "{toml} {args:?}: {err}");
        assert!(!err.contains("panicked"), "{err}");
    };
    fails(&format!("{good}prot = 8443\n"), &[], "unknown key `prot`");
    fails(&format!("{good}port = \n"), &[], "is not valid TOML");
    fails(&format!("{good}port = \"many\"\n"), &[], "many");
    fails(&format!("{good}port = \"many\"\n"), &[], "config file");
    fails(&format!("{good}bind = [\"a\", \"b\"]\n"), &[], "key `bind`");
    fails(
        &format!("{good}insecure-plaintext = \"yes\"\n"),
        &[],
        "key `insecure-plaintext`",
    );
    // Flags that need one another are checked for the file's settings too.
    fails(&format!("{good}tls-cert = \"/c.pem\"\n"), &[], "--tls-key");
    fails(
        &format!("{good}insecure-plaintext = true\n"),
        &["--tls-cert", "/c", "--tls-key", "/k"],
        "--insecure-plaintext",
    );
    let missing = d.join("missing.keys").display().to_string();
    fails(
        &format!("db = \"{}\"\napi-key-file = \"{missing}\"\n", d.join("m.db").display()),
        &[],
        &missing,
    );
    // TLS files that are not a certificate and key.
    let junk = d.join("junk.pem");
    std::fs::write(&junk, "not a certificate").unwrap();
    let junk = junk.display().to_string();
    fails(&good, &["--tls-cert", &junk, "--tls-key", &junk], "TLS");
    fails(&good, &["--client-ca", &junk], "TLS");
    // A database directory that does not exist.
    fails(
        &good,
        &["--db", "/nonexistent-ffrtmp-dir/m.db"],
        "/nonexistent-ffrtmp-dir",
    );
    // A job store that does not answer; its password is never shown.
    let pg = "postgres://ffrtmp:secret-pw@127.0.0.1:1/ffrtmp";
    fails(&good, &["--db", pg], "PostgreSQL");
    let out = check_master(d, &good, &["--db", pg], &[]);
    assert!(!stderr(&out).contains("secret-pw"), "{}", stderr(&out));
    // A config file that is not there.
    let out = bin("ffrtmp-master")
        .args(["--config", "/nonexistent.toml", "--check-config"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(stderr(&out).contains("/nonexistent.toml"), "{}", stderr(&out));

    // Real certificate files pass.
    let key = rcgen::KeyPair::generate().unwrap();
    let cert = rcgen::CertificateParams::new(vec!["localhost".into()])
        .unwrap()
        .self_signed(&key)
        .unwrap();
    std::fs::write(d.join("cert.pem"), cert.pem()).unwrap();
    std::fs::write(d.join("key.pem"), key.serialize_pem()).unwrap();
    let (c, k) = (
        d.join("cert.pem").display().to_string(),
        d.join("key.pem").display().to_string(),
    );
    let out = check_master(d, &good, &["--tls-cert", &c, "--tls-key", &k, "--client-ca", &c], &[]);
    assert!(out.status.success(), "{}", stderr(&out));

    // The agent: an unknown key, and a key file that is not there.
    let agent = |toml: &str| {
        std::fs::write(d.join("agent.toml"), toml).unwrap();
        bin("ffrtmp-agent")
            .arg("--config")
            .arg(d.join("agent.toml"))
            .arg("--check-config")
            .output()
            .unwrap()
    };
    let out = agent("max-jobs = 2\n");
    assert!(
        !out.status.success() && stderr(&out).contains("unknown key `max-jobs`"),
        "{}",
        stderr(&out)
    );
    let out = bin("ffrtmp-agent")
        .arg("--check-config")
        .env("FFRTMP_AGENT_CONFIG", d.join("agent.toml"))
        .output()
        .unwrap();
    assert!(stderr(&out).contains("unknown key `max-jobs`"), "{}", stderr(&out));
    let out = agent(&format!("api-key-file = \"{missing}\"\n"));
    assert!(
        !out.status.success() && stderr(&out).contains(&missing),
        "{}",
        stderr(&out)
    );
    let out = agent(&format!(
        "api-key-file = \"{}\"\nmax-concurrent-jobs = 2\n",
        keys.display()
    ));
    assert!(out.status.success(), "{}", stderr(&out));
}

/// The `ExecStart=`/`ExecStartPre=` command lines of a unit file, split into words.
fn exec_lines(unit: &str) -> Vec<Vec<String>> {
    unit.lines()
        .filter_map(|l| l.strip_prefix("ExecStart=").or_else(|| l.strip_prefix("ExecStartPre=")))
        .map(|l| {
            l.trim_start_matches(['-', '+', '!', '@'])
                .split_whitespace()
                .map(String::from)
                .collect()
        })
        .collect()
}

/// Copies the example config file of the same name from deploy/config to `to`, its absolute
/// paths moved below `root`, and creates the files it names: key files, and a certificate for
/// `.pem` files.
fn install_example_config(root: &Path, to: &Path) {
    use std::os::unix::fs::PermissionsExt;
    let name = to.file_name().unwrap();
    let example = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../deploy/config")
        .join(name);
    let text = std::fs::read_to_string(&example).unwrap();
    let text = text.replace("\"/", &format!("\"{}/", root.display()));
    std::fs::create_dir_all(to.parent().unwrap()).unwrap();
    std::fs::write(to, &text).unwrap();
    let root_text = root.display().to_string();
    for (n, path) in text.split('"').filter(|w| w.starts_with(&root_text)).enumerate() {
        let path = Path::new(path);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        if path.extension().is_some_and(|e| e == "pem") {
            let key = rcgen::KeyPair::generate().unwrap();
            let cert = rcgen::CertificateParams::new(vec!["master.example.net".into()])
                .unwrap()
                .self_signed(&key)
                .unwrap();
            std::fs::write(path, cert.pem()).unwrap();
        } else {
            std::fs::write(path, format!("{KEY}-{n}\n")).unwrap();
            std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600)).unwrap();
        }
    }
}

#[test]
fn the_systemd_units_start_the_binaries_with_flags_they_accept_and_no_secrets() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    let units = Path::new(env!("CARGO_MANIFEST_DIR")).join("../deploy/systemd");
    for (unit, binary) in [
        ("ffrtmp-master.service", "ffrtmp-master"),
        ("ffrtmp-agent.service", "ffrtmp-agent"),
    ] {
        let text = std::fs::read_to_string(units.join(unit)).unwrap();
        for setting in [
            "EnvironmentFile=",
            "NoNewPrivileges=yes",
            "ProtectHome=yes",
            "PrivateTmp=yes",
        ] {
            assert!(text.contains(setting), "{unit} lacks {setting}");
        }
        let lines = exec_lines(&text);
        assert!(lines.len() >= 2, "{unit}: ExecStartPre and ExecStart");
        let help = stdout(&bin(binary).arg("--help").output().unwrap());
        for words in lines {
            assert!(words[0].ends_with(&format!("/{binary}")), "{unit}: {words:?}");
            for flag in words.iter().filter(|w| w.starts_with("--")) {
                assert!(!flag.starts_with("--api-key="), "{unit}: a key on the command line");
                assert_ne!(flag, "--api-key", "{unit}: a key on the command line");
                assert!(help.contains(flag.as_str()), "{unit}: {flag} is not in {binary} --help");
            }
            // The same command line under a scratch root: absolute paths move below it, the
            // config file names the key file, and the check must pass.
            let moved: Vec<String> = words[1..]
                .iter()
                .map(|w| {
                    if w.starts_with('/') {
                        format!("{}{w}", root.display())
                    } else {
                        w.clone()
                    }
                })
                .collect();
            for w in &moved {
                if w.ends_with(".toml") {
                    install_example_config(root, Path::new(w));
                } else if w.ends_with(".db") {
                    std::fs::create_dir_all(Path::new(w).parent().unwrap()).unwrap();
                }
            }
            let mut command = bin(binary);
            command.args(&moved);
            if !moved.iter().any(|w| w == "--check-config") {
                command.arg("--check-config");
            }
            let out = command.output().unwrap();
            assert!(out.status.success(), "{unit}: {moved:?}: {}", stderr(&out));
            assert!(stdout(&out).contains("configuration OK"), "{unit}: {}", stdout(&out));
        }
    }
}

#[test]
fn completions_name_the_subcommands_and_flags() {
    let out = bin("ffrtmp").args(["completions", "bash"]).output().unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    let bash = stdout(&out);
    for word in ["jobs", "nodes", "scenarios", "bench", "completions", "--master"] {
        assert!(bash.contains(word), "bash completion lacks {word}");
    }
    for shell in ["zsh", "fish"] {
        let out = bin("ffrtmp").args(["completions", shell]).output().unwrap();
        assert!(
            out.status.success() && stdout(&out).contains("jobs"),
            "{shell}: {}",
            stderr(&out)
        );
    }
    for binary in ["ffrtmp-master", "ffrtmp-agent"] {
        for shell in ["bash", "zsh", "fish"] {
            let out = bin(binary).args(["--completions", shell]).output().unwrap();
            assert!(out.status.success(), "{binary} {shell}: {}", stderr(&out));
            assert!(
                stdout(&out).contains("check-config"),
                "{binary} {shell} completion lacks --check-config"
            );
        }
    }
    let out = bin("ffrtmp").args(["completions", "tcsh"]).output().unwrap();
    assert!(!out.status.success() && stderr(&out).contains("tcsh"));
}

/// A master that logs a warning (bound to every address without --tls-name) and exits.
fn warning_master(dir: &Path) -> Vec<String> {
    let keys = key_file(dir);
    vec![
        env!("CARGO_BIN_EXE_ffrtmp-master").to_string(),
        "--bind".into(),
        "0.0.0.0".into(),
        "--db".into(),
        dir.join("m.db").display().to_string(),
        "--api-key-file".into(),
        keys.display().to_string(),
        "--check-config".into(),
    ]
}

/// Runs `argv` on a pseudo-terminal (util-linux `script`), returning what it wrote there.
fn on_terminal(argv: &[String], no_color: bool) -> String {
    let line = argv.iter().map(|a| format!("'{a}'")).collect::<Vec<_>>().join(" ");
    let mut command = Command::new("script");
    command
        .args(["-q", "-e", "-c", &line, "/dev/null"])
        .env("TERM", "xterm")
        .env_remove("RUST_LOG");
    if no_color {
        command.env("NO_COLOR", "1");
    } else {
        command.env_remove("NO_COLOR");
    }
    let out = command.stdin(Stdio::null()).output().expect("util-linux `script` runs");
    assert!(out.status.success(), "{}", stderr(&out));
    stdout(&out)
}

#[test]
fn logs_carry_colour_codes_only_on_a_terminal_without_no_color() {
    let dir = tempfile::tempdir().unwrap();
    let argv = warning_master(dir.path());
    // Piped, as to journald: plain text.
    let out = bin("ffrtmp-master").args(&argv[1..]).output().unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    let log = stderr(&out);
    assert!(log.contains("WARN") && log.contains("--tls-name"), "{log}");
    assert!(!log.contains('\u{1b}'), "escape codes in piped output: {log:?}");
    // On a terminal: coloured, unless NO_COLOR says otherwise.
    let tty = on_terminal(&argv, false);
    assert!(tty.contains("--tls-name"), "{tty:?}");
    assert!(tty.contains('\u{1b}'), "no colour on a terminal: {tty:?}");
    let tty = on_terminal(&argv, true);
    assert!(tty.contains("--tls-name"), "{tty:?}");
    assert!(!tty.contains('\u{1b}'), "colour despite NO_COLOR: {tty:?}");
}

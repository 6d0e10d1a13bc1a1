//! A real RTMP server for tests: nginx with Debian's `libnginx-mod-rtmp`, on a free loopback
//! port, with its own configuration, logs and pid file in a temporary directory. Starting it
//! panics (the test fails) when nginx or the module is missing or it does not listen.
#![allow(dead_code)]

use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// The RTMP module Debian's `libnginx-mod-rtmp` installs.
pub const RTMP_MODULE: &str = "/usr/lib/nginx/modules/ngx_rtmp_module.so";

/// A running nginx RTMP server with one application, `live`.
pub struct RtmpServer {
    dir: tempfile::TempDir,
    /// The loopback port it listens on.
    pub port: u16,
    child: Option<Child>,
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

impl RtmpServer {
    /// Starts nginx on a free port and waits until the port accepts connections.
    pub fn start() -> RtmpServer {
        assert!(
            Path::new(RTMP_MODULE).exists(),
            "{RTMP_MODULE} is missing: install nginx and libnginx-mod-rtmp (scripts/test.sh does)"
        );
        let dir = tempfile::tempdir().unwrap();
        let mut server = RtmpServer {
            port: free_port(),
            dir,
            child: None,
        };
        server.launch();
        server
    }

    fn conf(&self) -> PathBuf {
        self.dir.path().join("nginx.conf")
    }

    /// The error log, for failure messages.
    pub fn error_log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("error.log")).unwrap_or_default()
    }

    fn launch(&mut self) {
        let d = self.dir.path();
        let conf = format!(
            "load_module {RTMP_MODULE};\n\
             daemon off;\nmaster_process off;\nworker_processes 1;\n\
             pid {pid};\nerror_log {log} info;\n\
             events {{ worker_connections 128; }}\n\
             rtmp {{\n  server {{\n    listen 127.0.0.1:{port};\n    \
             application live {{ live on; record off; }}\n  }}\n}}\n",
            pid = d.join("nginx.pid").display(),
            log = d.join("error.log").display(),
            port = self.port,
        );
        std::fs::write(self.conf(), conf).unwrap();
        let child = Command::new("nginx")
            .arg("-p")
            .arg(d)
            .arg("-c")
            .arg(self.conf())
            .arg("-e")
            .arg(d.join("error.log"))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::from(std::fs::File::create(d.join("stderr.log")).unwrap()))
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start nginx (install nginx and libnginx-mod-rtmp): {e}"));
        self.child = Some(child);
        let deadline = Instant::now() + Duration::from_secs(15);
        loop {
            if TcpStream::connect(("127.0.0.1", self.port)).is_ok() {
                return;
            }
            if let Some(status) = self.child.as_mut().unwrap().try_wait().unwrap() {
                panic!(
                    "nginx exited ({status}) before listening on {}: {}\n{}",
                    self.port,
                    std::fs::read_to_string(d.join("stderr.log")).unwrap_or_default(),
                    self.error_log()
                );
            }
            assert!(
                Instant::now() < deadline,
                "nginx did not listen on {} within 15 s",
                self.port
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// `rtmp://127.0.0.1:<port>/live/`, the prefix every stream of this server has.
    pub fn prefix(&self) -> String {
        format!("rtmp://127.0.0.1:{}/live/", self.port)
    }

    /// The URL of stream `key`.
    pub fn url(&self, key: &str) -> String {
        format!("{}{key}", self.prefix())
    }

    /// Kills nginx (as a crash or an outage would) and waits until the port is closed.
    pub fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
        let deadline = Instant::now() + Duration::from_secs(10);
        while TcpStream::connect(("127.0.0.1", self.port)).is_ok() {
            assert!(
                Instant::now() < deadline,
                "port {} still open after nginx stopped",
                self.port
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Starts nginx again on the same port.
    pub fn restart(&mut self) {
        self.stop();
        self.launch();
    }
}

impl Drop for RtmpServer {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// What ffprobe saw of a live stream's video.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Probed {
    /// Codec name, e.g. `h264`.
    pub codec: String,
    /// Width in pixels.
    pub width: u32,
    /// Height in pixels.
    pub height: u32,
    /// Frame rate as ffprobe prints it, e.g. `30/1`.
    pub fps: String,
    /// ffprobe's line, for the report.
    pub line: String,
}

/// Reads `url` with ffprobe until it shows a video stream or `within` passes (the stream
/// may not be published yet); panics at the deadline with ffprobe's last error.
pub fn probe_live(url: &str, within: Duration) -> Probed {
    let deadline = Instant::now() + within;
    let mut last = String::new();
    while Instant::now() < deadline {
        let out = Command::new("timeout")
            .args(["15", "ffprobe", "-v", "error", "-select_streams", "v:0"])
            .args([
                "-show_entries",
                "stream=codec_name,width,height,r_frame_rate",
                "-of",
                "csv=p=0",
            ])
            .arg(url)
            .output()
            .expect("ffprobe runs");
        let text = String::from_utf8_lossy(&out.stdout).trim().to_string();
        let fields: Vec<&str> = text.lines().next().unwrap_or("").split(',').collect();
        if out.status.success() && fields.len() == 4 {
            return Probed {
                codec: fields[0].to_string(),
                width: fields[1].parse().unwrap_or(0),
                height: fields[2].parse().unwrap_or(0),
                fps: fields[3].to_string(),
                line: text,
            };
        }
        last = format!("{}{}", text, String::from_utf8_lossy(&out.stderr));
        std::thread::sleep(Duration::from_millis(300));
    }
    panic!("ffprobe saw no video at {url} within {within:?}: {last}");
}

/// A test publisher: ffmpeg pushing a synthetic `w`x`h` H.264 stream at `fps` to `url`
/// for `seconds`, in real time. Killed on drop.
pub struct Publisher(Child);

impl Publisher {
    /// Starts publishing.
    pub fn start(url: &str, w: u32, h: u32, fps: u32, seconds: u32) -> Publisher {
        let child = Command::new("ffmpeg")
            .args([
                "-hide_banner",
                "-nostdin",
                "-loglevel",
                "error",
                "-re",
                "-f",
                "lavfi",
                "-i",
            ])
            .arg(format!("testsrc2=size={w}x{h}:rate={fps}:duration={seconds}"))
            .args(["-c:v", "libx264", "-preset", "ultrafast", "-tune", "zerolatency"])
            .args(["-pix_fmt", "yuv420p", "-g", &(fps * 2).to_string(), "-f", "flv"])
            .arg(url)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("ffmpeg publisher starts");
        Publisher(child)
    }
}

impl Drop for Publisher {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

//! A real `threatlog serve` process on a free loopback port, and a raw HTTP/1.1 client for it.
#![allow(dead_code)]

use serde_json::Value;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// A running `threatlog serve`.
pub struct Server {
    /// The `threatlog serve` process.
    child: Child,
    /// The bound API address, from `DIR/run/api.addr`.
    pub addr: String,
    /// The node's data directory.
    pub dir: PathBuf,
}

impl Server {
    /// Starts `threatlog serve --api-listen 127.0.0.1:0` on `dir` and waits for its address.
    pub fn start(dir: &Path) -> Server {
        Server::start_with(dir, &[], Stdio::inherit())
    }

    /// Starts `threatlog serve` on `dir` with extra environment variables.
    pub fn start_with_env(dir: &Path, env: &[(&str, &str)]) -> Server {
        Server::start_with(dir, env, Stdio::inherit())
    }

    /// Like [`Server::start`], with the node's log output (stderr) written to `log`.
    pub fn start_logged(dir: &Path, log: &Path) -> Server {
        let file = std::fs::File::create(log).expect("log file created");
        Server::start_with(dir, &[], Stdio::from(file))
    }

    fn start_with(dir: &Path, env: &[(&str, &str)], stderr: Stdio) -> Server {
        let addr_file = dir.join("run").join("api.addr");
        let _ = std::fs::remove_file(&addr_file);
        let child = Command::new(env!("CARGO_BIN_EXE_threatlog"))
            .arg("--data")
            .arg(dir)
            .args([
                "serve",
                "--api-listen",
                "127.0.0.1:0",
                "--sync-listen",
                "127.0.0.1:0",
            ])
            .env("RUST_LOG", "warn")
            .envs(env.iter().copied())
            .stdout(Stdio::null())
            .stderr(stderr)
            .spawn()
            .expect("threatlog serve starts");
        let started = Instant::now();
        let addr = loop {
            if let Ok(text) = std::fs::read_to_string(&addr_file) {
                if text.ends_with('\n') {
                    break text.trim().to_string();
                }
            }
            assert!(
                started.elapsed() < Duration::from_secs(60),
                "serve did not start"
            );
            std::thread::sleep(Duration::from_millis(20));
        };
        Server {
            child,
            addr,
            dir: dir.to_path_buf(),
        }
    }

    /// The process id of `threatlog serve`.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Kills the process with SIGKILL (no shutdown at all) and reaps it.
    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// Sends SIGTERM and waits for a clean exit.
    pub fn stop(mut self) {
        // SAFETY: kill(2) on our own child's pid.
        unsafe { libc::kill(self.child.id() as i32, libc::SIGTERM) };
        let status = self.child.wait().expect("serve exits");
        assert!(status.success(), "serve exited with {status}");
        assert!(
            !self.dir.join("run/api.addr").exists(),
            "address file removed"
        );
    }

    /// One request; returns (status, body as JSON or `null`).
    pub fn request(
        &self,
        method: &str,
        path: &str,
        key: Option<&str>,
        body: Option<&str>,
    ) -> (u16, Value) {
        let (status, text) = self.request_text(method, path, key, body);
        (status, serde_json::from_str(&text).unwrap_or(Value::Null))
    }

    /// [`Server::request`] with the body as text (CSV and other exports).
    pub fn request_text(
        &self,
        method: &str,
        path: &str,
        key: Option<&str>,
        body: Option<&str>,
    ) -> (u16, String) {
        let mut head = format!("{method} {path} HTTP/1.1\r\nHost: {}\r\nConnection: close\r\nAccept: application/json\r\n", self.addr);
        if let Some(key) = key {
            head.push_str(&format!("Authorization: {key}\r\n"));
        }
        let body = body.unwrap_or("");
        head.push_str(&format!(
            "Content-Type: application/json\r\nContent-Length: {}\r\n\r\n",
            body.len()
        ));
        raw_text(&self.addr, &[head.as_bytes(), body.as_bytes()].concat())
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Sends raw bytes and parses the response: (status, JSON body or `null`).
pub fn raw(addr: &str, request: &[u8]) -> (u16, Value) {
    let (status, body) = raw_text(addr, request);
    (status, serde_json::from_str(&body).unwrap_or(Value::Null))
}

/// Sends raw bytes; returns the status and the body as text.
pub fn raw_text(addr: &str, request: &[u8]) -> (u16, String) {
    let mut stream = TcpStream::connect(addr).expect("connects");
    stream
        .set_read_timeout(Some(Duration::from_secs(30)))
        .unwrap();
    stream.write_all(request).expect("request sent");
    let mut response = Vec::new();
    let _ = stream.read_to_end(&mut response);
    let text = String::from_utf8_lossy(&response).into_owned();
    let (head, body) = text.split_once("\r\n\r\n").expect("a complete response");
    let status = head
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .expect("a status");
    let body = if head
        .to_ascii_lowercase()
        .contains("transfer-encoding: chunked")
    {
        dechunk(body)
    } else {
        body.to_string()
    };
    (status, body)
}

fn dechunk(mut body: &str) -> String {
    let mut out = String::new();
    while let Some((size, rest)) = body.split_once("\r\n") {
        let size = usize::from_str_radix(size.trim(), 16).unwrap_or(0);
        if size == 0 {
            break;
        }
        out.push_str(&rest[..size]);
        body = &rest[size + 2..];
    }
    out
}

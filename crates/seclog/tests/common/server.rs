//! `seclog serve` as a child process on a free 127.0.0.1 port.

use std::fs;
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, ExitStatus};
use std::time::{Duration, Instant};

use serde_json::Value;

use super::{FAST_EPOCHS, Reply, agent, post, seclog, tail};

/// How long a server may take to answer `/healthz`.
const START_TIMEOUT: Duration = Duration::from_secs(20);

/// How long a server may take to exit after SIGTERM (it seals first).
const STOP_TIMEOUT: Duration = Duration::from_secs(30);

/// A running `seclog serve`.
pub struct Server {
    child: Option<Child>,
    /// `http://127.0.0.1:PORT`.
    pub base: String,
    stdout_path: PathBuf,
    stderr_path: PathBuf,
}

impl Server {
    /// Starts `seclog serve --data data` and waits for `/healthz`; logs go to `logs/serve-N.*`.
    pub fn start(data: &Path, logs: &Path, extra: &[&str]) -> Server {
        Server::start_with_env(data, logs, extra, &[])
    }

    /// [`Server::start`] with extra environment variables for the server process.
    pub fn start_with_env(
        data: &Path,
        logs: &Path,
        extra: &[&str],
        envs: &[(&str, &str)],
    ) -> Server {
        let mut last_failure = String::new();
        // The port is free when chosen but another process may take it before the server binds.
        for _attempt in 0..5 {
            let address = format!("127.0.0.1:{}", free_port());
            match Server::spawn_at(data, logs, extra, envs, &address) {
                Ok(server) => return server,
                Err(failure) if failure.contains("Address already in use") => {
                    last_failure = failure;
                }
                Err(failure) => panic!("seclog serve did not become healthy: {failure}"),
            }
        }
        panic!("seclog serve could not bind a port: {last_failure}");
    }

    /// Starts the server again on the address it had (after [`Server::stop`]), so clients
    /// configured with its URL reach it again.
    pub fn restart(&mut self, data: &Path, logs: &Path, extra: &[&str]) {
        let address = self.base.trim_start_matches("http://").to_string();
        let deadline = Instant::now() + START_TIMEOUT;
        loop {
            match Server::spawn_at(data, logs, extra, &[], &address) {
                Ok(server) => {
                    *self = server;
                    return;
                }
                Err(failure)
                    if failure.contains("Address already in use") && Instant::now() < deadline =>
                {
                    std::thread::sleep(Duration::from_millis(200));
                }
                Err(failure) => panic!("seclog serve did not restart on {address}: {failure}"),
            }
        }
    }

    fn spawn_at(
        data: &Path,
        logs: &Path,
        extra: &[&str],
        envs: &[(&str, &str)],
        address: &str,
    ) -> Result<Server, String> {
        {
            let (stdout_path, stderr_path) = next_log_paths(logs);
            let child = seclog()
                .arg("serve")
                .arg("--data")
                .arg(data)
                .args(["--http", address])
                .args(FAST_EPOCHS)
                .args(extra)
                .envs(envs.iter().copied())
                .stdout(fs::File::create(&stdout_path).expect("stdout file"))
                .stderr(fs::File::create(&stderr_path).expect("stderr file"))
                .spawn()
                .expect("seclog serve starts");
            let mut server = Server {
                child: Some(child),
                base: format!("http://{address}"),
                stdout_path,
                stderr_path,
            };
            server.wait_healthy().map(|()| server)
        }
    }

    fn wait_healthy(&mut self) -> Result<(), String> {
        let agent = agent(Duration::from_secs(2));
        let deadline = Instant::now() + START_TIMEOUT;
        let url = self.url("/healthz");
        loop {
            if let Some(status) = self.child_mut().try_wait().expect("try_wait") {
                self.child = None;
                return Err(format!(
                    "exited with {status} before answering /healthz\n--- stderr ---\n{}",
                    self.stderr()
                ));
            }
            if let Ok(response) = agent.get(&url).call()
                && response.status() == 200
            {
                return Ok(());
            }
            if Instant::now() > deadline {
                return Err(format!(
                    "no /healthz answer within {START_TIMEOUT:?}\n--- stderr ---\n{}",
                    self.stderr()
                ));
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    fn child_mut(&mut self) -> &mut Child {
        self.child.as_mut().expect("the server process is running")
    }

    /// The server's process id.
    pub fn pid(&self) -> u32 {
        self.child.as_ref().expect("server process").id()
    }

    /// `base` + `path`.
    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    /// Posts `body` to `/api/v1/ingest/{group_path}` (`group_path` is sent as is).
    pub fn ingest(&self, token: &str, group_path: &str, body: &[u8]) -> Reply {
        post(
            &self.url(&format!("/api/v1/ingest/{group_path}")),
            Some(token),
            &[],
            body,
        )
    }

    /// Like [`Server::ingest`], asserting a 200 reply; returns its JSON.
    pub fn ingest_ok(&self, token: &str, group_path: &str, body: &[u8]) -> Value {
        let reply = self.ingest(token, group_path, body);
        assert_eq!(
            reply.status,
            200,
            "ingest into {group_path} failed: {}\n--- server stderr ---\n{}",
            reply.text(),
            self.stderr_tail()
        );
        reply.json()
    }

    /// Everything the server wrote to stderr so far.
    pub fn stderr(&self) -> String {
        fs::read_to_string(&self.stderr_path).unwrap_or_default()
    }

    /// Everything the server wrote to stdout so far.
    pub fn stdout(&self) -> String {
        fs::read_to_string(&self.stdout_path).unwrap_or_default()
    }

    /// The last lines of stderr, for failure messages.
    pub fn stderr_tail(&self) -> String {
        tail(&self.stderr(), 40)
    }

    /// True while the process has not exited.
    pub fn is_running(&mut self) -> bool {
        match self.child.as_mut() {
            Some(child) => child.try_wait().expect("try_wait").is_none(),
            None => false,
        }
    }

    /// SIGKILL: no chance to seal or flush anything.
    pub fn kill_hard(&mut self) {
        if let Some(mut child) = self.child.take() {
            child.kill().expect("SIGKILL the server");
            child.wait().expect("reap the server");
        }
    }

    /// SIGTERM and wait: the server finishes requests and seals. Returns the exit status.
    pub fn stop(&mut self) -> ExitStatus {
        let mut child = self.child.take().expect("the server process is running");
        send_sigterm(&child);
        let deadline = Instant::now() + STOP_TIMEOUT;
        loop {
            if let Some(status) = child.try_wait().expect("try_wait") {
                return status;
            }
            if Instant::now() > deadline {
                let _ = child.kill();
                let _ = child.wait();
                panic!(
                    "the server did not exit within {STOP_TIMEOUT:?} of SIGTERM\n--- stderr ---\n{}",
                    self.stderr_tail()
                );
            }
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    /// [`Server::stop`], asserting a clean exit.
    pub fn stop_ok(&mut self) {
        let status = self.stop();
        assert!(
            status.success(),
            "the server exited with {status} after SIGTERM\n--- stderr ---\n{}",
            self.stderr_tail()
        );
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// SIGTERM to a child that has not been reaped (so its pid cannot have been reused), via kill(1).
pub fn send_sigterm(child: &Child) {
    let status = std::process::Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .expect("run kill(1)");
    assert!(status.success(), "kill -TERM failed: {status}");
}

/// A port that was free a moment ago.
pub fn free_port() -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1:0");
    listener.local_addr().expect("local address").port()
}

fn next_log_paths(logs: &Path) -> (PathBuf, PathBuf) {
    let index = (1..)
        .find(|index| !logs.join(format!("serve-{index}.stderr")).exists())
        .expect("a free log name");
    (
        logs.join(format!("serve-{index}.stdout")),
        logs.join(format!("serve-{index}.stderr")),
    )
}

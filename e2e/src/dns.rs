//! Debian's dnsmasq on a loopback port, answering for `.test` names only:
//! the TXT records and addresses a test gives it, NXDOMAIN for every other
//! `.test` name, and nothing beyond (no upstream, no `/etc/hosts`). Stopped
//! when dropped.

use std::net::{Ipv4Addr, SocketAddr};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// A running dnsmasq.
#[derive(Debug)]
pub struct Dnsmasq {
    child: Child,
    dir: tempfile::TempDir,
    /// Where it answers (UDP and TCP).
    pub address: SocketAddr,
}

impl Dnsmasq {
    /// Starts dnsmasq with these `(name, text)` TXT records and
    /// `(name, address)` A records.
    ///
    /// # Panics
    ///
    /// When dnsmasq does not start or answer within ten seconds.
    #[must_use]
    pub fn start(txt: &[(&str, &str)], addresses: &[(&str, Ipv4Addr)]) -> Self {
        let dir = tempfile::tempdir().expect("a folder for dnsmasq");
        let port = crate::free_port();
        let log = dir.path().join("dnsmasq.log");
        let mut command = Command::new("/usr/sbin/dnsmasq");
        command.args([
            "--keep-in-foreground",
            "--listen-address=127.0.0.1",
            "--bind-interfaces",
            "--no-resolv",
            "--no-hosts",
            "--no-poll",
            "--local=/test/",
            "--log-queries",
            "--pid-file=",
        ]);
        command.arg(format!("--port={port}"));
        command.arg(format!("--log-facility={}", log.display()));
        if rustix::process::geteuid().is_root() {
            // Stay root: the log is in the test's private folder.
            command.arg("--user=root");
        }
        for (name, text) in txt {
            command.arg(format!("--txt-record={name},{text}"));
        }
        for (name, ip) in addresses {
            command.arg(format!("--address=/{name}/{ip}"));
        }
        let child = command
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("dnsmasq starts");
        let mut dns = Self {
            child,
            dir,
            address: SocketAddr::from(([127, 0, 0, 1], port)),
        };
        #[expect(clippy::disallowed_methods, reason = "a test harness's deadline")]
        let started = Instant::now();
        loop {
            if std::net::TcpStream::connect(dns.address).is_ok() {
                return dns;
            }
            let exited = dns.child.try_wait().expect("wait");
            assert!(
                exited.is_none() && started.elapsed() < Duration::from_secs(10),
                "dnsmasq did not come up ({exited:?}):\n{}",
                dns.log()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// The queries it answered so far.
    #[must_use]
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("dnsmasq.log")).unwrap_or_default()
    }
}

impl Drop for Dnsmasq {
    fn drop(&mut self) {
        crate::terminate(&mut self.child);
    }
}

//! The production shape on loopback: a certificate authority the test makes
//! (Debian's `openssl`), Debian's `nginx` terminating TLS for a host name in
//! front of one or more atlogin instances, and the `/etc/hosts` entry that
//! makes the name resolve for every program on the machine (the PDS fetches
//! atlogin's client metadata document by it).
//!
//! nginx connects to the instances from [`FRONT_SOURCE`], a loopback address
//! of its own, so that atlogin can trust exactly the front and nobody else
//! with `X-Forwarded-For`.

use std::fmt::Write as _;
use std::io::Write as _;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// The domain atlogin is published under; each test takes a name of its own
/// below it (tests run side by side, and an atproto client id has no port,
/// so each front needs port 443 on an address of its own). `.internal` is a
/// name the PDS accepts in a client id, unlike `.test`, `.local`,
/// `.localhost`, `.invalid` and `.example`.
pub const HOST: &str = "atlogin.e2e.internal";

/// The address nginx connects to atlogin from (`proxy_bind`).
pub const FRONT_SOURCE: IpAddr = IpAddr::V4(Ipv4Addr::new(127, 0, 0, 2));

const HOSTS: &str = "/etc/hosts";
const MARK: &str = "# atlogin-e2e pid";

/// A certificate authority made for one test, and a server certificate it
/// issued for [`HOST`] and the names below it.
#[derive(Debug)]
pub struct TestCa {
    dir: tempfile::TempDir,
}

impl TestCa {
    /// Makes the CA (EC P-256, valid for a day) and the server certificate.
    ///
    /// # Panics
    ///
    /// When `openssl` fails; its output is in the message.
    #[must_use]
    pub fn new() -> Self {
        Self::with_names(&[])
    }

    /// [`TestCa::new`], with `names` in the server certificate too.
    ///
    /// # Panics
    ///
    /// When `openssl` fails; its output is in the message.
    #[must_use]
    pub fn with_names(names: &[&str]) -> Self {
        let dir = tempfile::tempdir().expect("a folder for the CA");
        let d = dir.path();
        let run = |args: &[&str]| {
            let out = Command::new("openssl")
                .args(args)
                .current_dir(d)
                .stdin(Stdio::null())
                .output()
                .expect("openssl runs");
            assert!(
                out.status.success(),
                "openssl {args:?}: {}",
                String::from_utf8_lossy(&out.stderr)
            );
        };
        let ec = [
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:P-256",
            "-nodes",
        ];
        run(&[
            &[
                "req", "-x509", "-days", "1", "-keyout", "ca.key", "-out", "ca.pem",
            ][..],
            &ec,
            &["-subj", "/CN=atlogin e2e test CA (tests only)"],
            &["-addext", "basicConstraints=critical,CA:TRUE"],
            &["-addext", "keyUsage=critical,keyCertSign,cRLSign"],
        ]
        .concat());
        run(&[
            &["req", "-new", "-keyout", "server.key", "-out", "server.csr"][..],
            &ec,
            &["-subj", &format!("/CN={HOST}")],
        ]
        .concat());
        let mut extra = String::new();
        for name in names {
            let _ = write!(extra, ",DNS:{name}");
        }
        std::fs::write(
            d.join("server.ext"),
            format!(
                "subjectAltName=DNS:{HOST},DNS:*.{HOST}{extra}\nbasicConstraints=CA:FALSE\n\
                 keyUsage=critical,digitalSignature\nextendedKeyUsage=serverAuth\n"
            ),
        )
        .expect("extensions file");
        run(&[
            "x509",
            "-req",
            "-days",
            "1",
            "-in",
            "server.csr",
            "-CA",
            "ca.pem",
            "-CAkey",
            "ca.key",
            "-CAcreateserial",
            "-extfile",
            "server.ext",
            "-out",
            "server.pem",
        ]);
        run(&["x509", "-in", "ca.pem", "-outform", "DER", "-out", "ca.der"]);
        Self { dir }
    }

    /// The CA certificate, PEM (for `NODE_EXTRA_CA_CERTS`, `SSL_CERT_FILE`).
    #[must_use]
    pub fn ca_pem(&self) -> PathBuf {
        self.dir.path().join("ca.pem")
    }

    /// The CA certificate, DER (for rustls).
    ///
    /// # Panics
    ///
    /// When the file is gone.
    #[must_use]
    pub fn ca_der(&self) -> Vec<u8> {
        std::fs::read(self.dir.path().join("ca.der")).expect("ca.der")
    }

    /// A bundle of the system's roots and this CA, for programs that take
    /// one file of roots (Synapse's `SSL_CERT_FILE`).
    ///
    /// # Panics
    ///
    /// When the files cannot be read or written.
    #[must_use]
    pub fn bundle(&self) -> PathBuf {
        let path = self.dir.path().join("bundle.pem");
        let mut text =
            std::fs::read_to_string("/etc/ssl/certs/ca-certificates.crt").unwrap_or_default();
        text.push_str(&std::fs::read_to_string(self.ca_pem()).expect("ca.pem"));
        std::fs::write(&path, text).expect("bundle.pem");
        path
    }
}

impl Default for TestCa {
    fn default() -> Self {
        Self::new()
    }
}

/// A name below [`HOST`] on a loopback address of this test's own, in
/// `/etc/hosts` for as long as it lives; the line carries this process's id
/// and is removed on drop, as are lines left by processes that are gone.
#[derive(Debug)]
pub struct HostsEntry {
    line: String,
    /// The name, `p<pid>.<HOST>`.
    pub host: String,
    /// Its address, in 127.0.0.0/8 and free on port 443.
    pub ip: Ipv4Addr,
}

impl HostsEntry {
    /// Picks the address and adds the line.
    ///
    /// # Panics
    ///
    /// When no address is free or `/etc/hosts` cannot be written (the tests
    /// that need it run as root, as CI does).
    #[must_use]
    pub fn add() -> Self {
        let pid = std::process::id();
        let ip = free_loopback_address(0);
        let host = format!("p{pid}.{HOST}");
        let line = format!("{ip} {host} {MARK} {pid}");
        let text = std::fs::read_to_string(HOSTS).expect("/etc/hosts");
        let mut kept = keep_live_lines(&text);
        let _ = writeln!(kept, "{line}");
        rewrite(&kept);
        Self { line, host, ip }
    }
}

impl Drop for HostsEntry {
    fn drop(&mut self) {
        if let Ok(text) = std::fs::read_to_string(HOSTS) {
            let mut kept = String::new();
            for line in keep_live_lines(&text).lines() {
                if line != self.line {
                    let _ = writeln!(kept, "{line}");
                }
            }
            rewrite(&kept);
        }
    }
}

/// An address in 127.0.0.0/8 on which port 443 is free, picked from this
/// process's id (so tests side by side pick apart) and `salt` (so one test
/// can pick several).
///
/// # Panics
///
/// When none of the 64 tried is free.
#[must_use]
pub fn free_loopback_address(salt: u32) -> Ipv4Addr {
    let pid = std::process::id();
    (0..64u32)
        .map(|i| {
            let n = pid
                .wrapping_mul(2_654_435_761)
                .wrapping_add(salt.wrapping_mul(7919))
                .wrapping_add(i.wrapping_mul(97));
            let [_, b, c, d] = n.to_be_bytes();
            Ipv4Addr::new(127, b | 1, c, d.clamp(2, 254))
        })
        .find(|ip| std::net::TcpListener::bind((*ip, 443)).is_ok())
        .expect("a loopback address with port 443 free")
}

/// `text` without the lines of test processes that no longer run.
fn keep_live_lines(text: &str) -> String {
    let mut kept = String::new();
    for line in text.lines() {
        let stale = line
            .split_once(MARK)
            .is_some_and(|(_, pid)| !Path::new("/proc").join(pid.trim()).exists());
        if !stale {
            let _ = writeln!(kept, "{line}");
        }
    }
    kept
}

/// Writes `/etc/hosts` in place: in a container it is a mount point, which a
/// rename cannot replace.
fn rewrite(text: &str) {
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .truncate(true)
        .open(HOSTS)
        .unwrap_or_else(|e| panic!("{HOSTS} must be writable for the TLS-front tests: {e}"));
    file.write_all(text.as_bytes()).expect("/etc/hosts written");
}

/// Debian's nginx, terminating TLS for a [`HostsEntry`]'s name on port 443 and
/// passing requests round-robin to `upstreams`, from [`FRONT_SOURCE`], with
/// `X-Forwarded-For`, `-Proto` and `-Host`. Stopped when dropped.
#[derive(Debug)]
pub struct Nginx {
    child: Child,
    dir: tempfile::TempDir,
    /// The public URL, `https://<name>`.
    pub url: String,
}

impl Nginx {
    /// Starts nginx for `name` with `ca`'s server certificate.
    ///
    /// # Panics
    ///
    /// When nginx does not start or does not answer within 30 seconds; its
    /// error log is in the message.
    #[must_use]
    pub fn start(ca: &TestCa, name: &HostsEntry, upstreams: &[SocketAddr]) -> Self {
        Self::start_at(ca, name.ip, &name.host, upstreams)
    }

    /// Starts nginx for `host` on `ip`, port 443, with `ca`'s server
    /// certificate (which must name `host`); the `Host` header is passed on
    /// as the browser sent it.
    ///
    /// # Panics
    ///
    /// As [`Nginx::start`].
    #[must_use]
    pub fn start_at(ca: &TestCa, ip: Ipv4Addr, host: &str, upstreams: &[SocketAddr]) -> Self {
        let dir = tempfile::tempdir().expect("a folder for nginx");
        let d = dir.path().display();
        let certs = ca.dir.path().display();
        std::fs::create_dir_all(dir.path().join("tmp")).expect("tmp");
        let mut servers = String::new();
        for upstream in upstreams {
            let _ = writeln!(servers, "        server {upstream} max_fails=0;");
        }
        // As root nginx's workers would become `nobody`, who cannot enter the
        // test's private folders.
        let user = if rustix::process::geteuid().is_root() {
            "user root;\n"
        } else {
            ""
        };
        std::fs::write(
            dir.path().join("nginx.conf"),
            format!(
                "{user}worker_processes 1;
daemon off;
pid {d}/nginx.pid;
error_log {d}/error.log info;
events {{ worker_connections 256; }}
http {{
    log_format upstream '$upstream_addr $status $request_method $uri';
    access_log {d}/access.log upstream;
    client_body_temp_path {d}/tmp/body;
    proxy_temp_path {d}/tmp/proxy;
    fastcgi_temp_path {d}/tmp/fastcgi;
    uwsgi_temp_path {d}/tmp/uwsgi;
    scgi_temp_path {d}/tmp/scgi;
    upstream atlogin {{
{servers}    }}
    server {{
        listen {ip}:443 ssl;
        server_name {host};
        ssl_certificate {certs}/server.pem;
        ssl_certificate_key {certs}/server.key;
        location / {{
            proxy_pass http://atlogin;
            proxy_bind {FRONT_SOURCE};
            proxy_next_upstream off;
            proxy_set_header Host $http_host;
            proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;
            proxy_set_header X-Forwarded-Proto $scheme;
            proxy_set_header X-Forwarded-Host $http_host;
        }}
    }}
}}
"
            ),
        )
        .expect("nginx.conf");
        let child = Command::new("/usr/sbin/nginx")
            .arg("-p")
            .arg(dir.path())
            .arg("-c")
            .arg(dir.path().join("nginx.conf"))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("nginx starts");
        let mut nginx = Self {
            child,
            dir,
            url: format!("https://{host}"),
        };
        #[expect(clippy::disallowed_methods, reason = "a test harness's deadline")]
        let started = Instant::now();
        loop {
            if std::net::TcpStream::connect((ip, 443)).is_ok() {
                return nginx;
            }
            let exited = nginx.child.try_wait().expect("wait");
            assert!(
                exited.is_none() && started.elapsed() < Duration::from_secs(30),
                "nginx did not come up ({exited:?}):\n{}",
                nginx.log()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// nginx's error log so far.
    #[must_use]
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("error.log")).unwrap_or_default()
    }

    /// One line per request so far: the upstream that served it, the
    /// status, the method and the path (no query: it may hold a code).
    #[must_use]
    pub fn access_log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("access.log")).unwrap_or_default()
    }
}

impl Drop for Nginx {
    fn drop(&mut self) {
        crate::terminate(&mut self.child);
    }
}

//! A command-line atproto login on tokio, as a loopback client.
//!
//! ```text
//! cargo run -p atlogin-tokio --example login-tokio -- alice.bsky.social
//! ```
//!
//! It prints the authorization URL, waits on `127.0.0.1:<port>` for the browser
//! to come back, completes the login and prints the verified DID, handle and PDS.
//! Options: `--port N` (default 9411); `--dev` (development rules: http and local
//! addresses allowed); `--plc URL`; `--nameserver IP:PORT`; `--handle-resolver URL`
//! (resolve handles with that service's `resolveHandle`, as a local PDS needs).
#![expect(clippy::print_stdout, reason = "a command-line example prints")]

use std::error::Error;
use std::net::{Ipv4Addr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use atlogin_core::client::{CallbackParams, ClientConfig, LoginRequest};
use atlogin_core::identity::{IdentityConfig, Mode};
use atlogin_core::netpolicy::NetPolicy;
use atlogin_tokio::{Driver, DriverConfig};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

/// What the command line asked for.
struct Args {
    handle: String,
    port: u16,
    dev: bool,
    plc: Option<url::Url>,
    nameserver: Option<SocketAddr>,
    handle_resolver: Option<url::Url>,
}

fn args() -> Result<Args, Box<dyn Error>> {
    let mut handle = None;
    let mut parsed = Args {
        handle: String::new(),
        port: 9411,
        dev: false,
        plc: None,
        nameserver: None,
        handle_resolver: None,
    };
    let mut words = std::env::args().skip(1);
    while let Some(word) = words.next() {
        let mut value = || words.next().ok_or(format!("{word} needs a value"));
        match word.as_str() {
            "--port" => parsed.port = value()?.parse()?,
            "--dev" => parsed.dev = true,
            "--plc" => parsed.plc = Some(value()?.parse()?),
            "--nameserver" => parsed.nameserver = Some(value()?.parse()?),
            "--handle-resolver" => parsed.handle_resolver = Some(value()?.parse()?),
            _ if handle.is_none() && !word.starts_with("--") => handle = Some(word),
            _ => return Err(format!("unexpected argument {word}").into()),
        }
    }
    parsed.handle = handle
        .ok_or("usage: login <handle> [--port N] [--dev] [--plc URL] [--nameserver IP:PORT] [--handle-resolver URL]")?;
    Ok(parsed)
}

/// Waits for the browser's `GET /callback?...` and answers it; returns the query.
async fn wait_for_callback(listener: &TcpListener) -> Result<String, Box<dyn Error>> {
    loop {
        let (mut stream, _) = listener.accept().await?;
        let mut head = Vec::new();
        let read_head = async {
            let mut buffer = [0u8; 1024];
            while !head.windows(4).any(|w| w == b"\r\n\r\n") && head.len() < 16 * 1024 {
                let read = stream.read(&mut buffer).await?;
                if read == 0 {
                    break;
                }
                head.extend_from_slice(&buffer[..read]);
            }
            Ok::<_, std::io::Error>(())
        };
        // A browser may open a connection and send nothing on it (a
        // speculative preconnect): give up on it rather than wait forever.
        if !matches!(
            tokio::time::timeout(Duration::from_secs(5), read_head).await,
            Ok(Ok(()))
        ) {
            continue;
        }
        let head = String::from_utf8_lossy(&head);
        let target = head.split(' ').nth(1).unwrap_or_default();
        if let Some(query) = target.strip_prefix("/callback?") {
            let page = "You are signed in; you can close this tab.\n";
            let reply = format!(
                "HTTP/1.1 200 OK\r\ncontent-type: text/plain; charset=utf-8\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{page}",
                page.len()
            );
            stream.write_all(reply.as_bytes()).await?;
            return Ok(query.to_owned());
        }
        stream
            .write_all(b"HTTP/1.1 404 Not Found\r\ncontent-length: 0\r\nconnection: close\r\n\r\n")
            .await?;
    }
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Box<dyn Error>> {
    let args = args()?;
    let mode = if args.dev {
        Mode::Development
    } else {
        Mode::Production
    };
    let mut config = DriverConfig::default();
    if args.dev {
        config = config.with_policy(NetPolicy::development());
    }
    if let Some(nameserver) = args.nameserver {
        config = config.with_nameservers(vec![nameserver]);
    }
    let mut identity = IdentityConfig::default().with_mode(mode);
    if let Some(plc) = args.plc {
        identity.plc_directory = plc;
    }
    if let Some(resolver) = args.handle_resolver {
        identity = identity.with_handle_resolver(resolver);
    }

    let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, args.port)).await?;
    let port = listener.local_addr()?.port();
    let redirect_uri = format!("http://127.0.0.1:{port}/callback").parse()?;
    let client = Arc::new(ClientConfig::loopback(redirect_uri)?.with_identity(identity));
    let driver = Driver::new(config)?;

    let request = LoginRequest::parse(&args.handle, mode)?;
    let started = driver.start_login(request, client.clone()).await?;
    println!(
        "Open this URL in a browser:\n\n  {}\n",
        started.redirect_url
    );

    let query = wait_for_callback(&listener).await?;
    let callback = CallbackParams::parse(&query)?;
    let verified = driver
        .complete_login(started.pending, &callback, client)
        .await?;
    println!("did:    {}", verified.did);
    match &verified.handle {
        Some(handle) => println!("handle: {handle}"),
        None => println!("handle: (not verified)"),
    }
    println!("pds:    {}", verified.pds);
    Ok(())
}

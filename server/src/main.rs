//! The `atlogin` command.

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::{Duration, SystemTime};

use atlogin_core::time::UnixTime;
use atlogin_server::config;
use atlogin_server::keys::{KeySet, KeyStore};
use atlogin_server::settings::{LogFormat, Settings};
use clap::{Parser, Subcommand, ValueEnum};

/// Sign in to Matrix with a Bluesky / AT Protocol identity.
#[derive(Debug, Parser)]
#[command(version)]
struct Cli {
    /// Where atlogin keeps its keys and state.
    #[arg(long, env = "ATLOGIN_STATE_DIR", default_value_os_t = default_state_dir())]
    state_dir: PathBuf,
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Runs the server. Without `--config`: on 127.0.0.1:9411 as an atproto
    /// loopback client, state in the state directory, the demo at /demo.
    Serve {
        /// The configuration file (`state_dir` in it wins over `--state-dir`).
        #[arg(long, short, env = "ATLOGIN_CONFIG")]
        config: Option<PathBuf>,
    },
    /// Manage the signing keys.
    #[command(subcommand)]
    Keys(KeysCommand),
    /// Ends every session of one person: deletes their tokens and sends a
    /// back-channel logout token to every relying party that registered a URI.
    Logout {
        /// The person's DID.
        did: String,
        /// The configuration file of the deployment.
        #[arg(long, short, env = "ATLOGIN_CONFIG")]
        config: Option<PathBuf>,
    },
    /// Checks a running deployment from the outside: its discovery document,
    /// JWKS and atproto client metadata, and what a relying party expects.
    Doctor {
        /// The deployment's public URL (its issuer).
        url: url::Url,
        /// The issuer the relying party is configured with.
        #[arg(long)]
        issuer: Option<String>,
        /// The ID-token algorithm the relying party accepts.
        #[arg(long, value_enum)]
        alg: Option<AlgArg>,
    },
    /// Checks a configuration file and names every problem with its line.
    CheckConfig {
        /// The file.
        file: PathBuf,
    },
}

#[derive(Debug, Subcommand)]
enum KeysCommand {
    /// Lists the keys of both sets, with their state.
    List,
    /// Adds a fresh key per algorithm, which new tokens use at once; the keys it
    /// replaces stay published for the grace period.
    Rotate {
        /// Which set.
        #[arg(value_enum)]
        set: SetArg,
        /// How long the replaced keys stay published, in days.
        #[arg(long, default_value_t = 7)]
        grace_days: u64,
    },
}

#[derive(Clone, Copy, Debug, ValueEnum)]
enum AlgArg {
    #[value(name = "RS256")]
    Rs256,
    #[value(name = "ES256")]
    Es256,
}

#[derive(Clone, Copy, Debug, ValueEnum)]
enum SetArg {
    /// The keys that sign ID tokens.
    IdToken,
    /// The atproto client's assertion keys.
    AtprotoClient,
}

impl From<SetArg> for KeySet {
    fn from(set: SetArg) -> Self {
        match set {
            SetArg::IdToken => Self::IdToken,
            SetArg::AtprotoClient => Self::AtprotoClient,
        }
    }
}

/// `$XDG_STATE_HOME/atlogin`, else `~/.local/state/atlogin`, else `./atlogin-state`.
fn default_state_dir() -> PathBuf {
    if let Some(dir) = std::env::var_os("XDG_STATE_HOME").filter(|d| !d.is_empty()) {
        return PathBuf::from(dir).join("atlogin");
    }
    if let Some(home) = std::env::var_os("HOME").filter(|d| !d.is_empty()) {
        return PathBuf::from(home).join(".local/state/atlogin");
    }
    PathBuf::from("atlogin-state")
}

fn now() -> UnixTime {
    #[expect(clippy::disallowed_methods, reason = "the binary owns the clock")]
    let now = SystemTime::now();
    UnixTime::from_system_time(now)
}

#[expect(clippy::print_stdout, reason = "the command's output")]
fn run(cli: &Cli) -> Result<(), Box<dyn std::error::Error>> {
    match &cli.command {
        Command::CheckConfig { file } => return check_config(file),
        Command::Serve { config } => return serve(cli, config.as_deref()),
        Command::Logout { did, config } => return logout(cli, did, config.as_deref()),
        Command::Doctor { url, issuer, alg } => return doctor(url, issuer.clone(), *alg),
        Command::Keys(_) => {}
    }
    let store = KeyStore::open(&cli.state_dir, atlogin_server::crypto::provider())?;
    let mut rng = rand_core::UnwrapErr(getrandom::SysRng);
    match &cli.command {
        Command::CheckConfig { .. }
        | Command::Serve { .. }
        | Command::Logout { .. }
        | Command::Doctor { .. } => {}
        Command::Keys(KeysCommand::List) => {
            for set in [KeySet::IdToken, KeySet::AtprotoClient] {
                for key in store.load(set)? {
                    let state = match key.retires {
                        None => "current".to_owned(),
                        Some(at) if key.is_live(now()) => format!("retires at {}", at.as_secs()),
                        Some(_) => "retired".to_owned(),
                    };
                    println!(
                        "{set:?}\t{}\t{}\t{state}",
                        key.signing.algorithm().as_str(),
                        key.kid()
                    );
                }
            }
        }
        Command::Keys(KeysCommand::Rotate { set, grace_days }) => {
            let grace = Duration::from_secs(grace_days.saturating_mul(24 * 3600));
            for key in store.rotate((*set).into(), now(), grace, &mut rng)? {
                println!("added {} {}", key.signing.algorithm().as_str(), key.kid());
            }
        }
    }
    Ok(())
}

/// Reads the configuration file, if any, into settings; every problem is in the error.
fn settings(cli: &Cli, config: Option<&Path>) -> Result<Settings, Box<dyn std::error::Error>> {
    use std::os::unix::fs::PermissionsExt as _;
    let public_url = std::env::var(config::PUBLIC_URL_ENV).ok();
    let Some(file) = config else {
        if public_url.is_some_and(|u| !u.is_empty()) {
            // No file, but a public URL: the settings of an empty file, which
            // is where ATLOGIN_PUBLIC_URL is applied and checked.
            return settings_from(cli, "", 0o600, Path::new(config::PUBLIC_URL_ENV));
        }
        return Ok(Settings::defaults(cli.state_dir.clone()));
    };
    let text = std::fs::read_to_string(file).map_err(|e| format!("{}: {e}", file.display()))?;
    let mode = std::fs::metadata(file)?.permissions().mode();
    settings_from(cli, &text, mode, file)
}

fn settings_from(
    cli: &Cli,
    text: &str,
    mode: u32,
    file: &Path,
) -> Result<Settings, Box<dyn std::error::Error>> {
    let env = |name: &str| std::env::var(name).ok();
    let read_file = |path: &Path| std::fs::read_to_string(path);
    let around = config::Surroundings {
        file_is_shared: mode & 0o077 != 0,
        env: &env,
        read_file: &read_file,
    };
    let public_url = std::env::var(config::PUBLIC_URL_ENV).ok();
    Settings::from_file(text, &around, public_url.as_deref(), cli.state_dir.clone()).map_err(
        |problems| {
            let lines: Vec<String> = problems
                .iter()
                .map(|p| format!("{}: {p}", file.display()))
                .collect();
            format!(
                "the configuration has {} problem(s):\n{}",
                problems.len(),
                lines.join("\n")
            )
            .into()
        },
    )
}

/// Sets up logging as the settings ask.
fn init_logging(settings: &Settings) {
    use tracing_subscriber::EnvFilter;
    let filter = EnvFilter::try_from_env("ATLOGIN_LOG")
        .or_else(|_| EnvFilter::try_new(&settings.log_level))
        .unwrap_or_else(|_| EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()));
    let _ = match settings.log_format {
        LogFormat::Json => builder.json().flatten_event(true).try_init(),
        LogFormat::Text => builder.try_init(),
    };
}

/// `atlogin serve`.
fn serve(cli: &Cli, config: Option<&Path>) -> Result<(), Box<dyn std::error::Error>> {
    let settings = settings(cli, config)?;
    init_logging(&settings);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    runtime.block_on(async {
        let server =
            atlogin_server::serve::start(&settings, atlogin_server::serve::shutdown_signal())
                .await?;
        server.wait().await?;
        Ok(())
    })
}

/// `atlogin doctor <url>`: prints each finding; fails when one failed.
#[expect(clippy::print_stdout, reason = "the command's output")]
fn doctor(
    url: &url::Url,
    issuer: Option<String>,
    alg: Option<AlgArg>,
) -> Result<(), Box<dyn std::error::Error>> {
    use atlogin_core::jose::Algorithm;
    use atlogin_server::doctor;
    let expect = doctor::Expectations {
        issuer,
        alg: alg.map(|a| match a {
            AlgArg::Rs256 => Algorithm::Rs256,
            AlgArg::Es256 => Algorithm::Es256,
        }),
    };
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let findings = runtime.block_on(doctor::run(url, &expect));
    for finding in &findings {
        println!("{finding}");
    }
    let failed = findings.iter().filter(|f| !f.ok).count();
    if failed == 0 {
        println!("all {} checks passed", findings.len());
        Ok(())
    } else {
        Err(format!("{failed} of {} checks failed", findings.len()).into())
    }
}

/// `atlogin logout <did>`.
#[expect(clippy::print_stdout, reason = "the command's output")]
fn logout(cli: &Cli, did: &str, config: Option<&Path>) -> Result<(), Box<dyn std::error::Error>> {
    use atlogin_core::identity::{Did, Mode};
    use atlogin_server::{logout, serve};
    let settings = settings(cli, config)?;
    let mode = if settings.upstream.development {
        Mode::Development
    } else {
        Mode::Production
    };
    let did = Did::parse(did, mode).map_err(|e| format!("{did}: {e}"))?;
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let ended = runtime.block_on(async {
        let store = serve::open_store(&settings).await?;
        let issuer = serve::issuer(&settings, settings.listen.port());
        let provider = serve::provider_config(&settings, &issuer, settings.clients.clone())?;
        let sender = logout::LogoutSender::new()?;
        let ended = logout::end_sessions(store.as_ref(), &provider, &sender, &did, now()).await?;
        Ok::<_, Box<dyn std::error::Error>>(ended)
    })?;
    println!(
        "{did}: {} code(s) and token(s) deleted, {} session(s) ended",
        ended.tokens, ended.sessions
    );
    for client in &ended.notified {
        println!("{client}: logout token delivered");
    }
    for (client, error) in &ended.failed {
        println!("{client}: logout token NOT delivered: {error}");
    }
    if ended.failed.is_empty() {
        Ok(())
    } else {
        Err(format!("{} relying part(ies) were not told", ended.failed.len()).into())
    }
}

/// `atlogin check-config`: prints each problem and fails when there is one.
#[expect(clippy::print_stdout, reason = "the command's output")]
fn check_config(file: &Path) -> Result<(), Box<dyn std::error::Error>> {
    use std::os::unix::fs::PermissionsExt as _;
    let text = std::fs::read_to_string(file).map_err(|e| format!("{}: {e}", file.display()))?;
    let mode = std::fs::metadata(file)?.permissions().mode();
    let env = |name: &str| std::env::var(name).ok();
    let read_file = |path: &Path| std::fs::read_to_string(path);
    let problems = config::check(
        &text,
        &config::Surroundings {
            file_is_shared: mode & 0o077 != 0,
            env: &env,
            read_file: &read_file,
        },
    );
    for problem in &problems {
        println!("{}: {problem}", file.display());
    }
    if problems.is_empty() {
        println!("{}: no problems found", file.display());
        Ok(())
    } else {
        Err(format!("{} problem(s) in {}", problems.len(), file.display()).into())
    }
}

fn main() -> ExitCode {
    match run(&Cli::parse()) {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            #[expect(clippy::print_stderr, reason = "the command's error")]
            {
                eprintln!("atlogin: {error}");
            }
            ExitCode::FAILURE
        }
    }
}

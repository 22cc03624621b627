//! Command-line flags, named as Prometheus names them so that existing unit files and habits
//! carry over (`--config.file`, `--storage.tsdb.path`, `--web.listen-address`, `--log.level`).
//!
//! [`Flags::parse_args`] never exits the process itself: it returns a [`CliOutcome`] so that
//! `main` decides how to print and with which exit code.

use std::ffi::OsString;
use std::net::SocketAddr;
use std::path::PathBuf;

use clap::{Parser, Subcommand, ValueEnum};

use crate::config::PromDuration;

/// Vigil: scrapes metrics, stores them, answers PromQL and serves dashboards — one binary.
#[derive(Debug, Clone, Parser)]
#[command(name = "vigil", version, about, long_about = None)]
pub struct Flags {
    #[command(subcommand)]
    pub command: Option<Command>,

    /// Vigil configuration file, in Prometheus's `prometheus.yml` format. Without it, Vigil uses a
    /// built-in configuration that scrapes its own /metrics every 15s.
    #[arg(long = "config.file", global = true, value_name = "FILE")]
    pub config_file: Option<PathBuf>,

    /// Directory where Vigil keeps its time-series data and dashboards.
    #[arg(long = "storage.tsdb.path", global = true, value_name = "DIR", default_value = "./data")]
    pub storage_path: PathBuf,

    /// How long to keep samples, as a Prometheus duration (e.g. 15d, 12h). 0 keeps them forever.
    #[arg(
        long = "storage.tsdb.retention.time",
        global = true,
        value_name = "DURATION",
        default_value = "15d"
    )]
    pub retention_time: PromDuration,

    /// Maximum bytes of storage (blocks and WAL) before the oldest blocks are deleted, with a
    /// unit: B, KB, MB, GB, TB, PB, EB (powers of 1024, as Prometheus). 0 disables the limit.
    #[arg(long = "storage.tsdb.retention.size", global = true, value_name = "SIZE", default_value = "0", value_parser = parse_bytes)]
    pub retention_size: u64,

    /// How far back a selector looks for the latest sample of a series.
    #[arg(long = "query.lookback-delta", global = true, value_name = "DURATION", default_value = "5m")]
    pub query_lookback_delta: PromDuration,

    /// Longest a query may run before it is aborted.
    #[arg(long = "query.timeout", global = true, value_name = "DURATION", default_value = "2m")]
    pub query_timeout: PromDuration,

    /// Most samples a single query may hold in memory.
    #[arg(long = "query.max-samples", global = true, value_name = "N", default_value_t = 50_000_000)]
    pub query_max_samples: usize,

    /// Most queries evaluated at the same time; more wait for a slot.
    #[arg(long = "query.max-concurrency", global = true, value_name = "N", default_value_t = 20)]
    pub query_max_concurrency: usize,

    /// Enable shutdown and reload via HTTP request (POST /-/quit and /-/reload).
    #[arg(long = "web.enable-lifecycle", global = true)]
    pub enable_lifecycle: bool,

    /// Enable the admin API (POST /api/v1/admin/tsdb/snapshot).
    #[arg(long = "web.enable-admin-api", global = true)]
    pub enable_admin_api: bool,

    /// Address to listen on for the web UI, API and telemetry.
    #[arg(long = "web.listen-address", global = true, value_name = "ADDR", default_value = "127.0.0.1:9090")]
    pub listen_address: SocketAddr,

    /// Grafana-style provisioning directory: `dashboards/*.yaml` (dashboard providers) and
    /// `datasources/*.yaml`. A missing directory is fine.
    #[arg(long = "provisioning.dir", global = true, value_name = "DIR", default_value = "./provisioning")]
    pub provisioning_dir: PathBuf,

    /// Only log messages with the given severity or above.
    #[arg(long = "log.level", global = true, value_name = "LEVEL", value_enum, default_value_t = LogLevel::Info)]
    pub log_level: LogLevel,
}

/// Tools that run instead of the server.
#[derive(Debug, Clone, PartialEq, Eq, Subcommand)]
pub enum Command {
    /// Check files for problems without starting the server (like promtool check).
    Check {
        #[command(subcommand)]
        what: CheckCommand,
    },
    /// Start demo services with generated traffic, and Vigil scraping them.
    ///
    /// Three instrumented services (image-gallery, iotd, access-log × 3) on free loopback ports,
    /// a generated prometheus.yml under <storage.tsdb.path>/demo/, and the "Image gallery"
    /// dashboard. Takes the server's flags, except --config.file.
    Demo {
        /// Open the dashboard in the browser (with xdg-open) once Vigil is up.
        #[arg(long)]
        open: bool,
        /// Run only this demo service (and its own loopback traffic) on --web.listen-address,
        /// without Vigil: how the containers in examples/compose run.
        #[arg(long, value_name = "SERVICE", value_enum)]
        serve: Option<DemoService>,
    },
}

/// One of the demo's services, for `vigil demo --serve`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum DemoService {
    ImageGallery,
    Iotd,
    AccessLog,
}

#[derive(Debug, Clone, PartialEq, Eq, Subcommand)]
pub enum CheckCommand {
    /// Check configuration files; exit 0 if all are valid, 1 otherwise.
    Config {
        #[arg(required = true, value_name = "FILE")]
        files: Vec<PathBuf>,
    },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum LogLevel {
    Debug,
    Info,
    Warn,
    Error,
}

impl LogLevel {
    pub fn as_str(self) -> &'static str {
        match self {
            LogLevel::Debug => "debug",
            LogLevel::Info => "info",
            LogLevel::Warn => "warn",
            LogLevel::Error => "error",
        }
    }
}

/// What parsing the command line decided.
#[derive(Debug)]
pub enum CliOutcome {
    Run(Box<Flags>),
    /// `--help` or `--version`: print the text to stdout and exit 0.
    Print(String),
    /// A usage error, already reduced to one line: print to stderr and exit 2.
    Usage(String),
}

impl Flags {
    pub fn parse_args<I, T>(args: I) -> CliOutcome
    where
        I: IntoIterator<Item = T>,
        T: Into<OsString> + Clone,
    {
        match Flags::try_parse_from(args) {
            Ok(flags) => CliOutcome::Run(Box::new(flags)),
            Err(e) => match e.kind() {
                clap::error::ErrorKind::DisplayHelp | clap::error::ErrorKind::DisplayVersion => {
                    CliOutcome::Print(e.render().to_string())
                }
                _ => CliOutcome::Usage(one_line(&e.render().to_string())),
            },
        }
    }

    /// Effective flag values, in declaration order, for the Status page.
    pub fn describe(&self) -> Vec<(String, String)> {
        vec![
            (
                "config.file".into(),
                self.config_file.as_ref().map(|p| p.display().to_string()).unwrap_or_default(),
            ),
            ("storage.tsdb.path".into(), self.storage_path.display().to_string()),
            ("storage.tsdb.retention.time".into(), self.retention_time.to_string()),
            ("storage.tsdb.retention.size".into(), self.retention_size.to_string()),
            ("web.enable-lifecycle".into(), self.enable_lifecycle.to_string()),
            ("web.enable-admin-api".into(), self.enable_admin_api.to_string()),
            ("query.lookback-delta".into(), self.query_lookback_delta.to_string()),
            ("query.timeout".into(), self.query_timeout.to_string()),
            ("query.max-samples".into(), self.query_max_samples.to_string()),
            ("query.max-concurrency".into(), self.query_max_concurrency.to_string()),
            ("web.listen-address".into(), self.listen_address.to_string()),
            ("provisioning.dir".into(), self.provisioning_dir.display().to_string()),
            ("log.level".into(), self.log_level.as_str().into()),
        ]
    }
}

/// Parses a byte size with a unit, as Prometheus's `units.Base2Bytes` (`512MB`, `1GB`, `0`).
fn parse_bytes(s: &str) -> Result<u64, String> {
    if s == "0" {
        return Ok(0);
    }
    let digits = s.bytes().take_while(u8::is_ascii_digit).count();
    let n: u64 = s[..digits].parse().map_err(|_| format!("not a byte size: {s:?}"))?;
    let shift = match &s[digits..] {
        "B" => 0,
        "KB" | "KiB" => 10,
        "MB" | "MiB" => 20,
        "GB" | "GiB" => 30,
        "TB" | "TiB" => 40,
        "PB" | "PiB" => 50,
        "EB" | "EiB" => 60,
        _ => return Err(format!("not a byte size (want e.g. 512MB, 10GB): {s:?}")),
    };
    n.checked_mul(1u64 << shift).ok_or_else(|| format!("byte size too large: {s:?}"))
}

/// clap's messages span several lines (tip, usage, pointer to --help); keep the first line,
/// without its `error: ` prefix, and point to --help.
fn one_line(rendered: &str) -> String {
    let first = rendered.lines().find(|l| !l.trim().is_empty()).unwrap_or("invalid arguments");
    let first = first.trim().trim_start_matches("error: ");
    format!("vigil: {first} (see 'vigil --help')")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(args: &[&str]) -> CliOutcome {
        Flags::parse_args(std::iter::once("vigil").chain(args.iter().copied()))
    }

    #[test]
    fn defaults_match_prometheus() {
        let CliOutcome::Run(f) = run(&[]) else { panic!("expected flags") };
        assert_eq!(f.config_file, None);
        assert_eq!(f.storage_path, PathBuf::from("./data"));
        assert_eq!(f.listen_address.to_string(), "127.0.0.1:9090");
        assert_eq!(f.log_level, LogLevel::Info);
    }

    #[test]
    fn dotted_flag_names_parse() {
        let CliOutcome::Run(f) = run(&[
            "--config.file=/etc/vigil.yml",
            "--storage.tsdb.path",
            "/var/lib/vigil",
            "--web.listen-address=127.0.0.1:19090",
            "--log.level=debug",
        ]) else {
            panic!("expected flags")
        };
        assert_eq!(f.config_file, Some(PathBuf::from("/etc/vigil.yml")));
        assert_eq!(f.storage_path, PathBuf::from("/var/lib/vigil"));
        assert_eq!(f.listen_address.port(), 19090);
        assert_eq!(f.log_level, LogLevel::Debug);
    }

    #[test]
    fn unknown_flag_is_one_line_usage_error() {
        let CliOutcome::Usage(msg) = run(&["--no-such-flag"]) else { panic!("expected usage error") };
        assert!(!msg.contains('\n'), "{msg}");
        assert!(msg.contains("--no-such-flag"), "{msg}");
    }

    #[test]
    fn bad_value_names_the_flag() {
        let CliOutcome::Usage(msg) = run(&["--web.listen-address=nowhere"]) else {
            panic!("expected usage error")
        };
        assert!(msg.contains("--web.listen-address"), "{msg}");
        assert!(!msg.contains('\n'));
    }

    #[test]
    fn check_config_subcommand() {
        let CliOutcome::Run(f) = run(&["check", "config", "a.yml", "b.yml"]) else {
            panic!("expected flags")
        };
        assert_eq!(
            f.command,
            Some(Command::Check {
                what: CheckCommand::Config { files: vec!["a.yml".into(), "b.yml".into()] }
            })
        );
        assert!(matches!(run(&["check", "config"]), CliOutcome::Usage(_)));
    }

    #[test]
    fn demo_takes_server_flags_on_either_side() {
        for args in [
            &["demo", "--web.listen-address=127.0.0.1:19091", "--storage.tsdb.path=/tmp/d", "--open"][..],
            &["--web.listen-address=127.0.0.1:19091", "--storage.tsdb.path=/tmp/d", "demo", "--open"][..],
        ] {
            let CliOutcome::Run(f) = run(args) else { panic!("expected flags for {args:?}") };
            assert_eq!(f.command, Some(Command::Demo { open: true, serve: None }), "{args:?}");
            assert_eq!(f.listen_address.port(), 19091, "{args:?}");
            assert_eq!(f.storage_path, PathBuf::from("/tmp/d"), "{args:?}");
        }
        let CliOutcome::Run(f) = run(&["demo"]) else { panic!("expected flags") };
        assert_eq!(f.command, Some(Command::Demo { open: false, serve: None }), "never opens by default");
        assert_eq!(f.listen_address.to_string(), "127.0.0.1:9090");
        let CliOutcome::Run(f) = run(&["demo", "--serve=access-log"]) else { panic!("expected flags") };
        assert_eq!(f.command, Some(Command::Demo { open: false, serve: Some(DemoService::AccessLog) }));
        assert!(matches!(run(&["demo", "--serve=nginx"]), CliOutcome::Usage(_)));
    }

    #[test]
    fn retention_flags() {
        let CliOutcome::Run(f) =
            run(&["--storage.tsdb.retention.time=2d", "--storage.tsdb.retention.size=512MB"])
        else {
            panic!("expected flags")
        };
        assert_eq!(f.retention_time.to_string(), "2d");
        assert_eq!(f.retention_size, 512 << 20);
        let CliOutcome::Run(f) = run(&[]) else { panic!("expected flags") };
        // Prometheus prints 15d as 2w1d too.
        assert_eq!(f.retention_time.to_string(), "2w1d");
        assert_eq!(f.retention_size, 0);
        assert!(matches!(run(&["--storage.tsdb.retention.size=12 apples"]), CliOutcome::Usage(_)));
        assert!(matches!(run(&["--storage.tsdb.retention.time=soon"]), CliOutcome::Usage(_)));
    }

    #[test]
    fn help_documents_every_flag() {
        let CliOutcome::Print(text) = run(&["--help"]) else { panic!("expected help") };
        for flag in ["--config.file", "--storage.tsdb.path", "--web.listen-address", "--log.level"] {
            assert!(text.contains(flag), "help lacks {flag}");
        }
    }
}

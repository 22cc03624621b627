//! The `vigil` binary: parses flags, loads the configuration, runs the server. Exit codes: 0 on
//! a clean stop, 2 for bad flags or an unusable configuration file, 1 when the server fails.

use std::process::ExitCode;

use vigil::cli::{CheckCommand, CliOutcome, Command, DemoService, Flags};
use vigil::config::Config;

fn main() -> ExitCode {
    let flags = match Flags::parse_args(std::env::args_os()) {
        CliOutcome::Run(flags) => *flags,
        CliOutcome::Print(text) => {
            println!("{}", text.trim_end());
            return ExitCode::SUCCESS;
        }
        CliOutcome::Usage(line) => {
            eprintln!("{line}");
            return ExitCode::from(2);
        }
    };
    if let Some(Command::Check { what: CheckCommand::Config { files } }) = &flags.command {
        return check_config(files);
    }
    if let Some(Command::Demo { open, serve }) = flags.command {
        return demo(flags, open, serve);
    }
    let config = match &flags.config_file {
        Some(path) => match Config::load(path) {
            Ok(c) => c,
            Err(e) => {
                eprintln!("vigil: {e}");
                return ExitCode::from(2);
            }
        },
        None => Config::builtin(flags.listen_address),
    };
    init_logging(flags.log_level.as_str());
    let Some(runtime) = runtime() else { return ExitCode::FAILURE };
    match runtime.block_on(vigil::run(flags, config)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            tracing::error!("{e}");
            eprintln!("vigil: {e}");
            ExitCode::FAILURE
        }
    }
}

fn runtime() -> Option<tokio::runtime::Runtime> {
    match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(rt) => Some(rt),
        Err(e) => {
            eprintln!("vigil: cannot start the async runtime: {e}");
            None
        }
    }
}

/// `vigil demo`: the demo services and Vigil scraping them, or with `--serve` one service alone.
fn demo(flags: Flags, open: bool, serve: Option<DemoService>) -> ExitCode {
    if flags.config_file.is_some() {
        eprintln!("vigil: the demo writes its own configuration; run it without --config.file");
        return ExitCode::from(2);
    }
    init_logging(flags.log_level.as_str());
    let Some(runtime) = runtime() else { return ExitCode::FAILURE };
    let result = match serve {
        Some(service) => runtime.block_on(vigil::demo::serve_one(service, flags.listen_address)),
        None => runtime.block_on(vigil::demo::run(flags, open)),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            tracing::error!("{e}");
            eprintln!("vigil: {e}");
            ExitCode::FAILURE
        }
    }
}

/// `vigil check config FILE...`, reporting like `promtool check config`.
fn check_config(files: &[std::path::PathBuf]) -> ExitCode {
    let mut ok = true;
    for f in files {
        println!("Checking {}", f.display());
        match Config::load(f) {
            Ok(c) => {
                let jobs = c.scrape_configs.len();
                println!(
                    " SUCCESS: {} is valid prometheus config file syntax ({jobs} scrape jobs)",
                    f.display()
                );
            }
            Err(e) => {
                ok = false;
                println!("  FAILED: {e}");
            }
        }
        println!();
    }
    if ok {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}

fn init_logging(level: &str) {
    // Our level for Vigil's own modules; libraries stay at warn unless RUST_LOG says otherwise.
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(format!("warn,vigil={level}")));
    tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr).init();
}

//! `espresso-server [--config FILE] [--listen ADDR]`

use espresso_server::Options;
use std::process::ExitCode;
use tracing_subscriber::EnvFilter;

const USAGE: &str = "\
usage: espresso-server [--config FILE] [--listen ADDR]

  --config FILE   TOML config (every key has a default; see server/espresso.toml)
  --listen ADDR   address to listen on, overrides server.listen (default 127.0.0.1:8080)

Logs go to stderr; RUST_LOG sets the level (default: info).";

fn parse_args(mut args: impl Iterator<Item = String>) -> Result<Options, String> {
    let mut options = Options::default();
    while let Some(arg) = args.next() {
        let (flag, inline) = match arg.split_once('=') {
            Some((flag, value)) => (flag.to_owned(), Some(value.to_owned())),
            None => (arg, None),
        };
        let mut value = || {
            inline
                .clone()
                .or_else(|| args.next())
                .ok_or_else(|| format!("{flag} needs a value"))
        };
        match flag.as_str() {
            "--config" | "-c" => options.config = Some(value()?.into()),
            "--listen" | "-l" => {
                let addr = value()?;
                let addr = addr
                    .parse()
                    .map_err(|e| format!("--listen {addr:?}: {e}"))?;
                options.listen = Some(addr);
            }
            "--help" | "-h" => return Err(String::new()),
            other => return Err(format!("unknown argument {other:?}")),
        }
    }
    Ok(options)
}

fn main() -> ExitCode {
    let options = match parse_args(std::env::args().skip(1)) {
        Ok(options) => options,
        Err(message) if message.is_empty() => {
            println!("{USAGE}");
            return ExitCode::SUCCESS;
        }
        Err(message) => {
            eprintln!("espresso-server: {message}\n\n{USAGE}");
            return ExitCode::from(2);
        }
    };
    tracing_subscriber::fmt()
        .with_env_filter(
            EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info")),
        )
        .with_writer(std::io::stderr)
        .init();
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(runtime) => runtime,
        Err(e) => {
            eprintln!("espresso-server: cannot start the runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(espresso_server::run(options)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("espresso-server: {e}");
            ExitCode::FAILURE
        }
    }
}

//! Command lines parsed the same way by every binary: help and version to stdout with status
//! 0, a usage error as one line with the caller's failure status.

use std::process::ExitCode;

use clap::error::ErrorKind;

/// The parsed command line, or what to exit with: help printed (0), or a one-line
/// `NAME: …` usage error on stderr (`status`).
pub fn parse<T: clap::Parser>(name: &str, status: u8) -> Result<T, ExitCode> {
    match T::try_parse() {
        Ok(cli) => Ok(cli),
        Err(err) if !err.use_stderr() => {
            let _ = err.print();
            Err(ExitCode::SUCCESS)
        }
        Err(err)
            if matches!(
                err.kind(),
                ErrorKind::MissingSubcommand | ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand
            ) =>
        {
            eprintln!("{name}: no command given (see {name} --help)");
            Err(ExitCode::from(status))
        }
        Err(err) => {
            let text = err.to_string();
            let mut lines = text.lines().map(str::trim).filter(|l| !l.is_empty());
            let mut first = lines
                .next()
                .unwrap_or("usage error")
                .trim_start_matches("error: ")
                .to_string();
            // "the following required arguments were not provided:" names them on the next line.
            if first.ends_with(':') {
                if let Some(next) = lines.next() {
                    first = format!("{first} {next}");
                }
            }
            eprintln!("{name}: {first} (see {name} --help)");
            Err(ExitCode::from(status))
        }
    }
}

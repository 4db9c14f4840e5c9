//! ringsim's experiments: the essay's table and the later literature's results, each
//! reproduced by one command as Markdown, CSV and an SVG plot, from runs of `simulate` on
//! the corpus.
//!
//! `runner` runs one simulation; each experiment (`seed_table`…) chooses its runs and turns
//! their reports into rows; `provenance` records what the rows came from; `plot` draws
//! them; `outputs` writes an experiment's files all or none.

pub mod crossing_curve;
pub mod outputs;
pub mod plot;
pub mod pread;
pub mod provenance;
pub mod report_plot;
pub mod runner;
pub mod seed_table;
pub mod sweep;

/// Exit statuses, as `simulate`'s.
pub mod status {
    /// The experiment itself failed: usage, a missing program or model, an unwritable
    /// output, a run that failed.
    pub const FAILED: i32 = 125;
}

#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// Something the experiment needs is missing or unusable.
    #[error("{0}")]
    Setup(String),
    /// A simulation did not end with its program's status 0.
    #[error("{run}: status {status}: {message}")]
    Run {
        run: String,
        status: i32,
        message: String,
    },
    /// An output could not be written.
    #[error("{path}: cannot write: {source}")]
    Output {
        path: String,
        source: std::io::Error,
    },
}

impl Error {
    /// `simulate`'s own status for a program it could not run (126, 127), else 125.
    pub fn exit_status(&self) -> i32 {
        match self {
            Error::Run { status, .. } if matches!(status, 126 | 127) => *status,
            _ => status::FAILED,
        }
    }
}

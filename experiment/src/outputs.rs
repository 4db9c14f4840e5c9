//! An experiment's files, written all or none: each goes to a hidden partial file first,
//! and only when every one is written are they renamed into place. A failed experiment
//! leaves no new output, and an old one as it was.

use std::path::{Path, PathBuf};

use crate::Error;

/// The files of one experiment, named before any run so that an unwritable place fails
/// before the work starts.
#[derive(Debug)]
pub struct Outputs {
    dir: PathBuf,
    stem: String,
}

impl Outputs {
    /// `dir/stem.*`; checks now that `dir` can be written.
    pub fn new(dir: &Path, stem: &str) -> Result<Self, Error> {
        let probe = dir.join(format!(".{stem}.probe.{}", std::process::id()));
        std::fs::write(&probe, "").map_err(|source| Error::Output {
            path: dir.display().to_string(),
            source,
        })?;
        let _ = std::fs::remove_file(&probe);
        Ok(Outputs {
            dir: dir.to_path_buf(),
            stem: stem.to_string(),
        })
    }

    pub fn path(&self, extension: &str) -> PathBuf {
        self.dir.join(format!("{}.{extension}", self.stem))
    }

    /// Writes every `(extension, contents)`, or none of them.
    pub fn write(&self, files: &[(&str, &str)]) -> Result<(), Error> {
        let partial = |extension: &str| {
            self.dir.join(format!(
                ".{}.{extension}.partial.{}",
                self.stem,
                std::process::id()
            ))
        };
        let written = files.iter().try_for_each(|(extension, contents)| {
            std::fs::write(partial(extension), contents).map_err(|source| Error::Output {
                path: self.path(extension).display().to_string(),
                source,
            })
        });
        // Every place checked before any file is moved into one: a rename that would fail
        // (onto a directory) must not leave the files before it new and those after it old.
        let checked = written.and_then(|()| {
            files.iter().try_for_each(|(extension, _)| {
                let path = self.path(extension);
                if path.is_dir() {
                    let source = std::io::Error::from(std::io::ErrorKind::IsADirectory);
                    return Err(Error::Output {
                        path: path.display().to_string(),
                        source,
                    });
                }
                Ok(())
            })
        });
        let placed = checked.and_then(|()| {
            files.iter().try_for_each(|(extension, _)| {
                std::fs::rename(partial(extension), self.path(extension)).map_err(|source| {
                    Error::Output {
                        path: self.path(extension).display().to_string(),
                        source,
                    }
                })
            })
        });
        if placed.is_err() {
            for (extension, _) in files {
                let _ = std::fs::remove_file(partial(extension));
            }
        }
        placed
    }
}

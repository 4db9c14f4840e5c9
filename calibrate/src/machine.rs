//! The machine a calibration ran on: CPU, kernel, date, and what shapes syscall costs.

use std::path::Path;
use std::time::{SystemTime, UNIX_EPOCH};

use nix::sys::statfs::{self, FsType};
use serde::Serialize;

use crate::pin::Pin;
use crate::CalibrateError;

const CPUINFO: &str = "/proc/cpuinfo";
/// What `uname -r` prints.
const OSRELEASE: &str = "/proc/sys/kernel/osrelease";
const MELTDOWN: &str = "/sys/devices/system/cpu/vulnerabilities/meltdown";

/// The machine a calibration ran on.
#[derive(Clone, Debug, Serialize)]
pub struct Machine {
    /// /proc/cpuinfo "model name" of the CPU the probes ran on.
    pub model_name: String,
    /// /proc/cpuinfo "vendor_id" (GenuineIntel, AuthenticAMD, ...).
    pub vendor_id: String,
    /// /proc/cpuinfo "cpu family" and "model": which core this is.
    pub family: u32,
    pub model: u32,
    /// The CPU the probes ran on.
    pub cpu: usize,
    /// Why the probes could not be held on `cpu`, when they could not (then threads and
    /// children may run on other CPUs, and the switch probes do not measure switches).
    pub unpinned: Option<String>,
    /// `uname -r`.
    pub kernel_release: String,
    /// The day of the run, UTC, YYYY-MM-DD.
    pub date: String,
    /// The kernel isolates page tables (KPTI), which makes every syscall dearer;
    /// `None` when the kernel does not say (no vulnerabilities/meltdown file).
    pub pti: Option<bool>,
    /// /proc/cpuinfo flags "hypervisor": a virtual machine.
    pub hypervisor: bool,
    /// /proc/cpuinfo flags "constant_tsc" and "nonstop_tsc": the TSC ticks at one rate
    /// whatever the core's clock, so ticks are time, not core cycles.
    pub invariant_tsc: bool,
    /// The file system of the temp dir, where the file probes' file lives.
    pub temp_fs: String,
}

impl Machine {
    /// Reads the machine as the pinned thread sees it; `temp_dir` holds the probes' files.
    pub(crate) fn read(pin: &Pin, temp_dir: &Path) -> Result<Machine, CalibrateError> {
        let cpuinfo =
            std::fs::read_to_string(CPUINFO).map_err(|error| machine_file(CPUINFO, error))?;
        let block = cpu_block(&cpuinfo, pin.cpu);
        let field = |name: &str| {
            cpu_field(block, name)
                .ok_or_else(|| machine_file(CPUINFO, format!("no \"{name}\" for CPU {}", pin.cpu)))
        };
        let flags: Vec<&str> = field("flags")?.split_whitespace().collect();
        let temp_fs = statfs::statfs(temp_dir)
            .map(|stat| fs_name(stat.filesystem_type()))
            .map_err(|errno| CalibrateError::TempDir {
                dir: temp_dir.to_path_buf(),
                source: errno.into(),
            })?;
        Ok(Machine {
            model_name: field("model name")?.to_string(),
            vendor_id: field("vendor_id")?.to_string(),
            family: number(field("cpu family")?)?,
            model: number(field("model")?)?,
            cpu: pin.cpu,
            unpinned: pin.refused.clone(),
            kernel_release: std::fs::read_to_string(OSRELEASE)
                .map_err(|error| machine_file(OSRELEASE, error))?
                .trim()
                .to_string(),
            date: today_utc(),
            pti: std::fs::read_to_string(MELTDOWN)
                .ok()
                .map(|line| line.contains("PTI")),
            hypervisor: flags.contains(&"hypervisor"),
            invariant_tsc: flags.contains(&"constant_tsc") && flags.contains(&"nonstop_tsc"),
            temp_fs,
        })
    }
}

/// The "model name" of this machine's first CPU: what a saved calibration is checked
/// against before it is used.
pub fn cpu_model_name() -> Result<String, CalibrateError> {
    let cpuinfo = std::fs::read_to_string(CPUINFO).map_err(|error| machine_file(CPUINFO, error))?;
    cpu_field(cpu_block(&cpuinfo, 0), "model name")
        .map(str::to_string)
        .ok_or_else(|| machine_file(CPUINFO, "no \"model name\""))
}

/// A decimal /proc/cpuinfo number.
fn number(text: &str) -> Result<u32, CalibrateError> {
    text.parse()
        .map_err(|_| machine_file(CPUINFO, format!("\"{text}\" is not a number")))
}

fn machine_file(path: &str, problem: impl ToString) -> CalibrateError {
    CalibrateError::MachineFile {
        path: path.into(),
        problem: problem.to_string(),
    }
}

/// The /proc/cpuinfo block of processor `cpu`; the first block when none is numbered so
/// (a container's view may renumber them).
fn cpu_block(cpuinfo: &str, cpu: usize) -> &str {
    let mut blocks = cpuinfo.split("\n\n");
    let first = blocks.clone().next().unwrap_or("");
    blocks
        .find(|block| cpu_field(block, "processor").and_then(|n| n.parse().ok()) == Some(cpu))
        .unwrap_or(first)
}

/// The value of `name : value` in a /proc/cpuinfo block.
fn cpu_field<'a>(block: &'a str, name: &str) -> Option<&'a str> {
    block.lines().find_map(|line| {
        let (key, value) = line.split_once(':')?;
        (key.trim() == name).then(|| value.trim())
    })
}

/// File system names by statfs magic; others are shown as their magic number.
const FILE_SYSTEMS: &[(FsType, &str)] = &[
    (statfs::TMPFS_MAGIC, "tmpfs"),
    (statfs::EXT4_SUPER_MAGIC, "ext2/3/4"),
    (statfs::BTRFS_SUPER_MAGIC, "btrfs"),
    (statfs::XFS_SUPER_MAGIC, "xfs"),
    (statfs::OVERLAYFS_SUPER_MAGIC, "overlayfs"),
    (statfs::F2FS_SUPER_MAGIC, "f2fs"),
    (statfs::FUSE_SUPER_MAGIC, "fuse"),
    (statfs::NFS_SUPER_MAGIC, "nfs"),
];

fn fs_name(fs: FsType) -> String {
    FILE_SYSTEMS
        .iter()
        .find(|(magic, _)| *magic == fs)
        .map_or_else(|| format!("{:#x}", fs.0), |(_, name)| name.to_string())
}

/// Today in UTC as YYYY-MM-DD.
fn today_utc() -> String {
    let seconds = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |since| since.as_secs());
    civil_date(seconds / 86_400)
}

/// The proleptic Gregorian date `days` after 1970-01-01 (Howard Hinnant's civil_from_days).
fn civil_date(days: u64) -> String {
    let shifted = days + 719_468; // days since 0000-03-01
    let era = shifted / 146_097;
    let day_of_era = shifted % 146_097;
    let year_of_era =
        (day_of_era - day_of_era / 1_460 + day_of_era / 36_524 - day_of_era / 146_096) / 365;
    let day_of_year = day_of_era - (365 * year_of_era + year_of_era / 4 - year_of_era / 100);
    let month_index = (5 * day_of_year + 2) / 153; // 0 = March
    let day = day_of_year - (153 * month_index + 2) / 5 + 1;
    let month = if month_index < 10 {
        month_index + 3
    } else {
        month_index - 9
    };
    let year = era * 400 + year_of_era + u64::from(month <= 2);
    format!("{year:04}-{month:02}-{day:02}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn civil_dates_across_leap_days_and_centuries() {
        // Checked with `date -u -d @$((DAYS * 86400)) +%F`.
        for (days, date) in [
            (0, "1970-01-01"),
            (59, "1970-03-01"),
            (11_016, "2000-02-29"),
            (11_017, "2000-03-01"),
            (19_782, "2024-02-29"),
            (20_454, "2026-01-01"),
            (47_540, "2100-02-28"),
            (47_541, "2100-03-01"),
        ] {
            assert_eq!(civil_date(days), date, "{days} days");
        }
    }

    const CPUINFO_TWO: &str = "processor\t: 0\nvendor_id\t: GenuineIntel\nmodel name\t: Xeon A\n\n\
                               processor\t: 1\nvendor_id\t: GenuineIntel\nmodel name\t: Xeon B\n";

    #[test]
    fn the_pinned_cpus_block_else_the_first() {
        assert_eq!(
            cpu_field(cpu_block(CPUINFO_TWO, 1), "model name"),
            Some("Xeon B")
        );
        assert_eq!(
            cpu_field(cpu_block(CPUINFO_TWO, 0), "model name"),
            Some("Xeon A")
        );
        assert_eq!(
            cpu_field(cpu_block(CPUINFO_TWO, 7), "model name"),
            Some("Xeon A")
        );
        assert_eq!(cpu_field(cpu_block(CPUINFO_TWO, 1), "cpu MHz"), None);
    }
}

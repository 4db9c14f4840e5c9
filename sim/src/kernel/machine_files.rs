//! The files of /proc and /sys that describe the machine, for the simulated one: the same
//! identity as `uname` and `sysinfo`, the CPU model's `cpuinfo`, one CPU online, no
//! SELinux. Any other
//! path under /proc or /sys would describe the host (its name, kernel, CPUs, memory, other
//! processes) and stops the run as unsupported rather than leak it.
//!
//! Each file is made on first use, read-only, in a private directory of the run's, and the
//! guest's path becomes its path there: `open`, `stat`, `readlink` and `cp -a` see a
//! regular file, as procfs shows one.

use std::collections::HashSet;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use nix::errno::Errno;
use translator::cpu::CpuModel;

use super::syscalls::proc::UTSNAME;
use crate::machine::cpuid;
use crate::machine::physmem::PHYS_SIZE;

/// A file's path and how to write its contents for the CPU model.
type MachineFile = (&'static str, fn(&CpuModel) -> String);

/// The machine's files, as Linux 6.1 writes them.
const FILES: &[MachineFile] = &[
    ("/proc/sys/kernel/ostype", |_| line(UTSNAME[0])),
    ("/proc/sys/kernel/hostname", |_| line(UTSNAME[1])),
    ("/proc/sys/kernel/osrelease", |_| line(UTSNAME[2])),
    ("/proc/sys/kernel/version", |_| line(UTSNAME[3])),
    ("/proc/sys/kernel/domainname", |_| line(UTSNAME[5])),
    ("/proc/version", |_| {
        format!(
            "{} version {} (ringsim) {}\n",
            UTSNAME[0], UTSNAME[2], UTSNAME[3]
        )
    }),
    ("/proc/cpuinfo", cpuinfo),
    ("/proc/filesystems", |_| FILESYSTEMS.into()),
    ("/proc/meminfo", |_| meminfo()),
    // Linux's default: heuristic overcommit (Redis reads it at start).
    ("/proc/sys/vm/overcommit_memory", |_| line("0")),
    // Linux's default `somaxconn` (servers read it to size their listen backlog).
    ("/proc/sys/net/core/somaxconn", |_| line("4096")),
    // Debian's kernel default (Redis reads it at start).
    ("/sys/kernel/mm/transparent_hugepage/enabled", |_| {
        line("always [madvise] never")
    }),
    // The virtual clock is read as the TSC would be (Redis reads it at start).
    (
        "/sys/devices/system/clocksource/clocksource0/current_clocksource",
        |_| line("tsc"),
    ),
    ("/sys/devices/system/cpu/online", |_| line("0")),
    ("/sys/devices/system/cpu/possible", |_| line("0")),
    ("/sys/devices/system/cpu/present", |_| line("0")),
];

/// The file systems the simulated machine's kernel knows, as Debian 12's 6.1 kernel lists
/// them at boot (no selinuxfs: libselinux looks for it here).
const FILESYSTEMS: &str = "nodev\tsysfs\nnodev\ttmpfs\nnodev\tbdev\nnodev\tproc\n\
nodev\tcgroup\nnodev\tcgroup2\nnodev\tcpuset\nnodev\tdevtmpfs\nnodev\tdebugfs\n\
nodev\ttracefs\nnodev\tsecurityfs\nnodev\tsockfs\nnodev\tbpf\nnodev\tpipefs\n\
nodev\tramfs\nnodev\thugetlbfs\nnodev\tdevpts\n\text3\n\text2\n\text4\n\
nodev\tautofs\nnodev\tmqueue\nnodev\tpstore\n";

/// What the simulated machine does not have, and its programs look for: these paths and
/// everything under them are ENOENT, as on a Linux machine without the feature.
const ABSENT: &[&str] = &[
    // No SELinux: libselinux (ls, cp, find, …) probes here.
    "/sys/fs/selinux",
];

fn line(text: &str) -> String {
    format!("{text}\n")
}

fn cpuinfo(cpu: &CpuModel) -> String {
    let signature = cpu.signature;
    let family = ((signature >> 8) & 0xf) + ((signature >> 20) & 0xff);
    let model = ((signature >> 4) & 0xf) | ((signature >> 12) & 0xf0);
    let brand = String::from_utf8_lossy(cpu.brand);
    format!(
        "processor\t: 0\nvendor_id\t: {}\ncpu family\t: {family}\nmodel\t\t: {model}\n\
         model name\t: {}\nstepping\t: {}\ncpu cores\t: 1\nflags\t\t: {}\n\n",
        String::from_utf8_lossy(cpu.id),
        brand.trim_end_matches('\0'),
        signature & 0xf,
        cpuid::FLAGS,
    )
}

/// As `sysinfo` reports the machine: the simulated physical memory, half of it free.
fn meminfo() -> String {
    let total = PHYS_SIZE >> 10;
    format!(
        "MemTotal:       {total} kB\nMemFree:        {} kB\nMemAvailable:   {} kB\n",
        total / 2,
        total / 2
    )
}

/// The machine's files a run has opened, in a directory removed with it.
#[derive(Default)]
pub struct MachineFiles {
    dir: Option<tempfile::TempDir>,
    made: HashSet<&'static str>,
    /// Files made afresh at each open (`snapshot`), so far.
    snapshots: u64,
}

impl MachineFiles {
    /// The run's directory for machine files, made at first use.
    fn dir(&mut self) -> Result<&Path, Errno> {
        if self.dir.is_none() {
            let dir = tempfile::Builder::new()
                .prefix("ringsim-machine-")
                .tempdir();
            self.dir = Some(dir.map_err(io)?);
        }
        Ok(self.dir.as_ref().expect("made above").path())
    }

    /// A read-only file holding `contents` as of now, for a file Linux writes at each read
    /// (`/proc/self/maps`): its contents when the guest opened it.
    pub fn snapshot(&mut self, name: &str, contents: &str) -> Result<PathBuf, Errno> {
        self.snapshots += 1;
        let file = format!("{name}-{}", self.snapshots);
        let host = self.dir()?.join(file);
        write_read_only(&host, contents)?;
        Ok(host)
    }

    /// The host path for the guest's `path`, if it is one of the machine's files.
    pub fn lookup(&mut self, path: &[u8], cpu: &CpuModel) -> Result<Option<PathBuf>, Errno> {
        let absent = ABSENT.iter().any(|name| {
            path.strip_prefix(name.as_bytes())
                .is_some_and(|rest| rest.first().is_none_or(|&b| b == b'/'))
        });
        if absent {
            return Err(Errno::ENOENT);
        }
        let Some(&(name, contents)) = FILES.iter().find(|(name, _)| name.as_bytes() == path) else {
            return Ok(None);
        };
        let host: PathBuf = self.dir()?.join(name.replace('/', "%"));
        if self.made.insert(name) {
            write_read_only(&host, &contents(cpu))?;
        }
        Ok(Some(host))
    }
}

fn io(error: std::io::Error) -> Errno {
    Errno::from_raw(error.raw_os_error().unwrap_or(libc::EIO))
}

fn write_read_only(host: &Path, contents: &str) -> Result<(), Errno> {
    std::fs::write(host, contents).map_err(io)?;
    let read_only = std::fs::Permissions::from_mode(0o444);
    std::fs::set_permissions(host, read_only).map_err(io)
}

#[cfg(test)]
mod tests {
    use super::*;
    use translator::cpu::Vendor;

    #[test]
    fn the_machine_files_describe_the_simulated_machine() {
        let mut files = MachineFiles::default();
        let amd = Vendor::Amd.model();
        let Ok(Some(host)) = files.lookup(b"/proc/cpuinfo", amd) else {
            panic!("cpuinfo is a machine file");
        };
        let text = std::fs::read_to_string(host).unwrap();
        assert!(text.contains("vendor_id\t: AuthenticAMD\ncpu family\t: 23\nmodel\t\t: 49\n"));
        assert!(text.contains("model name\t: ringsim virtual CPU (AMD, Zen 2 class)\n"));
        let Ok(Some(online)) = files.lookup(b"/sys/devices/system/cpu/online", amd) else {
            panic!("online is a machine file");
        };
        assert_eq!(std::fs::read_to_string(online).unwrap(), "0\n");
        assert_eq!(files.lookup(b"/proc/stat", amd), Ok(None));
        assert_eq!(
            files.lookup(b"/sys/fs/selinux/enforce", amd),
            Err(Errno::ENOENT)
        );
    }
}

//! The ELF loader: static x86-64 executables (ET_EXEC, and static-PIE ET_DYN without
//! PT_INTERP), placed as Linux's `load_elf_binary` places them with ASLR off.

pub mod stack;

use std::path::{Path, PathBuf};

use goblin::elf::program_header::{PF_R, PF_W, PF_X, PT_GNU_STACK, PT_INTERP, PT_LOAD};
use goblin::elf::{header, Elf, ProgramHeader};

use crate::machine::cpuid::LEAF1_EDX;
use crate::machine::physmem::PAGE_SIZE;
use crate::memory::{page_down, page_up, AddressSpace, Prot, STACK_SIZE, STACK_TOP};
use stack::{AuxValue, StackContents};

/// Where Linux puts the break of a static PIE (`ELF_ET_DYN_BASE` with ASLR off).
const ELF_ET_DYN_BASE: u64 = 0x5555_5555_4000;

/// Why a file cannot be run. Each message is the one-line error the user sees.
#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    #[error("{0}: no such file")]
    NotFound(PathBuf),
    #[error("{path}: cannot read: {source}")]
    Unreadable {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{0}: not an ELF file")]
    NotElf(PathBuf),
    #[error("{0}: truncated ELF file")]
    Truncated(PathBuf),
    #[error("{path}: malformed ELF file: {reason}")]
    Malformed { path: PathBuf, reason: String },
    #[error("{0}: 32-bit ELF is not supported (x86-64 only)")]
    Elf32(PathBuf),
    #[error("{path}: ELF for machine {machine}, not x86-64")]
    WrongMachine { path: PathBuf, machine: String },
    #[error("{path}: ELF type {kind} is not an executable")]
    NotExecutable { path: PathBuf, kind: String },
    #[error("{path}: dynamically linked (interpreter {interp}); only static executables are supported for now")]
    Dynamic { path: PathBuf, interp: String },
    #[error("{0}: the image does not fit in the guest address space")]
    NoSpace(PathBuf),
}

/// What the process starts with, besides the file.
pub struct ExecArgs {
    pub argv: Vec<Vec<u8>>,
    pub envp: Vec<Vec<u8>>,
    /// The name execve was given: AT_EXECFN.
    pub execfn: Vec<u8>,
    /// AT_RANDOM's bytes.
    pub random: [u8; 16],
    /// AT_UID, AT_EUID, AT_GID, AT_EGID: the process's real and effective ids.
    pub ids: [u32; 4],
}

/// A loaded program, ready to enter.
#[derive(Debug)]
pub struct Loaded {
    pub entry: u64,
    pub stack_pointer: u64,
}

/// Reads the file at `path`, mapping I/O failures to load errors.
pub fn read_program(path: &Path) -> Result<Vec<u8>, LoadError> {
    std::fs::read(path).map_err(|source| match source.kind() {
        std::io::ErrorKind::NotFound => LoadError::NotFound(path.to_path_buf()),
        _ => LoadError::Unreadable {
            path: path.to_path_buf(),
            source,
        },
    })
}

/// Checks the identification bytes before goblin sees the file, so that the common
/// refusals get their own message.
fn check_ident(path: &Path, bytes: &[u8]) -> Result<(), LoadError> {
    if bytes.len() < 4 || &bytes[..4] != header::ELFMAG {
        return Err(LoadError::NotElf(path.to_path_buf()));
    }
    if bytes.len() < header::header64::SIZEOF_EHDR {
        return Err(LoadError::Truncated(path.to_path_buf()));
    }
    if bytes[header::EI_CLASS] == header::ELFCLASS32 {
        return Err(LoadError::Elf32(path.to_path_buf()));
    }
    let machine = u16::from_le_bytes([bytes[18], bytes[19]]);
    if machine != header::EM_X86_64 {
        let machine = header::machine_to_str(machine).to_string();
        return Err(LoadError::WrongMachine {
            path: path.to_path_buf(),
            machine,
        });
    }
    Ok(())
}

/// A file cut short loses its program or section header table first: say "truncated"
/// rather than pass on goblin's parse error.
fn check_tables_fit(path: &Path, bytes: &[u8]) -> Result<(), LoadError> {
    let header = header::header64::Header::parse(bytes)
        .map_err(|_| LoadError::Truncated(path.to_path_buf()))?;
    let tables = [
        (
            header.e_phoff,
            header.e_phnum as u64 * header.e_phentsize as u64,
        ),
        (
            header.e_shoff,
            header.e_shnum as u64 * header.e_shentsize as u64,
        ),
    ];
    for (offset, size) in tables {
        if offset
            .checked_add(size)
            .is_none_or(|end| end > bytes.len() as u64)
        {
            return Err(LoadError::Truncated(path.to_path_buf()));
        }
    }
    Ok(())
}

fn segment_prot(flags: u32) -> Prot {
    let mut prot = 0;
    for (flag, bit) in [(PF_R, Prot::READ), (PF_W, Prot::WRITE), (PF_X, Prot::EXEC)] {
        if flags & flag != 0 {
            prot |= bit;
        }
    }
    Prot(prot)
}

/// Loads the program into `space` and builds its stack.
pub fn load(
    space: &mut AddressSpace,
    path: &Path,
    bytes: &[u8],
    args: &ExecArgs,
) -> Result<Loaded, LoadError> {
    check_ident(path, bytes)?;
    check_tables_fit(path, bytes)?;
    let malformed = |reason: String| LoadError::Malformed {
        path: path.to_path_buf(),
        reason,
    };
    let elf = Elf::parse(bytes).map_err(|e| match e {
        goblin::error::Error::Scroll(_) => LoadError::Truncated(path.to_path_buf()),
        other => malformed(other.to_string()),
    })?;
    if let Some(interp) = elf.program_headers.iter().find(|ph| ph.p_type == PT_INTERP) {
        let interp = bytes
            .get(interp.file_range())
            .map(|b| {
                String::from_utf8_lossy(b)
                    .trim_end_matches('\0')
                    .to_string()
            })
            .unwrap_or_default();
        return Err(LoadError::Dynamic {
            path: path.to_path_buf(),
            interp,
        });
    }
    let loads: Vec<_> = elf
        .program_headers
        .iter()
        .filter(|ph| ph.p_type == PT_LOAD)
        .collect();
    if loads.is_empty() {
        return Err(malformed("no PT_LOAD segment".into()));
    }
    for ph in &loads {
        if ph
            .p_offset
            .checked_add(ph.p_filesz)
            .is_none_or(|end| end > bytes.len() as u64)
        {
            return Err(LoadError::Truncated(path.to_path_buf()));
        }
        if ph.p_filesz > ph.p_memsz {
            return Err(malformed(
                "a segment's file size exceeds its memory size".into(),
            ));
        }
    }
    let image_start = loads
        .iter()
        .map(|ph| page_down(ph.p_vaddr))
        .min()
        .expect("non-empty");
    let image_end = loads
        .iter()
        .map(|ph| ph.p_vaddr.checked_add(ph.p_memsz).and_then(page_up))
        .max()
        .flatten()
        .ok_or_else(|| malformed("segment addresses overflow".into()))?;

    // A static PIE goes where Linux's top-down mmap puts it; its break goes to ELF_ET_DYN_BASE.
    let (bias, brk) = match elf.header.e_type {
        header::ET_EXEC => (0, image_end),
        header::ET_DYN => {
            let base = space
                .find_free(image_end - image_start)
                .ok_or_else(|| LoadError::NoSpace(path.to_path_buf()))?;
            // The bias wraps when the image is linked above where it lands.
            (base.wrapping_sub(image_start), ELF_ET_DYN_BASE)
        }
        other => {
            let kind = header::et_to_str(other).to_string();
            return Err(LoadError::NotExecutable {
                path: path.to_path_buf(),
                kind,
            });
        }
    };

    let no_space = || LoadError::NoSpace(path.to_path_buf());
    for ph in &loads {
        let vaddr = ph.p_vaddr.wrapping_add(bias);
        let start = page_down(vaddr);
        let end = vaddr
            .checked_add(ph.p_memsz)
            .and_then(page_up)
            .ok_or_else(|| malformed("a segment ends past the address space".into()))?;
        let prot = segment_prot(ph.p_flags);
        let mut page = start;
        while page < end {
            if let Some((_, vma)) = space.vma_at(page) {
                // A page shared with another segment gets the union of their rights.
                space
                    .protect(page, PAGE_SIZE, Prot(prot.0 | vma.prot.0))
                    .map_err(|_| no_space())?;
                page += PAGE_SIZE;
            } else {
                let run_end = space.next_vma_start(page).map_or(end, |next| next.min(end));
                space
                    .map_fixed(page, run_end - page, prot)
                    .map_err(|_| no_space())?;
                page = run_end;
            }
        }
        if prot.accessible() {
            let (at, shown) = shown_file_bytes(ph, vaddr, bytes);
            space.fill(at, shown);
        }
    }
    space.init_brk(brk);

    let exec_stack = elf
        .program_headers
        .iter()
        .find(|ph| ph.p_type == PT_GNU_STACK)
        .is_none_or(|ph| ph.p_flags & PF_X != 0);
    let stack_prot = Prot(Prot::READ | Prot::WRITE | if exec_stack { Prot::EXEC } else { 0 });
    space
        .map_fixed(STACK_TOP - STACK_SIZE, STACK_SIZE, stack_prot)
        .map_err(|_| no_space())?;

    let phdr = program_header_address(&elf, bias);
    let entry = elf.header.e_entry.wrapping_add(bias);
    let auxv = auxiliary_vector(&elf, phdr, entry, args.ids);
    let contents = StackContents {
        argv: &args.argv,
        envp: &args.envp,
        execfn: &args.execfn,
        random: args.random,
        auxv: &auxv,
    };
    let image = stack::build(STACK_TOP, &contents);
    if image.bytes.len() as u64 > STACK_SIZE / 4 {
        return Err(malformed(
            "arguments and environment exceed a quarter of the stack".into(),
        ));
    }
    space.fill(image.sp, &image.bytes);
    // The image starts afresh, on new page tables and with no translations: the CPU has
    // nothing of it to catch up with (and at an execve, still runs on the old tables).
    space.take_sync();
    Ok(Loaded {
        entry,
        stack_pointer: image.sp,
    })
}

/// The file's bytes that Linux shows in a segment's pages, and where they start. It maps whole
/// pages of the file (fs/binfmt_elf.c `elf_map`): the first page begins with the file's bytes
/// before `p_offset` (an `ld -N` program's ELF header), and the last page goes on with those
/// after the segment unless a bss follows (`padzero`); past the end of the file, zeros. A
/// segment whose offset and address disagree within a page is shown alone.
fn shown_file_bytes<'a>(ph: &ProgramHeader, vaddr: u64, bytes: &'a [u8]) -> (u64, &'a [u8]) {
    let lead = vaddr % PAGE_SIZE;
    if ph.p_filesz == 0 || ph.p_offset % PAGE_SIZE != lead {
        return (vaddr, &bytes[ph.file_range()]);
    }
    // The caller checked that the segment lies within the file.
    let segment_end = ph.p_offset + ph.p_filesz;
    let end = if ph.p_memsz > ph.p_filesz {
        segment_end
    } else {
        page_up(segment_end).map_or(bytes.len() as u64, |end| end.min(bytes.len() as u64))
    };
    (
        vaddr - lead,
        &bytes[(ph.p_offset - lead) as usize..end as usize],
    )
}

/// AT_PHDR as Linux computes it (fs/binfmt_elf.c `load_elf_binary`, since 5.18): where the
/// last PT_LOAD whose file range holds `e_phoff` maps it, plus the load bias. When no PT_LOAD
/// holds the program headers (`ld -N` output), that is the load bias alone; PT_PHDR is not read.
fn program_header_address(elf: &Elf, bias: u64) -> u64 {
    let phoff = elf.header.e_phoff;
    elf.program_headers
        .iter()
        .rev()
        .find(|ph| ph.p_type == PT_LOAD && ph.file_range().contains(&(phoff as usize)))
        .map_or(0, |ph| {
            phoff.wrapping_sub(ph.p_offset).wrapping_add(ph.p_vaddr)
        })
        .wrapping_add(bias)
}

/// The auxiliary vector in Linux's order (fs/binfmt_elf.c, `create_elf_tables`).
/// No AT_SYSINFO_EHDR: there is no vDSO, so time calls are real syscalls.
fn auxiliary_vector(elf: &Elf, phdr: u64, entry: u64, ids: [u32; 4]) -> Vec<(u64, AuxValue)> {
    use AuxValue::{ExecFn, Number, Platform, Random};
    let [uid, euid, gid, egid] = ids.map(u64::from);
    vec![
        (libc::AT_HWCAP, Number(LEAF1_EDX as u64)),
        (libc::AT_PAGESZ, Number(PAGE_SIZE)),
        (libc::AT_CLKTCK, Number(100)),
        (libc::AT_PHDR, Number(phdr)),
        (libc::AT_PHENT, Number(elf.header.e_phentsize as u64)),
        (libc::AT_PHNUM, Number(elf.header.e_phnum as u64)),
        (libc::AT_BASE, Number(0)),
        (libc::AT_FLAGS, Number(0)),
        (libc::AT_ENTRY, Number(entry)),
        (libc::AT_UID, Number(uid)),
        (libc::AT_EUID, Number(euid)),
        (libc::AT_GID, Number(gid)),
        (libc::AT_EGID, Number(egid)),
        (libc::AT_SECURE, Number(0)),
        (libc::AT_RANDOM, Random),
        (libc::AT_HWCAP2, Number(0)),
        (libc::AT_EXECFN, ExecFn),
        (libc::AT_PLATFORM, Platform),
    ]
}

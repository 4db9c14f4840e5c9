//! The ELF loader: x86-64 executables (ET_EXEC, static-PIE ET_DYN, and dynamically linked
//! ones with their interpreter, PT_INTERP), placed as Linux's `load_elf_binary` places them
//! with ASLR off.

pub mod stack;

use std::path::{Path, PathBuf};

use goblin::elf::program_header::{PF_R, PF_W, PF_X, PT_GNU_STACK, PT_INTERP, PT_LOAD};
use goblin::elf::{header, Elf, ProgramHeader};

use crate::machine::cpuid::LEAF1_EDX;
use crate::machine::physmem::PAGE_SIZE;
use crate::memory::{page_down, page_up, AddressSpace, MappedFile, Prot, STACK_SIZE, STACK_TOP};
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
    #[error("{path}: its interpreter {interp} cannot be loaded: {source}")]
    Interpreter {
        path: PathBuf,
        interp: String,
        source: Box<LoadError>,
    },
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

/// A parsed ELF file and its bytes.
struct Image<'a> {
    path: &'a Path,
    bytes: &'a [u8],
    elf: Elf<'a>,
}

impl<'a> Image<'a> {
    fn parse(path: &'a Path, bytes: &'a [u8]) -> Result<Self, LoadError> {
        check_ident(path, bytes)?;
        check_tables_fit(path, bytes)?;
        let elf = Elf::parse(bytes).map_err(|e| match e {
            goblin::error::Error::Scroll(_) => LoadError::Truncated(path.to_path_buf()),
            other => malformed(path, other.to_string()),
        })?;
        Ok(Self { path, bytes, elf })
    }

    /// The interpreter it names (PT_INTERP), if any.
    /// The interpreter it names (PT_INTERP), if any, a C string: refused as Linux refuses it
    /// (ENOEXEC) when its segment lies outside the file, is shorter than 2 bytes or longer
    /// than PATH_MAX, or does not end in a NUL.
    fn interpreter(&self) -> Result<Option<String>, LoadError> {
        let Some(header) = self
            .elf
            .program_headers
            .iter()
            .find(|ph| ph.p_type == PT_INTERP)
        else {
            return Ok(None);
        };
        let name = self
            .bytes
            .get(header.file_range())
            .filter(|name| (2..=libc::PATH_MAX as usize).contains(&name.len()))
            .filter(|name| name.ends_with(b"\0"))
            .ok_or_else(|| malformed(self.path, "a bad interpreter name (PT_INTERP)".into()))?;
        // A C string: up to its first NUL.
        let end = name.iter().position(|&b| b == 0).unwrap_or(name.len());
        Ok(Some(String::from_utf8_lossy(&name[..end]).into_owned()))
    }
}

fn malformed(path: &Path, reason: String) -> LoadError {
    LoadError::Malformed {
        path: path.to_path_buf(),
        reason,
    }
}

/// Where an image goes.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Placement {
    /// The program Linux runs: ET_EXEC where it is linked; ET_DYN at `ELF_ET_DYN_BASE` when
    /// it has an interpreter, else (a static PIE) where the top-down mmap puts it.
    Program { interpreted: bool },
    /// The interpreter: where the top-down mmap puts it (`load_elf_interp`).
    Interpreter,
}

/// An image mapped into the address space: its load bias and the page after its end.
struct Mapped {
    bias: u64,
    end: u64,
}

/// Maps the PT_LOAD segments of `image` as Linux's `elf_map` does.
fn map_image(
    space: &mut AddressSpace,
    image: &Image,
    placement: Placement,
) -> Result<Mapped, LoadError> {
    let (path, bytes, elf) = (image.path, image.bytes, &image.elf);
    let loads: Vec<_> = elf
        .program_headers
        .iter()
        .filter(|ph| ph.p_type == PT_LOAD)
        .collect();
    if loads.is_empty() {
        return Err(malformed(path, "no PT_LOAD segment".into()));
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
                path,
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
        .ok_or_else(|| malformed(path, "segment addresses overflow".into()))?;

    let bias = match (elf.header.e_type, placement) {
        (header::ET_EXEC, Placement::Program { .. }) => 0,
        (header::ET_DYN, Placement::Program { interpreted: true }) => {
            ELF_ET_DYN_BASE.wrapping_sub(image_start)
        }
        (header::ET_DYN, _) => {
            let base = space
                .find_free(image_end - image_start)
                .ok_or_else(|| LoadError::NoSpace(path.to_path_buf()))?;
            // The bias wraps when the image is linked above where it lands.
            base.wrapping_sub(image_start)
        }
        (other, _) => {
            let kind = header::et_to_str(other).to_string();
            return Err(LoadError::NotExecutable {
                path: path.to_path_buf(),
                kind,
            });
        }
    };

    let no_space = || LoadError::NoSpace(path.to_path_buf());
    let file = MappedFile::at(std::fs::canonicalize(path).unwrap_or_else(|_| path.into()));
    for ph in &loads {
        let vaddr = ph.p_vaddr.wrapping_add(bias);
        let start = page_down(vaddr);
        let end = vaddr
            .checked_add(ph.p_memsz)
            .and_then(page_up)
            .ok_or_else(|| malformed(path, "a segment ends past the address space".into()))?;
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
        // The pages the file backs, as Linux's `elf_map` maps them; a bss beyond is anonymous.
        let file_end = page_up(vaddr.saturating_add(ph.p_filesz)).unwrap_or(end);
        if let (true, Some(file)) = (ph.p_filesz > 0, &file) {
            let offset = page_down(ph.p_offset);
            space.name_file(start, file_end.min(end), file.clone(), offset, false);
        }
    }
    Ok(Mapped {
        bias,
        end: image_end.wrapping_add(bias),
    })
}

/// Loads the program (and its interpreter, if it names one) into `space` and builds its
/// stack. `sysroot` is where the interpreter's absolute path is looked up (`--sysroot`).
pub fn load(
    space: &mut AddressSpace,
    path: &Path,
    bytes: &[u8],
    args: &ExecArgs,
    sysroot: Option<&Path>,
) -> Result<Loaded, LoadError> {
    let program = Image::parse(path, bytes)?;
    let interpreter_name = program.interpreter()?;
    let placement = Placement::Program {
        interpreted: interpreter_name.is_some(),
    };
    let mapped = map_image(space, &program, placement)?;
    let elf = &program.elf;
    // A static PIE's break goes to ELF_ET_DYN_BASE; any other's follows the program.
    let brk = match (elf.header.e_type, &interpreter_name) {
        (header::ET_DYN, None) => ELF_ET_DYN_BASE,
        _ => mapped.end,
    };
    let no_space = || LoadError::NoSpace(path.to_path_buf());

    let exec_stack = elf
        .program_headers
        .iter()
        .find(|ph| ph.p_type == PT_GNU_STACK)
        .is_none_or(|ph| ph.p_flags & PF_X != 0);
    let stack_prot = Prot(Prot::READ | Prot::WRITE | if exec_stack { Prot::EXEC } else { 0 });
    space
        .map_fixed(STACK_TOP - STACK_SIZE, STACK_SIZE, stack_prot)
        .map_err(|_| no_space())?;

    let phdr = program_header_address(elf, mapped.bias);
    let entry = elf.header.e_entry.wrapping_add(mapped.bias);
    let (start, interpreter_base) = match interpreter_name {
        None => (entry, 0),
        Some(name) => {
            let interpreter_path = sysroot
                .and_then(|root| crate::sysroot::resolve(root, name.as_bytes()))
                .unwrap_or_else(|| PathBuf::from(&name));
            let refused = |source: LoadError| LoadError::Interpreter {
                path: path.to_path_buf(),
                interp: name.clone(),
                source: Box::new(source),
            };
            let interpreter_bytes = read_program(&interpreter_path).map_err(refused)?;
            let interpreter =
                Image::parse(&interpreter_path, &interpreter_bytes).map_err(refused)?;
            if interpreter.interpreter().map_err(refused)?.is_some() {
                let reason = "it names an interpreter of its own".into();
                return Err(refused(malformed(&interpreter_path, reason)));
            }
            let loaded = map_image(space, &interpreter, Placement::Interpreter).map_err(refused)?;
            let start = interpreter.elf.header.e_entry.wrapping_add(loaded.bias);
            (start, loaded.bias)
        }
    };
    space.init_brk(brk);
    let auxv = auxiliary_vector(elf, phdr, entry, interpreter_base, args.ids);
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
            path,
            "arguments and environment exceed a quarter of the stack".into(),
        ));
    }
    space.fill(image.sp, &image.bytes);
    // The image starts afresh, on new page tables and with no translations: the CPU has
    // nothing of it to catch up with (and at an execve, still runs on the old tables).
    space.take_sync();
    Ok(Loaded {
        entry: start,
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
fn auxiliary_vector(
    elf: &Elf,
    phdr: u64,
    entry: u64,
    interpreter_base: u64,
    ids: [u32; 4],
) -> Vec<(u64, AuxValue)> {
    use AuxValue::{ExecFn, Number, Platform, Random};
    let [uid, euid, gid, egid] = ids.map(u64::from);
    vec![
        (libc::AT_HWCAP, Number(LEAF1_EDX as u64)),
        (libc::AT_PAGESZ, Number(PAGE_SIZE)),
        (libc::AT_CLKTCK, Number(100)),
        (libc::AT_PHDR, Number(phdr)),
        (libc::AT_PHENT, Number(elf.header.e_phentsize as u64)),
        (libc::AT_PHNUM, Number(elf.header.e_phnum as u64)),
        (libc::AT_BASE, Number(interpreter_base)),
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

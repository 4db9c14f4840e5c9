//! The static programs process creation runs, hand-assembled x86-64 ELF files written at run
//! time so that calibrating needs no compiler and no corpus: the exit program, which calls
//! exit_group, and the spawner, a minimal parent that creates processes running it (holding
//! as many pages of its own as it is asked to, for fork_per_page).
//!
//! The spawner does the timing itself: fork copies its parent's memory map, so process
//! creation timed from a big process (a simulator with Unicorn mapped) costs far more than
//! from a small one, and the essay's figure is from a small one.

use std::io::Write;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;

use iced_x86::code_asm::*;

use crate::CalibrateError;

/// Where the program is loaded: the conventional static base, above any mmap_min_addr.
const BASE: u64 = 0x40_0000;
const ELF_HEADER_SIZE: u16 = 64;
const PROGRAM_HEADER_SIZE: u16 = 56;
const CODE_OFFSET: u64 = (ELF_HEADER_SIZE + PROGRAM_HEADER_SIZE) as u64;

/// The code: `mov edi, code; mov eax, 231 (exit_group); syscall`, the exit code at byte 1.
const CODE: [u8; 12] = [
    0xbf, 0, 0, 0, 0, // mov edi, imm32
    0xb8, 0xe7, 0, 0, 0, // mov eax, 231
    0x0f, 0x05, // syscall
];

/// A static x86-64 ELF executable that exits with `exit_code`: one ELF header, one
/// read+execute PT_LOAD segment covering the whole file, then the code (132 bytes).
pub fn exit_program(exit_code: u8) -> Vec<u8> {
    let mut code = CODE;
    code[1] = exit_code;
    executable(&code)
}

/// The x86-64 syscalls the spawner makes.
const SYS_WRITE: i32 = 1;
const SYS_MMAP: i32 = 9;
const SYS_MADVISE: i32 = 28;
const SYS_FORK: i32 = 57;
const SYS_EXECVE: i32 = 59;
const SYS_WAIT4: i32 = 61;
const SYS_EXIT_GROUP: i32 = 231;

/// The spawner's pages: `PAGE` bytes each, at most `MAX_PAGES - 1` of them (so that their
/// length in bytes fits in 64 bits).
pub const PAGE: u64 = 4096;
pub const MAX_PAGES: u64 = 1 << 52;
/// The spawner's areas beyond its own: fewer than `MAX_AREAS`, well within Linux's default
/// `vm.max_map_count` (65,530).
pub const MAX_AREAS: u64 = 1 << 14;
/// The areas the spawner maps of its own, as a simulated program's are counted: its one
/// segment and its stack (the kernel's vDSO and vvar areas, which every process has, aside).
pub const SPAWNER_AREAS: u64 = 2;

/// How the spawner ends when it cannot time its loop: exit codes above any errno. Any other
/// nonzero exit code is one of its children's: the errno of that child's failed execve.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u8)]
pub enum SpawnerFailure {
    Usage = 200,
    Fork,
    Wait,
    Signalled,
    Write,
    Map,
}

impl SpawnerFailure {
    /// In order of their codes.
    pub const ALL: [SpawnerFailure; 6] = [
        SpawnerFailure::Usage,
        SpawnerFailure::Fork,
        SpawnerFailure::Wait,
        SpawnerFailure::Signalled,
        SpawnerFailure::Write,
        SpawnerFailure::Map,
    ];

    /// The failure a spawner's exit code names, if it names one.
    pub fn from_exit_code(code: i32) -> Option<SpawnerFailure> {
        Self::ALL
            .into_iter()
            .find(|failure| *failure as i32 == code)
    }

    pub fn problem(self) -> &'static str {
        match self {
            SpawnerFailure::Usage => {
                "was not given a decimal count of processes, then at most a count of pages below 2^52 and one of areas below 2^14"
            }
            SpawnerFailure::Fork => "could not fork",
            SpawnerFailure::Wait => "could not wait4 for its child",
            SpawnerFailure::Signalled => "saw a child ended by a signal",
            SpawnerFailure::Write => "could not write its ticks to stdout",
            SpawnerFailure::Map => "could not mmap its pages",
        }
    }
}

/// `lfence; rdtsc; lfence` (as `clock::ticks` reads it), the 64-bit count into rax.
fn read_tsc(a: &mut CodeAssembler) -> Result<(), IcedError> {
    a.lfence()?;
    a.rdtsc()?;
    a.lfence()?;
    a.shl(rdx, 32)?;
    a.or(rax, rdx)
}

/// mmap(rdi, rsi, edx, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0), jumping to `failed` if it
/// fails; the mapping's address in rax.
fn map_anonymous(a: &mut CodeAssembler, failed: CodeLabel) -> Result<(), IcedError> {
    a.mov(r10d, libc::MAP_PRIVATE | libc::MAP_ANONYMOUS)?;
    a.mov(r8, -1i64)?;
    a.xor(r9d, r9d)?;
    a.mov(eax, SYS_MMAP)?;
    a.syscall()?;
    a.test(rax, rax)?;
    a.js(failed)
}

/// Parses argv[`index`] into `count` if the program has that argument, then jumps to `skip`
/// if it did not or the count is 0, and to `usage` if the count is not below `below` (a
/// power of two); `parse` is the spawner's number parser. Expects the stack as the kernel
/// left it.
fn optional_count(
    a: &mut CodeAssembler,
    index: i32,
    count: AsmRegister64,
    below: u64,
    [parse, skip, usage]: [CodeLabel; 3],
) -> Result<(), IcedError> {
    // argc == index: no such argument (it is the last one if argc == index + 1).
    a.cmp(qword_ptr(rsp), index)?;
    a.jbe(skip)?;
    a.mov(rsi, qword_ptr(rsp + 8 * (index + 1)))?;
    a.call(parse)?;
    a.mov(count, rdi)?;
    a.shr(rdi, below.trailing_zeros())?;
    a.jne(usage)?;
    a.test(count, count)?;
    a.je(skip)
}

/// The spawner: `spawner N [P [A]]` first maps P pages (none by default) of anonymous private
/// memory, huge pages refused (madvise MADV_NOHUGEPAGE, where the kernel has them), and
/// writes a byte to each, so that each is present and its own 4 KiB page that fork must
/// copy a page-table entry for and write-protect; then A areas (none by default) of one
/// anonymous page each, alternately PROT_NONE and PROT_READ so that none merges with the
/// next, never touched: fork copies each area, and none of its entries. Then it creates N processes one after
/// another, each a fork whose child execs `child` (argv `[child]`, no environment) and
/// whose parent waits for it with wait4, and writes the TSC ticks the N took (8 bytes,
/// native order) to stdout and exits 0. Otherwise it exits with a `SpawnerFailure`, or with
/// a child's nonzero exit code. A static executable like `exit_program`, the child's path
/// in its data after the code.
pub fn spawner_program(child: &Path) -> Result<Vec<u8>, IcedError> {
    let mut a = CodeAssembler::new(64)?;
    let mut child_path = a.create_label();
    let [mut parse, mut parse_digit, mut parsed, mut mapped, mut touch, mut area, mut areas_mapped, mut next, mut done, mut exit, mut in_child, mut child_failed] =
        [(); 12].map(|()| a.create_label());
    let failures = SpawnerFailure::ALL.map(|failure| (failure, a.create_label()));
    let failure =
        |wanted: SpawnerFailure| failures[wanted as usize - SpawnerFailure::Usage as usize].1;

    // rbx = N from argv[1], r15 = P from argv[2] if there is one, else 0.
    a.mov(rax, qword_ptr(rsp))?;
    a.sub(rax, 2)?;
    a.cmp(rax, 2)?;
    a.ja(failure(SpawnerFailure::Usage))?;
    a.mov(rsi, qword_ptr(rsp + 16))?;
    a.call(parse)?;
    a.mov(rbx, rdi)?;
    a.xor(r15d, r15d)?;
    let usage = failure(SpawnerFailure::Usage);
    optional_count(&mut a, 2, r15, MAX_PAGES, [parse, mapped, usage])?;

    // The pages: mmap(NULL, P * PAGE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS,
    // -1, 0), then madvise(MADV_NOHUGEPAGE), whose failure (no huge pages here) is no
    // matter, then one byte written to each.
    a.xor(edi, edi)?;
    a.mov(rsi, r15)?;
    a.shl(rsi, PAGE.trailing_zeros())?;
    a.mov(edx, libc::PROT_READ | libc::PROT_WRITE)?;
    map_anonymous(&mut a, failure(SpawnerFailure::Map))?;
    a.mov(r14, rax)?;
    a.mov(rdi, rax)?;
    a.mov(edx, libc::MADV_NOHUGEPAGE)?;
    a.mov(eax, SYS_MADVISE)?;
    a.syscall()?;
    a.mov(rcx, r15)?;
    a.set_label(&mut touch)?;
    a.mov(byte_ptr(r14), 1)?;
    a.add(r14, PAGE as i32)?;
    a.dec(rcx)?;
    a.jne(touch)?;
    a.set_label(&mut mapped)?;

    // The areas: r14 = A from argv[3] if there is one; then A times mmap(NULL, PAGE,
    // PROT_NONE or PROT_READ (PROT_READ is 1: the count's lowest bit), MAP_PRIVATE |
    // MAP_ANONYMOUS, -1, 0).
    optional_count(&mut a, 3, r14, MAX_AREAS, [parse, areas_mapped, usage])?;
    a.set_label(&mut area)?;
    a.xor(edi, edi)?;
    a.mov(esi, PAGE as i32)?;
    a.mov(edx, r14d)?;
    a.and(edx, libc::PROT_READ)?;
    map_anonymous(&mut a, failure(SpawnerFailure::Map))?;
    a.dec(r14)?;
    a.jne(area)?;
    a.set_label(&mut areas_mapped)?;

    // The child's argv on the stack, [path, NULL], at r12; its envp is the NULL, at r12 + 8.
    // Below them one slot, [rsp]: the wait status, and at the end the report.
    a.push(0)?;
    a.lea(rax, ptr(child_path))?;
    a.push(rax)?;
    a.mov(r12, rsp)?;
    a.push(0)?;

    // r13 = the TSC at the start.
    read_tsc(&mut a)?;
    a.mov(r13, rax)?;
    a.test(rbx, rbx)?;
    a.je(done)?;

    // Each process: fork; the parent waits for the child (r14) and checks that it exited 0.
    a.set_label(&mut next)?;
    a.mov(eax, SYS_FORK)?;
    a.syscall()?;
    a.test(rax, rax)?;
    a.js(failure(SpawnerFailure::Fork))?;
    a.je(in_child)?;
    a.mov(r14, rax)?;
    a.mov(rdi, rax)?;
    a.mov(rsi, rsp)?;
    a.xor(edx, edx)?;
    a.xor(r10d, r10d)?;
    a.mov(eax, SYS_WAIT4)?;
    a.syscall()?;
    a.cmp(rax, r14)?;
    a.jne(failure(SpawnerFailure::Wait))?;
    a.mov(eax, dword_ptr(rsp))?;
    a.test(eax, eax)?;
    a.jne(child_failed)?;
    a.dec(rbx)?;
    a.jne(next)?;

    // The ticks since the start, written to stdout.
    a.set_label(&mut done)?;
    read_tsc(&mut a)?;
    a.sub(rax, r13)?;
    a.mov(qword_ptr(rsp), rax)?;
    a.mov(edi, 1)?;
    a.mov(rsi, rsp)?;
    a.mov(edx, 8)?;
    a.mov(eax, SYS_WRITE)?;
    a.syscall()?;
    a.cmp(rax, 8)?;
    a.jne(failure(SpawnerFailure::Write))?;
    a.xor(edi, edi)?;
    // exit_group(edi).
    a.set_label(&mut exit)?;
    a.mov(eax, SYS_EXIT_GROUP)?;
    a.syscall()?;

    // The child: execve, and on failure exit with its errno.
    a.set_label(&mut in_child)?;
    a.lea(rdi, ptr(child_path))?;
    a.mov(rsi, r12)?;
    a.lea(rdx, ptr(r12 + 8))?;
    a.mov(eax, SYS_EXECVE)?;
    a.syscall()?;
    a.neg(eax)?;
    a.mov(edi, eax)?;
    a.jmp(exit)?;

    // A child that did not exit 0 (status in eax): its exit code, or Signalled.
    a.set_label(&mut child_failed)?;
    a.mov(edi, SpawnerFailure::Signalled as i32)?;
    a.test(eax, 0x7f)?;
    a.jne(exit)?;
    a.movzx(edi, ah)?;
    a.jmp(exit)?;

    for (failure, mut label) in failures {
        a.set_label(&mut label)?;
        a.mov(edi, failure as i32)?;
        a.jmp(exit)?;
    }

    // rdi = the decimal number at rsi: digits only, at least one, below 2^64 (Usage
    // otherwise, with this call's return address left on the stack: it exits).
    a.set_label(&mut parse)?;
    a.cmp(byte_ptr(rsi), 0)?;
    a.je(failure(SpawnerFailure::Usage))?;
    a.xor(edi, edi)?;
    a.set_label(&mut parse_digit)?;
    a.movzx(ecx, byte_ptr(rsi))?;
    a.test(cl, cl)?;
    a.je(parsed)?;
    a.sub(ecx, i32::from(b'0'))?;
    a.cmp(ecx, 9)?;
    a.ja(failure(SpawnerFailure::Usage))?;
    a.mov(eax, 10)?;
    a.mul(rdi)?;
    a.jc(failure(SpawnerFailure::Usage))?;
    a.add(rax, rcx)?;
    a.jc(failure(SpawnerFailure::Usage))?;
    a.mov(rdi, rax)?;
    a.inc(rsi)?;
    a.jmp(parse_digit)?;
    a.set_label(&mut parsed)?;
    a.ret()?;

    a.set_label(&mut child_path)?;
    a.db(child.as_os_str().as_bytes())?;
    a.db(&[0])?;
    Ok(executable(&a.assemble(BASE + CODE_OFFSET)?))
}

/// A static x86-64 ELF executable: one ELF header, one read+execute PT_LOAD segment covering
/// the whole file, then `code`, entered at its first byte.
fn executable(code: &[u8]) -> Vec<u8> {
    let size = CODE_OFFSET + code.len() as u64;
    let mut file = Vec::with_capacity(size as usize);
    // e_ident: magic, 64-bit, little-endian, version 1, System V ABI, padding.
    file.extend_from_slice(b"\x7fELF\x02\x01\x01\x00");
    file.extend_from_slice(&[0; 8]);
    file.extend_from_slice(&2u16.to_le_bytes()); // e_type: ET_EXEC
    file.extend_from_slice(&62u16.to_le_bytes()); // e_machine: EM_X86_64
    file.extend_from_slice(&1u32.to_le_bytes()); // e_version
    file.extend_from_slice(&(BASE + CODE_OFFSET).to_le_bytes()); // e_entry
    file.extend_from_slice(&u64::from(ELF_HEADER_SIZE).to_le_bytes()); // e_phoff
    file.extend_from_slice(&0u64.to_le_bytes()); // e_shoff: no sections
    file.extend_from_slice(&0u32.to_le_bytes()); // e_flags
    file.extend_from_slice(&ELF_HEADER_SIZE.to_le_bytes()); // e_ehsize
    file.extend_from_slice(&PROGRAM_HEADER_SIZE.to_le_bytes()); // e_phentsize
    file.extend_from_slice(&1u16.to_le_bytes()); // e_phnum
    file.extend_from_slice(&[0; 6]); // e_shentsize, e_shnum, e_shstrndx
    file.extend_from_slice(&1u32.to_le_bytes()); // p_type: PT_LOAD
    file.extend_from_slice(&5u32.to_le_bytes()); // p_flags: PF_R | PF_X
    file.extend_from_slice(&0u64.to_le_bytes()); // p_offset
    file.extend_from_slice(&BASE.to_le_bytes()); // p_vaddr
    file.extend_from_slice(&BASE.to_le_bytes()); // p_paddr
    file.extend_from_slice(&size.to_le_bytes()); // p_filesz
    file.extend_from_slice(&size.to_le_bytes()); // p_memsz
    file.extend_from_slice(&0x1000u64.to_le_bytes()); // p_align
    file.extend_from_slice(code);
    file
}

/// A program in an executable temp file, removed on drop.
#[derive(Debug)]
pub struct Program {
    path: tempfile::TempPath,
}

impl Program {
    /// `exit_program(exit_code)` in `dir`.
    pub fn exit_in(dir: &Path, exit_code: u8) -> Result<Program, CalibrateError> {
        Program::write_in(dir, "calibrate-exit-", &exit_program(exit_code))
    }

    /// `spawner_program(child)` in `dir`.
    pub fn spawner_in(dir: &Path, child: &Path) -> Result<Program, CalibrateError> {
        let program = spawner_program(child).map_err(|error| CalibrateError::Assemble {
            program: "spawner",
            problem: error.to_string(),
        })?;
        Program::write_in(dir, "calibrate-spawner-", &program)
    }

    /// Writes `program` into `dir`, mode 0755, and closes it (an open writer would make
    /// execve fail with ETXTBSY).
    fn write_in(dir: &Path, prefix: &str, program: &[u8]) -> Result<Program, CalibrateError> {
        let temp_dir_error = |source| CalibrateError::TempDir {
            dir: dir.to_path_buf(),
            source,
        };
        let mut file = tempfile::Builder::new()
            .prefix(prefix)
            .permissions(std::fs::Permissions::from_mode(0o755))
            .tempfile_in(dir)
            .map_err(temp_dir_error)?;
        file.write_all(program).map_err(temp_dir_error)?;
        Ok(Program {
            path: file.into_temp_path(),
        })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }
}

#[cfg(test)]
mod tests {
    use iced_x86::{Decoder, DecoderOptions, Mnemonic};

    use super::*;

    /// The code an executable enters, checking the headers that say where it is.
    fn entered_code(file: &[u8]) -> &[u8] {
        assert_eq!(&file[..4], b"\x7fELF");
        let entry = u64::from_le_bytes(file[24..32].try_into().unwrap());
        assert_eq!(entry, BASE + CODE_OFFSET);
        let filesz = u64::from_le_bytes(file[64 + 32..64 + 40].try_into().unwrap());
        assert_eq!(filesz, file.len() as u64);
        &file[(entry - BASE) as usize..]
    }

    #[test]
    fn the_headers_and_the_code_where_the_entry_points() {
        let file = exit_program(42);
        assert_eq!(file.len(), 132);
        assert_eq!(
            entered_code(&file),
            [0xbf, 42, 0, 0, 0, 0xb8, 0xe7, 0, 0, 0, 0x0f, 0x05]
        );
    }

    #[test]
    fn the_spawner_is_small_times_with_two_tsc_reads_and_ends_with_the_childs_path() {
        let child = Path::new("/tmp/calibrate-exit-x");
        let file = spawner_program(child).unwrap();
        assert!(file.len() < 720, "{} bytes", file.len());
        let code = entered_code(&file);
        let path_at = code.len() - child.as_os_str().len() - 1;
        assert_eq!(&code[path_at..], b"/tmp/calibrate-exit-x\0");

        let mut decoder = Decoder::with_ip(64, &code[..path_at], BASE, DecoderOptions::NONE);
        let mnemonics: Vec<Mnemonic> = decoder.iter().map(|i| i.mnemonic()).collect();
        assert!(!mnemonics.contains(&Mnemonic::INVALID), "{mnemonics:?}");
        let count = |wanted| mnemonics.iter().filter(|&&m| m == wanted).count();
        assert_eq!(count(Mnemonic::Rdtsc), 2);
        // mmap, madvise, mmap (the areas), fork, wait4, write, exit_group, execve.
        assert_eq!(count(Mnemonic::Syscall), 8);
    }

    #[test]
    fn a_spawner_failure_is_known_by_its_exit_code_and_none_is_an_errno() {
        for (index, failure) in SpawnerFailure::ALL.into_iter().enumerate() {
            assert_eq!(failure as usize, SpawnerFailure::Usage as usize + index);
            assert_eq!(
                SpawnerFailure::from_exit_code(failure as i32),
                Some(failure)
            );
            // Linux's errnos end at 133 (EHWPOISON).
            assert!(failure as i32 > 133, "{failure:?}");
        }
        assert_eq!(SpawnerFailure::from_exit_code(libc::EACCES), None);
    }
}

//! The smallest static program process creation can run: a hand-assembled x86-64 ELF that
//! calls exit_group, written at run time so that calibrating needs no compiler and no corpus.

use std::io::Write;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;

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
    file.extend_from_slice(&code);
    file
}

/// `exit_program` in an executable temp file, removed on drop.
#[derive(Debug)]
pub struct ExitProgram {
    path: tempfile::TempPath,
}

impl ExitProgram {
    /// Writes the program exiting with `exit_code` into `dir`, mode 0755, and closes it (an
    /// open writer would make execve fail with ETXTBSY).
    pub fn create_in(dir: &Path, exit_code: u8) -> Result<ExitProgram, CalibrateError> {
        let temp_dir_error = |source| CalibrateError::TempDir {
            dir: dir.to_path_buf(),
            source,
        };
        let mut file = tempfile::Builder::new()
            .prefix("calibrate-exit-")
            .permissions(std::fs::Permissions::from_mode(0o755))
            .tempfile_in(dir)
            .map_err(temp_dir_error)?;
        file.write_all(&exit_program(exit_code))
            .map_err(temp_dir_error)?;
        Ok(ExitProgram {
            path: file.into_temp_path(),
        })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_headers_and_the_code_where_the_entry_points() {
        let file = exit_program(42);
        assert_eq!(file.len(), 132);
        assert_eq!(&file[..4], b"\x7fELF");
        let entry = u64::from_le_bytes(file[24..32].try_into().unwrap());
        let code = &file[(entry - BASE) as usize..];
        assert_eq!(code, [0xbf, 42, 0, 0, 0, 0xb8, 0xe7, 0, 0, 0, 0x0f, 0x05]);
        let filesz = u64::from_le_bytes(file[64 + 32..64 + 40].try_into().unwrap());
        assert_eq!(filesz, file.len() as u64);
    }
}

//! Memory: the program break and mappings.

use nix::errno::Errno;

use crate::kernel::{Args, Kernel, SysError, SysResult};
use crate::machine::physmem::PAGE_SIZE;
use crate::memory::{page_up, MappedFile, Prot, MMAP_MIN_ADDR, TASK_SIZE};

fn aligned(addr: u64) -> Result<(), Errno> {
    if addr.is_multiple_of(PAGE_SIZE) {
        Ok(())
    } else {
        Err(Errno::EINVAL)
    }
}

fn length(len: u64) -> Result<u64, Errno> {
    page_up(len).filter(|&l| l > 0).ok_or(Errno::EINVAL)
}

/// PROT_SEM (no effect on x86) and the grow flags (the simulator maps stacks whole) are
/// accepted and dropped, as far as the mapping goes.
/// PROT_SEM is 0x8 on x86 (not exported by the libc crate for this target).
const PROT_SEM: u64 = 0x8;
const IGNORED_PROT: u64 = PROT_SEM | (libc::PROT_GROWSDOWN | libc::PROT_GROWSUP) as u64;

fn prot(bits: u64) -> Result<Prot, Errno> {
    let known = (Prot::READ | Prot::WRITE | Prot::EXEC) as u64;
    if bits & !(known | IGNORED_PROT) != 0 {
        return Err(Errno::EINVAL);
    }
    Ok(Prot((bits & known) as u32))
}

pub fn brk(k: &mut Kernel, a: &Args) -> SysResult {
    Ok(k.proc.mem.set_brk(a[0]))
}

const MAP_TYPE: u64 = 0x0f;
const KNOWN_FLAGS: u64 = (libc::MAP_FIXED
    | libc::MAP_ANONYMOUS
    | libc::MAP_FIXED_NOREPLACE
    | libc::MAP_NORESERVE
    | libc::MAP_POPULATE
    | libc::MAP_STACK
    | libc::MAP_GROWSDOWN
    | libc::MAP_DENYWRITE
    | libc::MAP_EXECUTABLE
    | libc::MAP_LOCKED
    | libc::MAP_NONBLOCK) as u64
    | MAP_TYPE;

/// mmap's length as Linux's do_mmap takes it: zero is EINVAL; a length that rounds past
/// 2^64 (PAGE_ALIGN wraps to 0 in C) or past `TASK_SIZE` is ENOMEM.
fn mmap_length(len: u64) -> Result<u64, Errno> {
    if len == 0 {
        return Err(Errno::EINVAL);
    }
    page_up(len)
        .filter(|&l| l <= TASK_SIZE)
        .ok_or(Errno::ENOMEM)
}

/// Linux's largest file offset (`MAX_LFS_FILESIZE`): a file mapping must end below it.
const MAX_FILE_OFFSET: u64 = i64::MAX as u64;

pub fn mmap(k: &mut Kernel, a: &Args) -> SysResult {
    let [addr, len, prot_bits, flags, fd, offset] = *a;
    aligned(offset)?;
    let len = mmap_length(len)?;
    let prot = prot(prot_bits)?;
    if flags & !KNOWN_FLAGS != 0 {
        return Err(SysError::Unsupported(format!(
            "mmap flags {:#x}",
            flags & !KNOWN_FLAGS
        )));
    }
    let shared = match (flags & MAP_TYPE) as i32 {
        libc::MAP_PRIVATE => false,
        libc::MAP_SHARED | libc::MAP_SHARED_VALIDATE => true,
        _ => return Err(Errno::EINVAL.into()),
    };
    let anonymous = flags & libc::MAP_ANONYMOUS as u64 != 0;
    if !anonymous && shared && prot.0 & Prot::WRITE != 0 {
        let host_fd = k.proc.fds.host(fd)?;
        let file = std::fs::read_link(format!("/proc/self/fd/{host_fd}")).map_or_else(
            |_| format!("descriptor {fd}"),
            |path| path.display().to_string(),
        );
        return Err(SysError::Unsupported(format!(
            "a writable MAP_SHARED mapping of {file}"
        )));
    }
    if !anonymous && !prot.accessible() {
        return Err(SysError::Unsupported("a PROT_NONE file mapping".into()));
    }
    let file = if anonymous {
        None
    } else {
        let host_fd = k.proc.fds.host(fd)?;
        // file_mmap_ok: the mapping must end within the largest file.
        if offset
            .checked_add(len)
            .is_none_or(|end| end > MAX_FILE_OFFSET)
        {
            return Err(Errno::EOVERFLOW.into());
        }
        Some(host_fd)
    };

    let fixed = flags & (libc::MAP_FIXED | libc::MAP_FIXED_NOREPLACE) as u64 != 0;
    // vm.mmap_min_addr: no mapping may be forced below it.
    if fixed && addr < MMAP_MIN_ADDR {
        return Err(Errno::EPERM.into());
    }
    // get_unmapped_area: a fixed mapping must end within TASK_SIZE.
    if fixed && addr > TASK_SIZE - len {
        return Err(Errno::ENOMEM.into());
    }
    let start = if flags & libc::MAP_FIXED as u64 != 0 {
        aligned(addr)?;
        addr
    } else if flags & libc::MAP_FIXED_NOREPLACE as u64 != 0 {
        aligned(addr)?;
        if !k.proc.mem.is_free(addr, len) {
            return Err(Errno::EEXIST.into());
        }
        addr
    } else if addr != 0 && k.proc.mem.is_free(addr & !(PAGE_SIZE - 1), len) {
        addr & !(PAGE_SIZE - 1)
    } else {
        k.proc.mem.find_free(len).ok_or(Errno::ENOMEM)?
    };
    k.proc.mem.map_fixed(start, len, prot)?;
    if anonymous && shared {
        k.proc.mem.share_anonymous(start, start + len);
    }
    if let Some(host_fd) = file {
        if let Err(errno) = read_file_pages(k, host_fd, start, len, offset) {
            k.proc.mem.unmap(start, len)?;
            return Err(errno.into());
        }
        let path = std::fs::read_link(format!("/proc/self/fd/{host_fd}")).ok();
        if let Some(mapped) = path.and_then(MappedFile::at) {
            k.proc
                .mem
                .name_file(start, start + len, mapped, offset, shared);
        }
    }
    Ok(start)
}

/// Fills a new private file mapping from the file, a page at a time, so the host never holds
/// more than a page of it however large the guest asks the mapping to be, and backs only the
/// pages that are not zeros. Pages wholly past the end of the file stay unbacked: touching one
/// is SIGBUS (`AddressSpace::resolve_fault`). (`mmap` checked that `offset + len` is a file
/// offset.)
fn read_file_pages(
    k: &mut Kernel,
    host_fd: i32,
    start: u64,
    len: u64,
    offset: u64,
) -> Result<(), Errno> {
    let mut page = [0u8; PAGE_SIZE as usize];
    let mut done = 0;
    while done < len {
        // SAFETY: `page` has the length passed.
        let got = unsafe {
            libc::pread(
                host_fd,
                page.as_mut_ptr().cast(),
                page.len(),
                (offset + done) as i64,
            )
        };
        if got < 0 {
            return Err(Errno::last());
        }
        if got == 0 {
            break;
        }
        let got = (got as u64).min(len - done);
        let bytes = &page[..got as usize];
        // A new mapping's frames are zero: a page of zeros (a sparse file, /dev/zero) is
        // left unwritten, so the host does not back it.
        if bytes.iter().any(|&b| b != 0) {
            k.proc.mem.fill(start + done, bytes);
        }
        // Not a copy to user memory: Linux maps the page cache, so no byte is priced.
        done += got;
    }
    Ok(())
}

pub fn munmap(k: &mut Kernel, a: &Args) -> SysResult {
    aligned(a[0])?;
    k.proc.mem.unmap(a[0], length(a[1])?)?;
    Ok(0)
}

pub fn mprotect(k: &mut Kernel, a: &Args) -> SysResult {
    aligned(a[0])?;
    let len = page_up(a[1]).ok_or(Errno::ENOMEM)?;
    if len > 0 {
        k.proc.mem.protect(a[0], len, prot(a[2])?)?;
    }
    Ok(0)
}

/// mremap, with Linux 6.1's checks in its order. (Linux 6.17 and later refuse a new length
/// beyond `TASK_SIZE` with EINVAL before looking at the area; 6.1 answers EFAULT or ENOMEM.)
pub fn mremap(k: &mut Kernel, a: &Args) -> SysResult {
    let [old, old_len, new_len, flags, ..] = *a;
    let known = (libc::MREMAP_MAYMOVE | libc::MREMAP_FIXED | libc::MREMAP_DONTUNMAP) as u64;
    if flags & !known != 0 {
        return Err(Errno::EINVAL.into());
    }
    if flags & !(libc::MREMAP_MAYMOVE as u64) != 0 {
        return Err(SysError::Unsupported(format!("mremap flags {flags:#x}")));
    }
    aligned(old)?;
    // PAGE_ALIGN wraps to 0 in C; an old length of 0 is refused below for private areas.
    let old_len = page_up(old_len).unwrap_or(0);
    let new_len = length(new_len)?;
    let (_, vma) = k.proc.mem.vma_at(old).ok_or(Errno::EFAULT)?;
    // Always allow a shrinking remap: it unmaps the tail (munmap's checks apply).
    if old_len >= new_len {
        if old_len > new_len {
            let tail = old.checked_add(new_len).ok_or(Errno::EINVAL)?;
            k.proc.mem.unmap(tail, old_len - new_len)?;
        }
        return Ok(old);
    }
    // Growing (vma_to_resize): old length 0 duplicates shared areas only, and the old
    // range must lie within one area.
    if old_len == 0 {
        return Err(Errno::EINVAL.into());
    }
    if old_len > vma.end - old {
        return Err(Errno::EFAULT.into());
    }
    let old_end = old + old_len;
    let extra = new_len - old_len;
    if old_end == vma.end && k.proc.mem.is_free(old_end, extra) {
        k.proc.mem.map_fixed(old_end, extra, vma.prot)?;
        return Ok(old);
    }
    if flags & libc::MREMAP_MAYMOVE as u64 == 0 {
        return Err(Errno::ENOMEM.into());
    }
    let new = k.proc.mem.find_free(new_len).ok_or(Errno::ENOMEM)?;
    k.proc.mem.move_pages(old, old_len, new)?;
    k.proc.mem.map_fixed(new + old_len, extra, vma.prot)?;
    Ok(new)
}

pub fn madvise(k: &mut Kernel, a: &Args) -> SysResult {
    aligned(a[0])?;
    // MADV_DONTNEED makes the next touch of private memory see zeros, or the file's bytes
    // where it maps a file; the rest are hints.
    if a[2] == libc::MADV_DONTNEED as u64 {
        let len = page_up(a[1]).ok_or(Errno::EINVAL)?;
        k.proc.mem.drop_pages(a[0], len)?;
    }
    Ok(0)
}

//! Memory: the program break and mappings.

use nix::errno::Errno;

use crate::kernel::{Args, Kernel, SysError, SysResult};
use crate::machine::physmem::PAGE_SIZE;
use crate::memory::{page_up, Prot};

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
    Ok(k.mem.set_brk(a[0]))
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

pub fn mmap(k: &mut Kernel, a: &Args) -> SysResult {
    let [addr, len, prot_bits, flags, fd, offset] = *a;
    let len = length(len)?;
    let prot = prot(prot_bits)?;
    aligned(offset)?;
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
        return Err(SysError::Unsupported(
            "a writable MAP_SHARED file mapping".into(),
        ));
    }
    if !anonymous && !prot.accessible() {
        return Err(SysError::Unsupported("a PROT_NONE file mapping".into()));
    }
    let file = if anonymous {
        None
    } else {
        Some(k.fds.host(fd)?)
    };

    let fixed = flags & (libc::MAP_FIXED | libc::MAP_FIXED_NOREPLACE) as u64 != 0;
    // vm.mmap_min_addr: no mapping may be forced below it.
    if fixed && addr < crate::memory::MMAP_MIN_ADDR {
        return Err(Errno::EPERM.into());
    }
    let start = if flags & libc::MAP_FIXED as u64 != 0 {
        aligned(addr)?;
        addr
    } else if flags & libc::MAP_FIXED_NOREPLACE as u64 != 0 {
        aligned(addr)?;
        if !k.mem.is_free(addr, len) {
            return Err(Errno::EEXIST.into());
        }
        addr
    } else if addr != 0 && k.mem.is_free(addr & !(PAGE_SIZE - 1), len) {
        addr & !(PAGE_SIZE - 1)
    } else {
        k.mem.find_free(len).ok_or(Errno::ENOMEM)?
    };
    k.mem.map_fixed(start, len, prot)?;
    if let Some(host_fd) = file {
        let mut contents = vec![0u8; len as usize];
        // SAFETY: `contents` has the length passed.
        let got = unsafe {
            libc::pread(
                host_fd,
                contents.as_mut_ptr().cast(),
                contents.len(),
                offset as i64,
            )
        };
        if got < 0 {
            let errno = Errno::last();
            k.mem.unmap(start, len)?;
            return Err(errno.into());
        }
        k.mem.fill(start, &contents[..got as usize]);
        k.mem.note_copied(got as u64);
    }
    Ok(start)
}

pub fn munmap(k: &mut Kernel, a: &Args) -> SysResult {
    aligned(a[0])?;
    k.mem.unmap(a[0], length(a[1])?)?;
    Ok(0)
}

pub fn mprotect(k: &mut Kernel, a: &Args) -> SysResult {
    aligned(a[0])?;
    let len = page_up(a[1]).ok_or(Errno::ENOMEM)?;
    if len > 0 {
        k.mem.protect(a[0], len, prot(a[2])?)?;
    }
    Ok(0)
}

pub fn mremap(k: &mut Kernel, a: &Args) -> SysResult {
    let [old, old_len, new_len, flags, ..] = *a;
    aligned(old)?;
    let (old_len, new_len) = (length(old_len)?, length(new_len)?);
    if flags & !(libc::MREMAP_MAYMOVE as u64) != 0 {
        return Err(SysError::Unsupported(format!("mremap flags {flags:#x}")));
    }
    let (_, vma) = k.mem.vma_at(old).ok_or(Errno::EFAULT)?;
    if new_len <= old_len {
        if new_len < old_len {
            k.mem.unmap(old + new_len, old_len - new_len)?;
        }
        return Ok(old);
    }
    let extra = new_len - old_len;
    if k.mem.is_free(old + old_len, extra) {
        k.mem.map_fixed(old + old_len, extra, vma.prot)?;
        return Ok(old);
    }
    if flags & libc::MREMAP_MAYMOVE as u64 == 0 {
        return Err(Errno::ENOMEM.into());
    }
    let new = k.mem.find_free(new_len).ok_or(Errno::ENOMEM)?;
    k.mem.move_pages(old, old_len, new)?;
    k.mem.map_fixed(new + old_len, extra, vma.prot)?;
    Ok(new)
}

pub fn madvise(k: &mut Kernel, a: &Args) -> SysResult {
    aligned(a[0])?;
    // MADV_DONTNEED on private memory makes the next read see zeros; the rest are hints.
    if a[2] == libc::MADV_DONTNEED as u64 {
        let len = page_up(a[1]).ok_or(Errno::EINVAL)?;
        k.mem.zero(a[0], len)?;
    }
    Ok(0)
}

//! The initial process stack, laid out as Linux's `create_elf_tables` does (SysV x86-64 ABI):
//!
//! ```text
//! top ─▶ 8 zero bytes
//!        execfn string
//!        envp strings, argv strings (argv[0] lowest)
//!        (align 16) "x86_64\0"   16 random bytes (AT_RANDOM)
//!        padding
//! rsp ─▶ argc, argv[], NULL, envp[], NULL, auxv pairs ending in AT_NULL   (rsp % 16 == 0)
//! ```

/// An auxiliary-vector value: a number, or the address of something the stack holds.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AuxValue {
    Number(u64),
    /// The 16 random bytes.
    Random,
    /// The executable's name as given to execve.
    ExecFn,
    /// The platform string, "x86_64".
    Platform,
}

pub const PLATFORM: &[u8] = b"x86_64";

/// The stack's bytes, to be written at `sp`, and the initial RSP.
#[derive(Debug)]
pub struct StackImage {
    pub sp: u64,
    pub bytes: Vec<u8>,
}

/// What goes on the stack.
pub struct StackContents<'a> {
    pub argv: &'a [Vec<u8>],
    pub envp: &'a [Vec<u8>],
    pub execfn: &'a [u8],
    pub random: [u8; 16],
    /// (type, value) pairs, without the closing AT_NULL.
    pub auxv: &'a [(u64, AuxValue)],
}

pub fn build(top: u64, contents: &StackContents) -> StackImage {
    // Strings and blobs, placed downward from the top; written into `high` afterwards.
    let mut placed: Vec<(u64, Vec<u8>)> = Vec::new();
    let mut p = top - 8;
    let mut place = |p: &mut u64, bytes: &[u8], nul: bool| {
        let mut owned = bytes.to_vec();
        if nul {
            owned.push(0);
        }
        *p -= owned.len() as u64;
        placed.push((*p, owned));
        *p
    };
    let execfn = place(&mut p, contents.execfn, true);
    let envp: Vec<u64> = contents
        .envp
        .iter()
        .rev()
        .map(|s| place(&mut p, s, true))
        .collect();
    let argv: Vec<u64> = contents
        .argv
        .iter()
        .rev()
        .map(|s| place(&mut p, s, true))
        .collect();
    p &= !15;
    let platform = place(&mut p, PLATFORM, true);
    let random = place(&mut p, &contents.random, false);

    let aux_words = (contents.auxv.len() + 1) * 2;
    let items = contents.argv.len() + 1 + contents.envp.len() + 1 + 1;
    let sp = (p - (aux_words + items) as u64 * 8) & !15;

    let mut words: Vec<u64> = vec![contents.argv.len() as u64];
    words.extend(argv.iter().rev());
    words.push(0);
    words.extend(envp.iter().rev());
    words.push(0);
    for &(kind, value) in contents.auxv {
        words.push(kind);
        words.push(match value {
            AuxValue::Number(n) => n,
            AuxValue::Random => random,
            AuxValue::ExecFn => execfn,
            AuxValue::Platform => platform,
        });
    }
    words.extend([libc::AT_NULL, 0]);

    let mut bytes = vec![0u8; (top - sp) as usize];
    for (i, word) in words.iter().enumerate() {
        bytes[i * 8..i * 8 + 8].copy_from_slice(&word.to_le_bytes());
    }
    for (addr, blob) in placed {
        let off = (addr - sp) as usize;
        bytes[off..off + blob.len()].copy_from_slice(&blob);
    }
    StackImage { sp, bytes }
}

#[cfg(test)]
mod tests {
    use super::*;

    const TOP: u64 = 0x7fff_ffff_f000;

    fn word(image: &StackImage, addr: u64) -> u64 {
        let off = (addr - image.sp) as usize;
        u64::from_le_bytes(image.bytes[off..off + 8].try_into().unwrap())
    }

    fn string(image: &StackImage, addr: u64) -> Vec<u8> {
        let off = (addr - image.sp) as usize;
        image.bytes[off..]
            .iter()
            .take_while(|&&b| b != 0)
            .copied()
            .collect()
    }

    fn sample() -> StackImage {
        let argv = [b"prog".to_vec(), b"arg one".to_vec()];
        let envp = [b"A=1".to_vec(), b"HOME=/root".to_vec(), b"Z=".to_vec()];
        let auxv = [
            (libc::AT_PAGESZ, AuxValue::Number(4096)),
            (libc::AT_RANDOM, AuxValue::Random),
            (libc::AT_EXECFN, AuxValue::ExecFn),
            (libc::AT_PLATFORM, AuxValue::Platform),
        ];
        let contents = StackContents {
            argv: &argv,
            envp: &envp,
            execfn: b"./prog",
            random: [7; 16],
            auxv: &auxv,
        };
        build(TOP, &contents)
    }

    #[test]
    fn rsp_is_16_byte_aligned_and_argc_is_first() {
        let image = sample();
        assert_eq!(image.sp % 16, 0);
        assert_eq!(word(&image, image.sp), 2);
        assert_eq!(image.sp + image.bytes.len() as u64, TOP);
    }

    #[test]
    fn argv_envp_and_auxv_follow_argc() {
        let image = sample();
        let at = |i: u64| word(&image, image.sp + 8 * i);
        assert_eq!(string(&image, at(1)), b"prog");
        assert_eq!(string(&image, at(2)), b"arg one");
        assert_eq!(at(3), 0);
        assert_eq!(string(&image, at(4)), b"A=1");
        assert_eq!(string(&image, at(5)), b"HOME=/root");
        assert_eq!(string(&image, at(6)), b"Z=");
        assert_eq!(at(7), 0);
        assert_eq!((at(8), at(9)), (libc::AT_PAGESZ, 4096));
        assert_eq!(at(10), libc::AT_RANDOM);
        let random_off = (at(11) - image.sp) as usize;
        assert_eq!(&image.bytes[random_off..random_off + 16], &[7; 16]);
        assert_eq!(at(12), libc::AT_EXECFN);
        assert_eq!(string(&image, at(13)), b"./prog");
        assert_eq!(at(14), libc::AT_PLATFORM);
        assert_eq!(string(&image, at(15)), b"x86_64");
        assert_eq!((at(16), at(17)), (libc::AT_NULL, 0));
    }

    #[test]
    fn strings_sit_in_linux_order_below_the_top() {
        let image = sample();
        let argv0 = word(&image, image.sp + 8);
        let env0 = word(&image, image.sp + 32);
        assert!(argv0 < env0, "argv strings sit below envp strings");
        assert_eq!(word(&image, TOP - 8), 0, "the top word is zero");
        let execfn = word(&image, image.sp + 13 * 8);
        assert_eq!(execfn + 7, TOP - 8, "execfn ends just below the top word");
    }
}

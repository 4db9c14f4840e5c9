//! User and group ids: the set*id and get*id calls, on the simulated process's own
//! credentials.
//!
//! The guest starts as the host user, as under qemu-user, so file permissions mean the same
//! for it as for the native program. From then on it keeps its own real, effective, saved and
//! file-system ids and its supplementary groups, and changes them as Linux would
//! (kernel/sys.c, kernel/groups.c): an unprivileged process may only move among its own ids;
//! a privileged one (the host user was root) may take any, and loses its privilege as root
//! does when no id is 0 any more. The host process's own credentials never change: files are
//! still opened with the host user's rights.

use nix::errno::Errno;

use crate::kernel::{Args, Kernel, SysResult};

/// `(uid_t) -1`: "leave this id as it is"; never a valid id.
const UNCHANGED: u32 = u32::MAX;

/// Linux's `NGROUPS_MAX`.
const NGROUPS_MAX: u64 = 65_536;

/// The four user ids, or the four group ids, of a process.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Ids {
    pub real: u32,
    pub effective: u32,
    pub saved: u32,
    /// What file-system access checks use: follows the effective id unless set apart.
    pub fs: u32,
}

impl Ids {
    fn own(&self, id: u32) -> bool {
        id == self.real || id == self.effective || id == self.saved
    }

    /// setuid(2)/setgid(2): with privilege, all four ids; without, the effective and
    /// file-system ids, and only to the real or the saved id.
    fn set(&mut self, id: u32, privileged: bool) -> Result<(), Errno> {
        if id == UNCHANGED {
            return Err(Errno::EINVAL);
        }
        if privileged {
            self.real = id;
            self.saved = id;
        } else if id != self.real && id != self.saved {
            return Err(Errno::EPERM);
        }
        self.effective = id;
        self.fs = id;
        Ok(())
    }

    /// setreuid(2)/setregid(2): -1 leaves an id as it is. The saved id follows the new
    /// effective one when the real id is set or the effective one moves off the real one.
    fn set_real_effective(
        &mut self,
        real: u32,
        effective: u32,
        privileged: bool,
    ) -> Result<(), Errno> {
        let old = *self;
        if real != UNCHANGED {
            if !privileged && real != old.real && real != old.effective {
                return Err(Errno::EPERM);
            }
            self.real = real;
        }
        if effective != UNCHANGED {
            if !privileged && !old.own(effective) {
                return Err(Errno::EPERM);
            }
            self.effective = effective;
        }
        if real != UNCHANGED || (effective != UNCHANGED && effective != old.real) {
            self.saved = self.effective;
        }
        self.fs = self.effective;
        Ok(())
    }

    /// setresuid(2)/setresgid(2): without privilege, each id given must be one of the three.
    fn set_all(&mut self, ids: [u32; 3], privileged: bool) -> Result<(), Errno> {
        // Linux returns at once from a call that changes nothing, leaving the fs id as it is.
        let [real, effective, saved] = ids;
        if (real == UNCHANGED || real == self.real)
            && (effective == UNCHANGED || (effective == self.effective && effective == self.fs))
            && (saved == UNCHANGED || saved == self.saved)
        {
            return Ok(());
        }
        let mut given = ids.into_iter().filter(|&id| id != UNCHANGED);
        if !privileged && !given.all(|id| self.own(id)) {
            return Err(Errno::EPERM);
        }
        for (slot, id) in [&mut self.real, &mut self.effective, &mut self.saved]
            .into_iter()
            .zip(ids)
        {
            if id != UNCHANGED {
                *slot = id;
            }
        }
        self.fs = self.effective;
        Ok(())
    }

    /// setfsuid(2)/setfsgid(2): the old file-system id, whether or not it changed (the
    /// call has no error to return).
    fn set_fs(&mut self, id: u32, privileged: bool) -> u32 {
        let old = self.fs;
        if id != UNCHANGED && (privileged || self.own(id) || id == self.fs) {
            self.fs = id;
        }
        old
    }
}

/// A process's credentials.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Credentials {
    pub uid: Ids,
    pub gid: Ids,
    /// Supplementary groups, sorted, as setgroups leaves them.
    pub groups: Vec<u32>,
    /// Root's power over ids (CAP_SETUID and CAP_SETGID), in the permitted set and the
    /// effective one.
    pub cap_permitted: bool,
    pub cap_effective: bool,
}

impl Credentials {
    /// The host user's: the guest runs as the user who runs the simulator. Root (effective
    /// uid 0) is taken to hold CAP_SETUID and CAP_SETGID, as it does outside a restricted
    /// container.
    pub fn of_host() -> Self {
        let uid = nix::unistd::getresuid().expect("getresuid cannot fail");
        let gid = nix::unistd::getresgid().expect("getresgid cannot fail");
        let groups = nix::unistd::getgroups().unwrap_or_default();
        Self::new(
            [uid.real, uid.effective, uid.saved].map(|u| u.as_raw()),
            [gid.real, gid.effective, gid.saved].map(|g| g.as_raw()),
            groups.iter().map(|g| g.as_raw()).collect(),
        )
    }

    /// Credentials with these (real, effective, saved) ids and groups.
    pub fn new(uid: [u32; 3], gid: [u32; 3], mut groups: Vec<u32>) -> Self {
        let ids = |[real, effective, saved]: [u32; 3]| Ids {
            real,
            effective,
            saved,
            fs: effective,
        };
        groups.sort_unstable();
        let root = uid[1] == 0;
        Self {
            uid: ids(uid),
            gid: ids(gid),
            groups,
            cap_permitted: root,
            cap_effective: root,
        }
    }

    /// Linux's cap_emulate_setxuid: root's power goes with its ids. Losing uid 0 from all
    /// three ids drops it for good; the effective id leaving 0 suspends it, returning to 0
    /// restores it.
    fn follow_uid_change(&mut self, old: Ids) {
        let was_root = old.own(0);
        let is_root = self.uid.own(0);
        if was_root && !is_root {
            self.cap_permitted = false;
            self.cap_effective = false;
        }
        if old.effective == 0 && self.uid.effective != 0 {
            self.cap_effective = false;
        }
        if old.effective != 0 && self.uid.effective == 0 {
            self.cap_effective = self.cap_permitted;
        }
    }

    /// Runs `change` on the user ids, then lets root's power follow.
    fn change_uid(
        &mut self,
        change: impl FnOnce(&mut Ids, bool) -> Result<(), Errno>,
    ) -> Result<(), Errno> {
        let old = self.uid;
        let mut new = old;
        change(&mut new, self.cap_effective)?;
        self.uid = new;
        self.follow_uid_change(old);
        Ok(())
    }

    fn change_gid(
        &mut self,
        change: impl FnOnce(&mut Ids, bool) -> Result<(), Errno>,
    ) -> Result<(), Errno> {
        let mut new = self.gid;
        change(&mut new, self.cap_effective)?;
        self.gid = new;
        Ok(())
    }

    pub fn set_groups(&mut self, mut groups: Vec<u32>) -> Result<(), Errno> {
        if !self.cap_effective {
            return Err(Errno::EPERM);
        }
        if groups.contains(&UNCHANGED) {
            return Err(Errno::EINVAL);
        }
        groups.sort_unstable();
        self.groups = groups;
        Ok(())
    }
}

/// A uid_t or gid_t argument: the register's low 32 bits, as the kernel reads it.
fn id(value: u64) -> u32 {
    value as u32
}

pub fn getuid(k: &mut Kernel, _a: &Args) -> SysResult {
    Ok(k.proc.credentials.uid.real.into())
}

pub fn geteuid(k: &mut Kernel, _a: &Args) -> SysResult {
    Ok(k.proc.credentials.uid.effective.into())
}

pub fn getgid(k: &mut Kernel, _a: &Args) -> SysResult {
    Ok(k.proc.credentials.gid.real.into())
}

pub fn getegid(k: &mut Kernel, _a: &Args) -> SysResult {
    Ok(k.proc.credentials.gid.effective.into())
}

/// Writes the real, effective and saved ids to the three addresses, in that order.
fn write_three(k: &mut Kernel, a: &Args, ids: Ids) -> SysResult {
    for (at, value) in a.iter().zip([ids.real, ids.effective, ids.saved]) {
        k.proc.mem.write(*at, &value.to_le_bytes())?;
    }
    Ok(0)
}

pub fn getresuid(k: &mut Kernel, a: &Args) -> SysResult {
    write_three(k, a, k.proc.credentials.uid)
}

pub fn getresgid(k: &mut Kernel, a: &Args) -> SysResult {
    write_three(k, a, k.proc.credentials.gid)
}

pub fn setuid(k: &mut Kernel, a: &Args) -> SysResult {
    k.proc
        .credentials
        .change_uid(|ids, privileged| ids.set(id(a[0]), privileged))?;
    Ok(0)
}

pub fn setgid(k: &mut Kernel, a: &Args) -> SysResult {
    k.proc
        .credentials
        .change_gid(|ids, privileged| ids.set(id(a[0]), privileged))?;
    Ok(0)
}

pub fn setreuid(k: &mut Kernel, a: &Args) -> SysResult {
    k.proc
        .credentials
        .change_uid(|ids, privileged| ids.set_real_effective(id(a[0]), id(a[1]), privileged))?;
    Ok(0)
}

pub fn setregid(k: &mut Kernel, a: &Args) -> SysResult {
    k.proc
        .credentials
        .change_gid(|ids, privileged| ids.set_real_effective(id(a[0]), id(a[1]), privileged))?;
    Ok(0)
}

pub fn setresuid(k: &mut Kernel, a: &Args) -> SysResult {
    let given = [id(a[0]), id(a[1]), id(a[2])];
    k.proc
        .credentials
        .change_uid(|ids, privileged| ids.set_all(given, privileged))?;
    Ok(0)
}

pub fn setresgid(k: &mut Kernel, a: &Args) -> SysResult {
    let given = [id(a[0]), id(a[1]), id(a[2])];
    k.proc
        .credentials
        .change_gid(|ids, privileged| ids.set_all(given, privileged))?;
    Ok(0)
}

pub fn setfsuid(k: &mut Kernel, a: &Args) -> SysResult {
    let privileged = k.proc.credentials.cap_effective;
    Ok(k.proc.credentials.uid.set_fs(id(a[0]), privileged).into())
}

pub fn setfsgid(k: &mut Kernel, a: &Args) -> SysResult {
    let privileged = k.proc.credentials.cap_effective;
    Ok(k.proc.credentials.gid.set_fs(id(a[0]), privileged).into())
}

pub fn getgroups(k: &mut Kernel, a: &Args) -> SysResult {
    let count = k.proc.credentials.groups.len() as u64;
    match a[0] as i32 {
        size if size < 0 => Err(Errno::EINVAL.into()),
        0 => Ok(count),
        size if (size as u64) < count => Err(Errno::EINVAL.into()),
        _ => {
            let bytes: Vec<u8> = k
                .proc
                .credentials
                .groups
                .iter()
                .flat_map(|g| g.to_le_bytes())
                .collect();
            k.proc.mem.write(a[1], &bytes)?;
            Ok(count)
        }
    }
}

pub fn setgroups(k: &mut Kernel, a: &Args) -> SysResult {
    if !k.proc.credentials.cap_effective {
        return Err(Errno::EPERM.into());
    }
    let size = a[0] as i32 as i64 as u64;
    if size > NGROUPS_MAX {
        return Err(Errno::EINVAL.into());
    }
    let bytes = k.proc.mem.read_vec(a[1], size as usize * 4)?;
    let groups = bytes
        .chunks_exact(4)
        .map(|g| u32::from_le_bytes(g.try_into().expect("chunks of 4")))
        .collect();
    k.proc.credentials.set_groups(groups)?;
    Ok(0)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::memory::Prot;

    const USER: u32 = 1000;
    const OTHER: u32 = 1001;
    const ANY: u64 = UNCHANGED as u64;

    fn errno(e: Errno) -> u64 {
        (-(e as i64)) as u64
    }

    /// Runs syscall `name` with `args` through the kernel's table, as the guest would.
    fn call(k: &mut Kernel, name: &str, args: &[u64]) -> u64 {
        let nr = name
            .parse::<syscalls::Sysno>()
            .expect("a syscall name")
            .id() as u64;
        let mut all = [0; 6];
        all[..args.len()].copy_from_slice(args);
        k.dispatch(nr, &all, 0)
            .expect("served")
            .expect("returned")
            .ret
    }

    fn all(id: u32) -> Ids {
        Ids {
            real: id,
            effective: id,
            saved: id,
            fs: id,
        }
    }

    fn user() -> Credentials {
        Credentials::new([USER; 3], [USER; 3], vec![USER])
    }

    fn as_user() -> Kernel {
        Kernel::for_tests(user())
    }

    fn as_root() -> Kernel {
        Kernel::for_tests(Credentials::new([0; 3], [0; 3], vec![0]))
    }

    #[test]
    fn a_user_may_set_its_own_ids_as_busybox_does_to_drop_privileges() {
        let mut k = as_user();
        let (uid, gid) = (call(&mut k, "getuid", &[]), call(&mut k, "getgid", &[]));
        assert_eq!((uid, gid), (u64::from(USER), u64::from(USER)));
        for (name, args) in [
            ("setgid", &[gid][..]),
            ("setuid", &[uid]),
            ("setregid", &[gid, gid]),
            ("setreuid", &[ANY, uid]),
            ("setresgid", &[gid, ANY, gid]),
            ("setresuid", &[uid, uid, uid]),
        ] {
            assert_eq!(call(&mut k, name, args), 0, "{name}{args:?}");
        }
        assert_eq!(k.proc.credentials, user());
    }

    #[test]
    fn a_user_may_not_take_other_ids() {
        let mut k = as_user();
        for (name, args) in [
            ("setuid", &[0][..]),
            ("setgid", &[u64::from(OTHER)]),
            ("setreuid", &[u64::from(OTHER), ANY]),
            ("setregid", &[ANY, 0]),
            ("setresuid", &[ANY, ANY, 0]),
            ("setresgid", &[u64::from(OTHER), ANY, ANY]),
            ("setgroups", &[0, 0]),
        ] {
            assert_eq!(
                call(&mut k, name, args),
                errno(Errno::EPERM),
                "{name}{args:?}"
            );
        }
        assert_eq!(call(&mut k, "setuid", &[ANY]), errno(Errno::EINVAL));
        // setfsuid answers the old id and changes nothing it may not.
        assert_eq!(call(&mut k, "setfsuid", &[0]), u64::from(USER));
        assert_eq!(k.proc.credentials, user());
    }

    #[test]
    fn root_takes_any_ids_and_loses_its_power_with_uid_0() {
        let mut k = as_root();
        assert_eq!(call(&mut k, "setgroups", &[0, 0]), 0);
        assert!(k.proc.credentials.groups.is_empty());
        assert_eq!(call(&mut k, "setgid", &[u64::from(USER)]), 0);
        assert_eq!(k.proc.credentials.gid, all(USER));
        // Only the effective uid leaves 0: the power is suspended, then restored.
        assert_eq!(call(&mut k, "setresuid", &[ANY, u64::from(USER), ANY]), 0);
        assert_eq!(call(&mut k, "setgid", &[0]), errno(Errno::EPERM));
        assert_eq!(call(&mut k, "setresuid", &[ANY, 0, ANY]), 0);
        assert_eq!(call(&mut k, "setuid", &[u64::from(USER)]), 0);
        assert_eq!(k.proc.credentials.uid, all(USER));
        assert_eq!(call(&mut k, "setuid", &[0]), errno(Errno::EPERM));
        assert!(!k.proc.credentials.cap_permitted);
    }

    #[test]
    fn a_setresuid_that_changes_nothing_keeps_the_fs_id() {
        let mut k = as_root();
        assert_eq!(call(&mut k, "setfsuid", &[u64::from(USER)]), 0);
        assert_eq!(call(&mut k, "setresuid", &[ANY, ANY, ANY]), 0);
        assert_eq!(k.proc.credentials.uid.fs, USER);
    }

    #[test]
    fn setreuid_moves_the_saved_id_as_linux_does() {
        let mut ids = all(USER);
        ids.set_real_effective(UNCHANGED, OTHER, true).unwrap();
        assert_eq!(
            (ids.real, ids.effective, ids.saved, ids.fs),
            (USER, OTHER, OTHER, OTHER)
        );
        // An unprivileged swap back to an id the process holds.
        ids.set_real_effective(OTHER, USER, false).unwrap();
        assert_eq!(
            (ids.real, ids.effective, ids.saved, ids.fs),
            (OTHER, USER, USER, USER)
        );
        let before = ids;
        assert_eq!(
            ids.set_real_effective(0, UNCHANGED, false),
            Err(Errno::EPERM)
        );
        assert_eq!(ids, before);
    }

    #[test]
    fn the_getters_read_the_simulated_state() {
        let mut k = as_root();
        k.proc
            .mem
            .map_fixed(0x10000, 4096, Prot(Prot::READ | Prot::WRITE))
            .unwrap();
        assert_eq!(call(&mut k, "setresuid", &[1, 2, 3]), 0);
        assert_eq!(call(&mut k, "getresuid", &[0x10000, 0x10004, 0x10008]), 0);
        assert_eq!(
            k.proc.mem.read_vec(0x10000, 12).unwrap(),
            [1, 0, 0, 0, 2, 0, 0, 0, 3, 0, 0, 0]
        );
        assert_eq!(
            (call(&mut k, "getuid", &[]), call(&mut k, "geteuid", &[])),
            (1, 2)
        );
        assert_eq!(call(&mut k, "getgroups", &[0, 0]), 1);
        assert_eq!(call(&mut k, "getgroups", &[1, 0x10000]), 1);
        assert_eq!(k.proc.mem.read_vec(0x10000, 4).unwrap(), [0; 4]);
    }
}

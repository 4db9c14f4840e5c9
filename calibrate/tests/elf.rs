//! The exit program process creation runs: written to a temp file, it execs, exits with the
//! code it was built with, and is removed with its handle. (One test in a binary of its own:
//! a fork elsewhere while the file is open for writing would make execve fail, ETXTBSY.)

use calibrate::elf::Program;

#[test]
fn the_exit_program_execs_exits_with_its_code_and_is_removed() {
    let dir = tempfile::tempdir().unwrap();
    for code in [0, 42] {
        let program = Program::exit_in(dir.path(), code).unwrap();
        let path = program.path().to_path_buf();
        let status = std::process::Command::new(&path).status().unwrap();
        assert_eq!(status.code(), Some(i32::from(code)), "{}", path.display());
        drop(program);
        assert!(!path.exists(), "{} left behind", path.display());
    }
}

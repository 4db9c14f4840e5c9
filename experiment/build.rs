//! The version every experiment output records: `git describe` of the checkout it was built
//! from, or the package version outside a git checkout.

use std::process::Command;

fn main() {
    let describe = Command::new("git")
        .args(["describe", "--always", "--dirty", "--tags"])
        .output()
        .ok()
        .filter(|out| out.status.success())
        .and_then(|out| String::from_utf8(out.stdout).ok())
        .map(|text| text.trim().to_string())
        .filter(|text| !text.is_empty());
    let version = match describe {
        Some(describe) => format!("{} ({describe})", env!("CARGO_PKG_VERSION")),
        None => env!("CARGO_PKG_VERSION").to_string(),
    };
    println!("cargo:rustc-env=RINGSIM_VERSION={version}");
    // A commit, a checkout or a staged change moves the version; so does an edit of any
    // source, which makes it -dirty.
    let sources = [
        "../src",
        "../sim/src",
        "../translator/src",
        "../oracle/src",
        "../corpora/src",
        "../uarch/src",
        "../calibrate/src",
        "../experiment/src",
        "../cost-models",
    ];
    for path in ["../.git/HEAD", "../.git/index", "../.git/refs"]
        .iter()
        .chain(&sources)
    {
        println!("cargo:rerun-if-changed={path}");
    }
}

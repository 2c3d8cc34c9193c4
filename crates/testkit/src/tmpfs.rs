//! A real small file system that fills up: a tmpfs of a few MiB, for the
//! tests of what otlp-tape does on a full disk. Mounting needs root (the
//! tests run as root in CI); a refused mount fails the test loudly.

use std::path::{Path, PathBuf};
use std::process::Command;

/// A tmpfs of a few MiB mounted on a temporary directory, unmounted when
/// dropped.
pub struct Tmpfs {
    dir: tempfile::TempDir,
}

impl Tmpfs {
    /// Mounts a tmpfs of `size` (as `mount -o size=` takes it: `4m`).
    ///
    /// # Panics
    /// When it cannot be mounted.
    pub fn mount(size: &str) -> Tmpfs {
        let dir = tempfile::tempdir().unwrap();
        let output = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"])
            .arg(dir.path())
            .output()
            .expect("cannot run mount");
        assert!(
            output.status.success(),
            "cannot mount a {size} tmpfs on {} (these tests need root, as in CI): {}",
            dir.path().display(),
            String::from_utf8_lossy(&output.stderr)
        );
        Tmpfs { dir }
    }

    /// Where it is mounted.
    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    /// Fills the file system with a file until at most `free` bytes are
    /// left; returns the file, to delete when space should come back.
    ///
    /// # Panics
    /// When the file cannot be created.
    pub fn fill(&self, free: u64) -> PathBuf {
        let path = self.path().join("filler");
        let mut file = std::fs::File::create(&path).unwrap();
        let block = vec![0xa5u8; 64 * 1024];
        loop {
            use std::io::Write;
            if available(self.path()) <= free {
                break;
            }
            if file.write_all(&block).is_err() {
                break;
            }
        }
        file.sync_all().unwrap();
        path
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        // Lazily, so that a process still holding a file does not keep it mounted.
        let _ = Command::new("umount").arg("-l").arg(self.dir.path()).status();
    }
}

/// Free bytes of the file system holding `path`, as `df` reports them.
///
/// # Panics
/// When `df` does not answer.
pub fn available(path: &Path) -> u64 {
    let output = Command::new("df").args(["--output=avail", "-B1"]).arg(path).output().unwrap();
    let text = String::from_utf8(output.stdout).unwrap();
    text.lines().nth(1).unwrap().trim().parse().unwrap()
}

//! Files that hold secrets: created owner-only before anything is written to them.

use std::io;
use std::path::Path;

/// Creates `dir` (and its parents) if missing; a folder this creates is mode 0700.
pub(crate) fn private_dir(dir: &Path) -> io::Result<()> {
    let mut builder = std::fs::DirBuilder::new();
    builder.recursive(true);
    #[cfg(unix)]
    std::os::unix::fs::DirBuilderExt::mode(&mut builder, 0o700);
    builder.create(dir)
}

/// Creates `path` empty with mode 0600 if missing, and makes an existing file mode 0600.
pub(crate) fn private_file(path: &Path) -> io::Result<()> {
    let mut options = std::fs::OpenOptions::new();
    options.append(true).create(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    let file = options.open(path)?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        file.set_permissions(std::fs::Permissions::from_mode(0o600))?;
    }
    drop(file);
    Ok(())
}

/// Opens `path` for appending, created with mode 0600.
pub(crate) fn append_private(path: &Path) -> io::Result<std::fs::File> {
    private_file(path)?;
    std::fs::OpenOptions::new().append(true).open(path)
}

//! Reading a policy set: a directory (every `*.cg` below it, in path order; hidden directories,
//! `target` and `node_modules` skipped; each directory visited once, so symlink loops end),
//! files, text, or a compiled set. Files are read with their size bound enforced while reading.

use std::io::Read;
use std::path::{Path, PathBuf};

use claimgate::program::Program;
use claimgate::{CheckLimits, Limits, Policy, SourceMap};
use claimgate_jose::{KeyLimits, KeySet};

/// Where an engine's policies come from.
#[derive(Clone, Debug)]
#[non_exhaustive]
pub enum PolicySource {
    /// Every `*.cg` file under a directory.
    Dir(PathBuf),
    /// These files (directories are walked as for `Dir`).
    Files(Vec<PathBuf>),
    /// `(name, text)` pairs; `jwks_file` and `ca_file` paths are relative to the folder part
    /// of the name (`("conf/p.cg", ...)` reads `jwks_file = "k.json"` from `conf/k.json`), as
    /// if the text were that file.
    Text(Vec<(String, String)>),
    /// A compiled set (`claimgate compile -o set.cgb`).
    Compiled(PathBuf),
}

impl PolicySource {
    /// Every `*.cg` file under `path`.
    pub fn dir(path: impl Into<PathBuf>) -> PolicySource {
        PolicySource::Dir(path.into())
    }

    /// Policy text, as `(file name, text)` pairs.
    pub fn text<N: Into<String>, T: Into<String>>(files: impl IntoIterator<Item = (N, T)>) -> PolicySource {
        PolicySource::Text(files.into_iter().map(|(n, t)| (n.into(), t.into())).collect())
    }
}

/// Why a policy set could not be loaded. The current set (if any) keeps serving.
#[derive(Clone, Debug, thiserror::Error)]
#[non_exhaustive]
pub enum LoadError {
    /// The policies have problems; `rendered` shows them as `claimgate check` does.
    #[error("the policies have {count} problem{}:\n{rendered}", if *count == 1 { "" } else { "s" })]
    Policies {
        /// How many errors.
        count: usize,
        /// Every diagnostic, rendered with its source lines.
        rendered: String,
    },
    /// A file could not be read.
    #[error("{0}")]
    Io(String),
    /// A compiled set could not be loaded.
    #[error("cannot load `{path}`: {error}")]
    Compiled {
        /// The file.
        path: String,
        /// Why.
        error: String,
    },
    /// A provider's keys could not be loaded (a `jwks_file`, a `ca_file`, or, with
    /// `require_keys_at_start`, the first fetch).
    #[error("provider `{provider}`: {error}")]
    Keys {
        /// The provider.
        provider: String,
        /// Why.
        error: String,
    },
    /// The service's own check ([`crate::EngineBuilder::check_each_set`]) refused the set.
    #[error("{0}")]
    Refused(String),
}

/// The largest policy file read (the parser's own bound is applied after reading).
const MAX_POLICY_FILE: u64 = 16 << 20;
/// The largest compiled set read.
const MAX_COMPILED_FILE: u64 = 64 << 20;

/// Reads at most `max` bytes of `path` (`-`: standard input), enforcing the bound while reading;
/// a larger input is an error naming the bound, never silently cut.
pub fn read_bounded(path: &Path, max: u64) -> Result<Vec<u8>, String> {
    if path == Path::new("-") {
        let mut bytes = Vec::new();
        std::io::stdin()
            .take(max.saturating_add(1))
            .read_to_end(&mut bytes)
            .map_err(|e| format!("cannot read standard input: {e}"))?;
        if bytes.len() as u64 > max {
            return Err(format!("standard input is larger than {max} bytes"));
        }
        return Ok(bytes);
    }
    let file = std::fs::File::open(path).map_err(|e| format!("cannot read `{}`: {e}", path.display()))?;
    let mut bytes = Vec::new();
    file.take(max.saturating_add(1))
        .read_to_end(&mut bytes)
        .map_err(|e| format!("cannot read `{}`: {e}", path.display()))?;
    if bytes.len() as u64 > max {
        return Err(format!("`{}` is larger than {max} bytes", path.display()));
    }
    Ok(bytes)
}

/// Reads `path` relative to the directory of the file named `base`.
pub(crate) fn read_relative(base: &str, path: &str, max: u64) -> Result<Vec<u8>, String> {
    let dir = Path::new(base).parent().unwrap_or(Path::new("."));
    read_bounded(&dir.join(path), max)
}

/// The `*.cg` files of the given paths, sorted; each directory is walked once (by its
/// canonical path), so symbolic link loops end.
pub fn policy_files(paths: &[PathBuf]) -> Result<Vec<PathBuf>, String> {
    let mut files = Vec::new();
    let mut seen = std::collections::HashSet::new();
    for path in paths {
        let metadata = std::fs::metadata(path).map_err(|e| format!("cannot read `{}`: {e}", path.display()))?;
        if metadata.is_dir() {
            walk(path, &mut files, &mut seen)?;
        } else {
            files.push(path.clone());
        }
    }
    files.sort();
    // A file reached twice (named twice, or through a link) is read once: the first path, in
    // path order, names it.
    let mut read = std::collections::HashSet::new();
    files.retain(|file| read.insert(file.canonicalize().unwrap_or_else(|_| file.clone())));
    if files.is_empty() {
        return Err("no policy files (`*.cg`) found".to_string());
    }
    Ok(files)
}

fn walk(dir: &Path, files: &mut Vec<PathBuf>, seen: &mut std::collections::HashSet<PathBuf>) -> Result<(), String> {
    let canonical = dir.canonicalize().map_err(|e| format!("cannot read `{}`: {e}", dir.display()))?;
    if !seen.insert(canonical) {
        return Ok(());
    }
    let entries = std::fs::read_dir(dir).map_err(|e| format!("cannot read `{}`: {e}", dir.display()))?;
    for entry in entries {
        let entry = entry.map_err(|e| format!("cannot read `{}`: {e}", dir.display()))?;
        let path = entry.path();
        let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("");
        if name.starts_with('.') || name == "target" || name == "node_modules" {
            continue;
        }
        // Symbolic links to directories are not followed (a link may lead out of the tree or
        // back into it); name such a directory explicitly to include it.
        if entry.file_type().is_ok_and(|t| t.is_symlink()) && path.is_dir() {
            continue;
        }
        if path.is_dir() {
            walk(&path, files, seen)?;
        } else if path.extension().is_some_and(|e| e == "cg") {
            files.push(path);
        }
    }
    Ok(())
}

/// Parses and checks policy files as `claimgate check` does, `jwks_file`s included.
pub fn load_policy(paths: &[PathBuf], key_limits: &KeyLimits) -> Result<Policy, String> {
    let files = policy_files(paths)?;
    let mut sources = SourceMap::new();
    for file in &files {
        let bytes = read_bounded(file, MAX_POLICY_FILE)?;
        let text = String::from_utf8(bytes).map_err(|_| format!("`{}` is not UTF-8 text", file.display()))?;
        sources.add(file.display().to_string(), text);
    }
    Ok(check(sources, key_limits))
}

fn check(sources: SourceMap, key_limits: &KeyLimits) -> Policy {
    let check_limits = CheckLimits { keys: *key_limits, ..CheckLimits::default() };
    let mut policy = Policy::load(sources, &Limits::default(), &check_limits);
    policy.check_key_files(|policy_file, key_file| {
        read_relative(policy_file, key_file, (key_limits.max_bytes as u64).saturating_add(1))
    });
    policy
}

type KeyFileReader = Box<dyn Fn(&str, &str) -> Result<KeySet, String> + Send + Sync>;

/// The compiled program of a source, and a reader of its `jwks_file`s (given the policy file
/// name and the path as written).
pub(crate) fn program(source: &PolicySource, key_limits: &KeyLimits) -> Result<(Program, KeyFileReader), LoadError> {
    let limits = *key_limits;
    let reader: KeyFileReader = Box::new(move |base, path| {
        let bytes = read_relative(base, path, limits.max_bytes as u64)?;
        KeySet::from_jwks_json_with_limits(&bytes, &limits)
            .map_err(|e| format!("`{path}` is not a usable JWK Set: {e}"))
    });
    let policy = match source {
        PolicySource::Compiled(path) => {
            let bytes = read_bounded(path, MAX_COMPILED_FILE).map_err(LoadError::Io)?;
            let program = Program::from_bytes(&bytes)
                .map_err(|e| LoadError::Compiled { path: path.display().to_string(), error: e.to_string() })?;
            return Ok((program, reader));
        }
        PolicySource::Dir(dir) => load_policy(std::slice::from_ref(dir), key_limits).map_err(LoadError::Io)?,
        PolicySource::Files(files) => load_policy(files, key_limits).map_err(LoadError::Io)?,
        PolicySource::Text(files) => {
            let mut sources = SourceMap::new();
            for (name, text) in files {
                sources.add(name.clone(), text.as_str());
            }
            check(sources, key_limits)
        }
    };
    if policy.has_errors() {
        let count = policy.diagnostics().iter().filter(|d| d.is_error()).count();
        return Err(LoadError::Policies { count, rendered: policy.render_diagnostics(false) });
    }
    let program = policy.compile().map_err(|e| LoadError::Io(format!("internal error while compiling: {e}")))?;
    Ok((program, reader))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_largest_bounds_read_whole_files_without_overflow() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("p.cg");
        std::fs::write(&path, "# a policy\n").unwrap();
        // `max + 1` overflowed: a panic in debug builds, an empty read in release ones.
        assert_eq!(read_bounded(&path, u64::MAX).unwrap(), b"# a policy\n");
        assert_eq!(read_bounded(&path, 11).unwrap().len(), 11);
        assert_eq!(read_bounded(&path, 10).unwrap_err(), format!("`{}` is larger than 10 bytes", path.display()));
    }
}

//! The `claimgate` command.
//!
//! Exit codes are part of the interface: 0 when everything is fine, 1 when the policies (or the
//! formatting) have problems, 2 for usage and I/O errors.

use std::io::{IsTerminal, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::{Parser, Subcommand, ValueEnum};

#[macro_use]
mod output;
mod evaluate;
mod serve;
mod token;

use claimgate::diagnostic::{self, RenderOptions};
use claimgate::{Policy, SourceMap};

// See the dependency's comment in Cargo.toml: the server's per-login allocations.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[derive(Parser)]
#[command(name = "claimgate", version, about = "Policies for workload JWT logins: check, format, test, evaluate")]
struct Cli {
    /// When to color diagnostics.
    #[arg(long, value_enum, default_value_t = Color::Auto, global = true)]
    color: Color,
    /// How to print diagnostics: for people, or as JSON for editors and CI annotations.
    #[arg(long, value_enum, default_value_t = Format::Human, global = true)]
    format: Format,
    #[command(subcommand)]
    command: Command,
}

#[derive(Clone, Copy, ValueEnum)]
enum Color {
    Auto,
    Always,
    Never,
}

#[derive(Clone, Copy, PartialEq, Eq, ValueEnum)]
pub(crate) enum Format {
    Human,
    Json,
}

#[derive(Subcommand)]
enum Command {
    /// Parse and check policy files; report every problem found.
    Check {
        /// Fail (exit 1) on warnings too, for CI: W-codes flag conditions that are almost
        /// certainly mistakes.
        #[arg(long)]
        deny_warnings: bool,
        /// Policy files or directories (searched for `*.cg` files). Defaults to the current directory.
        paths: Vec<PathBuf>,
    },
    /// Run the tests written inside policy files; ends with `N passed, M failed`.
    Test {
        /// Policy files or directories. Defaults to the current directory.
        paths: Vec<PathBuf>,
    },
    /// Decide whether claims may log in, and explain why. The claims are taken as given: no
    /// signature is checked.
    Eval {
        /// Policy files or directories forming the policy set.
        #[arg(long = "policy", required = true)]
        policies: Vec<PathBuf>,
        /// The role to log in as; without it, the first role that allows is chosen.
        #[arg(long)]
        role: Option<String>,
        /// The claims as a JSON file, or `-` for standard input (no signature is checked).
        #[arg(long, conflicts_with = "token", required_unless_present = "token")]
        claims: Option<PathBuf>,
        /// A signed token (compact JWS), or `-` for standard input. Its signature is verified
        /// with the keys of the provider its issuer selects, and only with those.
        #[arg(long)]
        token: Option<String>,
        /// `PROVIDER=FILE`: verify that provider's tokens with the keys in FILE (a JWK Set, a JWK
        /// or PEM public keys) instead of its own key source; repeatable. A bare `FILE` is taken
        /// only when the policies have exactly one provider.
        #[arg(long, value_name = "PROVIDER=FILE", requires = "token")]
        keys: Vec<String>,
        /// The time to decide at: seconds since the Unix epoch or RFC 3339. Defaults to now.
        #[arg(long)]
        now: Option<String>,
        /// Show every check of every role tried.
        #[arg(long)]
        explain: bool,
    },
    /// Compile policies to a binary policy set for services and the browser, or show the bytecode.
    Compile {
        /// Policy files or directories. Defaults to the current directory.
        paths: Vec<PathBuf>,
        /// Write the compiled set here (conventionally `*.cgb`).
        #[arg(short = 'o', long)]
        output: Option<PathBuf>,
        /// Print the disassembly of the compiled set.
        #[arg(long)]
        disasm: bool,
    },
    /// Show a token's header and payload as JSON, like jwt.io. The signature is NOT verified.
    Decode {
        /// The compact token, or `-` (or nothing) to read it from standard input.
        token: Option<String>,
    },
    /// Verify a token's signature with the given keys; print its header, payload and the key used.
    Verify {
        /// A JWK Set, a JWK or PEM public keys / certificates.
        #[arg(long)]
        keys: PathBuf,
        /// Algorithms to accept, comma-separated (default: all nine supported).
        #[arg(long, value_delimiter = ',')]
        alg: Vec<String>,
        /// The compact token, or `-` (or nothing) to read it from standard input.
        token: Option<String>,
    },
    /// Run the authenticator server: Conjur, Vault and Strongbox login endpoints deciding with
    /// the policies, issuing short-lived tokens. SIGHUP (or a change in DIR) reloads the
    /// policies; SIGTERM drains requests in flight and stops.
    Serve {
        /// The policy folder.
        #[arg(long, value_name = "DIR")]
        policies: PathBuf,
        /// The server's settings (TOML); see docs/serve.md. Without it, the defaults: loopback
        /// on port 8200, data in ./claimgate-data.
        #[arg(long, value_name = "FILE")]
        config: Option<PathBuf>,
        /// Listen here instead of the configured address.
        #[arg(long, value_name = "ADDR")]
        listen: Option<std::net::SocketAddr>,
    },
    /// Revoke live tokens issued by `claimgate serve`, in the store its configuration names,
    /// while the servers run: their next use is refused on every node. Give at least one of
    /// the fields; a token must match all that are given. Batch tokens and Conjur access tokens
    /// are not stored: they cannot be revoked and live until they expire.
    Revoke {
        /// The server's settings (TOML), for its store: the data folder, or the PostgreSQL URL.
        #[arg(long, value_name = "FILE")]
        config: PathBuf,
        /// The token with this accessor (as `lookup-self` and the login answer show it).
        #[arg(long)]
        accessor: Option<String>,
        /// Tokens of logins through this provider.
        #[arg(long)]
        provider: Option<String>,
        /// Tokens issued by this role.
        #[arg(long)]
        role: Option<String>,
        /// Tokens issued to this identity.
        #[arg(long)]
        identity: Option<String>,
    },
    /// Format policy files in the canonical layout.
    Fmt {
        /// Report files that are not formatted instead of rewriting them (exit 1 if any).
        #[arg(long)]
        check: bool,
        /// Policy files or directories; `-` formats standard input to standard output.
        paths: Vec<PathBuf>,
    },
}

/// A failure that is not about the policies or tokens themselves: exit code 2.
pub(crate) struct UsageError(pub(crate) String);

impl<E: std::fmt::Display> From<E> for UsageError {
    fn from(error: E) -> Self {
        UsageError(error.to_string())
    }
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let color = match cli.color {
        Color::Always => true,
        Color::Never => false,
        Color::Auto => std::io::stderr().is_terminal() && std::env::var_os("NO_COLOR").is_none(),
    };
    let output = Output { color, format: cli.format };
    let output_format = cli.format;
    let result = match cli.command {
        Command::Check { paths, deny_warnings } => check(&paths, deny_warnings, &output),
        Command::Fmt { check, paths } => fmt(&paths, check, &output),
        Command::Test { paths } => evaluate::test(&paths, &output),
        Command::Eval { policies, role, claims, token, keys, now, explain } => {
            let input = match (claims, token) {
                (Some(claims), _) => evaluate::Input::Claims(claims),
                (None, Some(token)) => evaluate::Input::Token { token, keys },
                _ => {
                    eprintln!("error: give --claims FILE, or --token TOKEN");
                    return ExitCode::from(2);
                }
            };
            evaluate::eval(&policies, role.as_deref(), input, now.as_deref(), explain, &output)
        }
        Command::Compile { paths, output: out, disasm } => evaluate::compile(&paths, out.as_deref(), disasm, &output),
        Command::Decode { token } => token::decode(token.as_deref()),
        Command::Verify { keys, alg, token } => token::verify(&keys, &alg, token.as_deref(), output.format),
        Command::Serve { policies, config, listen } => serve::serve(policies, config.as_deref(), listen),
        Command::Revoke { config, accessor, provider, role, identity } => {
            let mut filter = claimgate_server::store::TokenFilter::new();
            if let Some(accessor) = accessor {
                filter = filter.accessor(accessor);
            }
            if let Some(provider) = provider {
                filter = filter.provider(provider);
            }
            if let Some(role) = role {
                filter = filter.role(role);
            }
            if let Some(identity) = identity {
                filter = filter.identity(identity);
            }
            serve::revoke(&config, &filter, output.format)
        }
    };
    match result {
        Ok(code) => code,
        Err(UsageError(message)) => {
            eprintln!("error: {}", output::text(&message));
            if output_format == Format::Json {
                // Tools reading stdout get one JSON document whatever happened.
                out!("{}", output::json(&serde_json::json!({ "error": message })));
            }
            ExitCode::from(2)
        }
    }
}

pub(crate) struct Output {
    pub(crate) color: bool,
    pub(crate) format: Format,
}

impl Output {
    /// Prints diagnostics: rendered on stderr for people, a JSON array on stdout for tools.
    pub(crate) fn diagnostics(&self, diagnostics: &[claimgate::Diagnostic], sources: &SourceMap) {
        match self.format {
            Format::Human => {
                let rendered = diagnostic::render(
                    diagnostics,
                    sources,
                    RenderOptions { color: self.color, ..RenderOptions::default() },
                );
                // Policy text can hold bidirectional controls ("trojan source"): shown escaped.
                eprint!("{}", output::rendered(&rendered));
            }
            Format::Json => {
                let json = diagnostic::to_json(diagnostics, sources);
                out!("{}", crate::output::json(&json));
            }
        }
    }
}

/// The largest policy file read.
const MAX_POLICY_FILE: u64 = 16 << 20;

/// Loads and checks a policy set as services load it (`claimgate_engine::load_policy`): the
/// `*.cg` files under the paths, sorted by path (policy-set order decides automatic role
/// selection), each directory walked once (symbolic link loops end), hidden directories,
/// `target` and `node_modules` skipped, every file read with its bound enforced while reading.
/// Without paths: `policies/` when it exists, else the current directory.
pub(crate) fn load(paths: &[PathBuf]) -> Result<Policy, UsageError> {
    let defaults = [if Path::new("policies").is_dir() { PathBuf::from("policies") } else { PathBuf::from(".") }];
    let paths = if paths.is_empty() { &defaults[..] } else { paths };
    claimgate_engine::load_policy(paths, &claimgate_jose::KeyLimits::default()).map_err(UsageError)
}

fn check(paths: &[PathBuf], deny_warnings: bool, output: &Output) -> Result<ExitCode, UsageError> {
    let policy = load(paths)?;
    let diagnostics = policy.diagnostics();
    output.diagnostics(&diagnostics, policy.sources());
    let errors = diagnostics.iter().filter(|d| d.is_error()).count();
    let warnings = diagnostics.len() - errors;
    let set = policy.set();
    if output.format == Format::Human {
        let found = match warnings {
            0 => "no problems".to_string(),
            1 => "1 warning".to_string(),
            n => format!("{n} warnings"),
        };
        if errors == 0 && warnings > 0 && deny_warnings {
            eprintln!(
                "error: {found} (--deny-warnings) in {} file{}",
                policy.sources().len(),
                plural(policy.sources().len())
            );
        } else if errors == 0 {
            eprintln!(
                "checked {} file{}: {} provider{}, {} role{}, {} test{}, {found}",
                policy.sources().len(),
                plural(policy.sources().len()),
                set.providers.len(),
                plural(set.providers.len()),
                set.roles.len(),
                plural(set.roles.len()),
                set.tests.len(),
                plural(set.tests.len()),
            );
        } else {
            eprintln!(
                "error: {errors} problem{} found in {} file{}",
                plural(errors),
                policy.sources().len(),
                plural(policy.sources().len())
            );
        }
    }
    let failed = errors > 0 || (deny_warnings && warnings > 0);
    Ok(if failed { ExitCode::from(1) } else { ExitCode::SUCCESS })
}

pub(crate) fn plural(n: usize) -> &'static str {
    if n == 1 { "" } else { "s" }
}

fn fmt(paths: &[PathBuf], check_only: bool, output: &Output) -> Result<ExitCode, UsageError> {
    if paths.len() == 1 && paths[0] == Path::new("-") {
        let bytes = claimgate_engine::read_bounded(Path::new("-"), MAX_POLICY_FILE).map_err(UsageError)?;
        let text = String::from_utf8(bytes).map_err(|_| UsageError("standard input is not UTF-8 text".to_string()))?;
        return match claimgate::format_source("<stdin>", &text) {
            Ok(formatted) => {
                std::io::stdout().write_all(formatted.as_bytes())?;
                Ok(ExitCode::SUCCESS)
            }
            Err(error) => {
                output.diagnostics(error.diagnostics(), error.sources());
                Ok(ExitCode::from(1))
            }
        };
    }
    let defaults = [if Path::new("policies").is_dir() { PathBuf::from("policies") } else { PathBuf::from(".") }];
    let files =
        claimgate_engine::policy_files(if paths.is_empty() { &defaults[..] } else { paths }).map_err(UsageError)?;
    let mut failed = 0;
    let mut changed = 0;
    for file in &files {
        let bytes = claimgate_engine::read_bounded(file, MAX_POLICY_FILE).map_err(UsageError)?;
        let text =
            String::from_utf8(bytes).map_err(|_| UsageError(format!("`{}` is not UTF-8 text", file.display())))?;
        let name = file.display().to_string();
        match claimgate::format_source(&name, &text) {
            Err(error) => {
                output.diagnostics(error.diagnostics(), error.sources());
                failed += 1;
            }
            Ok(formatted) if formatted != text => {
                changed += 1;
                if check_only {
                    eprintln!("not formatted: {name}");
                } else {
                    std::fs::write(file, formatted).map_err(|e| UsageError(format!("cannot write `{name}`: {e}")))?;
                    eprintln!("formatted: {name}");
                }
            }
            Ok(_) => {}
        }
    }
    if check_only && changed > 0 {
        eprintln!("{changed} of {} file{} not formatted; run `claimgate fmt` to fix", files.len(), plural(files.len()));
    }
    Ok(if failed > 0 || (check_only && changed > 0) { ExitCode::from(1) } else { ExitCode::SUCCESS })
}

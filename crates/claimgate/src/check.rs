//! The checker: from syntax trees to the checked [`PolicySet`], reporting every problem it finds
//! (unknown and duplicate names, unknown, duplicate, missing and conflicting settings, values of
//! the wrong kind, bad durations, globs, regexes, keys, URLs, CIDRs, refused algorithms and
//! malformed tests) rather than stopping at the first.

use std::collections::HashMap;

use claimgate_jose::{Algorithm, AlgorithmError, AlgorithmSet};
use compact_str::CompactString;

use crate::ast::*;
use crate::diagnostic::{Code, Diagnostic};
use crate::glob::Glob;
use crate::model::*;
use crate::parser::Parsed;
use crate::source::{FileId, Span};

/// Bounds on what a policy may ask the engine to build.
#[derive(Clone, Copy, Debug)]
pub struct CheckLimits {
    /// Compiled size limit of one regular expression (the regex crate's `size_limit`).
    pub regex_size_limit: usize,
    /// Longest glob pattern, in bytes.
    pub max_glob_len: usize,
    /// Most roles in one policy set.
    pub max_roles: usize,
    /// Bounds on the keys a policy holds inline (`jwks`, `jwk`, `pem`, `ca_pem`) or names in a
    /// `jwks_file`.
    pub keys: claimgate_jose::KeyLimits,
}

impl Default for CheckLimits {
    fn default() -> Self {
        CheckLimits {
            regex_size_limit: 256 * 1024,
            max_glob_len: 4096,
            max_roles: 100_000,
            keys: claimgate_jose::KeyLimits::default(),
        }
    }
}

/// Key input over a limit is a limit error (E0002) like any other limit; anything else wrong with
/// a key makes it an invalid key.
pub(crate) fn key_error_code(error: &claimgate_jose::KeyError) -> Code {
    match error {
        claimgate_jose::KeyError::TooLarge { .. } | claimgate_jose::KeyError::TooManyKeys { .. } => Code::LimitExceeded,
        _ => Code::InvalidKey,
    }
}

/// What to do about key input over a limit.
pub(crate) const KEY_LIMIT_HELP: &str =
    "publish fewer or smaller keys, or raise the key limits of the program that loads the policy";

/// The outcome of checking: the policy set (complete only when there are no errors) and every
/// diagnostic found.
#[derive(Debug)]
pub struct Checked {
    pub set: PolicySet,
    pub diagnostics: Vec<Diagnostic>,
}

impl Checked {
    pub fn has_errors(&self) -> bool {
        self.diagnostics.iter().any(Diagnostic::is_error)
    }
}

/// Checks the parsed files of one policy set together. The conditions of every role move from
/// the syntax trees into the checked set (they are not copied), so the trees are left without
/// them; everything else in the trees is untouched.
pub fn check(files: &mut [Parsed], limits: &CheckLimits) -> Checked {
    // Take each role's conditions out first (from its first `require` block, the one the
    // checker reads), so that the passes below can borrow the trees freely.
    let mut conditions: Vec<Vec<Option<Vec<Condition>>>> = files
        .iter_mut()
        .map(|parsed| {
            parsed
                .ast
                .items
                .iter_mut()
                .map(|item| {
                    if item.kind != TopKind::Role && item.kind != TopKind::Provider {
                        return None;
                    }
                    item.body.items.iter_mut().find_map(|i| match i {
                        Item::Require(require) => Some(std::mem::take(&mut require.conditions)),
                        _ => None,
                    })
                })
                .collect()
        })
        .collect();
    let mut checker = Checker { diagnostics: Vec::new(), limits, conditions: &mut conditions };
    let set = checker.policy_set(files);
    let mut diagnostics = checker.diagnostics;
    diagnostics.extend(contains_on_strings(&set));
    diagnostics.extend(contradictions_and_open_roles(&set));
    diagnostics.sort_by_key(|d| (d.file, d.span.start));
    Checked { set, diagnostics }
}

/// W0101 for `contains` (without `words`) on a claim that the policy's own tests give as a
/// string: `contains` tests lists and can never hold there. (`claims.scope` is flagged where
/// the condition is checked, tests or not.)
fn contains_on_strings(set: &PolicySet) -> Vec<Diagnostic> {
    fn walk<'c>(condition: &'c Condition, out: &mut Vec<&'c Comparison>) {
        match &condition.kind {
            ConditionKind::Compare(comparison) => out.push(comparison),
            ConditionKind::Not(inner) => walk(inner, out),
            ConditionKind::Group(group) => group.conditions.iter().for_each(|c| walk(c, out)),
        }
    }
    let mut diagnostics = Vec::new();
    let providers = set.providers.iter().map(|p| (&p.conditions, p.file));
    for (conditions, file) in providers.chain(set.roles.iter().map(|r| (&r.conditions, r.file))) {
        let mut comparisons = Vec::new();
        conditions.iter().for_each(|c| walk(c, &mut comparisons));
        for comparison in comparisons {
            let is_contains = comparison.op.is_contains();
            let is_scope = matches!(comparison.path.segments.as_slice(), [Segment::Key(k)] if k == "scope");
            if !is_contains || comparison.words || is_scope {
                continue;
            }
            let Some(test) = set.tests.iter().find(|t| {
                let claims = t.claims_json.as_object();
                claims.and_then(|c| crate::reference::resolve(c, &comparison.path)).is_some_and(|v| v.is_string())
            }) else {
                continue;
            };
            let name = crate::fmt::path_text(&comparison.path);
            diagnostics.push(
                Diagnostic::warning(
                    Code::StringAsList,
                    file,
                    comparison.span,
                    format!("`{name}` is a string in test `{}`; `contains` tests lists", test.name),
                )
                .label("never holds on a string")
                .help(format!(
                    "for a space-separated string, write `{name} words contains ...` (it reads a string as its words and a list as its items)"
                )),
            );
        }
    }
    diagnostics
}

struct Checker<'l> {
    diagnostics: Vec<Diagnostic>,
    limits: &'l CheckLimits,
    /// Conditions taken from the roles, by file and item index.
    conditions: &'l mut Vec<Vec<Option<Vec<Condition>>>>,
}

/// What a name refers to, for duplicate and unknown-name reports.
struct Definition<'a> {
    file: FileId,
    item: &'a TopItem,
    /// Position in `files` and in the file's items.
    index: (usize, usize),
}

impl<'l> Checker<'l> {
    fn report(&mut self, diagnostic: Diagnostic) {
        self.diagnostics.push(diagnostic);
    }

    fn policy_set(&mut self, files: &[Parsed]) -> PolicySet {
        // Pass 1: names, so that references can point forward and across files.
        let mut providers: Vec<Definition<'_>> = Vec::new();
        let mut roles: Vec<Definition<'_>> = Vec::new();
        let mut tests: Vec<Definition<'_>> = Vec::new();
        let mut seen: HashMap<(TopKind, &str), (FileId, Span)> = HashMap::new();
        for (file_index, parsed) in files.iter().enumerate() {
            let file = parsed.ast.file;
            for (item_index, item) in parsed.ast.items.iter().enumerate() {
                if let Some(&(first_file, first_span)) = seen.get(&(item.kind, item.name.name.as_str())) {
                    let kind = item.kind.keyword();
                    self.report(
                        Diagnostic::error(
                            Code::DuplicateName,
                            file,
                            item.name.span,
                            format!("{kind} `{}` is defined more than once", item.name.name),
                        )
                        .label("defined again here")
                        .help(format!("{kind} names are unique across all files of a policy set; rename one"))
                        .related(first_file, first_span, "first defined here"),
                    );
                    continue;
                }
                seen.insert((item.kind, item.name.name.as_str()), (file, item.name.span));
                let definition = Definition { file, item, index: (file_index, item_index) };
                match item.kind {
                    TopKind::Provider => providers.push(definition),
                    TopKind::Role => roles.push(definition),
                    TopKind::Test => tests.push(definition),
                }
            }
        }
        if roles.len() > self.limits.max_roles
            && let Some(role) = roles.get(self.limits.max_roles)
        {
            self.report(Diagnostic::error(
                Code::LimitExceeded,
                role.file,
                role.item.name.span,
                format!("the policy set has {} roles, more than the limit of {}", roles.len(), self.limits.max_roles),
            ));
        }
        let unparsed: Vec<(TopKind, &str)> =
            files.iter().flat_map(|f| f.unparsed_names.iter().map(|(k, n)| (*k, n.as_str()))).collect();
        let names = Names {
            providers: providers.iter().map(|d| d.item.name.name.as_str()).collect(),
            roles: roles.iter().map(|d| d.item.name.name.as_str()).collect(),
            unparsed,
        };

        // Pass 2: each item on its own.
        let mut set = PolicySet::default();
        let mut issuers: HashMap<CompactString, (FileId, Span)> = HashMap::new();
        for definition in &providers {
            let (f, i) = definition.index;
            let conditions =
                self.conditions.get_mut(f).and_then(|c| c.get_mut(i)).and_then(Option::take).unwrap_or_default();
            let provider = self.provider(definition.file, definition.item, conditions);
            for issuer in &provider.issuers {
                if let Some(&(first_file, first_span)) = issuers.get(issuer.value.as_str()) {
                    self.report(
                        Diagnostic::error(
                            Code::DuplicateIssuer,
                            definition.file,
                            issuer.span,
                            format!("issuer `{}` is accepted by two providers", issuer.value),
                        )
                        .label("accepted again here")
                        .help("tokens are matched to a provider by issuer; keep each issuer in one provider")
                        .related(first_file, first_span, "first accepted here"),
                    );
                } else {
                    issuers.insert(issuer.value.clone(), (definition.file, issuer.span));
                }
            }
            set.providers.push(provider);
        }
        for definition in &roles {
            let (f, i) = definition.index;
            let conditions =
                self.conditions.get_mut(f).and_then(|c| c.get_mut(i)).and_then(Option::take).unwrap_or_default();
            if let Some(role) = self.role(definition.file, definition.item, conditions, &names) {
                set.roles.push(role);
            }
        }
        for definition in &tests {
            if let Some(test) = self.test(definition.file, definition.item, &names) {
                set.tests.push(test);
            }
        }
        set
    }

    // -----------------------------------------------------------------------------------------
    // Providers

    fn provider(&mut self, file: FileId, item: &TopItem, conditions: Vec<Condition>) -> Provider {
        let fields = self.fields(
            file,
            &item.body,
            "provider",
            &[
                "description",
                "issuer",
                "algorithms",
                "clock_skew",
                "required_time_claims",
                "max_token_age",
                "max_lifetime",
                "typ",
                "verbose_logging",
            ],
            &["keys"],
            true,
        );
        let description = fields.setting("description").and_then(|s| self.string(file, &s.value));
        for condition in &conditions {
            self.condition(file, condition);
        }
        let issuers = match fields.setting("issuer") {
            Some(s) => self.string_or_strings(file, &s.value, "an issuer URL").unwrap_or_default(),
            None => {
                self.missing(
                    &fields,
                    file,
                    item,
                    "issuer",
                    "add the issuer exactly as it appears in the `iss` claim: `issuer = \"https://...\"`",
                );
                Vec::new()
            }
        };
        for issuer in &issuers {
            if issuer.value.is_empty() {
                self.report(Diagnostic::error(Code::WrongType, file, issuer.span, "issuer is empty"));
            }
        }
        let keys = match fields.block("keys") {
            Some(block) => self.keys(file, block),
            None => {
                self.missing(
                    &fields,
                    file,
                    item,
                    "keys",
                    "say where the verification keys come from: `keys { jwks_url = \"https://...\" }`",
                );
                None
            }
        };
        let algorithms = match fields.setting("algorithms") {
            Some(s) => self.algorithms(file, &s.value),
            None => AlgorithmSet::default(),
        };
        let clock_skew =
            fields.setting("clock_skew").and_then(|s| self.duration(file, &s.value)).unwrap_or(DEFAULT_CLOCK_SKEW);
        if let Some(s) = fields.setting("clock_skew")
            && clock_skew > 3600
        {
            self.report(
                Diagnostic::error(Code::InvalidDuration, file, s.value.span, "clock skew is more than an hour")
                    .help("a skew this large keeps expired tokens valid; clocks of real issuers agree within minutes"),
            );
        }
        let required_time_claims = match fields.setting("required_time_claims") {
            Some(s) => self.time_claims(file, &s.value),
            None => TimeClaims::default(),
        };
        let max_token_age = fields.setting("max_token_age").and_then(|s| self.positive_duration(file, &s.value));
        let max_lifetime = fields.setting("max_lifetime").and_then(|s| self.positive_duration(file, &s.value));
        let typ = fields.setting("typ").and_then(|s| self.string(file, &s.value)).map(|t| t.value);
        let verbose_logging = fields.setting("verbose_logging").is_some_and(|s| self.bool(file, &s.value));
        Provider {
            name: item.name.name.clone(),
            file,
            span: item.name.span,
            description: description.map(|d| d.value),
            issuers,
            keys: keys.unwrap_or(KeySource::Pem(Vec::new())),
            algorithms,
            clock_skew,
            required_time_claims,
            max_token_age,
            max_lifetime,
            typ,
            verbose_logging,
            conditions,
        }
    }

    /// `true` or `false`; anything else is reported (and counts as `false`).
    fn bool(&mut self, file: FileId, value: &Value) -> bool {
        match value.terms.as_slice() {
            [Term::Bool(b)] => b.value,
            _ => {
                self.wrong_type_value(file, value, "`true` or `false`");
                false
            }
        }
    }

    fn keys(&mut self, file: FileId, block: &Block) -> Option<KeySource> {
        const SOURCES: [&str; 6] = ["pem", "jwk", "jwks", "jwks_file", "jwks_url", "discovery_url"];
        const FETCH: [&str; 5] = ["refresh", "timeout", "cache_max_age", "ca_pem", "ca_file"];
        if let Some(label) = &block.label {
            self.report(
                Diagnostic::error(Code::Syntax, file, label.span, "`keys` takes no label")
                    .help("write the source inside the block: `keys { jwks_url = \"...\" }`"),
            );
        }
        let allowed: Vec<&str> = SOURCES.iter().chain(FETCH.iter()).copied().collect();
        let fields = self.fields(file, &block.body, "keys", &allowed, &[], false);
        let mut present: Vec<&Setting> = SOURCES.iter().filter_map(|name| fields.setting(name)).collect();
        present.sort_by_key(|s| s.span.start);
        let source_setting = match present.as_slice() {
            [] => {
                self.report(
                    Diagnostic::error(Code::MissingSetting, file, block.name.span, "`keys` names no key source")
                        .help("add one of `pem`, `jwk`, `jwks`, `jwks_file`, `jwks_url` or `discovery_url`"),
                );
                return None;
            }
            [one] => *one,
            [first, second, ..] => {
                self.report(
                    Diagnostic::error(
                        Code::ConflictingSettings,
                        file,
                        second.name.span,
                        format!(
                            "a provider has exactly one key source, but `keys` sets both `{}` and `{}`",
                            first.name.name, second.name.name
                        ),
                    )
                    .label("second key source")
                    .related(file, first.name.span, "first key source")
                    .help("to trust keys from two places, define two providers"),
                );
                *first
            }
        };
        let kind = source_setting.name.name.as_str();
        let is_remote = matches!(kind, "jwks_url" | "discovery_url");
        if !is_remote {
            for name in FETCH {
                if let Some(s) = fields.setting(name) {
                    self.report(
                        Diagnostic::error(
                            Code::ConflictingSettings,
                            file,
                            s.name.span,
                            format!("`{name}` applies only to keys fetched from a URL, not to `{kind}`"),
                        )
                        .label("not used")
                        .help("remove it, or fetch the keys with `jwks_url` or `discovery_url`"),
                    );
                }
            }
        }
        let value = &source_setting.value;
        let source = match kind {
            "pem" => {
                let blocks = self.string_or_strings(file, value, "a PEM block")?;
                for pem in &blocks {
                    self.validate_pem(file, pem);
                }
                KeySource::Pem(blocks)
            }
            "jwk" => {
                let text = self.string(file, value)?;
                self.validate_jwk(file, &text, false);
                KeySource::Jwk(text)
            }
            "jwks" => {
                let text = self.string(file, value)?;
                self.validate_jwk(file, &text, true);
                KeySource::Jwks(text)
            }
            "jwks_file" => {
                let path = self.string(file, value)?;
                if path.value.trim().is_empty() {
                    self.report(Diagnostic::error(Code::WrongType, file, path.span, "file path is empty"));
                }
                KeySource::JwksFile(path)
            }
            _ => {
                let url = self.string(file, value)?;
                self.validate_url(file, &url);
                let fetch = self.fetch(file, &fields);
                if kind == "jwks_url" { KeySource::JwksUrl(url, fetch) } else { KeySource::Discovery(url, fetch) }
            }
        };
        Some(source)
    }

    fn fetch(&mut self, file: FileId, fields: &Fields<'_>) -> Fetch {
        let refresh = fields.setting("refresh").and_then(|s| self.duration(file, &s.value)).unwrap_or(DEFAULT_REFRESH);
        let timeout = fields.setting("timeout").and_then(|s| self.duration(file, &s.value)).unwrap_or(DEFAULT_TIMEOUT);
        let cache_max_age = fields
            .setting("cache_max_age")
            .and_then(|s| self.duration(file, &s.value))
            .unwrap_or(DEFAULT_CACHE_MAX_AGE);
        if let Some(s) = fields.setting("refresh")
            && refresh < 10
        {
            self.report(
                Diagnostic::error(Code::InvalidDuration, file, s.value.span, "refresh interval is shorter than 10s")
                    .help("key sets change rarely; refetching this often only loads the issuer"),
            );
        }
        if let Some(s) = fields.setting("timeout")
            && !(1..=120).contains(&timeout)
        {
            self.report(Diagnostic::error(
                Code::InvalidDuration,
                file,
                s.value.span,
                "request timeout must be between 1s and 2m",
            ));
        }
        // Compared as they take effect, defaults included: `refresh = 48h` alone would leave the
        // default 24h cache without keys half the time.
        let explicit = fields.setting("cache_max_age").or(fields.setting("refresh"));
        if let (Some(s), true) = (explicit, cache_max_age < refresh) {
            self.report(
                Diagnostic::error(
                    Code::InvalidDuration,
                    file,
                    s.value.span,
                    format!(
                        "cache max age ({}) is shorter than the refresh interval ({})",
                        crate::reference::seconds_text(cache_max_age),
                        crate::reference::seconds_text(refresh)
                    ),
                )
                .help("a cached key set must outlive at least one refresh, or every failed refresh locks logins out"),
            );
        }
        let ca = match (fields.setting("ca_pem"), fields.setting("ca_file")) {
            (Some(pem), Some(path)) => {
                self.report(
                    Diagnostic::error(
                        Code::ConflictingSettings,
                        file,
                        path.name.span,
                        "both `ca_pem` and `ca_file` are set",
                    )
                    .related(file, pem.name.span, "`ca_pem` is set here")
                    .help("pin the CA once"),
                );
                None
            }
            (Some(pem), None) => self.string(file, &pem.value).map(|text| {
                self.validate_certificate(file, &text);
                CaSource::Pem(text)
            }),
            (None, Some(path)) => self.string(file, &path.value).map(CaSource::File),
            (None, None) => None,
        };
        Fetch { refresh, timeout, cache_max_age, ca }
    }

    fn algorithms(&mut self, file: FileId, value: &Value) -> AlgorithmSet {
        let Some(items) = self.list_of_words(file, value, "algorithm names such as `[RS256, ES256]`") else {
            return AlgorithmSet::default();
        };
        let mut set = AlgorithmSet::EMPTY;
        for (name, span) in items {
            match name.parse::<Algorithm>() {
                Ok(alg) => {
                    set.insert(alg);
                }
                Err(error) => {
                    let message = match &error {
                        AlgorithmError::Unknown(_) => format!("unknown algorithm `{name}`"),
                        other => other.to_string(),
                    };
                    let supported: Vec<&str> = Algorithm::ALL.iter().map(|a| a.name()).collect();
                    let help = match error {
                        AlgorithmError::None => "unsigned tokens can be forged by anyone; remove it".to_string(),
                        AlgorithmError::Symmetric(_) => {
                            "an HMAC secret shared with the issuer lets anyone who holds it mint tokens; claimgate verifies with public keys only".to_string()
                        }
                        _ => format!("supported: {}", supported.join(", ")),
                    };
                    self.report(
                        Diagnostic::error(Code::RefusedAlgorithm, file, span, message).label("refused").help(help),
                    );
                }
            }
        }
        if set.is_empty()
            && !self.diagnostics.iter().any(|d| d.file == file && value.span.range().contains(&(d.span.start as usize)))
        {
            self.report(
                Diagnostic::error(Code::WrongType, file, value.span, "no algorithm is allowed")
                    .help("list at least one algorithm, or remove the setting for the default list"),
            );
        }
        set
    }

    fn time_claims(&mut self, file: FileId, value: &Value) -> TimeClaims {
        let mut claims = TimeClaims { exp: false, nbf: false, iat: false };
        let Some(items) = self.list_of_words(file, value, "a list of time claims such as `[exp, iat]`") else {
            return TimeClaims::default();
        };
        for (name, span) in items {
            match name.as_str() {
                "exp" => claims.exp = true,
                "nbf" => claims.nbf = true,
                "iat" => claims.iat = true,
                _ => self.report(
                    Diagnostic::error(Code::WrongType, file, span, format!("`{name}` is not a time claim"))
                        .help("time claims are `exp`, `nbf` and `iat`"),
                ),
            }
        }
        claims
    }

    // -----------------------------------------------------------------------------------------
    // Roles

    fn role(&mut self, file: FileId, item: &TopItem, conditions: Vec<Condition>, names: &Names<'_>) -> Option<Role> {
        let fields = self.fields(
            file,
            &item.body,
            "role",
            &["description", "provider", "audience", "identity", "user", "groups", "policies", "verbose_logging"],
            &["metadata", "token"],
            true,
        );
        let description = fields.setting("description").and_then(|s| self.string(file, &s.value)).map(|t| t.value);
        let provider = match fields.setting("provider") {
            Some(s) => self.reference(file, &s.value, TopKind::Provider, names),
            None => {
                self.missing(
                    &fields,
                    file,
                    item,
                    "provider",
                    "name the provider whose tokens this role accepts: `provider = NAME`",
                );
                None
            }
        };
        let audience = match fields.setting("audience") {
            Some(s) => self.audience(file, &s.value),
            None if fields.misused.contains(&"audience") => None,
            None => {
                self.report(
                    Diagnostic::error(
                        Code::NoAudience,
                        file,
                        item.name.span,
                        format!("role `{}` does not say which audiences it accepts", item.name.name),
                    )
                    .label("no `audience` setting")
                    .help("bind the audience with `audience = \"...\"`, or write `audience = any` to accept every audience on purpose"),
                );
                None
            }
        };
        for condition in &conditions {
            self.condition(file, condition);
        }
        let identity = match fields.setting("identity") {
            Some(s) => self.template(file, &s.value),
            None => Some(Template {
                parts: vec![TemplatePart::Claim(ClaimPath {
                    segments: vec![Segment::Key("sub".into())],
                    span: item.name.span,
                })],
                span: item.name.span,
            }),
        };
        let user = fields.setting("user").and_then(|s| self.path(file, &s.value));
        let groups = fields.setting("groups").and_then(|s| match s.value.terms.as_slice() {
            [Term::Optional(path, _)] => Some((path.clone(), true)),
            _ => self.path(file, &s.value).map(|p| (p, false)),
        });
        let metadata = fields.block("metadata").map(|b| self.metadata(file, b)).unwrap_or_default();
        let policies = fields.setting("policies").map(|s| self.policies(file, &s.value)).unwrap_or_default();
        let token = fields.block("token").map(|b| self.token(file, b)).unwrap_or_default();
        let verbose_logging = fields.setting("verbose_logging").is_some_and(|s| self.bool(file, &s.value));
        Some(Role {
            name: item.name.name.clone(),
            file,
            span: item.name.span,
            description,
            provider: provider?,
            audience: audience?,
            conditions,
            identity: identity?,
            user,
            groups,
            metadata,
            policies,
            token,
            verbose_logging,
        })
    }

    fn audience(&mut self, file: FileId, value: &Value) -> Option<Audience> {
        if let [Term::Ident(word)] = value.terms.as_slice()
            && word.name == "any"
        {
            return Some(Audience::Any(word.span));
        }
        let audiences = self.string_or_strings(file, value, "an audience, a list of audiences, or `any`")?;
        if audiences.is_empty() {
            self.report(
                Diagnostic::error(Code::WrongType, file, value.span, "the audience list is empty")
                    .help("an empty list accepts no token; write `audience = any` to accept every audience"),
            );
            return None;
        }
        Some(Audience::OneOf(audiences))
    }

    fn condition(&mut self, file: FileId, condition: &Condition) {
        match &condition.kind {
            ConditionKind::Group(group) => {
                if group.conditions.is_empty() {
                    let meaning = match group.kind {
                        GroupKind::Any => "never holds",
                        GroupKind::All => "always holds",
                    };
                    self.report(
                        Diagnostic::error(
                            Code::WrongType,
                            file,
                            group.span,
                            format!("an empty `{}` group {meaning}", group.kind.keyword()),
                        )
                        .help("add conditions to the group or remove it"),
                    );
                }
                for inner in &group.conditions {
                    if let Some(message) = &inner.message {
                        let keyword = group.kind.keyword();
                        self.report(
                            Diagnostic::warning(
                                Code::MessageNeverShown,
                                file,
                                message.span,
                                format!("a message inside an `{keyword}` group is never shown"),
                            )
                            .label("a denial names the group, not this condition")
                            .help(format!("put the message on the group: `{keyword} {{ ... }} message \"...\"`")),
                        );
                    }
                    self.condition(file, inner);
                }
            }
            ConditionKind::Not(inner) => self.condition(file, inner),
            ConditionKind::Compare(comparison) => self.comparison(file, comparison),
        }
    }

    fn comparison(&mut self, file: FileId, comparison: &Comparison) {
        self.registered_claim_type(file, comparison);
        self.domain_like_path(file, &comparison.path);
        // OAuth access tokens carry `scope` as one space-separated string (RFC 8693 4.2, RFC 9068
        // 2.2.3). (`scp` is a string from Entra ID but a list from Okta, so it is not flagged.)
        let is_scope = matches!(comparison.path.segments.as_slice(), [Segment::Key(k)] if k == "scope");
        if is_scope && !comparison.words && comparison.op.is_contains() {
            let name = crate::fmt::path_text(&comparison.path);
            self.report(
                Diagnostic::warning(
                    Code::StringAsList,
                    file,
                    comparison.span,
                    format!("`{name}` is a space-separated string in OAuth access tokens; `contains` tests lists"),
                )
                .label("never holds on a string")
                .help(format!(
                    "write `{name} words contains ...`: it reads a string as its words (and a list as its items)"
                )),
            );
        }
        match &comparison.op {
            Op::Glob(pattern) | Op::ContainsGlob(pattern) => {
                if pattern.value.len() > self.limits.max_glob_len {
                    self.report(Diagnostic::error(
                        Code::LimitExceeded,
                        file,
                        pattern.span,
                        format!("glob pattern is longer than {} bytes", self.limits.max_glob_len),
                    ));
                } else if let Err(error) = Glob::new(&pattern.value) {
                    self.report(
                        Diagnostic::error(
                            Code::InvalidGlob,
                            file,
                            pattern.span,
                            format!("invalid glob pattern: {error}"),
                        )
                        .help("write `\\\\` for a literal backslash"),
                    );
                }
            }
            Op::Matches(pattern) | Op::ContainsMatches(pattern) => {
                if let Err(message) = compile_regex(&pattern.value, self.limits.regex_size_limit) {
                    self.report(
                        Diagnostic::error(
                            Code::InvalidRegex,
                            file,
                            pattern.span,
                            format!("invalid regular expression: {message}"),
                        )
                        .help("patterns use the syntax of the Rust regex crate and are anchored at both ends"),
                    );
                }
            }
            Op::Contains(literal) if comparison.words && !matches!(literal, Scalar::Str(_)) => {
                self.report(
                    Diagnostic::error(Code::WrongType, file, literal.span(), "words are strings")
                        .label("not a string")
                        .help("quote it: a scope such as `\"read\"`"),
                );
            }
            Op::Contains(Scalar::Str(word))
                if comparison.words && (word.value.is_empty() || word.value.contains(' ')) =>
            {
                self.report(
                    Diagnostic::error(Code::WrongType, file, word.span, "a word is not empty and has no space")
                        .label("never among the words")
                        .help("name one scope, such as `\"read\"`"),
                );
            }
            Op::ContainsAny(list) | Op::ContainsAll(list)
                if comparison.words
                    && list
                        .items
                        .iter()
                        .any(|i| matches!(i, Scalar::Str(w) if w.value.is_empty() || w.value.contains(' '))) =>
            {
                self.report(
                    Diagnostic::error(Code::WrongType, file, list.span, "a word is not empty and has no space")
                        .help("name one scope per item, such as `[\"read\", \"write\"]`"),
                );
            }
            Op::ContainsAny(list) | Op::ContainsAll(list)
                if comparison.words && list.items.iter().any(|i| !matches!(i, Scalar::Str(_))) =>
            {
                self.report(
                    Diagnostic::error(Code::WrongType, file, list.span, "words are strings")
                        .help("quote every item: scopes such as `[\"read\", \"write\"]`"),
                );
            }
            Op::In(list) | Op::ContainsAny(list) | Op::ContainsAll(list) if list.items.is_empty() => {
                let meaning = if matches!(comparison.op, Op::ContainsAll(_)) { "always holds" } else { "never holds" };
                self.report(Diagnostic::error(
                    Code::WrongType,
                    file,
                    list.span,
                    format!("a test against an empty list {meaning}"),
                ));
            }
            _ => {}
        }
    }

    fn template(&mut self, file: FileId, value: &Value) -> Option<Template> {
        let mut parts = Vec::new();
        for term in &value.terms {
            match term {
                Term::Str(s) => parts.push(TemplatePart::Literal(s.value.clone())),
                Term::Path(p) => parts.push(TemplatePart::Claim(p.clone())),
                other => {
                    self.wrong_type(file, other.span(), "a string or a claim path", other);
                    return None;
                }
            }
        }
        if !parts.iter().any(|p| matches!(p, TemplatePart::Claim(_))) {
            self.report(Diagnostic::error(Code::WrongType, file, value.span, "the identity reads no claim").help(
                "every token would log in as the same identity; build it from a claim: `\"prefix/\" + claims.sub`",
            ));
            return None;
        }
        Some(Template { parts, span: value.span })
    }

    fn metadata(&mut self, file: FileId, block: &Block) -> Vec<Mapping> {
        let mut mappings = Vec::new();
        let mut seen: HashMap<&str, Span> = HashMap::new();
        for item in &block.body.items {
            match item {
                Item::Setting(setting) => {
                    if let Some(first) = seen.insert(&setting.name.name, setting.name.span) {
                        self.duplicate(file, &setting.name, first);
                        continue;
                    }
                    match setting.value.terms.as_slice() {
                        [Term::Path(path)] => mappings.push(Mapping {
                            name: setting.name.name.clone(),
                            path: path.clone(),
                            optional: false,
                            span: setting.span,
                        }),
                        [Term::Optional(path, _)] => mappings.push(Mapping {
                            name: setting.name.name.clone(),
                            path: path.clone(),
                            optional: true,
                            span: setting.span,
                        }),
                        _ => self.report(
                            Diagnostic::error(Code::WrongType, file, setting.value.span, "expected a claim path")
                                .help("map a claim: `name = claims.path`, or `name = optional claims.path` when it may be missing"),
                        ),
                    }
                }
                other => self.report(Diagnostic::error(
                    Code::UnknownSetting,
                    file,
                    other.span(),
                    "`metadata` holds only `name = claims.path` mappings",
                )),
            }
        }
        mappings
    }

    fn policies(&mut self, file: FileId, value: &Value) -> Policies {
        let mut policies = Policies::default();
        for term in &value.terms {
            match term {
                Term::Str(s) => policies.terms.push(PolicyTerm::Name(Text { value: s.value.clone(), span: s.span })),
                Term::Path(p) => policies.terms.push(PolicyTerm::Claim(p.clone(), false)),
                Term::Optional(p, _) => policies.terms.push(PolicyTerm::Claim(p.clone(), true)),
                Term::List(list) => {
                    for item in &list.items {
                        match item {
                            Term::Str(s) => {
                                policies.terms.push(PolicyTerm::Name(Text { value: s.value.clone(), span: s.span }))
                            }
                            other => self.wrong_type(file, other.span(), "a policy name in quotes", other),
                        }
                    }
                }
                other => self.wrong_type(file, other.span(), "a list of policy names or a claim path", other),
            }
        }
        policies
    }

    fn token(&mut self, file: FileId, block: &Block) -> TokenSettings {
        let fields = self.fields(
            file,
            &block.body,
            "token",
            &["ttl", "max_ttl", "explicit_max_ttl", "period", "num_uses", "bound_cidrs", "type", "no_default_policy"],
            &[],
            false,
        );
        let mut token = TokenSettings {
            ttl: fields.setting("ttl").and_then(|s| self.positive_duration(file, &s.value)),
            max_ttl: fields.setting("max_ttl").and_then(|s| self.positive_duration(file, &s.value)),
            explicit_max_ttl: fields.setting("explicit_max_ttl").and_then(|s| self.positive_duration(file, &s.value)),
            period: fields.setting("period").and_then(|s| self.positive_duration(file, &s.value)),
            ..TokenSettings::default()
        };
        if let Some(s) = fields.setting("num_uses") {
            match s.value.terms.as_slice() {
                [Term::Number(n)] if n.value.as_u64().is_some() => token.num_uses = n.value.as_u64().unwrap_or(0),
                [other] => self.wrong_type(file, other.span(), "a whole number (0 for unlimited)", other),
                _ => self.wrong_type_value(file, &s.value, "a whole number (0 for unlimited)"),
            }
        }
        if let Some(s) = fields.setting("bound_cidrs")
            && let Some(blocks) = self.string_or_strings(file, &s.value, "a list of CIDR blocks")
        {
            for block in blocks {
                match normalize_cidr(&block.value) {
                    Ok(cidr) => token.bound_cidrs.push(cidr.into()),
                    Err(problem) => self.report(
                        Diagnostic::error(
                            Code::InvalidCidr,
                            file,
                            block.span,
                            format!("invalid CIDR block: {problem}"),
                        )
                        .help("write an address and prefix length such as \"10.0.0.0/8\" or \"2001:db8::/32\""),
                    ),
                }
            }
        }
        if let Some(s) = fields.setting("no_default_policy") {
            token.no_default_policy = self.bool(file, &s.value);
        }
        if let Some(s) = fields.setting("type") {
            match s.value.terms.as_slice() {
                [Term::Ident(word)] if word.name == "service" => token.token_type = TokenType::Service,
                [Term::Ident(word)] if word.name == "batch" => token.token_type = TokenType::Batch,
                [Term::Ident(word)] if word.name == "default" => token.token_type = TokenType::Default,
                _ => self.wrong_type_value(file, &s.value, "`service`, `batch` or `default`"),
            }
        }
        // Vault refuses this pair too: a batch token is never written back, so it cannot count
        // its uses, and a server that issued one anyway would drop the limit.
        if token.token_type == TokenType::Batch
            && token.num_uses > 0
            && let Some(s) = fields.setting("num_uses")
        {
            self.report(
                Diagnostic::error(
                    Code::ConflictingSettings,
                    file,
                    s.value.span,
                    "batch tokens cannot have a use limit",
                )
                .help("remove `num_uses`, or make service tokens (`type = service`)"),
            );
        }
        for (lower, lower_name, upper_name) in [
            (token.ttl, "ttl", "max_ttl"),
            (token.ttl, "ttl", "explicit_max_ttl"),
            (token.max_ttl, "max_ttl", "explicit_max_ttl"),
        ] {
            let upper = if upper_name == "max_ttl" { token.max_ttl } else { token.explicit_max_ttl };
            if let (Some(lower), Some(upper), Some(s)) = (lower, upper, fields.setting(lower_name))
                && lower > upper
            {
                self.report(Diagnostic::error(
                    Code::InvalidDuration,
                    file,
                    s.value.span,
                    format!("`{lower_name}` is longer than `{upper_name}`"),
                ));
            }
        }
        token
    }

    // -----------------------------------------------------------------------------------------
    // Tests

    fn test(&mut self, file: FileId, item: &TopItem, names: &Names<'_>) -> Option<Test> {
        let fields = self.fields(
            file,
            &item.body,
            "test",
            &["role", "now", "claims", "header", "client_address"],
            &["expect"],
            false,
        );
        let role = match fields.setting("role") {
            Some(s) => match s.value.terms.as_slice() {
                [Term::Ident(word)] if word.name == "auto" => Some(RoleChoice::Auto),
                _ => self.reference(file, &s.value, TopKind::Role, names).map(RoleChoice::Named),
            },
            None => {
                self.missing(
                    &fields,
                    file,
                    item,
                    "role",
                    "name the role to log in as, or `role = auto` to let claimgate choose",
                );
                None
            }
        };
        let now = match fields.setting("now") {
            Some(s) => self.time(file, &s.value),
            None => {
                self.missing(
                    &fields,
                    file,
                    item,
                    "now",
                    "tests run at a fixed time: `now = 1732350100` or `now = \"2024-11-23T08:21:40Z\"`",
                );
                None
            }
        };
        let claims = match fields.setting("claims") {
            Some(s) => self.string(file, &s.value),
            None => {
                self.missing(
                    &fields,
                    file,
                    item,
                    "claims",
                    "give the token's claims as JSON: `claims = \"\"\" {...} \"\"\"`",
                );
                None
            }
        };
        let claims_json = claims.as_ref().and_then(|c| self.claims_json(file, c));
        let header = match fields.setting("header") {
            Some(s) => match self.string(file, &s.value) {
                Some(text) => Some(self.test_header(file, &text)?),
                None => return None,
            },
            None => None,
        };
        let client_address = match fields.setting("client_address") {
            Some(s) => {
                let text = self.string(file, &s.value)?;
                match text.value.parse::<std::net::IpAddr>() {
                    Ok(address) => Some(address),
                    Err(_) => {
                        self.report(
                            Diagnostic::error(
                                Code::InvalidTest,
                                file,
                                text.span,
                                format!("`{}` is not an IP address", text.value),
                            )
                            .help("write one address, such as \"10.1.2.3\" or \"2001:db8::1\""),
                        );
                        return None;
                    }
                }
            }
            None => None,
        };
        let expect = match fields.block("expect") {
            Some(block) => self.expectation(file, block, names),
            None => {
                self.missing(
                    &fields,
                    file,
                    item,
                    "expect",
                    "say what should happen: `expect allow { }` or `expect deny { }`",
                );
                None
            }
        };
        Some(Test {
            name: item.name.name.clone(),
            file,
            span: item.name.span,
            role: role?,
            now: now?,
            claims: claims?,
            claims_json: claims_json?,
            header,
            client_address,
            expect: expect?,
        })
    }

    /// A test's token header, read with the signature core's own rules (so `alg: none`, an
    /// HMAC algorithm or a `crit` member are refused here as they are in a token).
    fn test_header(&mut self, file: FileId, text: &Text) -> Option<claimgate_jose::Header> {
        // The header is decoded as part of a token whose payload and signature are stand-ins:
        // nothing is verified, only the header's rules apply.
        let encoded = claimgate_jose::b64::encode(text.value.as_bytes());
        let token = format!("{encoded}.e30.AA");
        match claimgate_jose::decode_unverified(&token, &claimgate_jose::Limits::DEFAULT) {
            Ok((header, _)) => Some(header),
            Err(error) => {
                self.report(
                    Diagnostic::error(Code::InvalidTest, file, text.span, format!("the header is refused: {error}"))
                        .help("a JSON object such as {\"alg\": \"RS256\", \"typ\": \"JWT\", \"kid\": \"k1\"}"),
                );
                None
            }
        }
    }

    fn time(&mut self, file: FileId, value: &Value) -> Option<i64> {
        match value.terms.as_slice() {
            [Term::Number(n)] => match n.value.as_i64() {
                Some(seconds) => Some(seconds),
                None => {
                    self.report(Diagnostic::error(
                        Code::InvalidTest,
                        file,
                        n.span,
                        "`now` must be whole seconds since the Unix epoch",
                    ));
                    None
                }
            },
            [Term::Str(s)] => match parse_rfc3339(&s.value) {
                Some(seconds) => Some(seconds),
                None => {
                    self.report(
                        Diagnostic::error(
                            Code::InvalidTest,
                            file,
                            s.span,
                            format!("`{}` is not an RFC 3339 time", s.value),
                        )
                        .help("write a time such as \"2024-11-23T08:21:40Z\", or seconds since the Unix epoch"),
                    );
                    None
                }
            },
            _ => {
                self.wrong_type_value(file, value, "seconds since the Unix epoch or an RFC 3339 time in quotes");
                None
            }
        }
    }

    fn claims_json(&mut self, file: FileId, claims: &Text) -> Option<serde_json::Value> {
        // The reader tokens go through judges the claims too: what it refuses a token for, it
        // refuses a test for, in its words where they say more (`1e400`: beyond the range of a
        // 64-bit float, where the JSON reader only says "invalid json").
        let table = crate::payload::PathTable::new(&[]);
        let mut scratch = crate::payload::Scratch::default();
        let limits = crate::payload::PayloadLimits::default();
        let payload_error = crate::payload::parse(claims.value.as_bytes(), &table, &limits, &mut scratch).err();
        let refuse = |checker: &mut Self, message: String| {
            checker.report(
                Diagnostic::error(
                    Code::InvalidTest,
                    file,
                    claims.span,
                    format!("claims are not valid JSON: {message}"),
                )
                .label("in this JSON"),
            );
        };
        if let Some(crate::payload::PayloadError::Syntax { problem, offset }) = &payload_error
            && problem.contains("beyond the range")
        {
            refuse(self, format!("{problem} at byte {offset}"));
            return None;
        }
        match claimgate_jose::json::parse_value(claims.value.as_bytes(), 64) {
            Ok(serde_json::Value::Object(_)) if payload_error.is_some() => {
                refuse(self, payload_error.map(|e| e.to_string()).unwrap_or_default());
                None
            }
            Ok(value @ serde_json::Value::Object(_)) => Some(value),
            Ok(_) => {
                self.report(Diagnostic::error(Code::InvalidTest, file, claims.span, "claims must be a JSON object"));
                None
            }
            Err(error) => {
                self.report(
                    Diagnostic::error(
                        Code::InvalidTest,
                        file,
                        claims.span,
                        format!("claims are not valid JSON: {error}"),
                    )
                    .label("in this JSON"),
                );
                None
            }
        }
    }

    fn expectation(&mut self, file: FileId, block: &Block, names: &Names<'_>) -> Option<Expectation> {
        let outcome = block.label.as_ref().map(|l| l.name.as_str());
        match outcome {
            Some("allow") => {
                let fields = self.fields(
                    file,
                    &block.body,
                    "expect allow",
                    &["role", "identity", "user", "groups", "policies"],
                    &["metadata"],
                    false,
                );
                let mut expect = ExpectAllow { span: block.span, ..ExpectAllow::default() };
                expect.role = fields.setting("role").and_then(|s| self.reference(file, &s.value, TopKind::Role, names));
                expect.identity = fields.setting("identity").and_then(|s| self.string(file, &s.value)).map(|t| t.value);
                expect.user = fields.setting("user").and_then(|s| self.string(file, &s.value)).map(|t| t.value);
                expect.groups = fields.setting("groups").and_then(|s| self.strings(file, &s.value));
                expect.policies = fields.setting("policies").and_then(|s| self.strings(file, &s.value));
                if let Some(metadata) = fields.block("metadata") {
                    let mut pairs = Vec::new();
                    for item in &metadata.body.items {
                        match item {
                            Item::Setting(s) => {
                                if let Some(text) = self.string(file, &s.value) {
                                    pairs.push((s.name.name.clone(), text.value));
                                }
                            }
                            other => self.report(Diagnostic::error(
                                Code::UnknownSetting,
                                file,
                                other.span(),
                                "expected metadata holds only `name = \"value\"` pairs",
                            )),
                        }
                    }
                    expect.metadata = Some(pairs);
                }
                Some(Expectation::Allow(expect))
            }
            Some("deny") => {
                let fields = self.fields(file, &block.body, "expect deny", &["role", "condition", "code"], &[], false);
                let mut expect = ExpectDeny { span: block.span, ..ExpectDeny::default() };
                expect.role = fields.setting("role").and_then(|s| self.reference(file, &s.value, TopKind::Role, names));
                if let Some(s) = fields.setting("condition") {
                    expect.condition = match s.value.terms.as_slice() {
                        [Term::Path(p)] => Some(ExpectedCondition::Claim(p.clone())),
                        [Term::Str(text)] => Some(ExpectedCondition::Text(text.value.clone())),
                        _ => {
                            self.wrong_type_value(
                                file,
                                &s.value,
                                "the claim path the failing condition reads, or its text in quotes",
                            );
                            None
                        }
                    };
                }
                if let Some(s) = fields.setting("code") {
                    expect.code = match s.value.terms.as_slice() {
                        [Term::Ident(word)] => Some((word.name.clone(), word.span)),
                        [Term::Str(text)] => Some((text.value.clone(), text.span)),
                        _ => {
                            self.wrong_type_value(file, &s.value, "a denial code such as `token_expired`");
                            None
                        }
                    }
                    .and_then(|(code, span)| {
                        let known: Vec<&str> = crate::decision::DenyCode::ALL.iter().map(|c| c.as_str()).collect();
                        if known.contains(&code.as_str()) {
                            return Some(code);
                        }
                        let mut d =
                            Diagnostic::error(Code::InvalidTest, file, span, format!("`{code}` is not a denial code"))
                                .label("unknown code");
                        d = match suggest(&code, &known) {
                            Some(s) => d.help(format!("did you mean `{s}`?")),
                            None => d.help("docs/language.md lists every denial code under \"Decisions\""),
                        };
                        self.report(d);
                        None
                    });
                }
                Some(Expectation::Deny(expect))
            }
            _ => {
                let span = block.label.as_ref().map_or(block.name.span, |l| l.span);
                self.report(
                    Diagnostic::error(Code::InvalidTest, file, span, "a test expects `allow` or `deny`")
                        .help("write `expect allow { ... }` or `expect deny { ... }`"),
                );
                None
            }
        }
    }

    // -----------------------------------------------------------------------------------------
    // Values

    /// Reads the items of a body against the settings and blocks allowed there, reporting unknown
    /// and duplicate ones.
    #[allow(clippy::too_many_arguments)]
    fn fields<'a>(
        &mut self,
        file: FileId,
        body: &'a Body,
        context: &str,
        settings: &[&str],
        blocks: &[&str],
        allow_require: bool,
    ) -> Fields<'a> {
        let mut fields = Fields::default();
        for item in &body.items {
            let (name, is_block) = match item {
                Item::Setting(s) => (&s.name, false),
                Item::Block(b) => (&b.name, true),
                Item::Require(r) => {
                    if !allow_require {
                        self.report(
                            Diagnostic::error(
                                Code::UnknownSetting,
                                file,
                                Span { start: r.span.start, end: r.span.start + 7 },
                                format!("`require` is not allowed in {context}"),
                            )
                            .help("conditions belong in a role"),
                        );
                    } else if let Some(first) = &fields.require {
                        self.report(
                            Diagnostic::error(
                                Code::DuplicateSetting,
                                file,
                                Span { start: r.span.start, end: r.span.start + 7 },
                                format!("a {context} has one `require` block"),
                            )
                            .related(
                                file,
                                Span { start: first.span.start, end: first.span.start + 7 },
                                "first `require` block",
                            )
                            .help("move these conditions into the first block"),
                        );
                    } else {
                        fields.require = Some(r);
                    }
                    continue;
                }
            };
            let known = if is_block { blocks } else { settings };
            if !known.contains(&name.name.as_str()) {
                let other = if is_block { settings } else { blocks };
                let diagnostic = if other.contains(&name.name.as_str()) {
                    fields.misused.push(name.name.as_str());
                    let help = if is_block {
                        format!("`{0}` is a setting: write `{0} = ...`", name.name)
                    } else {
                        format!("`{0}` is a block: write `{0} {{ ... }}`", name.name)
                    };
                    Diagnostic::error(
                        Code::WrongType,
                        file,
                        name.span,
                        format!("`{}` is used the wrong way in {context}", name.name),
                    )
                    .help(help)
                } else {
                    let what = if is_block { "block" } else { "setting" };
                    let mut d = Diagnostic::error(
                        Code::UnknownSetting,
                        file,
                        name.span,
                        format!("unknown {what} `{}` in {context}", name.name),
                    )
                    .label(format!("not a {context} {what}"));
                    let candidates: Vec<&str> = settings.iter().chain(blocks).copied().collect();
                    d = match suggest(&name.name, &candidates) {
                        Some(s) => d.help(format!("did you mean `{s}`?")),
                        None => d.help(format!(
                            "{context} accepts: {}",
                            candidates.iter().map(|c| format!("`{c}`")).collect::<Vec<_>>().join(", ")
                        )),
                    };
                    d
                };
                self.report(diagnostic);
                continue;
            }
            if let Some(first) = fields.get(&name.name) {
                self.duplicate(file, name, first.name_span());
                continue;
            }
            fields.items.push((name.name.as_str(), FieldRef::from(item)));
        }
        fields
    }

    fn duplicate(&mut self, file: FileId, name: &Ident, first: Span) {
        self.report(
            Diagnostic::error(
                Code::DuplicateSetting,
                file,
                name.span,
                format!("`{}` is set more than once", name.name),
            )
            .label("set again here")
            .related(file, first, "first set here")
            .help("keep one; lists take several values: `[\"a\", \"b\"]`"),
        );
    }

    fn missing(&mut self, fields: &Fields<'_>, file: FileId, item: &TopItem, setting: &str, help: &str) {
        if fields.misused.contains(&setting) {
            return; // reported as written the wrong way
        }
        self.report(
            Diagnostic::error(
                Code::MissingSetting,
                file,
                item.name.span,
                format!("{} `{}` has no `{setting}`", item.kind.keyword(), item.name.name),
            )
            .label(format!("`{setting}` missing"))
            .help(help),
        );
    }

    fn wrong_type(&mut self, file: FileId, span: Span, expected: &str, found: &Term) {
        self.report(Diagnostic::error(
            Code::WrongType,
            file,
            span,
            format!("expected {expected}, found {}", describe_term(found)),
        ));
    }

    fn wrong_type_value(&mut self, file: FileId, value: &Value, expected: &str) {
        match value.terms.as_slice() {
            [one] => self.wrong_type(file, one.span(), expected, one),
            _ => self.report(Diagnostic::error(
                Code::WrongType,
                file,
                value.span,
                format!("expected {expected}, found a `+` expression"),
            )),
        }
    }

    fn string(&mut self, file: FileId, value: &Value) -> Option<Text> {
        match value.terms.as_slice() {
            [Term::Str(s)] => Some(Text { value: s.value.clone(), span: s.span }),
            _ => {
                self.wrong_type_value(file, value, "a string");
                None
            }
        }
    }

    /// A list of strings.
    fn strings(&mut self, file: FileId, value: &Value) -> Option<Vec<CompactString>> {
        match value.terms.as_slice() {
            [Term::List(list)] => {
                let mut out = Vec::new();
                for item in &list.items {
                    match item {
                        Term::Str(s) => out.push(s.value.clone()),
                        other => {
                            self.wrong_type(file, other.span(), "a string", other);
                            return None;
                        }
                    }
                }
                Some(out)
            }
            _ => {
                self.wrong_type_value(file, value, "a list of strings");
                None
            }
        }
    }

    /// One string or a list of strings.
    fn string_or_strings(&mut self, file: FileId, value: &Value, expected: &str) -> Option<Vec<Text>> {
        match value.terms.as_slice() {
            [Term::Str(s)] => Some(vec![Text { value: s.value.clone(), span: s.span }]),
            [Term::List(list)] => {
                let mut out = Vec::new();
                for item in &list.items {
                    match item {
                        Term::Str(s) => out.push(Text { value: s.value.clone(), span: s.span }),
                        other => {
                            self.wrong_type(file, other.span(), "a string", other);
                            return None;
                        }
                    }
                }
                Some(out)
            }
            _ => {
                self.wrong_type_value(file, value, expected);
                None
            }
        }
    }

    /// A list of bare words or strings (algorithm names, time claims).
    fn list_of_words(&mut self, file: FileId, value: &Value, expected: &str) -> Option<Vec<(CompactString, Span)>> {
        let items = match value.terms.as_slice() {
            [Term::List(list)] => list.items.as_slice(),
            [single @ (Term::Ident(_) | Term::Str(_))] => std::slice::from_ref(single),
            _ => {
                self.wrong_type_value(file, value, expected);
                return None;
            }
        };
        let mut out = Vec::new();
        for item in items {
            match item {
                Term::Ident(word) => out.push((word.name.clone(), word.span)),
                Term::Str(s) => out.push((s.value.clone(), s.span)),
                other => {
                    self.wrong_type(file, other.span(), "a name", other);
                    return None;
                }
            }
        }
        Some(out)
    }

    fn duration(&mut self, file: FileId, value: &Value) -> Option<u64> {
        match value.terms.as_slice() {
            [Term::Duration(d)] => Some(d.seconds),
            [Term::Number(n)] => {
                self.report(
                    Diagnostic::error(Code::InvalidDuration, file, n.span, "a duration needs a unit")
                        .help(format!("write `{}s` for seconds, or use `m`, `h` or `d`", n.text)),
                );
                None
            }
            _ => {
                self.wrong_type_value(file, value, "a duration such as `90s`, `15m` or `8h`");
                None
            }
        }
    }

    fn positive_duration(&mut self, file: FileId, value: &Value) -> Option<u64> {
        let seconds = self.duration(file, value)?;
        if seconds == 0 {
            self.report(
                Diagnostic::error(Code::InvalidDuration, file, value.span, "duration must be longer than zero")
                    .help("remove the setting to leave it unset"),
            );
            return None;
        }
        Some(seconds)
    }

    fn path(&mut self, file: FileId, value: &Value) -> Option<ClaimPath> {
        match value.terms.as_slice() {
            [Term::Path(p)] => Some(p.clone()),
            _ => {
                self.wrong_type_value(file, value, "a claim path such as `claims.sub`");
                None
            }
        }
    }

    /// A provider or role name; returns its index.
    fn reference(&mut self, file: FileId, value: &Value, kind: TopKind, names: &Names<'_>) -> Option<usize> {
        let word = match value.terms.as_slice() {
            [Term::Ident(word)] => word,
            _ => {
                self.wrong_type_value(file, value, &format!("a {} name", kind.keyword()));
                return None;
            }
        };
        let defined = if kind == TopKind::Provider { &names.providers } else { &names.roles };
        if let Some(index) = defined.iter().position(|n| *n == word.name) {
            return Some(index);
        }
        if names.unparsed.contains(&(kind, word.name.as_str())) {
            return None; // already reported as a syntax error
        }
        let mut d = Diagnostic::error(
            Code::UnknownName,
            file,
            word.span,
            format!("unknown {} `{}`", kind.keyword(), word.name),
        )
        .label(format!("no {} has this name", kind.keyword()));
        if let Some(s) = suggest(&word.name, defined) {
            d = d.help(format!("did you mean `{s}`?"));
        } else if defined.is_empty() {
            d = d.help(format!("define it with `{} {} {{ ... }}`", kind.keyword(), word.name));
        }
        self.report(d);
        None
    }

    // -----------------------------------------------------------------------------------------
    // Keys and URLs

    fn validate_pem(&mut self, file: FileId, pem: &Text) {
        if let Err(error) = claimgate_jose::KeySet::from_pem_with_limits(&pem.value, &self.limits.keys) {
            let code = key_error_code(&error);
            let help = match code {
                Code::LimitExceeded => KEY_LIMIT_HELP,
                _ => "give a `PUBLIC KEY`, `RSA PUBLIC KEY` or `CERTIFICATE` block",
            };
            self.report(Diagnostic::error(code, file, pem.span, format!("invalid PEM key: {error}")).help(help));
        }
    }

    fn validate_certificate(&mut self, file: FileId, pem: &Text) {
        if !pem.value.contains("-----BEGIN CERTIFICATE-----") {
            self.report(
                Diagnostic::error(Code::InvalidKey, file, pem.span, "the pinned CA is not a PEM certificate")
                    .help("give the CA certificate as a `-----BEGIN CERTIFICATE-----` block"),
            );
        } else if let Err(error) = claimgate_jose::KeySet::from_pem_with_limits(&pem.value, &self.limits.keys) {
            self.report(Diagnostic::error(
                key_error_code(&error),
                file,
                pem.span,
                format!("invalid CA certificate: {error}"),
            ));
        }
    }

    fn validate_jwk(&mut self, file: FileId, json: &Text, set: bool) {
        let result = if set {
            claimgate_jose::KeySet::from_jwks_json_with_limits(json.value.as_bytes(), &self.limits.keys)
        } else {
            claimgate_jose::KeySet::from_jwk_json_with_limits(json.value.as_bytes(), &self.limits.keys)
        };
        let what = if set { "JWK set" } else { "JWK" };
        match result {
            Err(error) => self.report(Diagnostic::error(
                key_error_code(&error),
                file,
                json.span,
                format!("invalid {what}: {error}"),
            )),
            Ok(keys) if !keys.skipped().is_empty() => {
                let reasons: Vec<String> = keys.skipped().iter().map(|s| s.to_string()).collect();
                self.report(
                    Diagnostic::error(
                        Code::InvalidKey,
                        file,
                        json.span,
                        format!("{} of the keys in this {what} cannot verify signatures", reasons.len()),
                    )
                    .help(format!("remove them: {}", reasons.join("; "))),
                );
            }
            Ok(_) => {}
        }
    }

    fn validate_url(&mut self, file: FileId, url: &Text) {
        match url::Url::parse(&url.value) {
            // Hosts are taken in their ASCII form only: the idna crate is built without a Unicode
            // back end (idna_adapter 1.0, pinned in Cargo.toml), which keeps its tables out of the
            // playground's wasm and means the name a reviewer reads is the name that is fetched,
            // never a look-alike that normalisation maps somewhere else.
            Err(url::ParseError::IdnaError) if !url.value.is_ascii() => self.report(
                Diagnostic::error(Code::InvalidUrl, file, url.span, "the host is not written in ASCII")
                    .help("write an internationalised domain name in its ASCII form (`xn--...`)"),
            ),
            Err(error) => {
                self.report(Diagnostic::error(Code::InvalidUrl, file, url.span, format!("invalid URL: {error}")))
            }
            Ok(parsed) => match key_url_transport(&parsed) {
                Err(KeyUrlProblem::NotHttps) => self.report(
                    Diagnostic::error(Code::InvalidUrl, file, url.span, "keys must be fetched over https")
                        .help("anyone on the network path could replace keys fetched over plain http"),
                ),
                Err(KeyUrlProblem::CredentialsOrFragment) => self.report(Diagnostic::error(
                    Code::InvalidUrl,
                    file,
                    url.span,
                    "the URL carries credentials or a fragment",
                )),
                Ok(()) => {}
            },
        }
    }
}

/// Why a URL may not serve keys.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum KeyUrlProblem {
    /// Not `https` (plain `http` is allowed to loopback hosts only, for tests).
    NotHttps,
    /// User name, password or fragment in the URL.
    CredentialsOrFragment,
}

/// The transport rule for key sources, shared by the checker (for `jwks_url` and
/// `discovery_url`) and the engine (again for the `jwks_uri` a discovery document names):
/// `https`, or `http` to `localhost`, `127.0.0.1` or `[::1]` only; no credentials, no fragment.
pub fn key_url_transport(url: &url::Url) -> Result<(), KeyUrlProblem> {
    let loopback = matches!(url.host_str(), Some("localhost" | "127.0.0.1" | "[::1]"));
    if url.scheme() != "https" && !(url.scheme() == "http" && loopback) {
        Err(KeyUrlProblem::NotHttps)
    } else if !url.username().is_empty() || url.password().is_some() || url.fragment().is_some() {
        Err(KeyUrlProblem::CredentialsOrFragment)
    } else {
        Ok(())
    }
}

/// Names known across the set, for reference checks.
struct Names<'a> {
    providers: Vec<&'a str>,
    roles: Vec<&'a str>,
    unparsed: Vec<(TopKind, &'a str)>,
}

#[derive(Clone, Copy)]
enum FieldRef<'a> {
    Setting(&'a Setting),
    Block(&'a Block),
}

impl<'a> FieldRef<'a> {
    fn from(item: &'a Item) -> FieldRef<'a> {
        match item {
            Item::Setting(s) => FieldRef::Setting(s),
            Item::Block(b) => FieldRef::Block(b),
            Item::Require(_) => unreachable!("require blocks are handled before"),
        }
    }

    fn name_span(self) -> Span {
        match self {
            FieldRef::Setting(s) => s.name.span,
            FieldRef::Block(b) => b.name.span,
        }
    }
}

/// The items of one body by name. A body has a handful of items, so a vector beats a map.
#[derive(Default)]
struct Fields<'a> {
    items: Vec<(&'a str, FieldRef<'a>)>,
    require: Option<&'a Require>,
    /// Known names written the wrong way (a setting as a block or the reverse), already reported.
    misused: Vec<&'a str>,
}

impl<'a> Fields<'a> {
    fn get(&self, name: &str) -> Option<FieldRef<'a>> {
        self.items.iter().find(|(n, _)| *n == name).map(|(_, f)| *f)
    }

    fn setting(&self, name: &str) -> Option<&'a Setting> {
        match self.get(name) {
            Some(FieldRef::Setting(s)) => Some(s),
            _ => None,
        }
    }

    fn block(&self, name: &str) -> Option<&'a Block> {
        match self.get(name) {
            Some(FieldRef::Block(b)) => Some(b),
            _ => None,
        }
    }
}

fn describe_term(term: &Term) -> String {
    match term {
        Term::Str(_) => "a string".into(),
        Term::Number(n) => format!("the number `{}`", n.text),
        Term::Bool(b) => format!("`{}`", b.value),
        Term::Duration(d) => format!("the duration `{}`", d.text),
        Term::Ident(word) => format!("`{}`", word.name),
        Term::Path(_) => "a claim path".into(),
        Term::Optional(..) => "an optional claim path".into(),
        Term::List(_) => "a list".into(),
    }
}

/// The closest candidate within a small edit distance, for "did you mean".
fn suggest<'a>(name: &str, candidates: &[&'a str]) -> Option<&'a str> {
    candidates
        .iter()
        .map(|c| (strsim::levenshtein(name, c), *c))
        .filter(|(distance, c)| *distance <= 2.max(c.len() / 4) && *distance < c.len())
        .min_by_key(|(distance, _)| *distance)
        .map(|(_, c)| c)
}

/// A claim regex, anchored at both ends of the claim's text.
pub type ClaimRegex = regex_automata::meta::Regex;

/// Compiles a claim regex the way the evaluator will: the pattern is parsed **on its own** (so
/// a pattern such as `main)|(.*` that would only parse inside a wrapper is refused), then
/// anchored on its parsed syntax tree (`\A` before it, `\z` after it, as one concatenation:
/// nothing in the pattern can reach outside), with a bound on the compiled size. The engines of
/// `regex-automata` run in time linear in the input.
pub fn compile_regex(pattern: &str, size_limit: usize) -> Result<ClaimRegex, String> {
    use regex_syntax::hir::{Hir, Look};
    let hir = regex_syntax::ParserBuilder::new().nest_limit(64).build().parse(pattern).map_err(|e| match e {
        regex_syntax::Error::Parse(e) => e.kind().to_string(),
        regex_syntax::Error::Translate(e)
            if cfg!(not(feature = "unicode-classes")) && (pattern.contains("\\p") || pattern.contains("\\P")) =>
        {
            format!(
                "{} (this build of claimgate, the playground's, leaves out Unicode's script and category \
                 classes; the CLI and services have them)",
                e.kind()
            )
        }
        regex_syntax::Error::Translate(e) => e.kind().to_string(),
        other => other.to_string(),
    })?;
    let anchored = Hir::concat(vec![Hir::look(Look::Start), hir, Hir::look(Look::End)]);
    let config = regex_automata::meta::Config::new()
        .nfa_size_limit(Some(size_limit))
        .onepass_size_limit(Some(size_limit))
        .dfa_size_limit(Some(size_limit))
        .hybrid_cache_capacity(size_limit.max(1 << 16));
    regex_automata::meta::Builder::new().configure(config).build_from_hir(&anchored).map_err(|e| match e.size_limit() {
        Some(limit) => format!("compiles to more than {limit} bytes"),
        None => e.to_string(),
    })
}

/// The top-level domains after which a dotted path most likely meant a quoted domain name
/// (`claims.kubernetes.io.namespace` for `claims."kubernetes.io".namespace`).
const DOMAIN_SUFFIXES: [&str; 14] =
    ["io", "com", "org", "net", "dev", "cloud", "ai", "app", "co", "gov", "edu", "eu", "de", "uk"];

impl Checker<'_> {
    /// W0102: a registered claim (RFC 7519 4.1) whose type the operator can never fit.
    fn registered_claim_type(&mut self, file: FileId, comparison: &Comparison) {
        let [Segment::Key(name)] = comparison.path.segments.as_slice() else { return };
        let op = &comparison.op;
        let string_op = matches!(op, Op::Glob(_) | Op::Matches(_) | Op::Eq(Scalar::Str(_)) | Op::Ne(Scalar::Str(_)))
            || comparison.words
            || matches!(op, Op::In(list) if list.items.iter().all(|i| matches!(i, Scalar::Str(_))) && !list.items.is_empty());
        let numeric_op = matches!(
            op,
            Op::Lt(_) | Op::Le(_) | Op::Gt(_) | Op::Ge(_) | Op::Eq(Scalar::Number(_)) | Op::Ne(Scalar::Number(_))
        );
        let (problem, help) = match name.as_str() {
            "exp" | "nbf" | "iat" if string_op || op.is_contains() => (
                format!("`claims.{name}` is a number of seconds (NumericDate); this condition never holds on it"),
                "compare it as a number (`claims.iat >= 1700000000`), or let the provider's time checks judge it"
                    .to_string(),
            ),
            "iss" | "sub" | "jti" if numeric_op || op.is_contains() => (
                format!("`claims.{name}` is a string; this condition never holds on it"),
                format!("compare it as a string: `claims.{name} == \"...\"`, `glob`, `matches` or `in [...]`"),
            ),
            "aud" if string_op && !comparison.words => (
                "`aud` may be a list of audiences; this condition never holds on a list".to_string(),
                "bind audiences with the role's `audience` setting, or write `claims.aud contains \"...\"`".to_string(),
            ),
            _ => return,
        };
        let path = crate::fmt::path_text(&comparison.path);
        self.report(
            Diagnostic::warning(Code::NeverHolds, file, comparison.span, problem)
                .label(format!("`{path}` never fits this"))
                .help(help),
        );
    }

    /// W0105: `claims.kubernetes.io.namespace`, which reads `kubernetes` → `io` → `namespace`,
    /// most likely meant the claim named `kubernetes.io`.
    fn domain_like_path(&mut self, file: FileId, path: &ClaimPath) {
        let keys: Vec<&str> = path
            .segments
            .iter()
            .map_while(|s| match s {
                Segment::Key(k) => Some(k.as_str()),
                Segment::Index(_) => None,
            })
            .collect();
        let Some(at) = keys.iter().skip(1).position(|k| DOMAIN_SUFFIXES.contains(k)).map(|i| i + 1) else { return };
        let mut segments = vec![Segment::Key(keys[..=at].join(".").into())];
        segments.extend(path.segments[at + 1..].iter().cloned());
        let suggestion = crate::fmt::path_text(&ClaimPath { segments, span: path.span });
        self.report(
            Diagnostic::warning(
                Code::DomainLikePath,
                file,
                path.span,
                format!(
                    "`{}` reads the claims `{}` one inside another",
                    crate::fmt::path_text(path),
                    keys[..=at].join("` → `")
                ),
            )
            .label("looks like a domain name")
            .help(format!("a claim named with dots must be quoted: did you mean `{suggestion}`?")),
        );
    }
}

/// W0103 (conditions that contradict each other where all must hold) and W0104 (a role that
/// accepts every token of its provider), over the checked set.
fn contradictions_and_open_roles(set: &PolicySet) -> Vec<Diagnostic> {
    let mut out = Vec::new();
    for provider in &set.providers {
        contradictions(&provider.conditions, provider.file, &mut out);
    }
    for role in &set.roles {
        contradictions(&role.conditions, role.file, &mut out);
        let provider_conditions = set.providers.get(role.provider).is_some_and(|p| !p.conditions.is_empty());
        if matches!(role.audience, Audience::Any(_)) && role.conditions.is_empty() && !provider_conditions {
            out.push(
                Diagnostic::warning(
                    Code::AcceptsEverything,
                    role.file,
                    role.span,
                    format!(
                        "role `{}` accepts every token of its provider: `audience = any` and no condition",
                        role.name
                    ),
                )
                .label("any audience, no `require`")
                .help("bind the audience (`audience = \"...\"`) or add conditions that say which workloads may log in"),
            );
        }
    }
    out
}

/// Conditions of one conjunction (a `require` list or an `all` group), recursively.
fn contradictions(conditions: &[Condition], file: FileId, out: &mut Vec<Diagnostic>) {
    let mut equals: Vec<(&ClaimPath, &Scalar, Span)> = Vec::new();
    let mut presence: Vec<(&ClaimPath, bool, Span)> = Vec::new();
    // Bounds on one claim: (path, literal, strict, is lower bound, span).
    let mut bounds: Vec<(&ClaimPath, &NumLit, bool, bool, Span)> = Vec::new();
    // The JSON types each condition lets the claim have (`None`: `absent`).
    let mut typed: Vec<(&ClaimPath, Option<TypeSet>, Span)> = Vec::new();
    for condition in conditions {
        // The types the condition lets the claim have. A negated comparison still reads its
        // claim (a missing or mistyped claim fails it as it fails the comparison), so it lets
        // the claim have any type but be absent; `not ... exists` is `absent`.
        let read = match &condition.kind {
            ConditionKind::Compare(comparison) => Some((comparison, TypeSet::of(comparison))),
            ConditionKind::Not(inner) => match &inner.kind {
                ConditionKind::Compare(comparison) if comparison.op == Op::Exists => Some((comparison, None)),
                ConditionKind::Compare(comparison) if comparison.op == Op::Absent => None,
                ConditionKind::Compare(comparison) => Some((comparison, Some(TypeSet::ANY))),
                _ => None,
            },
            ConditionKind::Group(_) => None,
        };
        if let Some((comparison, types)) = read
            && (comparison.op != Op::Exists || types.is_none())
        {
            let conflict = typed.iter().find(|(p, other, _)| {
                **p == comparison.path
                    && match (types, *other) {
                        (Some(a), Some(b)) => a.0 & b.0 == 0,
                        (None, Some(_)) | (Some(_), None) => true,
                        (None, None) => false,
                    }
            });
            if let Some((_, other, first_span)) = conflict {
                let path = crate::fmt::path_text(&comparison.path);
                let message = match (types, other) {
                    (Some(a), Some(b)) => {
                        format!("this condition needs `{path}` to be {}, an earlier one needs {}", a.name(), b.name())
                    }
                    (Some(_), None) => format!("`{path}` must be absent, yet this condition reads it"),
                    _ => format!("`{path}` must be absent, yet an earlier condition reads it"),
                };
                out.push(contradiction(file, comparison, *first_span, &message));
                // One warning per pair: the checks below would only say it again.
                typed.push((&comparison.path, types, comparison.span));
                continue;
            }
            typed.push((&comparison.path, types, comparison.span));
        }
        match &condition.kind {
            ConditionKind::Compare(comparison) if !comparison.words => match &comparison.op {
                Op::Eq(value) => {
                    let other = equals.iter().find(|(p, v, _)| **p == comparison.path && !same_scalar(v, value));
                    if let Some((_, first, first_span)) = other {
                        out.push(contradiction(
                            file,
                            comparison,
                            *first_span,
                            &format!(
                                "`{}` cannot equal both {} and {}",
                                crate::fmt::path_text(&comparison.path),
                                scalar_text(first),
                                scalar_text(value)
                            ),
                        ));
                    }
                    equals.push((&comparison.path, value, comparison.span));
                }
                Op::Lt(n) | Op::Le(n) | Op::Gt(n) | Op::Ge(n) => {
                    let lower = matches!(comparison.op, Op::Gt(_) | Op::Ge(_));
                    let strict = matches!(comparison.op, Op::Gt(_) | Op::Lt(_));
                    let number = |n: &NumLit| crate::number::Number::from_literal(&n.value, &n.text);
                    let empty = bounds.iter().find(|(p, other, other_strict, other_lower, _)| {
                        if **p != comparison.path || *other_lower == lower {
                            return false;
                        }
                        let (low, low_strict, high, high_strict) =
                            if lower { (n, strict, *other, *other_strict) } else { (*other, *other_strict, n, strict) };
                        match crate::number::compare(number(low).as_ref(), number(high).as_ref()) {
                            std::cmp::Ordering::Greater => true,
                            std::cmp::Ordering::Equal => low_strict || high_strict,
                            std::cmp::Ordering::Less => false,
                        }
                    });
                    if let Some((_, _, _, _, first_span)) = empty {
                        out.push(contradiction(
                            file,
                            comparison,
                            *first_span,
                            &format!(
                                "no number satisfies both bounds on `{}`",
                                crate::fmt::path_text(&comparison.path)
                            ),
                        ));
                    }
                    bounds.push((&comparison.path, n, strict, lower, comparison.span));
                }
                Op::Exists | Op::Absent => {
                    let exists = matches!(comparison.op, Op::Exists);
                    if let Some((_, _, first_span)) =
                        presence.iter().find(|(p, e, _)| **p == comparison.path && *e != exists)
                    {
                        out.push(contradiction(
                            file,
                            comparison,
                            *first_span,
                            &format!("`{}` cannot both exist and be absent", crate::fmt::path_text(&comparison.path)),
                        ));
                    }
                    presence.push((&comparison.path, exists, comparison.span));
                }
                _ => {}
            },
            ConditionKind::Group(group) if group.kind == GroupKind::All => contradictions(&group.conditions, file, out),
            ConditionKind::Group(group) => {
                tautology(group, condition.span, file, out);
                for inner in &group.conditions {
                    if let ConditionKind::Group(g) = &inner.kind
                        && g.kind == GroupKind::All
                    {
                        contradictions(&g.conditions, file, out);
                    }
                }
            }
            _ => {}
        }
    }
}

/// W0106: an `any` group with a comparison and its opposite on one claim always holds. (With a
/// claim of the wrong type `== "a"` and `!= "a"` are both unknown, so only `exists`/`absent`
/// make it hold for every token; the pair `==`/`!=` is flagged too, as it holds for every
/// token that has the claim as a string.)
fn tautology(group: &Group, span: Span, file: FileId, out: &mut Vec<Diagnostic>) {
    let comparisons: Vec<&Comparison> = group
        .conditions
        .iter()
        .filter_map(|c| match &c.kind {
            ConditionKind::Compare(comparison) if !comparison.words => Some(comparison),
            _ => None,
        })
        .collect();
    for (i, a) in comparisons.iter().enumerate() {
        for b in &comparisons[i + 1..] {
            if a.path != b.path {
                continue;
            }
            let path = crate::fmt::path_text(&a.path);
            let message = match (&a.op, &b.op) {
                (Op::Exists, Op::Absent) | (Op::Absent, Op::Exists) => {
                    Some(format!("this `any` always holds: it tests `{path}` and its opposite"))
                }
                (Op::Eq(x), Op::Ne(y)) | (Op::Ne(x), Op::Eq(y)) if same_scalar(x, y) => Some(format!(
                    "this `any` holds for every token that has `{path}` (of the literal's type): it tests it and its opposite"
                )),
                (upper @ (Op::Lt(_) | Op::Le(_)), lower @ (Op::Gt(_) | Op::Ge(_)))
                | (lower @ (Op::Gt(_) | Op::Ge(_)), upper @ (Op::Lt(_) | Op::Le(_)))
                    if bounds_cover_every_number(upper, lower) =>
                {
                    Some(format!(
                        "this `any` holds for every token whose `{path}` is a number: its bounds leave none out"
                    ))
                }
                _ => None,
            };
            if let Some(message) = message {
                out.push(tautology_warning(file, span, message, b.span, "the opposite of an earlier branch"));
                return;
            }
        }
    }
    // A branch and, in another branch, `not` that same condition (whatever its kind: `in [...]`,
    // `glob`, a group): one of the two holds whenever the condition can be decided at all.
    let texts: Vec<String> = group.conditions.iter().map(crate::fmt::condition_text).collect();
    for negated in &group.conditions {
        let ConditionKind::Not(inner) = &negated.kind else { continue };
        let inner_text = crate::fmt::condition_text(inner);
        if let Some(at) = texts.iter().position(|t| *t == inner_text) {
            let message = format!(
                "this `any` holds for every token on which `{inner_text}` can be decided: it tests it and its opposite"
            );
            let later = group.conditions[at].span.start.max(negated.span.start);
            let later = if later == negated.span.start { negated.span } else { group.conditions[at].span };
            out.push(tautology_warning(file, span, message, later, "the opposite of an earlier branch"));
            return;
        }
    }
}

fn tautology_warning(file: FileId, span: Span, message: String, related: Span, note: &str) -> Diagnostic {
    Diagnostic::warning(Code::Tautology, file, span, message)
        .label("always holds")
        .help("one of the two branches always passes, so the group says nothing; remove it or fix the branch")
        .related(file, related, note)
}

/// `< a` (or `<= a`) with `> b` (or `>= b`) leaves no number out when b < a, or when b == a
/// and one of the two includes it.
fn bounds_cover_every_number(upper: &Op, lower: &Op) -> bool {
    let (Op::Lt(a) | Op::Le(a)) = upper else { return false };
    let (Op::Gt(b) | Op::Ge(b)) = lower else { return false };
    let number = |n: &NumLit| crate::number::Number::from_literal(&n.value, &n.text);
    match crate::number::compare(number(b).as_ref(), number(a).as_ref()) {
        std::cmp::Ordering::Less => true,
        std::cmp::Ordering::Equal => matches!(upper, Op::Le(_)) || matches!(lower, Op::Ge(_)),
        std::cmp::Ordering::Greater => false,
    }
}

/// The JSON types a comparison lets its claim have, as a set of bits; two conditions that must
/// both hold and share none contradict each other.
#[derive(Clone, Copy, PartialEq, Eq)]
struct TypeSet(u8);

impl TypeSet {
    const STRING: u8 = 1;
    const NUMBER: u8 = 2;
    const BOOL: u8 = 4;
    const LIST: u8 = 8;
    const OBJECT: u8 = 16;
    /// Every type: what `exists` (or a negated comparison) lets a claim be.
    const ANY: TypeSet = TypeSet(Self::STRING | Self::NUMBER | Self::BOOL | Self::LIST | Self::OBJECT);

    /// `None` for `absent` (no value at all); everything for `exists`. The types follow the
    /// operator table of docs/language.md.
    fn of(comparison: &Comparison) -> Option<TypeSet> {
        let scalar = |s: &Scalar| match s {
            Scalar::Str(_) => Self::STRING,
            Scalar::Number(_) => Self::NUMBER,
            Scalar::Bool(_) => Self::BOOL,
        };
        let all = Self::ANY.0;
        let bits = match &comparison.op {
            Op::Absent => return None,
            Op::Exists => all,
            _ if comparison.words => Self::STRING | Self::LIST,
            Op::Eq(v) | Op::Ne(v) => scalar(v),
            // `in []` holds for nothing; leave it to other lints rather than call it a type.
            Op::In(list) if list.items.is_empty() => all,
            Op::In(list) => list.items.iter().fold(0, |bits, item| bits | scalar(item)),
            Op::Lt(_) | Op::Le(_) | Op::Gt(_) | Op::Ge(_) => Self::NUMBER,
            Op::Glob(_) | Op::Matches(_) => Self::STRING,
            Op::Contains(_)
            | Op::ContainsAny(_)
            | Op::ContainsAll(_)
            | Op::ContainsGlob(_)
            | Op::ContainsMatches(_) => Self::LIST,
            Op::Is(t) => match t {
                JsonType::String => Self::STRING,
                JsonType::Number => Self::NUMBER,
                JsonType::Bool => Self::BOOL,
                JsonType::List => Self::LIST,
                JsonType::Object => Self::OBJECT,
            },
        };
        Some(TypeSet(bits))
    }

    /// "a string", "a string or a list".
    fn name(self) -> String {
        let names = [
            (Self::STRING, "a string"),
            (Self::NUMBER, "a number"),
            (Self::BOOL, "a boolean"),
            (Self::LIST, "a list"),
            (Self::OBJECT, "an object"),
        ];
        let parts: Vec<&str> = names.iter().filter(|(bit, _)| self.0 & bit != 0).map(|(_, name)| *name).collect();
        parts.join(" or ")
    }
}

fn contradiction(file: FileId, comparison: &Comparison, first: Span, message: &str) -> Diagnostic {
    Diagnostic::warning(Code::Contradiction, file, comparison.span, message.to_string())
        .label("contradicts an earlier condition")
        .help("all of these must hold, so the role can never allow; did you mean `any { ... }` or `in [...]`?")
        .related(file, first, "the earlier condition")
}

fn same_scalar(a: &Scalar, b: &Scalar) -> bool {
    match (a, b) {
        (Scalar::Str(a), Scalar::Str(b)) => a.value == b.value,
        (Scalar::Bool(a), Scalar::Bool(b)) => a.value == b.value,
        // By value, as the VM compares: `42` and `42.0` are one number.
        (Scalar::Number(a), Scalar::Number(b)) => {
            let number = |n: &NumLit| crate::number::Number::from_literal(&n.value, &n.text);
            crate::number::equal(number(a).as_ref(), number(b).as_ref())
        }
        _ => false,
    }
}

fn scalar_text(s: &Scalar) -> String {
    match s {
        Scalar::Str(s) => format!("{:?}", s.value.as_str()),
        Scalar::Bool(b) => b.value.to_string(),
        Scalar::Number(n) => n.text.to_string(),
    }
}

/// Parses `10.0.0.0/8` (or a single address) and returns it normalised; refuses host bits set
/// beyond the prefix, which usually means the wrong prefix length.
pub fn normalize_cidr(text: &str) -> Result<String, String> {
    let (address, prefix) = match text.split_once('/') {
        Some((a, p)) => (a, Some(p)),
        None => (text, None),
    };
    let ip: std::net::IpAddr = address.parse().map_err(|_| format!("`{address}` is not an IP address"))?;
    let max = if ip.is_ipv4() { 32 } else { 128 };
    let prefix: u32 = match prefix {
        Some(p) => p
            .parse()
            .ok()
            .filter(|p| *p <= max)
            .ok_or_else(|| format!("prefix length `{p}` is not between 0 and {max}"))?,
        None => max,
    };
    let bits: u128 = match ip {
        std::net::IpAddr::V4(v4) => u32::from(v4) as u128,
        std::net::IpAddr::V6(v6) => u128::from(v6),
    };
    let host_bits = max - prefix;
    let host_mask: u128 = if host_bits == 0 {
        0
    } else if host_bits >= 128 {
        u128::MAX
    } else {
        (1u128 << host_bits) - 1
    };
    if bits & host_mask != 0 {
        return Err(format!("`{text}` has bits set after the /{prefix} prefix"));
    }
    Ok(format!("{ip}/{prefix}"))
}

/// Parses an RFC 3339 time into seconds since the Unix epoch.
pub fn parse_rfc3339(text: &str) -> Option<i64> {
    time::OffsetDateTime::parse(text, &time::format_description::well_known::Rfc3339).ok().map(|t| t.unix_timestamp())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cidrs() {
        assert_eq!(normalize_cidr("10.0.0.0/8").unwrap(), "10.0.0.0/8");
        assert_eq!(normalize_cidr("192.168.1.7").unwrap(), "192.168.1.7/32");
        assert_eq!(normalize_cidr("2001:db8::/32").unwrap(), "2001:db8::/32");
        assert!(normalize_cidr("10.0.0.1/8").is_err());
        assert!(normalize_cidr("10.0.0.0/33").is_err());
        assert!(normalize_cidr("ten/8").is_err());
        assert_eq!(normalize_cidr("0.0.0.0/0").unwrap(), "0.0.0.0/0");
    }

    #[test]
    fn suggestions() {
        assert_eq!(suggest("isuer", &["issuer", "keys"]), Some("issuer"));
        assert_eq!(suggest("zzz", &["issuer", "keys"]), None);
    }

    #[test]
    fn rfc3339() {
        assert_eq!(parse_rfc3339("2024-11-23T08:21:40Z"), Some(1_732_350_100));
        assert_eq!(parse_rfc3339("2024-11-23"), None);
    }
}

//! Property tests: generated syntax trees print and parse back to the same tree, and the
//! formatter's output is a fixed point.

use claimgate::ast::*;
use claimgate::fmt::format_file;
use claimgate::parser::{self, Limits};
use claimgate::{FileId, Span};
use proptest::prelude::*;

const S: Span = Span { start: 0, end: 0 };

/// Words the language reads as something other than a name in some position.
const RESERVED: &[&str] = &["true", "false", "optional", "claims", "require", "not", "message"];

fn ident() -> impl Strategy<Value = Ident> {
    "[a-z_][a-z0-9_-]{0,8}"
        .prop_filter("reserved word", |s| !RESERVED.contains(&s.as_str()))
        .prop_map(|name| Ident { name: name.into(), span: S })
}

fn text() -> impl Strategy<Value = String> {
    prop_oneof![
        "[a-zA-Z0-9 ./:_-]{0,12}",
        any::<String>().prop_map(|s| s.chars().take(12).collect()),
        Just("line one\n  line two\n\nline four".to_string()),
        Just("quote \" backslash \\ tab \t".to_string()),
    ]
}

fn string() -> impl Strategy<Value = StrLit> {
    (text(), any::<bool>()).prop_map(|(value, multiline)| StrLit { value: value.into(), multiline, span: S })
}

fn number() -> impl Strategy<Value = NumLit> {
    prop_oneof![
        any::<i64>().prop_map(serde_json::Number::from),
        any::<u64>().prop_map(serde_json::Number::from),
        (-1.0e12f64..1.0e12).prop_filter_map("finite", serde_json::Number::from_f64),
    ]
    .prop_map(|value| NumLit { text: value.to_string().into(), value, span: S })
}

fn duration() -> impl Strategy<Value = DurationLit> {
    (0u64..400, 0u64..24, 0u64..60, 0u64..60).prop_map(|(d, h, m, s)| {
        let mut text = String::new();
        for (amount, unit) in [(d, "d"), (h, "h"), (m, "m"), (s, "s")] {
            if amount > 0 {
                text.push_str(&format!("{amount}{unit}"));
            }
        }
        if text.is_empty() {
            text.push_str("0s");
        }
        DurationLit { text: text.into(), seconds: d * 86_400 + h * 3_600 + m * 60 + s, span: S }
    })
}

fn path() -> impl Strategy<Value = ClaimPath> {
    let segment =
        prop_oneof![3 => text().prop_map(|key| Segment::Key(key.into())), 1 => (0u32..1000).prop_map(Segment::Index)];
    prop::collection::vec(segment, 1..4).prop_map(|segments| ClaimPath { segments, span: S })
}

fn scalar() -> impl Strategy<Value = Scalar> {
    prop_oneof![
        string().prop_map(Scalar::Str),
        number().prop_map(Scalar::Number),
        any::<bool>().prop_map(|value| Scalar::Bool(BoolLit { value, span: S })),
    ]
}

fn scalar_list() -> impl Strategy<Value = ScalarList> {
    prop::collection::vec(scalar(), 0..4).prop_map(|items| ScalarList { items, span: S })
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        scalar().prop_map(Op::Eq),
        scalar().prop_map(Op::Ne),
        number().prop_map(Op::Lt),
        number().prop_map(Op::Le),
        number().prop_map(Op::Gt),
        number().prop_map(Op::Ge),
        scalar_list().prop_map(Op::In),
        string().prop_map(Op::Glob),
        string().prop_map(Op::Matches),
        scalar().prop_map(Op::Contains),
        scalar_list().prop_map(Op::ContainsAny),
        scalar_list().prop_map(Op::ContainsAll),
        Just(Op::Exists),
        Just(Op::Absent),
    ]
}

fn comparison() -> impl Strategy<Value = ConditionKind> {
    (path(), op()).prop_map(|(path, op)| ConditionKind::Compare(Comparison { path, words: false, op, span: S }))
}

/// Conditions without a message (what `not` may wrap, and what groups hold before messages).
fn condition_kind() -> impl Strategy<Value = ConditionKind> {
    comparison().prop_recursive(3, 16, 4, |inner| {
        let plain = inner.clone().prop_map(|kind| Condition { kind, message: None, span: S });
        prop_oneof![
            (prop_oneof![Just(GroupKind::Any), Just(GroupKind::All)], prop::collection::vec(plain, 0..4))
                .prop_map(|(kind, conditions)| ConditionKind::Group(Group { kind, conditions, span: S })),
            inner.prop_filter_map("no double negation", |kind| match kind {
                ConditionKind::Not(_) => None,
                kind => Some(ConditionKind::Not(Box::new(Condition { kind, message: None, span: S }))),
            }),
        ]
    })
}

fn condition() -> impl Strategy<Value = Condition> {
    (condition_kind(), prop::option::of(string())).prop_map(|(kind, message)| Condition { kind, message, span: S })
}

fn term() -> impl Strategy<Value = Term> {
    let list_item = prop_oneof![
        string().prop_map(Term::Str),
        number().prop_map(Term::Number),
        any::<bool>().prop_map(|value| Term::Bool(BoolLit { value, span: S })),
        ident().prop_map(Term::Ident),
    ];
    prop_oneof![
        string().prop_map(Term::Str),
        number().prop_map(Term::Number),
        any::<bool>().prop_map(|value| Term::Bool(BoolLit { value, span: S })),
        duration().prop_map(Term::Duration),
        ident().prop_map(Term::Ident),
        path().prop_map(Term::Path),
        path().prop_map(|p| Term::Optional(p, S)),
        prop::collection::vec(list_item, 0..5).prop_map(|items| Term::List(List { items, span: S })),
    ]
}

fn setting() -> impl Strategy<Value = Item> {
    (ident(), prop::collection::vec(term(), 1..4))
        .prop_map(|(name, terms)| Item::Setting(Setting { name, value: Value { terms, span: S }, span: S }))
}

fn body() -> impl Strategy<Value = Body> {
    let leaf = prop::collection::vec(setting(), 0..4).prop_map(|items| Body { items, span: S });
    leaf.prop_recursive(2, 12, 4, |inner| {
        let block =
            (ident().prop_filter("require is a keyword", |i| i.name != "require"), prop::option::of(ident()), inner)
                .prop_map(|(name, label, body)| Item::Block(Block { name, label, body, span: S }));
        let require = prop::collection::vec(condition(), 0..5)
            .prop_map(|conditions| Item::Require(Require { conditions, span: S }));
        prop::collection::vec(prop_oneof![3 => setting(), 1 => block, 1 => require], 0..6)
            .prop_map(|items| Body { items, span: S })
    })
}

fn top_item() -> impl Strategy<Value = TopItem> {
    prop_oneof![
        (ident(), body()).prop_map(|(name, body)| TopItem { kind: TopKind::Provider, name, body, span: S }),
        (ident(), body()).prop_map(|(name, body)| TopItem { kind: TopKind::Role, name, body, span: S }),
        (text(), body()).prop_map(|(name, body)| TopItem {
            kind: TopKind::Test,
            name: Ident { name: name.into(), span: S },
            body,
            span: S
        }),
    ]
}

fn policy_file() -> impl Strategy<Value = PolicyFile> {
    prop::collection::vec(top_item(), 0..4).prop_map(|items| PolicyFile {
        file: FileId(0),
        items,
        comments: Vec::new(),
    })
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    #[test]
    fn generated_policies_format_and_parse_back_to_the_same_tree(file in policy_file()) {
        let printed = format_file(&file, "");
        let parsed = parser::parse(FileId(0), &printed, &Limits::default());
        prop_assert!(parsed.diagnostics.is_empty(), "printed text does not parse:\n{}\n{:?}", printed, parsed.diagnostics);
        prop_assert_eq!(&parsed.ast, &file, "printed:\n{}", printed);
        let again = format_file(&parsed.ast, &printed);
        prop_assert_eq!(again, printed);
    }
}

//! Hostile and injection-shaped input: it parses as harmless terms or is refused with a
//! position; it never panics and never takes long.

use auditlog_query::{Clause, ClauseKind, Text, parse};
use proptest::prelude::*;

use crate::query;

fn words(text: &str) -> Vec<String> {
    query(text)
        .clauses
        .into_iter()
        .map(|clause: Clause| match clause.kind {
            ClauseKind::Term(Text::Word(word)) => {
                format!("{}{word}", if clause.negated { "-" } else { "" })
            }
            other => panic!("{text}: not a word term: {other:?}"),
        })
        .collect()
}

#[test]
fn sql_injection_is_just_words() {
    assert_eq!(
        words("'; DROP TABLE events; --"),
        vec!["';", "DROP", "TABLE", "events;", "--"]
    );
    assert_eq!(words("1' OR '1'='1"), vec!["1'", "OR", "'1'='1"]);
}

#[test]
fn html_and_percent_encodings_are_just_words() {
    assert_eq!(
        words("<script>alert(1)</script> %00 %27"),
        vec!["<script>alert(1)</script>", "%00", "%27"]
    );
}

#[test]
fn control_characters_are_refused_not_passed_on() {
    for hostile in ["\u{0}", "a\u{7}", "\u{1b}[31m", "x\u{7f}", "\u{9b}"] {
        assert!(parse(hostile).is_err(), "{hostile:?}");
    }
}

#[test]
fn deep_looking_input_does_not_recurse() {
    let brackets = "(".repeat(4000);
    assert!(parse(&brackets).is_err_and(|e| e.message.contains("longer than 256")));
    let brackets = "(".repeat(256);
    assert_eq!(words(&brackets), vec![brackets.clone()]);
    let quotes = "\"".repeat(4000);
    assert!(parse(&quotes).is_err());
    let dashes = "-".repeat(257);
    assert_eq!(words(&dashes), vec![dashes.clone()]);
    let colons = format!("a{}", ":".repeat(250));
    assert!(parse(&colons).is_ok());
}

#[test]
fn unicode_tricks_parse_or_fail_cleanly() {
    for text in [
        "\u{202e}txt.exe",
        "\u{feff}user:Portal",
        "user\u{200b}:x",
        "ｕｓｅｒ:x",
        "\u{2028}a",
        "🦀:x",
        "a\u{0301}:b",
    ] {
        let _ = parse(text);
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]

    #[test]
    fn parse_never_panics_on_arbitrary_text(text in "\\PC{0,200}") {
        let _ = parse(&text);
    }

    #[test]
    fn parse_never_panics_on_query_shaped_text(
        text in "[-a-z0-9:.,<>=*\"\\\\ /_]{0,80}",
    ) {
        if let Err(err) = parse(&text) {
            prop_assert!(err.position <= text.chars().count());
            let _ = err.caret(&text);
        }
    }

    #[test]
    fn the_fuzz_property_holds_on_arbitrary_bytes(bytes in proptest::collection::vec(any::<u8>(), 0..120)) {
        auditlog_query::fuzz_check(&bytes);
    }

    #[test]
    fn the_fuzz_property_holds_on_query_shaped_text(
        text in "-?([a-z_.]{1,12}:)?([-a-z0-9*\"\\.,<>=/:]{0,30})( -?[a-z]{0,6}:?[0-9a-z.,*<>=]{0,12}){0,3}",
    ) {
        auditlog_query::fuzz_check(text.as_bytes());
    }

    #[test]
    fn parse_never_panics_on_any_chars(text in proptest::collection::vec(any::<char>(), 0..100)) {
        let text: String = text.into_iter().collect();
        if let Err(err) = parse(&text) {
            prop_assert!(err.position <= text.chars().count());
        }
    }
}

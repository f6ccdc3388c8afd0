//! One test per error, each asserting the position (a character offset), plus the caret
//! rendering and the limits.

use auditlog_query::{MAX_CLAUSES, MAX_INPUT_BYTES, MAX_VALUES, parse};

use crate::{assert_error, error, query};

#[test]
fn a_field_without_a_value_points_after_the_colon() {
    assert_error("user:", 5, "expected a value after ':'");
    assert_error("user: Portal", 5, "expected a value after ':'");
}

#[test]
fn a_trailing_comma_points_after_the_comma() {
    assert_error("user:a,", 7, "expected a value after ','");
}

#[test]
fn a_leading_or_doubled_comma_points_at_the_comma() {
    assert_error("user:,a", 5, "expected a value before ','");
    assert_error("user:a,,b", 7, "expected a value before ','");
}

#[test]
fn seq_zero_is_out_of_range() {
    assert_error("seq:0", 4, "out of range");
    assert_error("seq:9007199254740992", 4, "out of range");
}

#[test]
fn seq_must_be_an_integer() {
    assert_error("seq:abc", 4, "not a number");
    assert_error("seq:1.5", 4, "not a number");
    assert_error("seq:-1", 4, "not a number");
}

#[test]
fn an_impossible_date_is_an_error_at_the_date() {
    assert_error("time:2026-13-01", 5, "not a date");
    assert_error("time:2026-02-30", 5, "not a date");
    assert_error("time:>=2026-13-01", 7, "not a date");
}

#[test]
fn a_malformed_timestamp_is_an_error_at_the_timestamp() {
    assert_error("time:2026-01-01T25:00:00Z", 5, "RFC 3339");
    assert_error("received_at:yesterday", 12, "RFC 3339");
}

#[test]
fn a_relative_time_needs_a_known_unit_and_a_sane_amount() {
    assert_error("time:>now-5y", 6, "relative time");
    assert_error("time:>now-h", 6, "relative time");
    assert_error("time:>now-999999999999w", 6, "too far back");
}

#[test]
fn an_invalid_ip_address_is_an_error_at_the_value() {
    assert_error("ip:300.1.1.1/8", 3, "not an IP address");
    assert_error("ip:portal", 3, "not an IP address");
    assert_error("ip:10.0.0.1,300.1.1.1", 12, "not an IP address");
}

#[test]
fn a_network_prefix_longer_than_the_address_points_at_the_prefix() {
    assert_error("ip:10.0.0.0/33", 12, "longer than 32 bits");
    assert_error("ip:2001:db8::/129", 14, "longer than 128 bits");
}

#[test]
fn a_network_prefix_must_be_a_number() {
    assert_error("ip:10.0.0.0/x", 12, "not a number");
    assert_error("ip:10.0.0.0/", 12, "not a number");
}

#[test]
fn ip_takes_no_phrases_or_ranges() {
    assert_error("ip:\"10.0.0.1\"", 3, "does not take a phrase");
    assert_error("ip:10.0.0.1..10.0.0.9", 3, "does not take ranges");
}

#[test]
fn text_columns_take_no_ranges_or_comparisons() {
    assert_error("user:>5", 5, "does not take comparisons");
    assert_error("user:a..b", 5, "does not take ranges");
}

#[test]
fn typed_columns_take_no_prefixes_or_phrases() {
    assert_error("seq:5*", 4, "does not take a prefix");
    assert_error("time:\"now\"", 5, "does not take a phrase");
}

#[test]
fn an_unterminated_quote_points_at_the_opening_quote() {
    assert_error("\"abc", 0, "unterminated quote");
    assert_error("user:a,\"abc def", 7, "unterminated quote");
}

#[test]
fn an_empty_phrase_is_an_error() {
    assert_error("\"\"", 0, "empty phrase");
}

#[test]
fn only_quote_and_backslash_are_escapes_in_a_phrase() {
    assert_error(r#""a\nb""#, 2, "escapes inside a phrase");
}

#[test]
fn a_phrase_must_end_its_clause_or_value() {
    assert_error("\"a\"b", 3, "space after the closing quote");
    assert_error("user:\"a\"b", 8, "expected ',' or a space");
}

#[test]
fn a_quote_inside_a_word_is_an_error() {
    assert_error("ab\"c", 2, "inside a word");
    assert_error("user:ab\"c\"", 7, "inside a word");
}

#[test]
fn a_range_has_only_one_double_dot() {
    assert_error("seq:1..2..3", 8, "one '..'");
    assert_error("credit_limit:a..b..c", 17, "one '..'");
}

#[test]
fn a_range_needs_an_end() {
    assert_error("seq:..", 4, "at least one end");
}

#[test]
fn a_comparison_needs_a_value() {
    assert_error("seq:>=", 6, "expected a value after '>='");
    assert_error("seq:<", 5, "expected a value after '<'");
    assert_error("credit_limit:>,5", 14, "expected a value after '>'");
}

#[test]
fn a_colon_without_a_field_name_is_an_error() {
    assert_error(":x", 0, "field name before ':'");
    assert_error("a -:x", 3, "field name before ':'");
}

#[test]
fn a_lone_minus_is_an_error() {
    assert_error("-", 1, "after '-'");
    assert_error("a - b", 3, "after '-'");
}

#[test]
fn a_star_only_ends_a_word() {
    assert_error("a*b", 1, "only allowed at the end");
    assert_error("user:*ali*", 5, "only allowed at the end");
    assert_error("*", 0, "expected text before '*'");
    assert_error("user:*", 5, "expected text before '*'");
}

#[test]
fn a_trailing_backslash_is_an_error() {
    assert_error("abc\\", 3, "after '\\'");
}

#[test]
fn control_characters_are_errors_wherever_they_are() {
    assert_error("a\u{0}b", 1, "control character U+0000");
    assert_error("user:Portal\u{1b}[2J", 11, "control character U+001B");
    assert_error("\"a\tb\"", 2, "control character U+0009");
    assert_error("a\\\tb", 2, "control character U+0009");
}

#[test]
fn data_bounds_must_be_numbers_or_times_of_one_kind() {
    assert_error("credit_limit:>abc", 14, "neither");
    assert_error("credit_limit:>1e400", 14, "out of range");
    assert_error("credit_limit:1..2026-01-01", 13, "both ends");
}

#[test]
fn the_caret_points_under_the_position() {
    let input = "user:";
    assert_eq!(
        error(input).caret(input),
        "expected a value after ':' at 5\n  user:\n       ^"
    );
    let input = "action:UPDATE\tseq:0";
    assert_eq!(
        error(input).caret(input),
        "seq 0 is out of range (1 to 2^53-1) at 18\n  action:UPDATE seq:0\n                    ^"
    );
}

#[test]
fn the_caret_counts_characters_not_bytes() {
    let input = "Zürich seq:x";
    let rendered = error(input).caret(input);
    let lines: Vec<&str> = rendered.lines().collect();
    assert_eq!(lines[1], "  Zürich seq:x");
    assert_eq!(lines[2], format!("  {}^", " ".repeat(11)));
}

#[test]
fn the_caret_shows_a_window_of_long_input() {
    let input = format!("{} seq:0 {}", "a".repeat(200), "b".repeat(200));
    let err = error(&input);
    assert_eq!(err.position, 205);
    let rendered = err.caret(&input);
    let lines: Vec<&str> = rendered.lines().collect();
    assert!(lines[1].starts_with("  …"), "{rendered}");
    assert!(lines[1].ends_with('…'), "{rendered}");
    let caret_column = lines[2].chars().count() - 1;
    assert_eq!(lines[1].chars().nth(caret_column), Some('0'), "{rendered}");
}

#[test]
fn input_longer_than_the_limit_is_refused_at_the_limit() {
    assert!(parse(&vec!["a".repeat(200); 21].join(" ")[..MAX_INPUT_BYTES]).is_ok());
    assert_error(&"a".repeat(MAX_INPUT_BYTES + 1), 4096, "longer than 4096");
    // Two bytes per character: the position is a character offset.
    assert_error(
        &"é".repeat(MAX_INPUT_BYTES / 2 + 1),
        2048,
        "longer than 4096",
    );
}

#[test]
fn words_phrases_and_data_paths_longer_than_256_bytes_are_refused_at_their_clause() {
    assert!(parse(&"a".repeat(256)).is_ok());
    assert_error(&format!("x {}", "a".repeat(257)), 2, "a term is 257 bytes");
    assert_error(
        &format!("user:{}*", "é".repeat(129)),
        0,
        "a value is 258 bytes",
    );
    assert_error(&format!("x \"{}\"", "a".repeat(300)), 2, "longer than 256");
    assert!(parse(&format!("{}:1", "k".repeat(256))).is_ok());
    assert_error(
        &format!("after.a.{}:1", "k".repeat(256)),
        0,
        "a data path is 258 bytes",
    );
}

#[test]
fn more_than_the_clause_limit_is_refused_at_the_first_extra_clause() {
    assert_eq!(query(&"a ".repeat(MAX_CLAUSES)).clauses.len(), MAX_CLAUSES);
    assert_error(
        &"a ".repeat(MAX_CLAUSES + 1),
        2 * MAX_CLAUSES,
        "more than 64 clauses",
    );
}

#[test]
fn more_than_the_value_limit_is_refused_at_the_first_extra_value() {
    let values = |n: usize| (0..n).map(|_| "a").collect::<Vec<_>>().join(",");
    assert!(parse(&format!("user:{}", values(MAX_VALUES))).is_ok());
    assert_error(
        &format!("user:{}", values(MAX_VALUES + 1)),
        5 + 2 * MAX_VALUES,
        "more than 64 values for user",
    );
}

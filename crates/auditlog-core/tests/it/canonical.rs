//! RFC 8785 golden files: the reference implementation's test data and the RFC's own tables
//! (sources in `testdata/rfc8785/README.md`).

use auditlog_core::json::{
    JsonErrorKind, Number, Value, format_canonical_number, write_canonical_str,
};

use crate::{canonical_string, json, parse_str, testdata};

fn utf8(bytes: Vec<u8>) -> String {
    String::from_utf8(bytes).expect("fixture is UTF-8")
}

#[test]
fn reference_inputs_canonicalize_to_their_published_outputs() {
    for name in ["arrays", "french", "structures", "unicode", "weird"] {
        let input = utf8(testdata(&format!("rfc8785/input/{name}.json")));
        let expected = testdata(&format!("rfc8785/output/{name}.json"));
        let value = parse_str(&input).unwrap_or_else(|err| panic!("{name}: {err}"));
        assert_eq!(utf8(value.to_canonical()), utf8(expected), "{name}.json");
    }
}

#[test]
fn published_outputs_are_already_canonical() {
    for name in [
        "arrays",
        "french",
        "structures",
        "unicode",
        "values",
        "weird",
    ] {
        let output = utf8(testdata(&format!("rfc8785/output/{name}.json")));
        assert_eq!(canonical_string(&json(&output)), output, "{name}.json");
    }
}

#[test]
fn the_values_example_is_refused_only_for_the_number_rfc_8785_rounds() {
    let input = utf8(testdata("rfc8785/input/values.json"));
    let err = parse_str(&input).expect_err("333333333.33333329 would be rounded");
    assert_eq!(
        err.kind,
        JsonErrorKind::NumberNotExact("333333333.33333329".to_owned())
    );
    assert_eq!(err.path, "/numbers/2");
    assert_eq!(err.code(), "number_not_exact");

    // Written as the double it denotes, everything else matches the published bytes.
    let exact = input.replace("333333333.33333329", "333333333.3333333");
    let expected = utf8(testdata("rfc8785/output/values.json"));
    assert_eq!(canonical_string(&json(&exact)), expected);
}

#[test]
fn the_rfc_example_produces_the_published_utf8_bytes() {
    // RFC 8785 §3.2.2's object, with its rounded number written as the double it denotes.
    let input = utf8(testdata("rfc8785/rfc-3.2.2-input.json"));
    assert!(parse_str(&input).is_err(), "333333333.33333329 is refused");
    let input = input.replace("333333333.33333329", "333333333.3333333");
    let hex = utf8(testdata("rfc8785/rfc-3.2.4-bytes.txt"));
    let expected: Vec<u8> = hex
        .split_whitespace()
        .map(|pair| u8::from_str_radix(pair, 16).expect("hex byte"))
        .collect();
    assert_eq!(json(&input).to_canonical(), expected);
}

#[test]
fn appendix_b_numbers_serialize_as_published() {
    let table = utf8(testdata("rfc8785/appendix-b-numbers.txt"));
    let mut n_rows = 0;
    for line in table
        .lines()
        .filter(|l| !l.starts_with('#') && !l.is_empty())
    {
        let (hex, expected) = line.split_once(',').expect("hex,expected");
        let value = f64::from_bits(u64::from_str_radix(hex, 16).expect("hex double"));
        n_rows += 1;
        if expected.is_empty() {
            assert_eq!(format_canonical_number(value), None, "{hex}");
            assert_eq!(Number::from_f64(value), None, "{hex}");
            continue;
        }
        assert_eq!(
            format_canonical_number(value).as_deref(),
            Some(expected),
            "{hex}"
        );
        match Number::from_f64(value) {
            Some(number) => {
                assert_eq!(canonical_string(&Value::Number(number)), expected, "{hex}");
                assert_eq!(number.to_string(), expected, "{hex}");
                // What we write, we read back to the same double (minus zero reads as zero).
                let Value::Number(back) = json(expected) else {
                    panic!("{expected} is not a number");
                };
                assert_eq!(back.as_f64(), value, "{hex}");
            }
            None => {
                // Plain integers beyond ±(2^53−1): stored data never holds them (SPEC §2).
                assert!(
                    value.fract() == 0.0 && value.abs() > 9_007_199_254_740_991.0,
                    "{hex}"
                );
                assert!(parse_str(expected).is_err(), "{expected}");
            }
        }
    }
    assert_eq!(n_rows, 26, "every row of Table 1");
}

#[test]
fn the_sorting_vector_orders_keys_by_utf16_code_units() {
    let value = json(&utf8(testdata("rfc8785/sorting.json")));
    let sorted = json(&canonical_string(&value));
    let order: Vec<&str> = sorted
        .as_object()
        .expect("object")
        .iter()
        .map(|(_, v)| v.as_str().expect("string value"))
        .collect();
    let expected = utf8(testdata("rfc8785/sorting-order.txt"));
    assert_eq!(order, expected.lines().collect::<Vec<_>>());
}

#[test]
fn hand_built_strings_match_the_generic_canonicalizer() {
    for text in [
        "",
        "plain",
        "quote\" backslash\\ slash/",
        "\u{0}\u{1f}\u{7f}\u{80}",
        "€😂\n\t",
    ] {
        let mut by_hand = Vec::new();
        write_canonical_str(text, &mut by_hand);
        assert_eq!(
            by_hand,
            Value::String(text.to_owned()).to_canonical(),
            "{text:?}"
        );
    }
}

//! Signed notes and checkpoints against Go's `golang.org/x/mod/sumdb/note` test vectors
//! (sumdb/note/note_test.go in github.com/golang/mod, BSD-3-Clause) and the C2SP tlog-checkpoint
//! example, plus malformed notes, keys and bodies.

use auditlog_ledger::LedgerError;
use auditlog_ledger::note::{
    Checkpoint, NoteSigner, NoteVerifier, open_checkpoint, sign_checkpoint,
};
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;

use crate::hex_hash;

// note_test.go TestNewVerifier / TestNewSigner / TestSign / TestOpen.
const PETER_VKEY: &str = "PeterNeumann+c74f20a3+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW";
const PETER_SKEY: &str =
    "PRIVATE+KEY+PeterNeumann+c74f20a3+AYEKFALVFGyNhPJEMzD1QIDr+Y7hfZx09iUvxdXHKDFz";
const ENOCH_VKEY: &str = "EnochRoot+af0cfe78+ATtqJ7zOtqQtYqOo0CpvDXNlMhV3HeJDpjrASKGLWdop";
const TEXT: &str = "If you think cryptography is the answer to your problem,\n\
                    then you don't know what your problem is.\n";
const PETER_SIG: &str = "— PeterNeumann x08go/ZJkuBS9UG/SffcvIAQxVBtiFupLLr8pAcElZInNIuGUgYN1FFYC2pZSNXgKvqfqdngotpRZb6KE6RyyBwJnAM=\n";
const ENOCH_SIG: &str = "— EnochRoot rwz+eBzmZa0SO3NbfRGzPCpDckykFXSdeX+MNtCOXm2/5n2tiOHp+vAF1aGrQ5ovTG01oOTGwnWLox33WWd1RvMc+QQ=\n";

fn peter_seed() -> [u8; 32] {
    let key = BASE64
        .decode("AYEKFALVFGyNhPJEMzD1QIDr+Y7hfZx09iUvxdXHKDFz")
        .expect("vector base64");
    key[1..].try_into().expect("32-byte seed")
}

fn peter() -> NoteVerifier {
    NoteVerifier::parse(PETER_VKEY).expect("peter's key parses")
}

#[test]
fn signer_from_gos_seed_reproduces_gos_keys_and_signature() {
    let signer = NoteSigner::from_seed("PeterNeumann", &peter_seed()).expect("signer");
    assert_eq!(signer.name(), "PeterNeumann");
    assert_eq!(signer.key_id(), [0xc7, 0x4f, 0x20, 0xa3]);
    assert_eq!(signer.verifier_key(), PETER_VKEY);
    assert_eq!(signer.signer_key(), PETER_SKEY);
    // Ed25519 is deterministic, so the note is byte-for-byte Go's.
    assert_eq!(signer.sign(TEXT), format!("{TEXT}\n{PETER_SIG}"));
}

#[test]
fn parsed_signer_key_signs_like_go() {
    let signer = NoteSigner::parse_signer_key(PETER_SKEY).expect("go signer key parses");
    assert_eq!(signer.signer_key(), PETER_SKEY);
    assert_eq!(signer.sign(TEXT), format!("{TEXT}\n{PETER_SIG}"));
    assert_eq!(
        signer.try_sign(TEXT).ok(),
        Some(format!("{TEXT}\n{PETER_SIG}"))
    );
    assert!(
        signer.try_sign("abc").is_err(),
        "text without final newline"
    );
}

#[test]
fn gos_signed_note_verifies() {
    let note = format!("{TEXT}\n{PETER_SIG}");
    assert_eq!(peter().verify(&note).ok(), Some(TEXT));
    assert_eq!(peter().name(), "PeterNeumann");
}

#[test]
fn either_key_of_a_doubly_signed_note_verifies_it() {
    let note = format!("{TEXT}\n{PETER_SIG}{ENOCH_SIG}");
    assert_eq!(peter().verify(&note).ok(), Some(TEXT));
    let enoch = NoteVerifier::parse(ENOCH_VKEY).expect("enoch's key parses");
    assert_eq!(enoch.verify(&note).ok(), Some(TEXT));
    // Repeated lines by the same key are fine as long as each verifies.
    let repeated = format!("{TEXT}\n{PETER_SIG}{PETER_SIG}{ENOCH_SIG}{ENOCH_SIG}");
    assert_eq!(peter().verify(&repeated).ok(), Some(TEXT));
}

#[test]
fn a_note_signed_only_by_other_keys_is_an_unknown_key() {
    let note = format!("{TEXT}\n{ENOCH_SIG}");
    assert!(matches!(
        peter().verify(&note),
        Err(LedgerError::UnknownKey { .. })
    ));
    // Same key id, other name; same name, other key id (note_test.go "Verifiers returns a
    // Verifier for the wrong name or hash"): both are someone else's signature.
    let misnamed = format!(
        "{TEXT}\n{}",
        PETER_SIG.replace("PeterNeumann", "CarmenSandiego")
    );
    assert!(matches!(
        peter().verify(&misnamed),
        Err(LedgerError::UnknownKey { .. })
    ));
    let wrong_id = format!("{TEXT}\n{}", PETER_SIG.replace("x08g", "xxxx"));
    assert!(matches!(
        peter().verify(&wrong_id),
        Err(LedgerError::UnknownKey { .. })
    ));
}

#[test]
fn a_bad_signature_by_the_trusted_key_rejects_the_note() {
    // note_test.go "Invalid signature".
    let mangled = format!("{}ABCD{}", &PETER_SIG[..60], &PETER_SIG[60..]);
    let note = format!("{TEXT}\n{mangled}");
    assert!(matches!(
        peter().verify(&note),
        Err(LedgerError::BadSignature { .. })
    ));
    // A valid signature over other text.
    let other = format!("{TEXT}x\n\n{PETER_SIG}");
    assert!(matches!(
        peter().verify(&other),
        Err(LedgerError::BadSignature { .. })
    ));
    // Key id and a 1-byte "signature": well-formed, but no Ed25519 signature.
    let short = format!("{TEXT}\n— PeterNeumann x08go/Y=\n");
    assert!(matches!(
        peter().verify(&short),
        Err(LedgerError::BadSignature { .. })
    ));
    // One good and one bad line by the same key: the spec says reject.
    let mixed = format!("{TEXT}\n{PETER_SIG}{mangled}");
    assert!(matches!(
        peter().verify(&mixed),
        Err(LedgerError::BadSignature { .. })
    ));
}

#[test]
fn malformed_notes_are_rejected() {
    // note_test.go "Invalid encoded message syntax" ("\xff" + text cannot be a &str at all).
    let mut bad = vec![
        TEXT.to_owned(),
        format!("{TEXT}\n"),
        format!("{TEXT}\n{}", &PETER_SIG[..PETER_SIG.len() - 1]),
        format!("\x01{TEXT}\n{PETER_SIG}"),
        format!(
            "{TEXT}\n— Bad Name x08go/ZJkuBS9UG/SffcvIAQxVBtiFupLLr8pAcElZInNIuGUgYN1FFYC2pZSNXgKvqfqdngotpRZb6KE6RyyBwJnAM="
        ),
        format!("{TEXT}\n{PETER_SIG}Unexpected line.\n"),
        // note_test.go "Check too many signatures".
        format!("{TEXT}\n{}", PETER_SIG.repeat(101)),
    ];
    bad.extend([
        // Wrong base64 in the signature line.
        format!("{TEXT}\n— PeterNeumann x08go/ZJku!S9UG\n"),
        // Too short to hold a key id and one signature byte.
        format!("{TEXT}\n— PeterNeumann x08g\n"),
        // Hyphen instead of an em dash; no space after the dash; no signature after the name.
        format!("{TEXT}\n{}", PETER_SIG.replacen('—', "-", 1)),
        format!("{TEXT}\n{}", PETER_SIG.replacen("— ", "—", 1)),
        format!("{TEXT}\n— PeterNeumann\n"),
        // Names with '+' or a non-ASCII space.
        format!(
            "{TEXT}\n{}",
            PETER_SIG.replace("PeterNeumann", "Peter+Neumann")
        ),
        format!(
            "{TEXT}\n{}",
            PETER_SIG.replace("PeterNeumann", "Peter\u{a0}Neumann")
        ),
        // Carriage returns are control characters.
        format!("{TEXT}\n{}", PETER_SIG.replace('\n', "\r\n")),
        // Over 1 MiB.
        format!("{}\n{PETER_SIG}", "a\n".repeat(600_000)),
        String::new(),
    ]);
    for note in bad {
        assert!(
            matches!(peter().verify(&note), Err(LedgerError::MalformedNote(_))),
            "accepted {:?}",
            note.chars().take(200).collect::<String>()
        );
    }
}

#[test]
fn text_may_contain_blank_lines() {
    // signed-note: "the text is separated from the signatures by the last empty line".
    let signer = NoteSigner::from_seed("quasimodo.example/salvatore", &[7; 32]).expect("signer");
    let body = "Ognuno sta solo sul cuor della terra\ntrafitto da un raggio di sole:\n\ned è subito sera.\n";
    let note = signer.sign(body);
    assert_eq!(signer.verifier().verify(&note).ok(), Some(body));
}

#[test]
fn go_rejects_every_mangled_verifier_key_and_so_do_we() {
    // note_test.go TestNewVerifier: every proper substring and every single-byte increment.
    let bytes = PETER_VKEY.as_bytes();
    for i in 0..=bytes.len() {
        for j in i + 1..=bytes.len() {
            if i == 0 && j == bytes.len() {
                continue;
            }
            let key = &PETER_VKEY[i..j];
            assert!(NoteVerifier::parse(key).is_err(), "accepted {key}");
        }
    }
    for i in 0..bytes.len() {
        let mut mangled = bytes.to_vec();
        mangled[i] += 1;
        let key = String::from_utf8(mangled).expect("ascii");
        assert!(NoteVerifier::parse(&key).is_err(), "accepted {key}");
    }
    // Wrong key length and unknown algorithm, each with a matching key id.
    for key in [
        "PeterNeumann+cc469956+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TWBADKEY==",
        "PeterNeumann+173116ae+ZRpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW",
    ] {
        assert!(
            matches!(NoteVerifier::parse(key), Err(LedgerError::MalformedKey(_))),
            "accepted {key}"
        );
    }
}

#[test]
fn go_rejects_every_mangled_signer_key_and_so_do_we() {
    // note_test.go TestNewSigner.
    let bytes = PETER_SKEY.as_bytes();
    for i in 0..=bytes.len() {
        for j in i + 1..=bytes.len() {
            if i == 0 && j == bytes.len() {
                continue;
            }
            let key = &PETER_SKEY[i..j];
            assert!(NoteSigner::parse_signer_key(key).is_err(), "accepted {key}");
        }
    }
    for i in 0..bytes.len() {
        let mut mangled = bytes.to_vec();
        mangled[i] += 1;
        let key = String::from_utf8(mangled).expect("ascii");
        assert!(
            NoteSigner::parse_signer_key(&key).is_err(),
            "accepted {key}"
        );
    }
}

#[test]
fn invalid_key_names_are_refused() {
    for name in ["", "a b", "a+b", "a\tb", "a\u{2003}b", "a\nb", "a\u{1}b"] {
        assert!(
            NoteSigner::from_seed(name, &[1; 32]).is_err(),
            "accepted {name:?}"
        );
    }
    assert!(NoteSigner::from_seed("auditlog/default", &[1; 32]).is_ok());
}

#[test]
fn the_tlog_checkpoint_example_body_parses() {
    // c2sp.org/tlog-checkpoint example.
    let body =
        "example.com/behind-the-sofa\n20852163\nCsUYapGGPo4dkMgIAUqom/Xajj7h2fB2MPA3j2jxq2I=\n";
    let cp = Checkpoint::parse_body(body).expect("example parses");
    assert_eq!(cp.origin, "example.com/behind-the-sofa");
    assert_eq!(cp.size, 20_852_163);
    assert_eq!(
        cp.root,
        hex_hash("0ac5186a91863e8e1d90c808014aa89bf5da8e3ee1d9f07630f0378f68f1ab62")
    );
    assert_eq!(cp.body(), body);
}

#[test]
fn checkpoints_round_trip_through_a_signed_note() {
    let signer = NoteSigner::from_seed("auditlog/default", &[42; 32]).expect("signer");
    let verifier = NoteVerifier::parse(&signer.verifier_key()).expect("own key parses");
    for size in [0, 1, 8, u64::MAX] {
        let cp = Checkpoint {
            origin: "auditlog/default".into(),
            size,
            root: [size as u8; 32],
        };
        let note = sign_checkpoint(&signer, &cp);
        assert_eq!(open_checkpoint(&verifier, &note).ok(), Some(cp.clone()));
        // Altering the size after signing breaks the signature.
        let tampered = note.replacen(&format!("\n{size}\n"), &format!("\n{}\n", size ^ 1), 1);
        assert!(matches!(
            open_checkpoint(&verifier, &tampered),
            Err(LedgerError::BadSignature { .. })
        ));
    }
    // Another key's checkpoint is not ours.
    let stranger = NoteSigner::from_seed("auditlog/default", &[43; 32]).expect("signer");
    let cp = Checkpoint {
        origin: "auditlog/default".into(),
        size: 3,
        root: [0; 32],
    };
    assert!(matches!(
        open_checkpoint(&verifier, &sign_checkpoint(&stranger, &cp)),
        Err(LedgerError::UnknownKey { .. })
    ));
}

#[test]
fn malformed_checkpoint_bodies_are_rejected() {
    let root = "CsUYapGGPo4dkMgIAUqom/Xajj7h2fB2MPA3j2jxq2I=";
    let bad = [
        format!("origin\n5\n{root}"),              // no final newline
        format!("origin\n5\n{root}\nextension\n"), // extension line
        format!("origin\n5\n{root}\n\n"),          // empty extra line
        "origin\n5\n".to_owned(),                  // truncated
        "origin\n".to_owned(),
        String::new(),
        format!("\n5\n{root}\n"),        // empty origin
        format!("origin\n05\n{root}\n"), // leading zero
        format!("origin\n+5\n{root}\n"), // sign
        format!("origin\n-5\n{root}\n"),
        format!("origin\n 5\n{root}\n"),
        format!("origin\n\n{root}\n"),                     // empty size
        format!("origin\n18446744073709551616\n{root}\n"), // u64::MAX + 1
        format!("origin\n99999999999999999999999999\n{root}\n"),
        "origin\n5\nCsUYapGGPo4dkMgIAUqom/Xajj7h2fB2MPA3j2jxq2=\n".to_owned(), // 31 bytes
        "origin\n5\nCsUYapGGPo4dkMgIAUqom/Xajj7h2fB2MPA3j2jxq2I\n".to_owned(), // no padding
        "origin\n5\nCsUYapGGPo4dkMgIAUqom_Xajj7h2fB2MPA3j2jxq2I=\n".to_owned(), // url alphabet
        "origin\n5\nCsUYapGGPo4dkMgIAUqom/Xajj7h2fB2MPA3j2jxq2J=\n".to_owned(), // trailing bits
        format!("origin\n5\n{root}{root}\n"),
        format!("ori\rgin\n5\n{root}\n"), // control character
    ];
    for body in bad {
        assert!(
            matches!(
                Checkpoint::parse_body(&body),
                Err(LedgerError::MalformedCheckpoint(_))
            ),
            "accepted {body:?}"
        );
    }
    assert_eq!(
        Checkpoint::parse_body(&format!("o\n18446744073709551615\n{root}\n"))
            .map(|cp| cp.size)
            .ok(),
        Some(u64::MAX)
    );
}

#[test]
fn a_signed_note_with_a_malformed_body_fails_to_open() {
    let signer = NoteSigner::from_seed("auditlog/default", &[42; 32]).expect("signer");
    let note = signer.sign("auditlog/default\nfive\nAAAA\n");
    assert!(matches!(
        open_checkpoint(&signer.verifier(), &note),
        Err(LedgerError::MalformedCheckpoint(_))
    ));
}

#[test]
fn debug_output_never_shows_the_seed() {
    let signer = NoteSigner::parse_signer_key(PETER_SKEY).expect("signer");
    let shown = format!("{signer:?}");
    assert!(shown.contains("c74f20a3"));
    assert!(!shown.contains("AYEKFALV"));
    assert!(!shown.contains("129, 10, 20")); // the seed's first bytes as a list
}

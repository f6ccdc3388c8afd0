//! Signed checkpoints: the C2SP signed-note format with Ed25519 keys
//! (<https://c2sp.org/signed-note>) and the tlog-checkpoint body it carries
//! (<https://c2sp.org/tlog-checkpoint>), byte-compatible with Go's `golang.org/x/mod/sumdb/note`.
//!
//! This module owns the key strings (`<name>+<key id>+<base64 key>`), the signature line and the
//! checkpoint body. It generates no keys and reads no clock: the caller passes the 32-byte
//! Ed25519 seed. It verifies exactly one trusted key per call; signatures by other keys are
//! ignored, as the spec requires.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use ed25519_dalek::{Signature, Signer as _, SigningKey, VerifyingKey};
use sha2::{Digest, Sha256};

use crate::LedgerError;
use crate::merkle::Hash;

/// Larger notes are refused before any parsing; a checkpoint is a few hundred bytes.
pub const MAX_NOTE_BYTES: usize = 1 << 20;
/// Go's note.Open refuses more signature lines than this; so do we (signed-note asks verifiers
/// to accept at least 16).
const MAX_SIGNATURES: usize = 100;
/// signed-note "Signature types": 0x01 is Ed25519.
const ALG_ED25519: u8 = 0x01;
/// signed-note "Format": a signature line starts with U+2014 EM DASH and a space.
const SIG_PREFIX: &str = "\u{2014} ";

/// A tree head as a tlog-checkpoint body: origin, tree size, root hash. Extension lines are not
/// used by auditlog and are refused when parsing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Checkpoint {
    pub origin: String,
    pub size: u64,
    pub root: Hash,
}

impl Checkpoint {
    /// The note text: `origin\nsize\nbase64(root)\n` (tlog-checkpoint "Note text"; RFC 4648 §4
    /// base64).
    pub fn body(&self) -> String {
        format!(
            "{}\n{}\n{}\n",
            self.origin,
            self.size,
            BASE64.encode(self.root)
        )
    }

    /// Parses a checkpoint body (the text of a verified note, final newline included).
    pub fn parse_body(text: &str) -> Result<Checkpoint, LedgerError> {
        let bad = LedgerError::MalformedCheckpoint;
        if text.len() > MAX_NOTE_BYTES {
            return Err(bad("checkpoint is larger than 1 MiB"));
        }
        if has_control_character(text) {
            return Err(bad("checkpoint contains a control character"));
        }
        let lines = text
            .strip_suffix('\n')
            .ok_or(bad("checkpoint does not end with a newline"))?;
        let mut lines = lines.split('\n');
        let (Some(origin), Some(size), Some(root)) = (lines.next(), lines.next(), lines.next())
        else {
            return Err(bad("checkpoint has fewer than three lines"));
        };
        if lines.next().is_some() {
            return Err(bad("checkpoint has extension lines"));
        }
        if origin.is_empty() {
            return Err(bad("origin is empty"));
        }
        // "ASCII decimal ... with no leading zeroes"; `u64::from_str` alone would accept "+5".
        if size.is_empty() || !size.bytes().all(|b| b.is_ascii_digit()) {
            return Err(bad("tree size is not a decimal number"));
        }
        if size.len() > 1 && size.starts_with('0') {
            return Err(bad("tree size has a leading zero"));
        }
        let size: u64 = size.parse().map_err(|_| bad("tree size is out of range"))?;
        // 32 bytes are exactly 44 base64 characters; checking first bounds the decode.
        if root.len() != 44 {
            return Err(bad("root hash is not 32 bytes of base64"));
        }
        let root: Hash = BASE64
            .decode(root)
            .ok()
            .and_then(|bytes| bytes.try_into().ok())
            .ok_or(bad("root hash is not 32 bytes of base64"))?;
        Ok(Checkpoint {
            origin: origin.to_owned(),
            size,
            root,
        })
    }
}

/// A named Ed25519 signing key, as in Go's `note.NewSigner`.
pub struct NoteSigner {
    name: String,
    key: SigningKey,
    key_id: [u8; 4],
}

impl std::fmt::Debug for NoteSigner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never print the seed.
        f.debug_struct("NoteSigner")
            .field("name", &self.name)
            .field("key_id", &hex(&self.key_id))
            .finish_non_exhaustive()
    }
}

impl NoteSigner {
    /// The signer for key `name` with the Ed25519 private key `seed` (RFC 8032 §5.1.5).
    pub fn from_seed(name: &str, seed: &[u8; 32]) -> Result<Self, LedgerError> {
        if !is_valid_name(name) {
            return Err(LedgerError::MalformedKey("invalid key name"));
        }
        let key = SigningKey::from_bytes(seed);
        let key_id = key_id(name, key.verifying_key().as_bytes());
        Ok(NoteSigner {
            name: name.to_owned(),
            key,
            key_id,
        })
    }

    /// Parses `PRIVATE+KEY+<name>+<hex key id>+<base64(0x01 || seed)>`, the form Go's
    /// `note.GenerateKey` prints; the key id must match the key.
    pub fn parse_signer_key(s: &str) -> Result<Self, LedgerError> {
        let bad = LedgerError::MalformedKey;
        // Names contain no '+', base64 may: split off four fields and leave the rest whole.
        let mut fields = s.splitn(5, '+');
        let (Some("PRIVATE"), Some("KEY"), Some(name), Some(id_hex), Some(key64)) = (
            fields.next(),
            fields.next(),
            fields.next(),
            fields.next(),
            fields.next(),
        ) else {
            return Err(bad("signer key is not PRIVATE+KEY+<name>+<key id>+<key>"));
        };
        let claimed_id = parse_key_id(id_hex)?;
        let key = decode_key(key64)?;
        let seed: [u8; 32] = key
            .try_into()
            .map_err(|_| bad("ed25519 private key is not 32 bytes"))?;
        let signer = NoteSigner::from_seed(name, &seed)?;
        if signer.key_id != claimed_id {
            return Err(bad("key id does not match the key"));
        }
        Ok(signer)
    }

    /// The key name, as it appears in signature lines.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// signed-note key ID: SHA-256(name || 0x0A || 0x01 || public key)[:4].
    pub fn key_id(&self) -> [u8; 4] {
        self.key_id
    }

    /// `<name>+<hex key id>+<base64(0x01 || public key)>` (SPEC §3 `/api/v1/public-key`).
    pub fn verifier_key(&self) -> String {
        let mut key = [0u8; 33];
        key[0] = ALG_ED25519;
        key[1..].copy_from_slice(self.key.verifying_key().as_bytes());
        format!("{}+{}+{}", self.name, hex(&self.key_id), BASE64.encode(key))
    }

    /// `PRIVATE+KEY+<name>+<hex key id>+<base64(0x01 || seed)>`, as Go's `note.GenerateKey`.
    pub fn signer_key(&self) -> String {
        let mut key = [0u8; 33];
        key[0] = ALG_ED25519;
        key[1..].copy_from_slice(self.key.as_bytes());
        format!(
            "PRIVATE+KEY+{}+{}+{}",
            self.name,
            hex(&self.key_id),
            BASE64.encode(key)
        )
    }

    /// The verifier of this signer's signatures.
    pub fn verifier(&self) -> NoteVerifier {
        NoteVerifier {
            name: self.name.clone(),
            key_id: self.key_id,
            key: self.key.verifying_key(),
        }
    }

    /// The signed note: `body`, a blank line, `— <name> <base64(key id || signature)>\n`.
    ///
    /// `body` must be note text: ending in a newline, without control characters other than
    /// newline, at most 1 MiB (a `Checkpoint::body` always is). `try_sign` checks this.
    pub fn sign(&self, body: &str) -> String {
        debug_assert!(check_text(body).is_ok(), "note text is malformed");
        // Ed25519 (RFC 8032 §5.1.6) is deterministic: the same key and body give the same note.
        let signature = self.key.sign(body.as_bytes());
        let mut raw = [0u8; 4 + 64];
        raw[..4].copy_from_slice(&self.key_id);
        raw[4..].copy_from_slice(&signature.to_bytes());
        let mut note = String::with_capacity(body.len() + self.name.len() + 100);
        note.push_str(body);
        note.push('\n');
        note.push_str(SIG_PREFIX);
        note.push_str(&self.name);
        note.push(' ');
        note.push_str(&BASE64.encode(raw));
        note.push('\n');
        note
    }

    /// `sign`, after checking that `body` is valid note text.
    pub fn try_sign(&self, body: &str) -> Result<String, LedgerError> {
        check_text(body)?;
        Ok(self.sign(body))
    }
}

/// One trusted Ed25519 verifier key, as in Go's `note.NewVerifier`.
#[derive(Clone, PartialEq, Eq)]
pub struct NoteVerifier {
    name: String,
    key_id: [u8; 4],
    key: VerifyingKey,
}

impl std::fmt::Debug for NoteVerifier {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NoteVerifier")
            .field("name", &self.name)
            .field("key_id", &hex(&self.key_id))
            .finish_non_exhaustive()
    }
}

impl NoteVerifier {
    /// Parses `<name>+<hex key id>+<base64(0x01 || public key)>`; the key id must match.
    pub fn parse(verifier_key: &str) -> Result<Self, LedgerError> {
        let bad = LedgerError::MalformedKey;
        let mut fields = verifier_key.splitn(3, '+');
        let (Some(name), Some(id_hex), Some(key64)) = (fields.next(), fields.next(), fields.next())
        else {
            return Err(bad("verifier key is not <name>+<key id>+<key>"));
        };
        if !is_valid_name(name) {
            return Err(bad("invalid key name"));
        }
        let claimed_id = parse_key_id(id_hex)?;
        let key = decode_key(key64)?;
        let public: [u8; 32] = key
            .try_into()
            .map_err(|_| bad("ed25519 public key is not 32 bytes"))?;
        let key_id = key_id(name, &public);
        if key_id != claimed_id {
            return Err(bad("key id does not match the key"));
        }
        let key = VerifyingKey::from_bytes(&public)
            .map_err(|_| bad("ed25519 public key is not a curve point"))?;
        Ok(NoteVerifier {
            name: name.to_owned(),
            key_id,
            key,
        })
    }

    /// The key name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The signed-note key ID.
    pub fn key_id(&self) -> [u8; 4] {
        self.key_id
    }

    /// Checks a signed note and returns its text (the body, final newline included).
    ///
    /// Ok when at least one signature line is by this key (name and key id) and every such line
    /// verifies; lines by other keys are ignored (signed-note "Signatures": verifiers MUST ignore
    /// unknown keys, SHOULD reject the note when a known key's signature fails). Errors:
    /// `MalformedNote` for anything not in the format, `UnknownKey` when no line is by this
    /// key, `BadSignature` when one is and does not verify.
    pub fn verify<'a>(&self, note: &'a str) -> Result<&'a str, LedgerError> {
        let bad = LedgerError::MalformedNote;
        if note.len() > MAX_NOTE_BYTES {
            return Err(bad("note is larger than 1 MiB"));
        }
        if has_control_character(note) {
            return Err(bad("note contains a control character"));
        }
        // "the text is separated from the signatures by the last empty line in the note"
        let split = note
            .rfind("\n\n")
            .ok_or(bad("note has no blank line before its signatures"))?;
        let (text, signatures) = (&note[..split + 1], &note[split + 2..]);
        let signatures = signatures
            .strip_suffix('\n')
            .ok_or(bad("note does not end with a newline"))?;
        if signatures.is_empty() {
            return Err(bad("note has no signature lines"));
        }

        let mut by_this_key = false;
        for (n_line, line) in signatures.split('\n').enumerate() {
            if n_line >= MAX_SIGNATURES {
                return Err(bad("note has more than 100 signatures"));
            }
            let rest = line.strip_prefix(SIG_PREFIX).ok_or(bad(
                "signature line does not start with an em dash and a space",
            ))?;
            let (name, sig64) = rest
                .split_once(' ')
                .ok_or(bad("signature line has no signature"))?;
            if !is_valid_name(name) {
                return Err(bad("signature line has an invalid key name"));
            }
            let raw = BASE64
                .decode(sig64)
                .map_err(|_| bad("signature is not base64"))?;
            if raw.len() < 5 {
                return Err(bad("signature is shorter than a key id and one byte"));
            }
            if name != self.name || raw[..4] != self.key_id {
                continue;
            }
            by_this_key = true;
            let valid = Signature::from_slice(&raw[4..])
                .map(|signature| self.key.verify_strict(text.as_bytes(), &signature).is_ok())
                .unwrap_or(false);
            if !valid {
                return Err(LedgerError::BadSignature {
                    name: self.name.clone(),
                    key_id: hex(&self.key_id),
                });
            }
        }
        if !by_this_key {
            return Err(LedgerError::UnknownKey {
                name: self.name.clone(),
                key_id: hex(&self.key_id),
            });
        }
        Ok(text)
    }
}

/// The signed checkpoint note of `cp`.
pub fn sign_checkpoint(signer: &NoteSigner, cp: &Checkpoint) -> String {
    signer.sign(&cp.body())
}

/// Verifies a checkpoint note against one trusted key and parses its body.
pub fn open_checkpoint(verifier: &NoteVerifier, note: &str) -> Result<Checkpoint, LedgerError> {
    Checkpoint::parse_body(verifier.verify(note)?)
}

/// signed-note: key ID = SHA-256(key name || 0x0A || 0x01 || 32-byte Ed25519 public key)[:4].
fn key_id(name: &str, public_key: &[u8; 32]) -> [u8; 4] {
    let digest = Sha256::new()
        .chain_update(name.as_bytes())
        .chain_update([b'\n', ALG_ED25519])
        .chain_update(public_key)
        .finalize();
    [digest[0], digest[1], digest[2], digest[3]]
}

/// signed-note "Format": key names are non-empty and contain no Unicode space and no '+'.
/// Control characters are refused too, since a note may not contain them.
fn is_valid_name(name: &str) -> bool {
    !name.is_empty()
        && !name
            .chars()
            .any(|c| c.is_whitespace() || c == '+' || c.is_control())
}

/// signed-note: no ASCII control characters other than newline.
fn has_control_character(text: &str) -> bool {
    text.bytes().any(|b| b < 0x20 && b != b'\n')
}

fn check_text(body: &str) -> Result<(), LedgerError> {
    let bad = LedgerError::MalformedNote;
    if body.len() > MAX_NOTE_BYTES {
        return Err(bad("note is larger than 1 MiB"));
    }
    if has_control_character(body) {
        return Err(bad("note contains a control character"));
    }
    if !body.ends_with('\n') {
        return Err(bad("note text does not end with a newline"));
    }
    Ok(())
}

/// Exactly 8 hex digits (Go's `strconv.ParseUint(s, 16, 32)` with the length check).
fn parse_key_id(id_hex: &str) -> Result<[u8; 4], LedgerError> {
    if id_hex.len() != 8 || !id_hex.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err(LedgerError::MalformedKey("key id is not 8 hex digits"));
    }
    u32::from_str_radix(id_hex, 16)
        .map(u32::to_be_bytes)
        .map_err(|_| LedgerError::MalformedKey("key id is not 8 hex digits"))
}

/// The key bytes after the signature type byte, which must be Ed25519.
fn decode_key(key64: &str) -> Result<Vec<u8>, LedgerError> {
    // An Ed25519 key is 33 bytes with the type byte: 44 characters. Bound the decode.
    if key64.is_empty() || key64.len() > 64 {
        return Err(LedgerError::MalformedKey("key is not base64 of 33 bytes"));
    }
    let mut key = BASE64
        .decode(key64)
        .map_err(|_| LedgerError::MalformedKey("key is not base64"))?;
    match key.first() {
        Some(&ALG_ED25519) => {
            key.remove(0);
            Ok(key)
        }
        Some(_) => Err(LedgerError::MalformedKey("key is not an ed25519 key")),
        None => Err(LedgerError::MalformedKey("key is empty")),
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

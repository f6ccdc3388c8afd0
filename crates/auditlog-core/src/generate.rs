//! Deterministic sample events for demos and benchmarks (`auditlog generate`, SPEC §6).
//!
//! A [`Generator`] plays a VoIP carrier's control panel at work: staff in the panel, customers
//! in the portal (`Portal`), API clients and a few system jobs create, update and delete
//! customers, carriers, ingress and egress routes, rate cards, SIP users, DIDs, payments and
//! invoices, sign in, send invoices and publish rate cards. Each event is one compact JSON
//! object in the input form of SPEC §2, with `before`/`after` objects that follow each record's
//! history: the `after` of one change is the `before` of the next change of that record.
//!
//! The output is a pure function of [`GenerateOptions`]: the PRNG (xoshiro256** seeded by
//! SplitMix64), the Zipf table of accounts, the inter-arrival times and every number and date
//! are computed here by hand with integer arithmetic only, so the bytes do not change with a
//! crate version, a platform or a float library. The golden test pins them; change the output
//! only on purpose, and say so in the changelog.
//!
//! The world (staff, API clients, customer names, account addresses, how busy each account is)
//! is the same for every seed, so "customer 4711" is always the busiest account and always has
//! the same name; the seed drives the records and the events. All addresses are from
//! documentation or private ranges (192.0.2.0/24, 198.51.100.0/24, 203.0.113.0/24, 10.0.0.0/8,
//! 100.64.0.0/10, 2001:db8::/32) and all phone numbers from fictional ranges.
//!
//! This module does no IO, reads no clock and does not validate its output (that is `event`).

/// 2026-01-01T00:00:00Z, the default first event time.
pub const DEFAULT_START_UNIX_SECS: i64 = 1_767_225_600;
/// Default mean gap between consecutive events, in milliseconds.
pub const DEFAULT_MEAN_GAP_MS: u64 = 2_500;

/// What to generate. The same options always give the same events, byte for byte.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct GenerateOptions {
    pub seed: u64,
    /// Time of the first event is this plus one random gap.
    pub start_unix_secs: i64,
    /// Mean gap between consecutive events (an exponential-like distribution; gaps of 0 ms
    /// happen, so times never decrease but may repeat).
    pub mean_gap_ms: u64,
}

impl Default for GenerateOptions {
    fn default() -> Self {
        GenerateOptions {
            seed: 0,
            start_unix_secs: DEFAULT_START_UNIX_SECS,
            mean_gap_ms: DEFAULT_MEAN_GAP_MS,
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Randomness. Hand-written so that the output never depends on a crate version.

const GOLDEN_GAMMA: u64 = 0x9E37_79B9_7F4A_7C15;

/// The SplitMix64 finalizer (Steele, Lea, Flood 2014): a bijective 64-bit mixer.
fn mix64(mut z: u64) -> u64 {
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

fn splitmix64(state: &mut u64) -> u64 {
    *state = state.wrapping_add(GOLDEN_GAMMA);
    mix64(*state)
}

/// A stateless hash of two words, for values that must be a function of a record, not of the
/// order of events.
fn hash2(a: u64, b: u64) -> u64 {
    mix64(a ^ mix64(b.wrapping_add(GOLDEN_GAMMA)))
}

/// Maps a uniform 64-bit word to `0..n` (Lemire's multiply-shift, without the rejection step:
/// the bias is below 2^-40 for every `n` used here).
fn scale(word: u64, n: u64) -> u64 {
    ((u128::from(word) * u128::from(n)) >> 64) as u64
}

/// xoshiro256** 1.0 (Blackman, Vigna), seeded with SplitMix64 as its authors recommend.
#[derive(Debug, Clone)]
struct Rng {
    s: [u64; 4],
}

impl Rng {
    fn new(seed: u64) -> Rng {
        let mut state = seed;
        Rng {
            s: [
                splitmix64(&mut state),
                splitmix64(&mut state),
                splitmix64(&mut state),
                splitmix64(&mut state),
            ],
        }
    }

    fn next_u64(&mut self) -> u64 {
        let result = self.s[1].wrapping_mul(5).rotate_left(7).wrapping_mul(9);
        let t = self.s[1] << 17;
        self.s[2] ^= self.s[0];
        self.s[3] ^= self.s[1];
        self.s[1] ^= self.s[2];
        self.s[0] ^= self.s[3];
        self.s[2] ^= t;
        self.s[3] = self.s[3].rotate_left(45);
        result
    }

    fn below(&mut self, n: u64) -> u64 {
        scale(self.next_u64(), n)
    }

    fn index(&mut self, len: usize) -> usize {
        self.below(len as u64) as usize
    }

    fn percent(&mut self, p: u64) -> bool {
        self.below(100) < p
    }

    fn weighted(&mut self, weights: &[u32]) -> usize {
        let total: u64 = weights.iter().map(|&w| u64::from(w)).sum();
        let mut r = self.below(total);
        for (i, &w) in weights.iter().enumerate() {
            if r < u64::from(w) {
                return i;
            }
            r -= u64::from(w);
        }
        weights.len() - 1
    }
}

/// The value of a field at generation `generation` (the number of times it was changed), out of `range`
/// values. Consecutive generations always differ, so every change shows in the diff: small
/// ranges step through an arithmetic progression with a per-field stride, larger ones draw
/// afresh and move one step if the draw repeats the previous one.
fn pick(h: u64, generation: u16, range: u64) -> u64 {
    if range <= 1 {
        return 0;
    }
    if range <= 64 {
        let base = h % range;
        let step = 1 + (h >> 32) % (range - 1);
        return (base + u64::from(generation) * step) % range;
    }
    let draw = |g: u16| scale(hash2(h, u64::from(g)), range);
    let value = draw(generation);
    if generation > 0 && value == draw(generation - 1) {
        (value + 1) % range
    } else {
        value
    }
}

// ---------------------------------------------------------------------------------------------
// Writing JSON into a String without `format!`.

fn push_ascii(out: &mut String, bytes: &[u8]) {
    // Only ever called with ASCII, so the check cannot fail.
    if let Ok(text) = std::str::from_utf8(bytes) {
        out.push_str(text);
    }
}

/// "000001002…999": numbers are written three digits at a time from this table, which is
/// measurably faster than digit by digit (most numbers here are below 1000).
const TRIPLETS: &str = {
    const BYTES: [u8; 3_000] = {
        let mut table = [0u8; 3_000];
        let mut i = 0;
        while i < 1_000 {
            table[3 * i] = b'0' + (i / 100) as u8;
            table[3 * i + 1] = b'0' + (i / 10 % 10) as u8;
            table[3 * i + 2] = b'0' + (i % 10) as u8;
            i += 1;
        }
        table
    };
    match std::str::from_utf8(&BYTES) {
        Ok(text) => text,
        Err(_) => panic!("digit table is ASCII"),
    }
};

fn push_triplet(out: &mut String, value: u64, width: usize) {
    let start = 3 * (value % 1_000) as usize;
    out.push_str(&TRIPLETS[start + 3 - width..start + 3]);
}

fn push_u64(out: &mut String, value: u64) {
    if value < 1_000 {
        let width = if value < 10 {
            1
        } else if value < 100 {
            2
        } else {
            3
        };
        push_triplet(out, value, width);
        return;
    }
    push_u64(out, value / 1_000);
    push_triplet(out, value % 1_000, 3);
}

fn push_i64(out: &mut String, value: i64) {
    if value < 0 {
        out.push('-');
    }
    push_u64(out, value.unsigned_abs());
}

fn push_padded(out: &mut String, value: u64, width: usize) {
    if width <= 3 && value < 1_000 {
        let digits = if value < 10 {
            1
        } else if value < 100 {
            2
        } else {
            3
        };
        push_triplet(out, value, width.max(digits));
        return;
    }
    let mut buf = [b'0'; 20];
    let mut i = buf.len();
    let mut rest = value;
    while rest > 0 && i > 0 {
        i -= 1;
        buf[i] = b'0' + (rest % 10) as u8;
        rest /= 10;
    }
    let start = (buf.len() - width.min(20)).min(i);
    push_ascii(out, &buf[start..]);
}

/// `value / 10^decimals` in the shortest exact form: `12.5`, `0.0123`, `-3`, never `1.50`.
/// Every value written has at most 4 decimals and 15 digits, so RFC 8785 keeps it exact.
fn push_decimal(out: &mut String, value: i64, decimals: u32) {
    if decimals == 0 {
        push_i64(out, value);
        return;
    }
    let unit = 10u64.pow(decimals);
    let magnitude = value.unsigned_abs();
    let mut fraction = magnitude % unit;
    if value < 0 {
        out.push('-');
    }
    push_u64(out, magnitude / unit);
    if fraction != 0 {
        let mut width = decimals as usize;
        loop {
            let last_digit = fraction % 10;
            if last_digit != 0 {
                break;
            }
            fraction /= 10;
            width -= 1;
        }
        out.push('.');
        push_padded(out, fraction, width);
    }
}

const HEX: &[u8; 16] = b"0123456789abcdef";

/// Lower-case hex without leading zeros (an IPv6 group).
fn push_hex(out: &mut String, value: u64) {
    let digits = (16 - value.leading_zeros() as usize / 4).max(1);
    push_hex_fixed(out, value, digits);
}

fn push_hex_fixed(out: &mut String, value: u64, digits: usize) {
    let mut buf = [0u8; 16];
    let digits = digits.min(16);
    for (i, slot) in buf[..digits].iter_mut().enumerate() {
        let shift = 4 * (digits - 1 - i);
        *slot = HEX[((value >> shift) & 0xF) as usize];
    }
    push_ascii(out, &buf[..digits]);
}

/// The body of a JSON string (RFC 8259 §7): quote, backslash and control characters escaped,
/// everything else copied as UTF-8.
fn push_escaped(out: &mut String, text: &str) {
    let bytes = text.as_bytes();
    let mut start = 0;
    for (i, &byte) in bytes.iter().enumerate() {
        let escape: &str = match byte {
            b'"' => "\\\"",
            b'\\' => "\\\\",
            b'\n' => "\\n",
            b'\r' => "\\r",
            b'\t' => "\\t",
            0..=0x1F => "",
            _ => continue,
        };
        out.push_str(&text[start..i]);
        if escape.is_empty() {
            out.push_str("\\u00");
            push_hex_fixed(out, u64::from(byte), 2);
        } else {
            out.push_str(escape);
        }
        start = i + 1;
    }
    out.push_str(&text[start..]);
}

fn push_str(out: &mut String, text: &str) {
    out.push('"');
    push_escaped(out, text);
    out.push('"');
}

/// `,"key":` — every key written is a constant that needs no escaping.
fn push_key(out: &mut String, key: &str) {
    out.push_str(",\"");
    out.push_str(key);
    out.push_str("\":");
}

// ---------------------------------------------------------------------------------------------
// Dates (proleptic Gregorian, UTC), after Howard Hinnant's `civil_from_days`.

const MS_PER_DAY: i64 = 86_400_000;

fn civil_from_days(days: i64) -> (i64, u64, u64) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1_460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    (year, month as u64, day as u64)
}

fn push_date(out: &mut String, unix_ms: i64) {
    let (year, month, day) = civil_from_days(unix_ms.div_euclid(MS_PER_DAY));
    push_padded(out, year.clamp(0, 9999) as u64, 4);
    out.push('-');
    push_padded(out, month, 2);
    out.push('-');
    push_padded(out, day, 2);
}

fn push_clock(out: &mut String, unix_ms: i64) {
    let ms_of_day = unix_ms.rem_euclid(MS_PER_DAY) as u64;
    let secs = ms_of_day / 1000;
    push_padded(out, secs / 3600, 2);
    out.push(':');
    push_padded(out, secs / 60 % 60, 2);
    out.push(':');
    push_padded(out, secs % 60, 2);
}

/// RFC 3339 with whole seconds, as records store their timestamps.
fn push_timestamp(out: &mut String, unix_ms: i64) {
    out.push('"');
    push_date(out, unix_ms);
    out.push('T');
    push_clock(out, unix_ms);
    out.push_str("Z\"");
}

// ---------------------------------------------------------------------------------------------
// The world: fixed for every seed.

const N_ACCOUNTS: u64 = 5_000;
/// Salt of everything that depends on an account or a person only, not on the seed.
const WORLD: u64 = 0x6175_6469_746C_6F67;

/// Account of Zipf rank `rank` (1 = busiest). A fixed bijection of 1..=5000 scatters the busy
/// accounts; rank 1 is account 4711.
fn account_of_rank(rank: u64) -> u32 {
    ((((rank - 1) * 2_731 + 4_710) % N_ACCOUNTS) + 1) as u32
}

const STAFF: [&str; 40] = [
    "alice.moreau",
    "bob.jensen",
    "carlos.mendes",
    "dana.kowalski",
    "elif.yilmaz",
    "farid.haddad",
    "greta.lindqvist",
    "hiro.tanaka",
    "ines.duarte",
    "jakub.novak",
    "kofi.mensah",
    "lena.schmidt",
    "marco.rossi",
    "nadia.petrova",
    "oscar.nilsson",
    "priya.raman",
    "quentin.dubois",
    "rosa.martinez",
    "sven.olsen",
    "tomasz.zielinski",
    "uma.krishnan",
    "victor.almeida",
    "wen.zhang",
    "ximena.torres",
    "yusuf.demir",
    "zoe.fischer",
    "amara.okafor",
    "ben.carter",
    "chloe.bernard",
    "diego.silva",
    "emma.wilson",
    "felix.wagner",
    "gabriela.ruiz",
    "hannah.cohen",
    "ivan.horvat",
    "julia.costa",
    "kenji.watanabe",
    "laura.bianchi",
    "mateo.garcía",
    "søren.madsen",
];

/// Relative activity of the staff (1/(i+3)): a few do most of the work.
const STAFF_WEIGHTS: [u32; STAFF.len()] = {
    let mut weights = [0; STAFF.len()];
    let mut i = 0;
    while i < STAFF.len() {
        weights[i] = 12_000 / (i as u32 + 3);
        i += 1;
    }
    weights
};

const BROWSERS: [&str; 6] = [
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36",
    "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/18.1 Safari/605.1.15",
    "Mozilla/5.0 (X11; Linux x86_64; rv:133.0) Gecko/20100101 Firefox/133.0",
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36 Edg/131.0.0.0",
    "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/130.0.0.0 Safari/537.36",
    "Mozilla/5.0 (iPhone; CPU iPhone OS 18_1 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/18.1 Mobile/15E148 Safari/604.1",
];

struct Client {
    user: &'static str,
    user_agent: &'static str,
    ipv4: &'static str,
    ipv6: &'static str,
}

const API_CLIENTS: [Client; 8] = [
    Client {
        user: "api:billing-sync",
        user_agent: "billing-sync/3.4.1 python-requests/2.32.3",
        ipv4: "10.10.0.21",
        ipv6: "2001:db8:a::21",
    },
    Client {
        user: "api:provisioning",
        user_agent: "provisioner/1.18.0 Go-http-client/1.1",
        ipv4: "10.10.0.35",
        ipv6: "2001:db8:a::35",
    },
    Client {
        user: "api:crm-sync",
        user_agent: "crm-connector/2.0.7 (+https://crm.example/integrations)",
        ipv4: "192.0.2.80",
        ipv6: "2001:db8:b::80",
    },
    Client {
        user: "api:number-porting",
        user_agent: "porting-bot/0.9.7 node-fetch/3.3.2",
        ipv4: "10.10.0.44",
        ipv6: "2001:db8:a::44",
    },
    Client {
        user: "api:fraud-guard",
        user_agent: "fraud-guard/5.2.0 (+https://fraud.example)",
        ipv4: "10.10.1.7",
        ipv6: "2001:db8:a:1::7",
    },
    Client {
        user: "api:lcr-optimizer",
        user_agent: "lcr-optimizer/2.7.3 reqwest/0.12.9",
        ipv4: "10.10.1.12",
        ipv6: "2001:db8:a:1::12",
    },
    Client {
        user: "api:reseller-hub",
        user_agent: "ResellerHub/4.1 (PHP 8.3; Guzzle/7.9.2)",
        ipv4: "198.51.100.23",
        ipv6: "2001:db8:c0de::23",
    },
    Client {
        user: "api:monitoring",
        user_agent: "prometheus-bridge/1.0.4",
        ipv4: "10.10.2.3",
        ipv6: "2001:db8:a:2::3",
    },
];

const API_BILLING: u8 = 0;
const API_PROVISIONING: u8 = 1;
const API_CRM: u8 = 2;
const API_PORTING: u8 = 3;
const API_FRAUD: u8 = 4;
const API_LCR: u8 = 5;
const API_RESELLER: u8 = 6;
const API_MONITORING: u8 = 7;

const SYSTEM_JOBS: [Client; 3] = [
    Client {
        user: "system:scheduler",
        user_agent: "scheduler/7.3.0",
        ipv4: "10.0.0.11",
        ipv6: "2001:db8:5::11",
    },
    Client {
        user: "system:billing",
        user_agent: "billing-engine/4.0.2",
        ipv4: "10.0.0.12",
        ipv6: "2001:db8:5::12",
    },
    Client {
        user: "system:alert-engine",
        user_agent: "alert-engine/2.1.5",
        ipv4: "10.0.0.13",
        ipv6: "2001:db8:5::13",
    },
];

const SYSTEM_SCHEDULER: u8 = 0;
const SYSTEM_BILLING: u8 = 1;
const SYSTEM_ALERTS: u8 = 2;

/// Company name parts: (display, ASCII slug used in e-mail domains and SIP user names).
const COMPANY_STEMS: [(&str, &str); 40] = [
    ("Acme", "acme"),
    ("Nordic", "nordic"),
    ("Blue Sky", "bluesky"),
    ("Zenith", "zenith"),
    ("Atlas", "atlas"),
    ("Orbit", "orbit"),
    ("Pioneer", "pioneer"),
    ("Vertex", "vertex"),
    ("Helios", "helios"),
    ("Summit", "summit"),
    ("Cobalt", "cobalt"),
    ("Meridian", "meridian"),
    ("Polar", "polar"),
    ("Quantum", "quantum"),
    ("Redwood", "redwood"),
    ("Sapphire", "sapphire"),
    ("Tundra", "tundra"),
    ("Unity", "unity"),
    ("Velocity", "velocity"),
    ("Westbridge", "westbridge"),
    ("Kestrel", "kestrel"),
    ("Lumen", "lumen"),
    ("Mistral", "mistral"),
    ("Nimbus", "nimbus"),
    ("Obsidian", "obsidian"),
    ("Palisade", "palisade"),
    ("Harbor", "harbor"),
    ("Ironclad", "ironclad"),
    ("Juniper", "juniper"),
    ("Crescent", "crescent"),
    ("Dynamo", "dynamo"),
    ("Equinox", "equinox"),
    ("Falcon", "falcon"),
    ("Granite", "granite"),
    ("Beacon", "beacon"),
    ("Aurora", "aurora"),
    ("Citadel", "citadel"),
    ("Delta", "delta"),
    ("Everest", "everest"),
    ("Fjord", "fjord"),
];

const COMPANY_TRADES: [&str; 10] = [
    " Telecom",
    " VoIP",
    " Communications",
    " Networks",
    " Voice",
    " Connect",
    " Telco",
    " Call Centre",
    " Carrier Services",
    " Cloud PBX",
];

const COMPANY_FORMS: [&str; 12] = [
    " Ltd",
    " GmbH",
    " S.A.",
    " LLC",
    " AB",
    " B.V.",
    " Inc.",
    " SARL",
    " Sp. z o.o.",
    " Pty Ltd",
    " S.r.l.",
    " A/S",
];

/// About one account in fifty has a name that needs care: quotes, backslashes, non-Latin
/// scripts, characters outside the Basic Multilingual Plane.
const SPECIAL_COMPANIES: [(&str, &str); 8] = [
    ("Müller & Söhne \"GmbH\"", "mueller"),
    ("Café Olé Télécom", "cafeole"),
    ("O'Brien & Sons Telephony", "obrien"),
    ("Zoë's \"Best\" VoIP 📞", "zoes"),
    ("東京テレコム株式会社", "tokyotel"),
    ("Łódź Łączność Sp. z o.o.", "lodz"),
    ("São Paulo Voz Ltda.", "saopaulo"),
    ("Back\\slash Networks <NOC>", "backslash"),
];

fn push_company_name(out: &mut String, account: u32) {
    let h = hash2(WORLD, u64::from(account));
    if h % 50 == 7 {
        let special = SPECIAL_COMPANIES[(h >> 8) as usize % SPECIAL_COMPANIES.len()];
        push_escaped(out, special.0);
        return;
    }
    out.push_str(COMPANY_STEMS[(h >> 8) as usize % COMPANY_STEMS.len()].0);
    out.push_str(COMPANY_TRADES[(h >> 16) as usize % COMPANY_TRADES.len()]);
    out.push_str(COMPANY_FORMS[(h >> 24) as usize % COMPANY_FORMS.len()]);
}

fn company_slug(account: u32) -> &'static str {
    let h = hash2(WORLD, u64::from(account));
    if h % 50 == 7 {
        SPECIAL_COMPANIES[(h >> 8) as usize % SPECIAL_COMPANIES.len()].1
    } else {
        COMPANY_STEMS[(h >> 8) as usize % COMPANY_STEMS.len()].1
    }
}

/// `acme4711`: unique per account, ASCII, used in domains and SIP user names.
fn push_account_handle(out: &mut String, account: u32) {
    out.push_str(company_slug(account));
    push_u64(out, u64::from(account));
}

fn push_account_email(out: &mut String, role: &str, account: u32) {
    out.push_str(role);
    out.push('@');
    push_account_handle(out, account);
    out.push_str(".example");
}

const CURRENCIES: [&str; 8] = ["USD", "EUR", "GBP", "CAD", "AUD", "CHF", "SEK", "ZAR"];

fn account_currency(account: u32) -> &'static str {
    match hash2(WORLD ^ 1, u64::from(account)) % 100 {
        0..45 => "USD",
        45..75 => "EUR",
        75..90 => "GBP",
        n => CURRENCIES[3 + (n as usize % 5)],
    }
}

const COUNTRIES: [&str; 20] = [
    "GB", "US", "DE", "FR", "NL", "ES", "IT", "PL", "SE", "BR", "JP", "ZA", "IN", "AU", "CA", "NG",
    "AE", "SG", "MX", "PT",
];

/// Addresses an account uses: 0 and 1 are its offices (portal sign-ins), 2–5 its switches and
/// PBXs (route and IP-authentication records). About 30% are IPv6.
fn push_account_ip(out: &mut String, account: u32, k: u64) {
    let h = hash2(WORLD ^ 2, (u64::from(account) << 8) | k);
    if h % 100 < 30 {
        out.push_str("2001:db8:");
        push_hex(out, 0x1000 + u64::from(account));
        out.push(':');
        push_hex(out, ((h >> 8) & 0xFFFF) | 1);
        out.push_str("::");
        push_hex(out, k + 1);
        return;
    }
    let octets = h >> 16;
    match (h >> 8) % 4 {
        0 => {
            out.push_str("192.0.2.");
            push_u64(out, octets % 254 + 1);
        }
        1 => {
            out.push_str("198.51.100.");
            push_u64(out, octets % 254 + 1);
        }
        _ => {
            out.push_str("100.");
            push_u64(out, 64 + octets % 64);
            out.push('.');
            push_u64(out, (octets >> 8) % 256);
            out.push('.');
            push_u64(out, (octets >> 16) % 254 + 1);
        }
    }
}

/// Staff addresses: office (dual-stack for a quarter of the staff), VPN, and home.
fn push_staff_ip(out: &mut String, staff: usize, place: u8) {
    let i = staff as u64;
    let cohort = i % 3;
    match place {
        0 if i % 4 == 1 => {
            out.push_str("2001:db8:10:1::");
            push_hex(out, 0x100 + i);
        }
        0 => {
            out.push_str("203.0.113.");
            push_u64(out, 10 + i);
        }
        1 => {
            out.push_str("10.8.");
            push_u64(out, i / 16);
            out.push('.');
            push_u64(out, (i % 16) * 8 + 5);
        }
        _ if cohort == 0 => {
            out.push_str("2001:db8:");
            push_hex(out, 0x4000 + i * 0x35);
            out.push(':');
            push_hex(out, 0x100 + i);
            out.push_str("::");
            push_hex(out, 0x10 + i);
        }
        _ => {
            out.push_str("198.51.100.");
            push_u64(out, 100 + i);
        }
    }
}

/// Carriers' signalling addresses; egress routes use their carrier's.
fn push_carrier_ip(out: &mut String, carrier: u32, k: u64) {
    let h = hash2(WORLD ^ 3, (u64::from(carrier) << 8) | k);
    match h % 4 {
        0 => {
            out.push_str("2001:db8:ca:");
            push_hex(out, u64::from(carrier));
            out.push_str("::");
            push_hex(out, k + 1);
        }
        1 => {
            out.push_str("192.0.2.");
            push_u64(out, 128 + (h >> 8) % 126);
        }
        _ => {
            out.push_str("203.0.113.");
            push_u64(out, 128 + (h >> 8) % 70);
        }
    }
}

const CARRIER_NAMES: [(&str, &str); 24] = [
    ("GlobalVox", "globalvox"),
    ("TransAtlantic Voice", "transatlantic"),
    ("EuroRoute", "euroroute"),
    ("Pacific Crossing", "pacific"),
    ("AfriLink", "afrilink"),
    ("Iberia Tel", "iberiatel"),
    ("NorthSea Carrier", "northsea"),
    ("Andes Telecom", "andes"),
    ("Sahara Wholesale", "sahara"),
    ("Balkan Voice", "balkan"),
    ("Maple Interconnect", "maple"),
    ("Danube Transit", "danube"),
    ("Levant Gateway", "levant"),
    ("Monsoon Voice", "monsoon"),
    ("Alpine Carrier", "alpine"),
    ("Baltic Bridge", "baltic"),
    ("Coral Sea Telecom", "coralsea"),
    ("Steppe Networks", "steppe"),
    ("Tasman Link", "tasman"),
    ("Rio Voz", "riovoz"),
    ("Nile Transit", "nile"),
    ("Fuji Interconnect", "fuji"),
    ("Highland Wholesale", "highland"),
    ("Aegean Telecom", "aegean"),
];

fn push_carrier_name(out: &mut String, carrier: u32) {
    let c = carrier as usize;
    out.push_str(CARRIER_NAMES[c % CARRIER_NAMES.len()].0);
    let tier = c / CARRIER_NAMES.len();
    if tier > 0 {
        out.push(' ');
        push_u64(out, tier as u64 + 1);
    }
}

const SWITCH_REGIONS: [&str; 8] = ["lon", "fra", "ams", "nyc", "mia", "sin", "syd", "jnb"];

fn push_switch_name(out: &mut String, switch: u64) {
    let i = switch.saturating_sub(1);
    out.push_str(SWITCH_REGIONS[(i / 3) as usize % SWITCH_REGIONS.len()]);
    out.push_str("-sbc-0");
    push_u64(out, i % 3 + 1);
}

// ---------------------------------------------------------------------------------------------
// Value lists.

const CODEC_SETS: [&[&str]; 12] = [
    &["PCMA", "PCMU"],
    &["G729", "PCMA"],
    &["PCMU"],
    &["OPUS", "G722", "PCMA"],
    &["G729"],
    &["PCMA", "PCMU", "G729"],
    &["G722", "PCMA", "PCMU"],
    &["OPUS", "PCMU"],
    &["PCMU", "PCMA", "G729", "GSM"],
    &["PCMA"],
    &["G729", "PCMU", "PCMA"],
    &["OPUS", "G722", "G729", "PCMA"],
];

const DIAL_CODES: [&str; 19] = [
    "44", "1", "49", "33", "31", "34", "39", "48", "46", "55", "81", "27", "91", "61", "234",
    "971", "65", "52", "351",
];

const RATE_CARD_REGIONS: [&str; 20] = [
    "UK",
    "Germany",
    "USA",
    "France",
    "Netherlands",
    "Spain",
    "Italy",
    "Poland",
    "Sweden",
    "Brazil",
    "Japan",
    "South Africa",
    "India",
    "Australia",
    "Global",
    "Nigeria",
    "UAE",
    "Mexico",
    "Côte d'Ivoire",
    "Türkiye",
];
const RATE_CARD_PRODUCTS: [&str; 7] = [
    "Mobile",
    "Fixed",
    "Premium",
    "A-Z",
    "CLI",
    "Non-CLI",
    "Wholesale",
];
const ROUTE_REGIONS: [&str; 10] = ["UK", "DE", "US", "FR", "NL", "ES", "EU", "INTL", "BR", "AU"];
const ROUTE_PRODUCTS: [&str; 6] = [
    "Wholesale",
    "CLI",
    "Retail",
    "Premium",
    "Callcenter",
    "Mobile",
];

const NOTES: [&str; 20] = [
    "Credit limit raised after prepayment, see TCK-4821",
    "Customer asked for G.729 only on this trunk",
    "Migrated from legacy switch fra-sbc-01",
    "Temporarily suspended — fraud check pending",
    "Contact: Jürgen Weiß, +49 30 23125 004",
    "Do NOT change routing without approval from \"NOC lead\"",
    "Line 1\nLine 2: escalated to carrier",
    "Porting in progress;\tETA 5 days",
    "Requested by 李雷 via e-mail",
    "Invoice disputed, see \\\\fileserver\\finance\\2026",
    "✅ verified by call-back",
    "Test account, safe to delete",
    "VIP customer, handle with care 🙂",
    "Contract renewed until 2027-06-30",
    "Traffic spike expected during campaign",
    "Moved to new rate card after review",
    "KYC documents received",
    "Please keep CPS below 20 — carrier limit",
    "Back-up route only",
    "Agreed in QBR with account manager",
];

const PERSON_NAMES: [&str; 12] = [
    "Reception",
    "Sales Desk",
    "Front Office",
    "Jane Doe",
    "Zoë Müller",
    "Jean-Luc O'Neil",
    "María José Núñez",
    "Ola Nordmann",
    "Støttetelefon",
    "Night Shift",
    "王芳",
    "Support \"Tier 2\"",
];

const IP_DESCRIPTIONS: [&str; 10] = [
    "Primary SBC",
    "Backup SBC",
    "Office PBX",
    "Asterisk lab",
    "Call centre Lisboa",
    "Büro München",
    "FreeSWITCH cluster",
    "Failover site",
    "Teams Direct Routing",
    "Dialer (outbound)",
];

const TIMEZONES: [&str; 10] = [
    "Europe/London",
    "America/New_York",
    "Europe/Berlin",
    "Asia/Tokyo",
    "UTC",
    "America/Sao_Paulo",
    "Africa/Johannesburg",
    "Asia/Kolkata",
    "Australia/Sydney",
    "Europe/Paris",
];

const CUSTOMER_TAGS: &[&str] = &[
    "wholesale",
    "retail",
    "reseller",
    "vip",
    "prepaid",
    "postpaid",
    "high-risk",
    "call-center",
];
const ROUTE_TAGS: &[&str] = &[
    "primary", "backup", "cli", "non-cli", "premium", "test", "legacy", "direct",
];
const GENERIC_TAGS: &[&str] = &[
    "migrated",
    "reviewed",
    "monitored",
    "temporary",
    "lab",
    "vip",
];

const CUSTOMER_STATUS: &[&str] = &["active", "suspended", "credit_hold", "trial", "closed"];
const ROUTE_STATUS: &[&str] = &["active", "disabled", "testing"];
const INVOICE_CYCLES: &[&str] = &["monthly", "weekly", "daily", "prepaid"];
const TRANSPORTS: &[&str] = &["udp", "tcp", "tls"];
const SIP_TRANSPORTS: &[&str] = &["udp", "tcp", "tls", "wss"];
const ROUTING_STRATEGIES: [&str; 5] = ["lcr", "priority", "round_robin", "weighted", "quality"];

/// A fictional phone number (Ofcom drama ranges, NANP 555-01xx, and similar reserved ranges).
fn push_phone(out: &mut String, value: u64) {
    let n = value % 1000;
    match value / 1000 {
        0 => {
            out.push_str("+442079460");
            push_padded(out, n, 3);
        }
        1 => {
            out.push_str("+447700900");
            push_padded(out, n, 3);
        }
        2 => {
            out.push_str("+441134960");
            push_padded(out, n, 3);
        }
        3 => {
            const AREAS: [&str; 10] = [
                "212", "312", "415", "646", "202", "305", "617", "702", "206", "512",
            ];
            out.push_str("+1");
            out.push_str(AREAS[(n / 100) as usize]);
            out.push_str("55501");
            push_padded(out, n % 100, 2);
        }
        4 => {
            out.push_str("+493023125");
            push_padded(out, n, 3);
        }
        5 => {
            out.push_str("+61491570");
            push_padded(out, n, 3);
        }
        _ => {
            out.push_str("+336399800");
            push_padded(out, n, 3);
        }
    }
}
const PHONE_RANGE: u64 = 7_000;

// ---------------------------------------------------------------------------------------------
// Tables: each pooled table has a schema; a record's field values are a function of the
// record's seed and of how often each field was changed.

#[derive(Debug, Clone, Copy)]
enum Kind {
    /// The record's primary key, as an integer.
    Pk,
    /// The record's primary key, as a UUID string.
    PkUuid,
    Account,
    CarrierId,
    /// An id in `base..base + count` (a record of another table).
    Ref(u64, u64),
    CustomerName,
    CarrierName,
    RouteName,
    EgressName,
    RateCardName,
    SwitchName,
    Region,
    Choice(&'static [&'static str]),
    Num {
        min: i64,
        max: i64,
        step: i64,
        decimals: u32,
    },
    Bool,
    AccountCurrency,
    Currency,
    AccountCountry,
    Country,
    Timezone,
    Codecs,
    Prefix,
    TechPrefix,
    CustomerIp,
    CarrierIp,
    SwitchIp,
    SwitchIpv6,
    Email(&'static str),
    Phone,
    SipUsername,
    Tags(&'static [&'static str]),
    Routing,
    CreatedAt,
    UpdatedAt,
    PublishedAt,
    DaysAfterCreation(i64),
    Month,
    InvoiceNumber,
    Code(&'static str, usize),
    Note,
    Staff,
    Version,
    DraftStatus,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Role {
    /// Set at creation, never changed.
    Fixed,
    /// Set at creation and changed by UPDATE and PUT.
    Mutable,
    /// Present in this percentage of records; UPDATE and PUT change, add or remove it.
    Optional(u8),
    /// Present in this percentage of records, never changed.
    FixedOptional(u8),
    /// Changed only by the action it belongs to (timestamps, PUBLISH).
    Special,
}

#[derive(Debug, Clone, Copy)]
struct Field {
    key: &'static str,
    kind: Kind,
    role: Role,
}

const fn fixed(key: &'static str, kind: Kind) -> Field {
    Field {
        key,
        kind,
        role: Role::Fixed,
    }
}
const fn var(key: &'static str, kind: Kind) -> Field {
    Field {
        key,
        kind,
        role: Role::Mutable,
    }
}
const fn opt(key: &'static str, kind: Kind, percent: u8) -> Field {
    Field {
        key,
        kind,
        role: Role::Optional(percent),
    }
}
const fn fixed_opt(key: &'static str, kind: Kind, percent: u8) -> Field {
    Field {
        key,
        kind,
        role: Role::FixedOptional(percent),
    }
}
const fn special(key: &'static str, kind: Kind) -> Field {
    Field {
        key,
        kind,
        role: Role::Special,
    }
}
const fn num(min: i64, max: i64, step: i64, decimals: u32) -> Kind {
    Kind::Num {
        min,
        max,
        step,
        decimals,
    }
}

// Most fields are optional so that records of one table differ in shape, as real rows with
// nullable columns left out do; the percentages also set the mean event size (about 670 bytes).

const CUSTOMER_FIELDS: &[Field] = &[
    fixed("account_id", Kind::Account),
    fixed("name", Kind::CustomerName),
    var("status", Kind::Choice(CUSTOMER_STATUS)),
    var("credit_limit", num(0, 50_000, 250, 0)),
    var("balance", num(-250_000, 5_000_000, 1, 2)),
    fixed("currency", Kind::AccountCurrency),
    fixed_opt("billing_email", Kind::Email("billing"), 36),
    fixed_opt("country", Kind::AccountCountry, 29),
    opt("timezone", Kind::Timezone, 14),
    var("channels", num(10, 2_000, 10, 0)),
    var("cps", num(1, 200, 1, 0)),
    opt("payment_terms_days", num(0, 60, 15, 0), 22),
    opt("invoice_cycle", Kind::Choice(INVOICE_CYCLES), 29),
    opt("low_balance_alert", num(0, 1_000, 50, 0), 22),
    opt("portal_access", Kind::Bool, 29),
    opt("mfa_required", Kind::Bool, 14),
    opt("sales_rep", Kind::Staff, 22),
    opt("tags", Kind::Tags(CUSTOMER_TAGS), 18),
    opt("notes", Kind::Note, 5),
    opt("vat_rate", num(0, 2_500, 500, 4), 22),
    fixed_opt("reseller_id", Kind::Ref(1, N_ACCOUNTS), 5),
    special("updated_at", Kind::UpdatedAt),
];

const CARRIER_FIELDS: &[Field] = &[
    fixed("carrier_id", Kind::Pk),
    fixed("name", Kind::CarrierName),
    var(
        "status",
        Kind::Choice(&["active", "testing", "disabled", "blocked"]),
    ),
    var("ip", Kind::CarrierIp),
    opt("port", num(5_060, 5_062, 1, 0), 22),
    opt("transport", Kind::Choice(TRANSPORTS), 36),
    var("channels", num(100, 5_000, 50, 0)),
    var("cps", num(10, 500, 5, 0)),
    var("codecs", Kind::Codecs),
    opt("tech_prefix", Kind::TechPrefix, 22),
    fixed("currency", Kind::Currency),
    opt("balance", num(-1_000_000, 10_000_000, 1, 2), 36),
    opt("credit_limit", num(0, 250_000, 1_000, 0), 29),
    fixed_opt("billing_email", Kind::Email("billing"), 22),
    opt("dtmf", Kind::Choice(&["rfc2833", "inband", "info"]), 22),
    opt("asr_alert", num(10, 60, 5, 0), 22),
    opt("max_duration", num(600, 14_400, 600, 0), 22),
    opt(
        "poi",
        Kind::Choice(&["London", "Frankfurt", "Amsterdam", "New York", "Singapore"]),
        29,
    ),
    opt("tags", Kind::Tags(ROUTE_TAGS), 14),
    special("updated_at", Kind::UpdatedAt),
];

const INGRESS_FIELDS: &[Field] = &[
    fixed("ingress_id", Kind::Pk),
    fixed("account_id", Kind::Account),
    fixed("name", Kind::RouteName),
    var("status", Kind::Choice(ROUTE_STATUS)),
    opt("prefix", Kind::Prefix, 43),
    var("channels", num(1, 500, 1, 0)),
    var("cps", num(1, 100, 1, 0)),
    opt("codecs", Kind::Codecs, 36),
    var("ip", Kind::CustomerIp),
    opt("rate_card_id", Kind::Ref(1_001, 400), 36),
    opt("routing", Kind::Routing, 22),
    opt("profit_assurance", Kind::Bool, 22),
    opt("max_duration", num(600, 14_400, 600, 0), 14),
    opt("strip_digits", num(0, 4, 1, 0), 11),
    opt("tech_prefix", Kind::TechPrefix, 11),
    opt(
        "cli_mode",
        Kind::Choice(&["passthrough", "restrict", "override"]),
        18,
    ),
    opt("nat", Kind::Bool, 11),
    opt(
        "dial_plan",
        Kind::Choice(&["E.164", "national", "international"]),
        11,
    ),
    opt("tags", Kind::Tags(ROUTE_TAGS), 11),
    opt("notes", Kind::Note, 4),
    special("updated_at", Kind::UpdatedAt),
];

const EGRESS_FIELDS: &[Field] = &[
    fixed("egress_id", Kind::Pk),
    fixed("carrier_id", Kind::CarrierId),
    fixed_opt("account_id", Kind::Account, 14),
    fixed("name", Kind::EgressName),
    var("status", Kind::Choice(ROUTE_STATUS)),
    opt("prefix", Kind::Prefix, 43),
    var("priority", num(1, 10, 1, 0)),
    opt("weight", num(0, 100, 5, 0), 29),
    opt("channels", num(10, 2_000, 10, 0), 36),
    opt("cps", num(1, 200, 1, 0), 36),
    opt("codecs", Kind::Codecs, 29),
    var("ip", Kind::CarrierIp),
    opt("transport", Kind::Choice(TRANSPORTS), 22),
    var("rate", num(10, 3_500, 1, 4)),
    fixed_opt("currency", Kind::Currency, 29),
    opt("tech_prefix", Kind::TechPrefix, 18),
    opt("tags", Kind::Tags(ROUTE_TAGS), 11),
    special("updated_at", Kind::UpdatedAt),
];

const RATE_CARD_FIELDS: &[Field] = &[
    fixed("rate_card_id", Kind::Pk),
    fixed("name", Kind::RateCardName),
    special("version", Kind::Version),
    special("status", Kind::DraftStatus),
    fixed("currency", Kind::Currency),
    fixed_opt("direction", Kind::Choice(&["sell", "buy"]), 43),
    fixed_opt("carrier_id", Kind::CarrierId, 22),
    var("default_rate", num(10, 3_500, 1, 4)),
    opt("min_duration", num(0, 60, 30, 0), 22),
    opt(
        "billing_increment",
        Kind::Choice(&["1/1", "60/60", "30/6", "60/1", "6/6"]),
        36,
    ),
    opt("prefix_count", num(50, 25_000, 1, 0), 36),
    opt("grace_period", num(0, 10, 1, 0), 14),
    fixed_opt("effective_date", Kind::DaysAfterCreation(7), 29),
    opt("tags", Kind::Tags(GENERIC_TAGS), 11),
    opt("notes", Kind::Note, 4),
    special("updated_at", Kind::UpdatedAt),
    special("published_at", Kind::PublishedAt),
];

const SIP_USER_FIELDS: &[Field] = &[
    fixed("sip_user_id", Kind::Pk),
    fixed("account_id", Kind::Account),
    fixed("username", Kind::SipUsername),
    opt("ingress_id", Kind::Ref(10_001, 20_000), 43),
    var("status", Kind::Choice(&["active", "suspended", "disabled"])),
    var("channels", num(1, 30, 1, 0)),
    opt("codecs", Kind::Codecs, 29),
    opt("ip_restrict", Kind::CustomerIp, 18),
    opt("cli", Kind::Phone, 29),
    opt("nat", Kind::Bool, 29),
    opt("transport", Kind::Choice(SIP_TRANSPORTS), 29),
    opt("voicemail", Kind::Bool, 18),
    opt("max_call_duration", num(300, 7_200, 300, 0), 11),
    opt("caller_id_name", Kind::Choice(&PERSON_NAMES), 14),
    opt("tags", Kind::Tags(GENERIC_TAGS), 7),
    special("updated_at", Kind::UpdatedAt),
];

const PAYMENT_FIELDS: &[Field] = &[
    fixed("payment_id", Kind::Pk),
    fixed("account_id", Kind::Account),
    fixed("amount", num(500, 1_000_000, 1, 2)),
    fixed("currency", Kind::AccountCurrency),
    fixed(
        "method",
        Kind::Choice(&[
            "card",
            "bank_transfer",
            "paypal",
            "direct_debit",
            "credit_note",
            "crypto",
        ]),
    ),
    fixed_opt("reference", Kind::Code("pi_", 14), 43),
    var(
        "status",
        Kind::Choice(&["pending", "completed", "failed", "refunded"]),
    ),
    fixed_opt(
        "gateway",
        Kind::Choice(&["stripe", "adyen", "paypal", "manual"]),
        36,
    ),
    fixed_opt("fee", num(0, 2_500, 1, 2), 29),
    fixed_opt("invoice_id", Kind::Ref(700_001, 15_000), 29),
    opt("notes", Kind::Note, 4),
    special("created_at", Kind::CreatedAt),
];

const INVOICE_FIELDS: &[Field] = &[
    fixed("invoice_id", Kind::Pk),
    fixed("number", Kind::InvoiceNumber),
    fixed("account_id", Kind::Account),
    fixed("period", Kind::Month),
    fixed("amount", num(1_000, 5_000_000, 1, 2)),
    fixed_opt("tax_rate", num(0, 2_500, 500, 4), 43),
    fixed("currency", Kind::AccountCurrency),
    var(
        "status",
        Kind::Choice(&["issued", "paid", "overdue", "void"]),
    ),
    fixed_opt("due_date", Kind::DaysAfterCreation(30), 43),
    fixed_opt("lines", num(1, 400, 1, 0), 29),
    opt("emailed", Kind::Bool, 36),
    opt("notes", Kind::Note, 4),
    special("created_at", Kind::CreatedAt),
];

const CLI_FIELDS: &[Field] = &[
    fixed("cli_id", Kind::Pk),
    fixed("account_id", Kind::Account),
    fixed("number", Kind::Phone),
    var("status", Kind::Choice(&["verified", "pending", "rejected"])),
    opt("ingress_id", Kind::Ref(10_001, 20_000), 43),
    var("allow_override", Kind::Bool),
    opt(
        "verified_by",
        Kind::Choice(&["sms", "call", "document"]),
        36,
    ),
    special("updated_at", Kind::UpdatedAt),
];

const DID_FIELDS: &[Field] = &[
    fixed("did_id", Kind::Pk),
    fixed("number", Kind::Phone),
    fixed("account_id", Kind::Account),
    var(
        "status",
        Kind::Choice(&["assigned", "reserved", "porting", "suspended"]),
    ),
    opt("destination_sip_user_id", Kind::Ref(100_001, 30_000), 36),
    opt("channels", num(1, 30, 1, 0), 36),
    var("monthly_cost", num(50, 2_000, 1, 2)),
    fixed_opt("setup_cost", num(0, 1_000, 50, 2), 22),
    fixed_opt("country", Kind::Country, 36),
    fixed_opt("carrier_id", Kind::CarrierId, 29),
    opt("sms_enabled", Kind::Bool, 29),
    opt("cnam", Kind::Bool, 14),
    opt("e911", Kind::Bool, 11),
    opt("tags", Kind::Tags(GENERIC_TAGS), 7),
    special("updated_at", Kind::UpdatedAt),
];

const IP_AUTH_FIELDS: &[Field] = &[
    fixed("ip_auth_id", Kind::Pk),
    fixed("account_id", Kind::Account),
    var("ip", Kind::CustomerIp),
    opt("cidr", num(28, 32, 1, 0), 22),
    opt("ingress_id", Kind::Ref(10_001, 20_000), 43),
    var("status", Kind::Choice(&["active", "disabled"])),
    opt("tech_prefix", Kind::TechPrefix, 14),
    opt("channels", num(1, 500, 1, 0), 29),
    opt("cps", num(1, 100, 1, 0), 29),
    opt("description", Kind::Choice(&IP_DESCRIPTIONS), 36),
    special("updated_at", Kind::UpdatedAt),
];

const SWITCH_FIELDS: &[Field] = &[
    fixed("switch_id", Kind::Pk),
    fixed("name", Kind::SwitchName),
    fixed("region", Kind::Region),
    fixed("ip", Kind::SwitchIp),
    fixed_opt("ipv6", Kind::SwitchIpv6, 43),
    var(
        "status",
        Kind::Choice(&["online", "maintenance", "draining"]),
    ),
    var("max_channels", num(5_000, 50_000, 1_000, 0)),
    var("max_cps", num(100, 2_000, 50, 0)),
    var(
        "software_version",
        Kind::Choice(&["4.12.3", "4.12.4", "4.13.0", "4.13.1"]),
    ),
    special("config_version", Kind::Version),
    opt("tls", Kind::Bool, 43),
    opt("rtp_proxy", Kind::Bool, 43),
    special("updated_at", Kind::UpdatedAt),
];

const ALERT_FIELDS: &[Field] = &[
    fixed("alert_id", Kind::PkUuid),
    fixed("account_id", Kind::Account),
    fixed(
        "type",
        Kind::Choice(&[
            "low_balance",
            "asr_drop",
            "acd_drop",
            "cps_exceeded",
            "fraud_suspected",
            "channel_limit",
        ]),
    ),
    var("threshold", num(1, 1_000, 1, 0)),
    var(
        "channel",
        Kind::Choice(&["email", "sms", "webhook", "slack"]),
    ),
    var("target", Kind::Email("noc")),
    var("status", Kind::Choice(&["active", "muted", "triggered"])),
    opt("cooldown_minutes", num(5, 240, 5, 0), 29),
    special("updated_at", Kind::UpdatedAt),
];

/// Pooled record fields are kept in a 32-bit presence mask and a fixed array of generations.
const MAX_FIELDS: usize = 24;

struct TableDef {
    name: &'static str,
    /// How messages name it: "ingress route", "SIP user".
    label: &'static str,
    pk_base: u64,
    pool: u32,
    uuid_pk: bool,
    /// Whether customers change these records in the portal.
    portal: bool,
    /// The API client that usually changes it.
    api_client: u8,
    fields: &'static [Field],
}

const CUSTOMER: usize = 0;
const CARRIER: usize = 1;
const INGRESS_ROUTE: usize = 2;
const EGRESS_ROUTE: usize = 3;
const RATE_CARD: usize = 4;
const SIP_USER: usize = 5;
const PAYMENT: usize = 6;
const INVOICE: usize = 7;
const CLI: usize = 8;
const DID: usize = 9;
const IP_AUTH: usize = 10;
const SWITCH: usize = 11;
const ALERT: usize = 12;

/// New customers go to a ring of this many slots after the 5000 existing accounts.
const NEW_CUSTOMER_SLOTS: u32 = 512;

const TABLES: [TableDef; 13] = [
    TableDef {
        name: "customer",
        label: "customer",
        pk_base: 1,
        pool: N_ACCOUNTS as u32 + NEW_CUSTOMER_SLOTS,
        uuid_pk: false,
        portal: true,
        api_client: API_CRM,
        fields: CUSTOMER_FIELDS,
    },
    TableDef {
        name: "carrier",
        label: "carrier",
        pk_base: 1,
        pool: 240,
        uuid_pk: false,
        portal: false,
        api_client: API_LCR,
        fields: CARRIER_FIELDS,
    },
    TableDef {
        name: "ingress_route",
        label: "ingress route",
        pk_base: 10_001,
        pool: 20_000,
        uuid_pk: false,
        portal: false,
        api_client: API_PROVISIONING,
        fields: INGRESS_FIELDS,
    },
    TableDef {
        name: "egress_route",
        label: "egress route",
        pk_base: 50_001,
        pool: 6_000,
        uuid_pk: false,
        portal: false,
        api_client: API_LCR,
        fields: EGRESS_FIELDS,
    },
    TableDef {
        name: "rate_card",
        label: "rate card",
        pk_base: 1_001,
        pool: 400,
        uuid_pk: false,
        portal: false,
        api_client: API_LCR,
        fields: RATE_CARD_FIELDS,
    },
    TableDef {
        name: "sip_user",
        label: "SIP user",
        pk_base: 100_001,
        pool: 30_000,
        uuid_pk: false,
        portal: true,
        api_client: API_PROVISIONING,
        fields: SIP_USER_FIELDS,
    },
    TableDef {
        name: "payment",
        label: "payment",
        pk_base: 600_001,
        pool: 20_000,
        uuid_pk: false,
        portal: true,
        api_client: API_BILLING,
        fields: PAYMENT_FIELDS,
    },
    TableDef {
        name: "invoice",
        label: "invoice",
        pk_base: 700_001,
        pool: 15_000,
        uuid_pk: false,
        portal: false,
        api_client: API_BILLING,
        fields: INVOICE_FIELDS,
    },
    TableDef {
        name: "cli",
        label: "CLI",
        pk_base: 200_001,
        pool: 15_000,
        uuid_pk: false,
        portal: true,
        api_client: API_PROVISIONING,
        fields: CLI_FIELDS,
    },
    TableDef {
        name: "did",
        label: "DID",
        pk_base: 300_001,
        pool: 20_000,
        uuid_pk: false,
        portal: true,
        api_client: API_PORTING,
        fields: DID_FIELDS,
    },
    TableDef {
        name: "ip_auth",
        label: "IP authentication",
        pk_base: 400_001,
        pool: 12_000,
        uuid_pk: false,
        portal: true,
        api_client: API_PROVISIONING,
        fields: IP_AUTH_FIELDS,
    },
    TableDef {
        name: "switch",
        label: "switch",
        pk_base: 1,
        pool: 24,
        uuid_pk: false,
        portal: false,
        api_client: API_MONITORING,
        fields: SWITCH_FIELDS,
    },
    TableDef {
        name: "alert",
        label: "alert",
        pk_base: 1,
        pool: 4_000,
        uuid_pk: true,
        portal: true,
        api_client: API_MONITORING,
        fields: ALERT_FIELDS,
    },
];

/// Field positions the event code needs, looked up once.
#[derive(Debug, Clone, Default)]
struct TableMeta {
    /// `,"key":` of each field.
    keys: Vec<String>,
    changeable: Vec<u8>,
    account: Option<usize>,
    updated_at: Option<usize>,
    version: Option<usize>,
    number: Option<usize>,
}

impl TableMeta {
    fn of(def: &TableDef) -> TableMeta {
        let position = |key: &str| def.fields.iter().position(|f| f.key == key);
        TableMeta {
            keys: def
                .fields
                .iter()
                .map(|f| {
                    let mut key = String::with_capacity(f.key.len() + 4);
                    push_key(&mut key, f.key);
                    key
                })
                .collect(),
            changeable: def
                .fields
                .iter()
                .enumerate()
                .filter(|(_, f)| matches!(f.role, Role::Mutable | Role::Optional(_)))
                .map(|(i, _)| i as u8)
                .collect(),
            account: def
                .fields
                .iter()
                .position(|f| matches!(f.kind, Kind::Account)),
            updated_at: position("updated_at"),
            version: def
                .fields
                .iter()
                .position(|f| matches!(f.kind, Kind::Version)),
            number: position("number"),
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Records.

#[derive(Debug, Clone, Copy)]
struct Record {
    seed: u64,
    pk: u64,
    account: u32,
    carrier: u32,
    alive: bool,
    /// Rate cards: edited since the last PUBLISH.
    draft: bool,
    present: u32,
    created_ms: i64,
    modified_ms: i64,
    published_ms: i64,
    gens: [u16; MAX_FIELDS],
}

impl Record {
    fn field_hash(&self, idx: usize) -> u64 {
        hash2(self.seed, idx as u64)
    }

    fn has(&self, idx: usize) -> bool {
        self.present & (1 << idx) != 0
    }

    /// Value number of field `idx` out of `range`.
    fn value(&self, idx: usize, range: u64) -> u64 {
        pick(self.field_hash(idx), self.gens[idx], range)
    }
}

struct Pool {
    records: Vec<Record>,
    free: Vec<u32>,
    next_pk: u64,
}

fn new_record(table: usize, seed: u64, pk: u64, account: u32, now_ms: i64) -> Record {
    let def = &TABLES[table];
    let record_seed = hash2(hash2(seed, table as u64), pk);
    let mut present = 0u32;
    for (i, field) in def.fields.iter().enumerate() {
        let shown = match field.role {
            Role::Optional(p) | Role::FixedOptional(p) => {
                hash2(record_seed, 0x100 + i as u64) % 100 < u64::from(p)
            }
            _ => true,
        };
        if shown {
            present |= 1 << i;
        }
    }
    Record {
        seed: record_seed,
        pk,
        account,
        carrier: if table == CARRIER {
            pk as u32
        } else {
            1 + scale(hash2(record_seed, 0x200), 240) as u32
        },
        alive: true,
        draft: hash2(record_seed, 0x201) & 3 == 0,
        present,
        created_ms: now_ms,
        modified_ms: now_ms,
        published_ms: now_ms,
        gens: [0; MAX_FIELDS],
    }
}

// ---------------------------------------------------------------------------------------------
// Values.

fn push_uuid(out: &mut String, a: u64, b: u64) {
    let hi = hash2(a, b);
    let lo = hash2(b, a ^ GOLDEN_GAMMA);
    push_hex_fixed(out, hi >> 32, 8);
    out.push('-');
    push_hex_fixed(out, (hi >> 16) & 0xFFFF, 4);
    out.push_str("-4");
    push_hex_fixed(out, hi & 0x0FFF, 3);
    out.push('-');
    push_hex_fixed(out, 0x8000 | ((lo >> 48) & 0x3FFF), 4);
    out.push('-');
    push_hex_fixed(out, lo & 0xFFFF_FFFF_FFFF, 12);
}

fn push_record_uuid(out: &mut String, seed: u64, table: usize, pk: u64) {
    push_uuid(out, hash2(seed, table as u64), pk);
}

fn push_route_name(out: &mut String, rec: &Record) {
    let h = rec.field_hash(0x300);
    push_account_handle(out, rec.account);
    out.push('-');
    out.push_str(ROUTE_REGIONS[(h % 10) as usize]);
    out.push('-');
    out.push_str(ROUTE_PRODUCTS[((h >> 8) % 6) as usize]);
    let variant = (h >> 16) % 3;
    if variant == 0 {
        out.push('-');
        push_u64(out, 2 + (h >> 20) % 4);
    }
}

fn push_egress_name(out: &mut String, rec: &Record) {
    let h = rec.field_hash(0x301);
    out.push_str(CARRIER_NAMES[rec.carrier as usize % CARRIER_NAMES.len()].1);
    out.push('-');
    out.push_str(ROUTE_REGIONS[(h % 10) as usize]);
    out.push('-');
    out.push_str(ROUTE_PRODUCTS[((h >> 8) % 6) as usize]);
    out.push('-');
    push_u64(out, 1 + (h >> 16) % 9);
}

fn push_rate_card_name(out: &mut String, rec: &Record) {
    let h = rec.field_hash(0x302);
    out.push_str(RATE_CARD_REGIONS[(h % 20) as usize]);
    out.push(' ');
    out.push_str(RATE_CARD_PRODUCTS[((h >> 8) % 7) as usize]);
}

fn push_sip_username(out: &mut String, rec: &Record) {
    push_account_handle(out, rec.account);
    out.push('_');
    push_u64(out, 100 + rec.field_hash(0x303) % 900);
}

fn push_invoice_number(out: &mut String, rec: &Record, def: &TableDef) {
    out.push_str("INV-");
    let (year, _, _) = civil_from_days(rec.created_ms.div_euclid(MS_PER_DAY));
    push_padded(out, year.clamp(0, 9999) as u64, 4);
    out.push('-');
    push_padded(out, rec.pk - def.pk_base + 1, 6);
}

/// Writes field `idx` of `rec`. With `bare`, strings are written without quotes (and still
/// escaped), for use inside a message.
fn push_value(out: &mut String, seed: u64, table: usize, rec: &Record, idx: usize, bare: bool) {
    let def = &TABLES[table];
    let kind = def.fields[idx].kind;
    let quote = |out: &mut String| {
        if !bare {
            out.push('"');
        }
    };
    match kind {
        Kind::Pk => push_u64(out, rec.pk),
        Kind::PkUuid => {
            quote(out);
            push_record_uuid(out, seed, table, rec.pk);
            quote(out);
        }
        Kind::Account => push_u64(out, u64::from(rec.account)),
        Kind::CarrierId => push_u64(out, u64::from(rec.carrier)),
        Kind::Ref(base, count) => push_u64(out, base + rec.value(idx, count)),
        Kind::Num {
            min,
            max,
            step,
            decimals,
        } => {
            let steps = ((max - min) / step + 1) as u64;
            push_decimal(out, min + rec.value(idx, steps) as i64 * step, decimals);
        }
        Kind::Bool => out.push_str(if rec.value(idx, 2) == 1 {
            "true"
        } else {
            "false"
        }),
        Kind::Version => push_u64(out, 1 + rec.field_hash(idx) % 20 + u64::from(rec.gens[idx])),
        Kind::CreatedAt => push_timestamp(out, rec.created_ms),
        Kind::UpdatedAt => push_timestamp(out, rec.modified_ms),
        Kind::PublishedAt => push_timestamp(out, rec.published_ms),
        Kind::Codecs => {
            let set = CODEC_SETS[rec.value(idx, CODEC_SETS.len() as u64) as usize];
            out.push('[');
            for (i, codec) in set.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                out.push('"');
                out.push_str(codec);
                out.push('"');
            }
            out.push(']');
        }
        Kind::Tags(tags) => {
            let mask = rec.value(idx, 1 << tags.len());
            out.push('[');
            let mut first = true;
            for (i, tag) in tags.iter().enumerate() {
                if mask & (1 << i) != 0 {
                    if !first {
                        out.push(',');
                    }
                    first = false;
                    push_str(out, tag);
                }
            }
            out.push(']');
        }
        Kind::Routing => {
            // Each change moves one failover hop; every third also changes the strategy.
            let h = rec.field_hash(idx);
            let generation = rec.gens[idx];
            out.push_str("{\"strategy\":\"");
            out.push_str(ROUTING_STRATEGIES[pick(h, generation / 3, 5) as usize]);
            out.push_str("\",\"failover\":[");
            let hops = 1 + (h >> 40) % 4;
            for hop in 0..hops {
                if hop > 0 {
                    out.push(',');
                }
                let hop_gen = (u64::from(generation) + hops - 1 - hop) / hops;
                let hop_hash = hash2(h, hop);
                push_u64(out, 50_001 + pick(hop_hash, hop_gen as u16, 6_000));
            }
            out.push_str("],\"max_attempts\":");
            push_u64(out, 1 + (h >> 48) % 5);
            out.push_str(",\"timeout_ms\":");
            push_u64(out, 1_000 * (2 + (h >> 52) % 9));
            out.push('}');
        }
        _ => {
            quote(out);
            push_string_value(out, seed, table, rec, idx, kind);
            quote(out);
        }
    }
}

fn push_string_value(
    out: &mut String,
    seed: u64,
    table: usize,
    rec: &Record,
    idx: usize,
    kind: Kind,
) {
    match kind {
        Kind::CustomerName => push_company_name(out, rec.account),
        Kind::CarrierName => push_carrier_name(out, rec.pk as u32),
        Kind::RouteName => push_route_name(out, rec),
        Kind::EgressName => push_egress_name(out, rec),
        Kind::RateCardName => push_rate_card_name(out, rec),
        Kind::SwitchName => push_switch_name(out, rec.pk),
        Kind::Region => out.push_str(
            SWITCH_REGIONS[(rec.pk.saturating_sub(1) / 3) as usize % SWITCH_REGIONS.len()],
        ),
        Kind::Choice(options) => {
            push_escaped(out, options[rec.value(idx, options.len() as u64) as usize]);
        }
        Kind::AccountCurrency => out.push_str(account_currency(rec.account)),
        Kind::Currency => out.push_str(CURRENCIES[(rec.field_hash(idx) % 4) as usize]),
        Kind::AccountCountry => {
            let h = hash2(WORLD ^ 4, u64::from(rec.account));
            out.push_str(COUNTRIES[(h % 20) as usize]);
        }
        Kind::Country => out.push_str(COUNTRIES[rec.value(idx, 20) as usize]),
        Kind::Timezone => out.push_str(TIMEZONES[rec.value(idx, 10) as usize]),
        Kind::Prefix => {
            let value = rec.value(idx, 19 * 3 * 1_000);
            out.push_str(DIAL_CODES[(value % 19) as usize]);
            let rest = value / 19;
            let digits = rest % 3;
            if digits > 0 {
                push_padded(out, (rest / 3) % 10u64.pow(digits as u32), digits as usize);
            }
        }
        Kind::TechPrefix => {
            push_u64(out, 100 + rec.value(idx, 9_900));
            out.push('#');
        }
        Kind::CustomerIp => push_account_ip(out, rec.account, 2 + rec.value(idx, 4)),
        Kind::CarrierIp => push_carrier_ip(out, rec.carrier, rec.value(idx, 3)),
        Kind::SwitchIp => {
            out.push_str("203.0.113.");
            push_u64(out, 200 + rec.pk);
        }
        Kind::SwitchIpv6 => {
            out.push_str("2001:db8:5:1::");
            push_hex(out, rec.pk);
        }
        Kind::Email(role) => {
            if table == CARRIER {
                out.push_str(role);
                out.push('@');
                out.push_str(CARRIER_NAMES[rec.pk as usize % CARRIER_NAMES.len()].1);
                push_u64(out, rec.pk);
                out.push_str(".example");
            } else {
                const ROLES: [&str; 4] = ["noc", "ops", "alerts", "it"];
                let role = if rec.gens[idx] == 0 {
                    role
                } else {
                    ROLES[rec.value(idx, 4) as usize]
                };
                push_account_email(out, role, rec.account);
            }
        }
        Kind::Phone => push_phone(out, rec.value(idx, PHONE_RANGE)),
        Kind::SipUsername => push_sip_username(out, rec),
        Kind::DaysAfterCreation(days) => push_date(out, rec.created_ms + days * MS_PER_DAY),
        Kind::Month => {
            let (year, month, _) = civil_from_days(rec.created_ms.div_euclid(MS_PER_DAY));
            push_padded(out, year.clamp(0, 9999) as u64, 4);
            out.push('-');
            push_padded(out, month, 2);
        }
        Kind::InvoiceNumber => push_invoice_number(out, rec, &TABLES[table]),
        Kind::Code(prefix, digits) => {
            out.push_str(prefix);
            push_hex_fixed(out, rec.field_hash(idx) ^ seed, digits);
        }
        Kind::Note => push_escaped(out, NOTES[rec.value(idx, NOTES.len() as u64) as usize]),
        Kind::Staff => out.push_str(STAFF[rec.value(idx, STAFF.len() as u64) as usize]),
        Kind::DraftStatus => out.push_str(if rec.draft { "draft" } else { "published" }),
        // Not strings; handled by `push_value`.
        Kind::Pk
        | Kind::PkUuid
        | Kind::Account
        | Kind::CarrierId
        | Kind::Ref(..)
        | Kind::Num { .. }
        | Kind::Bool
        | Kind::Version
        | Kind::CreatedAt
        | Kind::UpdatedAt
        | Kind::PublishedAt
        | Kind::Codecs
        | Kind::Tags(_)
        | Kind::Routing => {}
    }
}

/// "credit_limit" → "credit limit", for messages.
fn push_label(out: &mut String, key: &str) {
    let special = match key {
        "cps" => "CPS",
        "ip" => "IP",
        "cli" => "CLI",
        "cli_mode" => "CLI mode",
        "ip_restrict" => "IP restriction",
        "nat" => "NAT",
        "mfa_required" => "MFA requirement",
        "cnam" => "CNAM",
        "e911" => "E911",
        "tls" => "TLS",
        "rtp_proxy" => "RTP proxy",
        "dtmf" => "DTMF mode",
        "poi" => "point of interconnect",
        "asr_alert" => "ASR alert",
        "vat_rate" => "VAT rate",
        "sms_enabled" => "SMS",
        "cidr" => "prefix length",
        "ingress_id" => "ingress route",
        "rate_card_id" => "rate card",
        "destination_sip_user_id" => "destination",
        _ => "",
    };
    if !special.is_empty() {
        out.push_str(special);
        return;
    }
    for part in key.split('_').enumerate() {
        if part.0 > 0 {
            out.push(' ');
        }
        out.push_str(part.1);
    }
}

// ---------------------------------------------------------------------------------------------
// Who did it.

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Who {
    Staff(u8),
    Portal(u32),
    Api(u8),
    System(u8),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum ActorKind {
    Staff,
    Portal,
    Api,
    System,
}

#[derive(Debug, Clone, Copy)]
struct Actor {
    who: Who,
    /// Which of its usual addresses the actor uses this time.
    place: u8,
}

// ---------------------------------------------------------------------------------------------
// Actions.

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Action {
    Update,
    Create,
    Delete,
    Login,
    Put,
    Post,
    Send,
    Generate,
    Publish,
}

const ACTIONS: [(Action, u32); 9] = [
    (Action::Update, 45),
    (Action::Create, 12),
    (Action::Delete, 5),
    (Action::Login, 15),
    (Action::Put, 6),
    (Action::Post, 5),
    (Action::Send, 5),
    (Action::Generate, 4),
    (Action::Publish, 3),
];

impl Action {
    fn name(self) -> &'static str {
        match self {
            Action::Update => "UPDATE",
            Action::Create => "CREATE",
            Action::Delete => "DELETE",
            Action::Login => "LOGIN",
            Action::Put => "PUT",
            Action::Post => "POST",
            Action::Send => "SEND",
            Action::Generate => "GENERATE",
            Action::Publish => "PUBLISH",
        }
    }

    /// Weights of staff, portal, API and system as the actor.
    fn actors(self) -> [u32; 4] {
        match self {
            Action::Update => [76, 13, 8, 3],
            Action::Create => [70, 18, 12, 0],
            Action::Delete => [72, 18, 10, 0],
            Action::Login => [68, 32, 0, 0],
            Action::Put => [25, 35, 40, 0],
            Action::Post => [30, 30, 40, 0],
            Action::Send => [40, 0, 10, 50],
            Action::Generate => [35, 10, 15, 40],
            Action::Publish => [90, 0, 10, 0],
        }
    }
}

const UPDATE_TABLES: [(usize, u32); 13] = [
    (CUSTOMER, 13),
    (INGRESS_ROUTE, 16),
    (EGRESS_ROUTE, 8),
    (SIP_USER, 19),
    (CARRIER, 3),
    (RATE_CARD, 3),
    (DID, 10),
    (CLI, 9),
    (IP_AUTH, 9),
    (SWITCH, 2),
    (ALERT, 4),
    (INVOICE, 2),
    (PAYMENT, 2),
];
const CREATE_TABLES: [(usize, u32); 11] = [
    (CUSTOMER, 3),
    (INGRESS_ROUTE, 14),
    (EGRESS_ROUTE, 8),
    (SIP_USER, 24),
    (DID, 12),
    (CLI, 12),
    (IP_AUTH, 12),
    (ALERT, 6),
    (RATE_CARD, 3),
    (CARRIER, 1),
    (PAYMENT, 5),
];
const DELETE_TABLES: [(usize, u32); 7] = [
    (SIP_USER, 30),
    (INGRESS_ROUTE, 15),
    (EGRESS_ROUTE, 10),
    (DID, 12),
    (CLI, 15),
    (IP_AUTH, 12),
    (ALERT, 6),
];
const PUT_TABLES: [(usize, u32); 6] = [
    (SIP_USER, 30),
    (INGRESS_ROUTE, 20),
    (DID, 15),
    (CUSTOMER, 15),
    (IP_AUTH, 10),
    (CLI, 10),
];

fn pick_table(rng: &mut Rng, tables: &[(usize, u32)]) -> usize {
    let mut weights = [0u32; 16];
    for (slot, &(_, w)) in weights.iter_mut().zip(tables) {
        *slot = w;
    }
    tables[rng.weighted(&weights[..tables.len()])].0
}

/// Weights of changing 1, 2, 3 or 4 fields in an UPDATE or PUT; fewer when `updated_at`
/// (and a rate card's status) change too, so that 1–4 keys differ in all.
const CHANGE_COUNTS: [u32; 4] = [50, 30, 15, 5];

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Change {
    Modify,
    Add,
    Remove,
}

// ---------------------------------------------------------------------------------------------
// The generator.

/// An endless stream of sample events; see the module documentation.
///
/// `write_next` appends one event (a compact JSON object without a newline) to a buffer; the
/// `Iterator` implementation returns each as a new `String` and never ends.
pub struct Generator {
    seed: u64,
    rng: Rng,
    n_events: u64,
    now_ms: i64,
    mean_gap_ms: u64,
    pools: Vec<Pool>,
    metas: Vec<TableMeta>,
    /// Cumulative Zipf(1) weights of account ranks 1..=5000.
    zipf_cumulative: Vec<u64>,
    customers_created: u64,
    staff_sessions: Vec<u32>,
    portal_sessions: Vec<u32>,
    next_api_key: u64,
    date_day: i64,
    date_text: String,
}

impl Generator {
    pub fn new(opts: GenerateOptions) -> Generator {
        let seed = opts.seed;
        let start_ms = opts.start_unix_secs.saturating_mul(1_000);
        let mut zipf_cumulative = Vec::with_capacity(N_ACCOUNTS as usize);
        let mut total = 0u64;
        for rank in 1..=N_ACCOUNTS {
            total += (1u64 << 40) / rank;
            zipf_cumulative.push(total);
        }
        let mut generator = Generator {
            seed,
            rng: Rng::new(seed),
            n_events: 0,
            now_ms: start_ms,
            mean_gap_ms: opts.mean_gap_ms,
            pools: Vec::with_capacity(TABLES.len()),
            metas: TABLES.iter().map(TableMeta::of).collect(),
            zipf_cumulative,
            customers_created: 0,
            staff_sessions: vec![0; STAFF.len()],
            portal_sessions: vec![0; N_ACCOUNTS as usize + 1],
            next_api_key: 1,
            date_day: i64::MIN,
            date_text: String::new(),
        };
        for (table, def) in TABLES.iter().enumerate() {
            let mut records = Vec::with_capacity(def.pool as usize);
            for slot in 0..u64::from(def.pool) {
                let pk = def.pk_base + slot;
                let account = if table == CUSTOMER {
                    pk as u32
                } else {
                    generator.account_from_hash(hash2(seed ^ 0x5EED, pk ^ (table as u64) << 48))
                };
                let mut rec = new_record(table, seed, pk, account, start_ms);
                // Records existed before the trail starts: created up to three years
                // earlier, last changed some time since.
                let age = 1 + hash2(rec.seed, 0x400) % (3 * 365 * MS_PER_DAY as u64);
                rec.created_ms = start_ms.saturating_sub(age as i64);
                let idle = 1 + hash2(rec.seed, 0x401) % age;
                rec.modified_ms = start_ms.saturating_sub(idle as i64);
                rec.published_ms = rec.modified_ms - (rec.modified_ms - rec.created_ms) / 2;
                if table == CUSTOMER && slot >= N_ACCOUNTS {
                    rec.alive = false;
                }
                records.push(rec);
            }
            let next_pk = def.pk_base
                + if table == CUSTOMER {
                    N_ACCOUNTS
                } else {
                    u64::from(def.pool)
                };
            generator.pools.push(Pool {
                records,
                free: Vec::new(),
                next_pk,
            });
        }
        generator
    }

    /// Appends the next event to `out`: one compact JSON object, no newline.
    pub fn write_next(&mut self, out: &mut String) {
        self.n_events += 1;
        self.advance_clock();
        const WEIGHTS: [u32; ACTIONS.len()] = {
            let mut weights = [0; ACTIONS.len()];
            let mut i = 0;
            while i < ACTIONS.len() {
                weights[i] = ACTIONS[i].1;
                i += 1;
            }
            weights
        };
        let action = ACTIONS[self.rng.weighted(&WEIGHTS)].0;
        match action {
            Action::Update | Action::Put => self.event_update(out, action),
            Action::Create => {
                let table = pick_table(&mut self.rng, &CREATE_TABLES);
                self.event_create(out, action, table);
            }
            Action::Post => {
                let table = if self.rng.percent(70) { PAYMENT } else { DID };
                self.event_create(out, action, table);
            }
            Action::Generate => match self.rng.below(100) {
                0..60 => self.event_create(out, action, INVOICE),
                60..80 => self.event_generate_api_key(out),
                _ => self.event_generate_password(out),
            },
            Action::Delete => self.event_delete(out),
            Action::Login => self.event_login(out),
            Action::Send => self.event_send(out),
            Action::Publish => self.event_publish(out),
        }
    }

    /// Gaps are independent and identically distributed (no day/night rhythm), so `count`
    /// events span about `count × mean_gap_ms`, which callers rely on to place a run in
    /// the past.
    fn advance_clock(&mut self) {
        // An exponential-like gap without floating point: a geometric number of halvings
        // (leading zeros of a uniform word, mean 1) plus a uniform fraction has mean 3/2.
        let word = self.rng.next_u64();
        let whole = u64::from((word >> 16).leading_zeros().saturating_sub(16));
        let fraction = word & 0xFFFF;
        let units = u128::from((whole << 16) + fraction);
        let gap = u128::from(self.mean_gap_ms) * units * 2 / (3 * 65_536);
        self.now_ms = self
            .now_ms
            .saturating_add(i64::try_from(gap).unwrap_or(i64::MAX));
    }

    fn zipf_rank(&self, word: u64) -> u64 {
        let total = *self.zipf_cumulative.last().unwrap_or(&1);
        let target = scale(word, total);
        self.zipf_cumulative.partition_point(|&c| c <= target) as u64 + 1
    }

    fn account_from_hash(&self, word: u64) -> u32 {
        account_of_rank(self.zipf_rank(word).min(N_ACCOUNTS))
    }

    fn random_account(&mut self) -> u32 {
        let word = self.rng.next_u64();
        self.account_from_hash(word)
    }

    // --- choosing records -------------------------------------------------------------------

    fn live_slot_from(&self, table: usize, start: usize) -> Option<usize> {
        let records = &self.pools[table].records;
        let n = records.len();
        (0..n)
            .map(|i| (start + i) % n)
            .find(|&slot| records[slot].alive)
    }

    /// A record to change: busy records (low slots) more often, so records build a history.
    fn pick_busy_slot(&mut self, table: usize) -> Option<usize> {
        if table == CUSTOMER {
            if self.customers_created > 0 && self.rng.percent(7) {
                let ring = self.customers_created.min(u64::from(NEW_CUSTOMER_SLOTS));
                let slot = N_ACCOUNTS + self.rng.below(ring);
                return Some(slot as usize);
            }
            let account = self.random_account();
            return Some(account as usize - 1);
        }
        let n = self.pools[table].records.len() as u64;
        let a = self.rng.below(n);
        let b = self.rng.below(n);
        self.live_slot_from(table, (a * b / n) as usize)
    }

    fn pick_any_slot(&mut self, table: usize) -> Option<usize> {
        let n = self.pools[table].records.len();
        let start = self.rng.index(n);
        self.live_slot_from(table, start)
    }

    /// The slot a new record takes: a deleted record's, else an old one that goes quiet.
    fn slot_for_new(&mut self, table: usize) -> usize {
        if table == CUSTOMER {
            let slot = N_ACCOUNTS + self.customers_created % u64::from(NEW_CUSTOMER_SLOTS);
            self.customers_created += 1;
            return slot as usize;
        }
        if let Some(slot) = self.pools[table].free.pop() {
            return slot as usize;
        }
        let n = self.pools[table].records.len();
        self.rng.index(n)
    }

    // --- choosing actors --------------------------------------------------------------------

    fn actor_kind(&mut self, action: Action, table: Option<usize>) -> ActorKind {
        let kind = match self.rng.weighted(&action.actors()) {
            0 => ActorKind::Staff,
            1 => ActorKind::Portal,
            2 => ActorKind::Api,
            _ => ActorKind::System,
        };
        match (kind, table) {
            (ActorKind::Portal, Some(t)) if !TABLES[t].portal => ActorKind::Staff,
            (ActorKind::System, Some(t)) if ![CUSTOMER, INVOICE, PAYMENT, ALERT].contains(&t) => {
                ActorKind::Staff
            }
            _ => kind,
        }
    }

    fn actor(&mut self, kind: ActorKind, table: Option<usize>, account: u32) -> Actor {
        let who = match kind {
            ActorKind::Staff => {
                let staff = self.rng.weighted(&STAFF_WEIGHTS);
                Who::Staff(staff as u8)
            }
            ActorKind::Portal => Who::Portal(account),
            ActorKind::Api => {
                let client = match table {
                    Some(t) if self.rng.percent(75) => TABLES[t].api_client,
                    _ => {
                        [API_RESELLER, API_FRAUD, API_PROVISIONING, API_BILLING][self.rng.index(4)]
                    }
                };
                Who::Api(client)
            }
            ActorKind::System => Who::System(match table {
                Some(INVOICE) | Some(PAYMENT) | Some(CUSTOMER) => SYSTEM_BILLING,
                Some(ALERT) => SYSTEM_ALERTS,
                _ => SYSTEM_SCHEDULER,
            }),
        };
        let place = match who {
            Who::Staff(_) => match self.rng.below(100) {
                0..55 => 0,
                55..80 => 1,
                _ => 2,
            },
            Who::Portal(_) => u8::from(self.rng.percent(20)),
            Who::Api(_) | Who::System(_) => u8::from(self.rng.percent(40)),
        };
        Actor { who, place }
    }

    // --- writing events ---------------------------------------------------------------------

    fn push_time(&mut self, out: &mut String) {
        let day = self.now_ms.div_euclid(MS_PER_DAY);
        if day != self.date_day {
            self.date_day = day;
            self.date_text.clear();
            push_date(&mut self.date_text, self.now_ms);
        }
        out.push_str(&self.date_text);
        out.push('T');
        push_clock(out, self.now_ms);
        out.push('.');
        push_padded(out, self.now_ms.rem_euclid(1_000) as u64, 3);
        out.push('Z');
    }

    /// `{"id":…,"time":…,"user":…,"source":…,"ip":…,"action":…,"table":…`
    fn push_head(&mut self, out: &mut String, actor: Actor, action: Action, table: &str) {
        out.push_str("{\"id\":\"gen-");
        push_u64(out, self.seed);
        out.push('-');
        push_u64(out, self.n_events);
        out.push_str("\",\"time\":\"");
        self.push_time(out);
        out.push_str("\",\"user\":\"");
        let source = match actor.who {
            Who::Staff(i) => {
                push_escaped(out, STAFF[i as usize]);
                "panel"
            }
            Who::Portal(_) => {
                out.push_str("Portal");
                "portal"
            }
            Who::Api(i) => {
                out.push_str(API_CLIENTS[i as usize].user);
                "api"
            }
            Who::System(i) => {
                out.push_str(SYSTEM_JOBS[i as usize].user);
                "system"
            }
        };
        out.push_str("\",\"source\":\"");
        out.push_str(source);
        out.push_str("\",\"ip\":\"");
        match actor.who {
            Who::Staff(i) => push_staff_ip(out, i as usize, actor.place),
            Who::Portal(account) => push_account_ip(out, account, u64::from(actor.place)),
            Who::Api(i) | Who::System(i) => {
                let client = if matches!(actor.who, Who::Api(_)) {
                    &API_CLIENTS[i as usize]
                } else {
                    &SYSTEM_JOBS[i as usize]
                };
                out.push_str(if actor.place == 0 {
                    client.ipv4
                } else {
                    client.ipv6
                });
            }
        }
        out.push_str("\",\"action\":\"");
        out.push_str(action.name());
        out.push_str("\",\"table\":\"");
        out.push_str(table);
        out.push('"');
    }

    fn push_pk(&self, out: &mut String, table: usize, rec: &Record) {
        out.push_str(",\"primary_key\":");
        out.push('"');
        if TABLES[table].uuid_pk {
            push_record_uuid(out, self.seed, table, rec.pk);
        } else {
            push_u64(out, rec.pk);
        }
        out.push('"');
    }

    /// How a message names a record: "customer 4711 (Acme Telecom Ltd)", "SIP user acme4711_204".
    fn push_subject(&self, out: &mut String, table: usize, rec: &Record) {
        let def = &TABLES[table];
        out.push_str(def.label);
        out.push(' ');
        match table {
            CUSTOMER => {
                push_u64(out, rec.pk);
                out.push_str(" (");
                push_company_name(out, rec.account);
                out.push(')');
            }
            CARRIER => {
                push_u64(out, rec.pk);
                out.push_str(" (");
                push_carrier_name(out, rec.pk as u32);
                out.push(')');
            }
            RATE_CARD => {
                push_rate_card_name(out, rec);
                out.push_str(" (");
                push_u64(out, rec.pk);
                out.push(')');
            }
            SWITCH => push_switch_name(out, rec.pk),
            SIP_USER => push_sip_username(out, rec),
            INVOICE => push_invoice_number(out, rec, def),
            DID | CLI => match self.metas[table].number {
                Some(idx) => push_value(out, self.seed, table, rec, idx, true),
                None => push_u64(out, rec.pk),
            },
            ALERT => {
                push_value(out, self.seed, table, rec, 2, true);
                out.push_str(" for customer ");
                push_u64(out, u64::from(rec.account));
            }
            _ => push_u64(out, rec.pk),
        }
    }

    fn push_record(&self, out: &mut String, table: usize, rec: &Record) {
        out.push('{');
        let mut first = true;
        for (idx, key) in self.metas[table].keys.iter().enumerate() {
            if !rec.has(idx) {
                continue;
            }
            out.push_str(if first { &key[1..] } else { key });
            first = false;
            push_value(out, self.seed, table, rec, idx, false);
        }
        out.push('}');
    }

    fn record_account(&self, table: usize, rec: &Record) -> Option<u32> {
        match self.metas[table].account {
            Some(idx) if rec.has(idx) => Some(rec.account),
            _ => None,
        }
    }

    /// The session a person is signed in with: a LOGIN starts a new one, and every later
    /// change by that person carries its id, so searching a session id finds the sign-in and
    /// everything done in it.
    fn session_counter(&mut self, who: Who) -> Option<&mut u32> {
        match who {
            Who::Staff(i) => self.staff_sessions.get_mut(i as usize),
            Who::Portal(account) => {
                let n = self.portal_sessions.len();
                self.portal_sessions.get_mut(account as usize % n)
            }
            Who::Api(_) | Who::System(_) => None,
        }
    }

    fn push_session_id(&self, out: &mut String, who: Who, counter: u32) {
        let who_code = match who {
            Who::Staff(i) => u64::from(i),
            Who::Portal(account) => 1_000 + u64::from(account),
            Who::Api(i) | Who::System(i) => 500 + u64::from(i),
        };
        out.push_str("\"ses_");
        let h = hash2(hash2(self.seed ^ 0x5E55_0000, who_code), u64::from(counter));
        push_hex_fixed(out, h, 12);
        out.push('"');
    }

    /// Browsers appear on sign-in; changes carry the session id instead (as a panel that
    /// logs the user agent once per session does), API clients and jobs their own agent.
    fn push_context(&mut self, out: &mut String, actor: Actor, account: Option<u32>) {
        out.push_str(",\"context\":{\"request_id\":\"req_");
        let request = self.rng.next_u64();
        push_hex_fixed(out, request, 12);
        out.push('"');
        match actor.who {
            Who::Staff(_) | Who::Portal(_) => {
                let counter = self.session_counter(actor.who).map_or(0, |c| *c);
                push_key(out, "session_id");
                self.push_session_id(out, actor.who, counter);
            }
            Who::Api(i) => {
                push_key(out, "user_agent");
                push_str(out, API_CLIENTS[i as usize].user_agent);
            }
            Who::System(i) => {
                push_key(out, "user_agent");
                push_str(out, SYSTEM_JOBS[i as usize].user_agent);
            }
        }
        if let Some(account) = account {
            push_key(out, "account_id");
            push_u64(out, u64::from(account));
        }
        match actor.who {
            Who::Staff(_) => {
                if self.rng.percent(12) {
                    push_key(out, "ticket");
                    out.push_str("\"TCK-");
                    push_u64(out, 1_000 + self.rng.below(9_000));
                    out.push('"');
                }
            }
            Who::Api(_) => {
                push_key(out, "api_version");
                out.push_str("\"v2\"");
            }
            Who::Portal(_) | Who::System(_) => {}
        }
        out.push_str("}}");
    }

    fn event_update(&mut self, out: &mut String, action: Action) {
        let table = if action == Action::Put {
            pick_table(&mut self.rng, &PUT_TABLES)
        } else {
            pick_table(&mut self.rng, &UPDATE_TABLES)
        };
        let kind = self.actor_kind(action, Some(table));
        let Some(slot) = self.pick_busy_slot(table) else {
            return self.event_create(out, Action::Create, table);
        };
        let before = self.pools[table].records[slot];
        if !before.alive {
            // A new-customer slot not yet used.
            return self.event_create(out, Action::Create, table);
        }
        let actor = self.actor(kind, Some(table), before.account);
        let meta = &self.metas[table];
        let changeable = meta.changeable.len();
        // 1–4 fields change in all, counting `updated_at` and a rate card's status.
        let implied = usize::from(meta.updated_at.is_some())
            + usize::from(table == RATE_CARD && !before.draft);
        let n_changes = (1 + self.rng.weighted(&CHANGE_COUNTS)).min(4 - implied);
        let mut changes = [(0usize, Change::Modify); 4];
        let mut n = 0;
        for _attempt in 0..32 {
            if n == n_changes.min(changeable) {
                break;
            }
            let idx = self.metas[table].changeable[self.rng.index(changeable)] as usize;
            if changes[..n].iter().any(|&(i, _)| i == idx) {
                continue;
            }
            let change = match TABLES[table].fields[idx].role {
                // An optional field present in p% of new records is removed in 20% of its
                // changes and added back at a rate that keeps it present in about p% of
                // records, however often a record changes.
                Role::Optional(p) if !before.has(idx) => {
                    let p = u64::from(p.min(90));
                    if !self.rng.percent(20 * p / (100 - p)) {
                        continue;
                    }
                    Change::Add
                }
                Role::Optional(_) if self.rng.percent(20) => Change::Remove,
                _ => Change::Modify,
            };
            changes[n] = (idx, change);
            n += 1;
        }
        let changes = &changes[..n];
        let mut after = before;
        for &(idx, change) in changes {
            match change {
                Change::Modify | Change::Add => {
                    after.gens[idx] = after.gens[idx].wrapping_add(1);
                    after.present |= 1 << idx;
                }
                Change::Remove => after.present &= !(1 << idx),
            }
        }
        after.modified_ms = self.now_ms;
        if table == RATE_CARD {
            after.draft = true;
        }

        self.push_head(out, actor, action, TABLES[table].name);
        self.push_pk(out, table, &before);
        out.push_str(",\"message\":\"");
        self.push_update_message(out, table, &before, &after, changes);
        match (action, actor.who) {
            (Action::Put, Who::Api(_)) => out.push_str(" via API"),
            (Action::Put, Who::Portal(_)) => out.push_str(" in the portal"),
            _ => {}
        }
        out.push('"');
        push_key(out, "before");
        self.push_record(out, table, &before);
        push_key(out, "after");
        self.push_record(out, table, &after);
        let account = self.record_account(table, &before).or(match actor.who {
            Who::Portal(a) => Some(a),
            _ => None,
        });
        self.push_context(out, actor, account);
        self.pools[table].records[slot] = after;
    }

    fn push_update_message(
        &self,
        out: &mut String,
        table: usize,
        before: &Record,
        after: &Record,
        changes: &[(usize, Change)],
    ) {
        let fields = TABLES[table].fields;
        if let [(idx, change)] = *changes {
            let field = fields[idx];
            match change {
                Change::Remove => {
                    out.push_str("Removed ");
                    push_label(out, field.key);
                    out.push_str(" from ");
                    self.push_subject(out, table, before);
                }
                Change::Add => {
                    out.push_str("Set ");
                    push_label(out, field.key);
                    out.push_str(" of ");
                    self.push_subject(out, table, before);
                }
                Change::Modify => match field.kind {
                    Kind::Bool => {
                        out.push_str(if after.value(idx, 2) == 1 {
                            "Enabled "
                        } else {
                            "Disabled "
                        });
                        push_label(out, field.key);
                        out.push_str(" on ");
                        self.push_subject(out, table, before);
                    }
                    Kind::Choice(_)
                    | Kind::Num { .. }
                    | Kind::Ref(..)
                    | Kind::Staff
                    | Kind::CustomerIp
                    | Kind::CarrierIp
                    | Kind::Prefix
                    | Kind::TechPrefix
                    | Kind::Timezone
                    | Kind::Email(_)
                    | Kind::Phone => {
                        out.push_str("Changed ");
                        push_label(out, field.key);
                        out.push_str(" of ");
                        self.push_subject(out, table, before);
                        out.push_str(" from ");
                        push_value(out, self.seed, table, before, idx, true);
                        out.push_str(" to ");
                        push_value(out, self.seed, table, after, idx, true);
                    }
                    _ => {
                        out.push_str("Updated ");
                        push_label(out, field.key);
                        out.push_str(" of ");
                        self.push_subject(out, table, before);
                    }
                },
            }
            return;
        }
        out.push_str("Updated ");
        for (i, &(idx, _)) in changes.iter().enumerate() {
            if i > 0 {
                out.push_str(if i + 1 == changes.len() {
                    " and "
                } else {
                    ", "
                });
            }
            push_label(out, fields[idx].key);
        }
        out.push_str(" of ");
        self.push_subject(out, table, before);
    }

    /// CREATE, and the actions that make a new record: POST (payments, DID orders) and
    /// GENERATE (invoices).
    fn event_create(&mut self, out: &mut String, action: Action, table: usize) {
        let kind = self.actor_kind(action, Some(table));
        let slot = self.slot_for_new(table);
        let def = &TABLES[table];
        let pool = &mut self.pools[table];
        let pk = pool.next_pk;
        pool.next_pk += 1;
        let account = if table == CUSTOMER {
            pk as u32
        } else {
            self.random_account()
        };
        let mut rec = new_record(table, self.seed, pk, account, self.now_ms);
        if table == RATE_CARD {
            rec.draft = true;
        }
        // Portal users act for their own account; a new customer is created by staff or API.
        let kind = if table == CUSTOMER && kind == ActorKind::Portal {
            ActorKind::Staff
        } else {
            kind
        };
        let actor = self.actor(kind, Some(table), account);

        self.push_head(out, actor, action, def.name);
        self.push_pk(out, table, &rec);
        out.push_str(",\"message\":\"");
        match (action, table) {
            (Action::Post, PAYMENT) => {
                out.push_str("Posted payment of ");
                push_value(out, self.seed, table, &rec, 2, true);
                out.push(' ');
                out.push_str(account_currency(account));
                out.push_str(" for customer ");
                push_u64(out, u64::from(account));
                out.push_str(" (");
                push_value(out, self.seed, table, &rec, 4, true);
                out.push(')');
            }
            (Action::Post, _) => {
                out.push_str("Ordered ");
                self.push_subject(out, table, &rec);
                out.push_str(" for customer ");
                push_u64(out, u64::from(account));
            }
            (Action::Generate, _) => {
                out.push_str("Generated ");
                self.push_subject(out, table, &rec);
                out.push_str(" for customer ");
                push_u64(out, u64::from(account));
            }
            _ => {
                out.push_str("Created ");
                self.push_subject(out, table, &rec);
                let owner = self
                    .record_account(table, &rec)
                    .filter(|_| table != CUSTOMER && table != ALERT);
                if let Some(a) = owner {
                    out.push_str(" for customer ");
                    push_u64(out, u64::from(a));
                }
            }
        }
        out.push_str("\",\"before\":null");
        push_key(out, "after");
        self.push_record(out, table, &rec);
        let context_account = self.record_account(table, &rec);
        self.push_context(out, actor, context_account);
        self.pools[table].records[slot] = rec;
    }

    fn event_delete(&mut self, out: &mut String) {
        let table = pick_table(&mut self.rng, &DELETE_TABLES);
        let kind = self.actor_kind(Action::Delete, Some(table));
        let Some(slot) = self.pick_any_slot(table) else {
            return self.event_create(out, Action::Create, table);
        };
        let rec = self.pools[table].records[slot];
        let actor = self.actor(kind, Some(table), rec.account);
        self.push_head(out, actor, Action::Delete, TABLES[table].name);
        self.push_pk(out, table, &rec);
        out.push_str(",\"message\":\"Deleted ");
        self.push_subject(out, table, &rec);
        if let Some(a) = self.record_account(table, &rec).filter(|_| table != ALERT) {
            out.push_str(" of customer ");
            push_u64(out, u64::from(a));
        }
        out.push('"');
        push_key(out, "before");
        self.push_record(out, table, &rec);
        out.push_str(",\"after\":null");
        let account = self.record_account(table, &rec);
        self.push_context(out, actor, account);
        let pool = &mut self.pools[table];
        pool.records[slot].alive = false;
        pool.free.push(slot as u32);
    }

    fn event_login(&mut self, out: &mut String) {
        let kind = self.actor_kind(Action::Login, None);
        let account = self.random_account();
        let actor = self.actor(kind, None, account);
        let failed = self.rng.percent(4);
        let word = self.rng.next_u64();
        self.push_head(out, actor, Action::Login, "user_session");
        if !failed {
            let counter = self.session_counter(actor.who).map_or(0, |c| {
                *c += 1;
                *c
            });
            out.push_str(",\"primary_key\":");
            self.push_session_id(out, actor.who, counter);
        }
        out.push_str(",\"message\":\"");
        match (actor.who, failed) {
            (Who::Staff(i), false) => {
                push_escaped(out, STAFF[i as usize]);
                out.push_str(" signed in to the control panel");
            }
            (Who::Staff(i), true) => {
                out.push_str("Failed sign-in for ");
                push_escaped(out, STAFF[i as usize]);
                out.push_str(if word & 1 == 0 {
                    ": wrong password"
                } else {
                    ": invalid TOTP code"
                });
            }
            (_, false) => {
                out.push_str("Customer ");
                push_u64(out, u64::from(account));
                out.push_str(" signed in to the portal as ");
                push_account_email(out, "noc", account);
            }
            (_, true) => {
                out.push_str("Failed portal sign-in for ");
                push_account_email(out, "noc", account);
                out.push_str(": wrong password");
            }
        }
        out.push_str("\",\"before\":null,\"after\":{");
        if let Who::Staff(i) = actor.who {
            out.push_str("\"user\":");
            push_str(out, STAFF[i as usize]);
            let h = hash2(WORLD ^ 6, u64::from(i));
            out.push_str(",\"method\":\"");
            out.push_str(["sso", "password", "password"][(h % 3) as usize]);
            out.push_str("\",\"mfa\":\"");
            out.push_str(["totp", "webauthn", "totp", "none"][(h >> 8) as usize % 4]);
        } else {
            out.push_str("\"account_id\":");
            push_u64(out, u64::from(account));
            out.push_str(",\"login\":\"");
            push_account_email(out, "noc", account);
            out.push_str("\",\"method\":\"password\",\"mfa\":\"");
            let h = hash2(WORLD ^ 6, 1_000 + u64::from(account));
            out.push_str(["totp", "none", "none"][(h % 3) as usize]);
        }
        out.push_str("\",\"result\":\"");
        out.push_str(if failed { "failed" } else { "success" });
        out.push_str("\",\"session_ttl\":");
        push_u64(
            out,
            if matches!(actor.who, Who::Staff(_)) {
                28_800
            } else {
                3_600
            },
        );
        out.push_str(",\"remember_me\":");
        out.push_str(if word >> 40 & 1 == 1 { "true" } else { "false" });
        out.push('}');
        out.push_str(",\"context\":{\"request_id\":\"req_");
        push_hex_fixed(out, self.rng.next_u64(), 12);
        out.push_str("\",\"user_agent\":\"");
        let browser = match actor.who {
            Who::Staff(i) => hash2(WORLD ^ 5, u64::from(i)) % 5,
            _ => hash2(WORLD ^ 5, 1_000 + u64::from(account)) % 6,
        };
        out.push_str(BROWSERS[browser as usize]);
        out.push('"');
        if let Who::Portal(a) = actor.who {
            push_key(out, "account_id");
            push_u64(out, u64::from(a));
        }
        out.push_str("}}");
    }

    fn event_send(&mut self, out: &mut String) {
        let table = match self.rng.below(100) {
            0..50 => INVOICE,
            50..80 => ALERT,
            _ => CUSTOMER,
        };
        let kind = self.actor_kind(Action::Send, Some(table));
        let slot = match table {
            CUSTOMER => Some(self.random_account() as usize - 1),
            _ => self.pick_any_slot(table),
        };
        let Some(slot) = slot else {
            return self.event_create(out, Action::Create, table);
        };
        let rec = self.pools[table].records[slot];
        let actor = self.actor(kind, Some(table), rec.account);
        let seed = self.seed;
        self.push_head(out, actor, Action::Send, TABLES[table].name);
        self.push_pk(out, table, &rec);
        out.push_str(",\"message\":\"");
        match table {
            INVOICE => {
                out.push_str("Sent invoice ");
                push_invoice_number(out, &rec, &TABLES[INVOICE]);
                out.push_str(" to ");
                push_account_email(out, "billing", rec.account);
                out.push_str("\",\"before\":null,\"after\":{\"invoice_id\":");
                push_u64(out, rec.pk);
                out.push_str(",\"number\":\"");
                push_invoice_number(out, &rec, &TABLES[INVOICE]);
                out.push_str("\",\"account_id\":");
                push_u64(out, u64::from(rec.account));
                out.push_str(",\"to\":\"");
                push_account_email(out, "billing", rec.account);
                out.push_str("\",\"template\":\"invoice\",\"attachments\":[\"");
                push_invoice_number(out, &rec, &TABLES[INVOICE]);
                out.push_str(".pdf\"],\"delivery\":\"queued\"}");
            }
            ALERT => {
                out.push_str("Sent ");
                push_value(out, seed, table, &rec, 2, true);
                out.push_str(" alert to customer ");
                push_u64(out, u64::from(rec.account));
                out.push_str(" via ");
                push_value(out, seed, table, &rec, 4, true);
                out.push_str("\",\"before\":null,\"after\":{\"alert_id\":\"");
                push_record_uuid(out, seed, table, rec.pk);
                out.push('"');
                out.push_str(",\"account_id\":");
                push_u64(out, u64::from(rec.account));
                for idx in [2, 4, 5, 3] {
                    out.push_str(",\"");
                    out.push_str(ALERT_FIELDS[idx].key);
                    out.push_str("\":");
                    push_value(out, seed, table, &rec, idx, false);
                }
                out.push_str(",\"value\":");
                push_u64(out, self.rng.below(2_000));
                out.push('}');
            }
            _ => {
                const TEMPLATES: [&str; 4] = [
                    "welcome",
                    "statement",
                    "low_balance_warning",
                    "password_reset",
                ];
                let template = TEMPLATES[self.rng.index(4)];
                out.push_str("Sent ");
                out.push_str(template);
                out.push_str(" e-mail to customer ");
                push_u64(out, rec.pk);
                out.push_str("\",\"before\":null,\"after\":{\"account_id\":");
                push_u64(out, rec.pk);
                out.push_str(",\"to\":\"");
                push_account_email(out, "billing", rec.account);
                out.push_str("\",\"template\":\"");
                out.push_str(template);
                out.push_str("\",\"locale\":\"");
                out.push_str(["en-GB", "en-US", "de-DE", "fr-FR", "es-ES"][rec.pk as usize % 5]);
                out.push_str("\",\"delivery\":\"queued\"}");
            }
        }
        let account = self.record_account(table, &rec);
        self.push_context(out, actor, account);
    }

    fn event_generate_api_key(&mut self, out: &mut String) {
        let kind = self.actor_kind(Action::Generate, None);
        let kind = if kind == ActorKind::System {
            ActorKind::Staff
        } else {
            kind
        };
        let account = self.random_account();
        let actor = self.actor(kind, None, account);
        let key_id = self.next_api_key;
        self.next_api_key += 1;
        let key_hash = hash2(self.seed ^ 0xA91, key_id);
        self.push_head(out, actor, Action::Generate, "api_key");
        out.push_str(",\"primary_key\":\"");
        push_u64(out, key_id);
        out.push_str("\",\"message\":\"Generated API key ak_live_");
        push_hex_fixed(out, key_hash, 8);
        out.push_str(" for customer ");
        push_u64(out, u64::from(account));
        out.push_str("\",\"before\":null,\"after\":{\"key_id\":");
        push_u64(out, key_id);
        out.push_str(",\"account_id\":");
        push_u64(out, u64::from(account));
        out.push_str(",\"prefix\":\"ak_live_");
        push_hex_fixed(out, key_hash, 8);
        out.push_str("\",\"scopes\":");
        out.push_str(
            [
                "[\"cdr:read\"]",
                "[\"cdr:read\",\"routes:write\"]",
                "[\"sip_users:write\",\"dids:write\"]",
                "[\"billing:read\",\"payments:write\"]",
            ][(key_hash >> 32) as usize % 4],
        );
        out.push_str(",\"expires_at\":");
        push_timestamp(out, self.now_ms + 365 * MS_PER_DAY);
        out.push('}');
        self.push_context(out, actor, Some(account));
    }

    fn event_generate_password(&mut self, out: &mut String) {
        let table = SIP_USER;
        let kind = self.actor_kind(Action::Generate, Some(table));
        let Some(slot) = self.pick_any_slot(table) else {
            return self.event_generate_api_key(out);
        };
        let rec = self.pools[table].records[slot];
        let actor = self.actor(kind, Some(table), rec.account);
        self.push_head(out, actor, Action::Generate, TABLES[table].name);
        self.push_pk(out, table, &rec);
        out.push_str(",\"message\":\"Generated a new password for SIP user ");
        push_sip_username(out, &rec);
        out.push_str("\",\"before\":null,\"after\":{\"sip_user_id\":");
        push_u64(out, rec.pk);
        out.push_str(",\"username\":\"");
        push_sip_username(out, &rec);
        out.push_str("\",\"account_id\":");
        push_u64(out, u64::from(rec.account));
        out.push_str(",\"password_length\":");
        push_u64(out, 16 + 4 * self.rng.below(3));
        out.push_str(",\"delivered_to\":\"");
        push_account_email(out, "noc", rec.account);
        out.push_str("\"}");
        self.push_context(out, actor, Some(rec.account));
    }

    fn event_publish(&mut self, out: &mut String) {
        let table = if self.rng.percent(75) {
            RATE_CARD
        } else {
            SWITCH
        };
        let kind = self.actor_kind(Action::Publish, Some(table));
        let Some(slot) = self.pick_busy_slot(table) else {
            return self.event_create(out, Action::Create, table);
        };
        let before = self.pools[table].records[slot];
        let actor = self.actor(kind, Some(table), before.account);
        let Some(version) = self.metas[table].version else {
            return;
        };
        let mut after = before;
        after.gens[version] = after.gens[version].wrapping_add(1);
        after.draft = false;
        after.modified_ms = self.now_ms;
        after.published_ms = self.now_ms;
        self.push_head(out, actor, Action::Publish, TABLES[table].name);
        self.push_pk(out, table, &before);
        out.push_str(",\"message\":\"Published ");
        if table == RATE_CARD {
            out.push_str("rate card ");
            push_rate_card_name(out, &after);
            out.push_str(" v");
            push_value(out, self.seed, table, &after, version, true);
        } else {
            out.push_str("configuration v");
            push_value(out, self.seed, table, &after, version, true);
            out.push_str(" to switch ");
            push_switch_name(out, after.pk);
        }
        out.push('"');
        push_key(out, "before");
        self.push_record(out, table, &before);
        push_key(out, "after");
        self.push_record(out, table, &after);
        self.push_context(out, actor, None);
        self.pools[table].records[slot] = after;
    }
}

impl Iterator for Generator {
    type Item = String;

    fn next(&mut self) -> Option<String> {
        let mut line = String::with_capacity(1_024);
        self.write_next(&mut line);
        Some(line)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::{HashMap, HashSet};

    // A strict JSON reader for the tests: RFC 8259 plus unique keys, and the number rules of
    // SPEC §2 in the stronger form this generator promises (plain decimals, at most 4
    // decimals, no trailing zeros, integers within ±(2^53−1)). The crate's own parser
    // cross-checks the same output in the integration tests.
    #[derive(Debug, Clone, PartialEq)]
    enum J {
        Null,
        Bool(bool),
        Num(String),
        Str(String),
        Arr(Vec<J>),
        Obj(Vec<(String, J)>),
    }

    impl J {
        fn get(&self, key: &str) -> Option<&J> {
            match self {
                J::Obj(members) => members.iter().find(|(k, _)| k == key).map(|(_, v)| v),
                _ => None,
            }
        }

        fn str(&self, key: &str) -> &str {
            match self.get(key) {
                Some(J::Str(s)) => s,
                other => panic!("{key} is not a string: {other:?}"),
            }
        }

        fn members(&self) -> &[(String, J)] {
            match self {
                J::Obj(members) => members,
                other => panic!("not an object: {other:?}"),
            }
        }
    }

    struct Reader<'a> {
        bytes: &'a [u8],
        pos: usize,
    }

    impl Reader<'_> {
        fn fail<T>(&self, what: &str) -> Result<T, String> {
            Err(format!("{what} at byte {}", self.pos))
        }

        fn peek(&self) -> Option<u8> {
            self.bytes.get(self.pos).copied()
        }

        fn eat(&mut self, byte: u8) -> Result<(), String> {
            if self.peek() == Some(byte) {
                self.pos += 1;
                Ok(())
            } else {
                self.fail(&format!("expected {:?}", byte as char))
            }
        }

        fn literal(&mut self, text: &str, value: J) -> Result<J, String> {
            if self.bytes[self.pos..].starts_with(text.as_bytes()) {
                self.pos += text.len();
                Ok(value)
            } else {
                self.fail("bad literal")
            }
        }

        fn value(&mut self, depth: usize) -> Result<J, String> {
            if depth > 8 {
                return self.fail("too deep");
            }
            match self.peek() {
                Some(b'{') => {
                    self.pos += 1;
                    let mut members: Vec<(String, J)> = Vec::new();
                    if self.peek() == Some(b'}') {
                        self.pos += 1;
                        return Ok(J::Obj(members));
                    }
                    loop {
                        let key = self.string()?;
                        if members.iter().any(|(k, _)| *k == key) {
                            return self.fail(&format!("duplicate key {key}"));
                        }
                        self.eat(b':')?;
                        let value = self.value(depth + 1)?;
                        members.push((key, value));
                        match self.peek() {
                            Some(b',') => self.pos += 1,
                            Some(b'}') => {
                                self.pos += 1;
                                return Ok(J::Obj(members));
                            }
                            _ => return self.fail("expected , or }"),
                        }
                    }
                }
                Some(b'[') => {
                    self.pos += 1;
                    let mut items = Vec::new();
                    if self.peek() == Some(b']') {
                        self.pos += 1;
                        return Ok(J::Arr(items));
                    }
                    loop {
                        items.push(self.value(depth + 1)?);
                        match self.peek() {
                            Some(b',') => self.pos += 1,
                            Some(b']') => {
                                self.pos += 1;
                                return Ok(J::Arr(items));
                            }
                            _ => return self.fail("expected , or ]"),
                        }
                    }
                }
                Some(b'"') => Ok(J::Str(self.string()?)),
                Some(b't') => self.literal("true", J::Bool(true)),
                Some(b'f') => self.literal("false", J::Bool(false)),
                Some(b'n') => self.literal("null", J::Null),
                Some(b'-' | b'0'..=b'9') => self.number(),
                _ => self.fail("expected a value"),
            }
        }

        fn number(&mut self) -> Result<J, String> {
            let start = self.pos;
            if self.peek() == Some(b'-') {
                self.pos += 1;
            }
            let int_start = self.pos;
            while matches!(self.peek(), Some(b'0'..=b'9')) {
                self.pos += 1;
            }
            let int_digits = &self.bytes[int_start..self.pos];
            if int_digits.is_empty() || (int_digits.len() > 1 && int_digits[0] == b'0') {
                return self.fail("bad integer part");
            }
            if self.peek() == Some(b'.') {
                self.pos += 1;
                let frac_start = self.pos;
                while matches!(self.peek(), Some(b'0'..=b'9')) {
                    self.pos += 1;
                }
                let frac = &self.bytes[frac_start..self.pos];
                if frac.is_empty() || frac.len() > 4 || frac.last() == Some(&b'0') {
                    return self.fail("fraction must have 1-4 digits, no trailing zero");
                }
            }
            if matches!(self.peek(), Some(b'e' | b'E')) {
                return self.fail("no exponents expected");
            }
            if int_digits.len() > 15 {
                return self.fail("integer part beyond 2^53");
            }
            let text =
                std::str::from_utf8(&self.bytes[start..self.pos]).map_err(|e| e.to_string())?;
            if text == "-0" {
                return self.fail("minus zero");
            }
            Ok(J::Num(text.to_string()))
        }

        fn string(&mut self) -> Result<String, String> {
            self.eat(b'"')?;
            let mut out = Vec::new();
            loop {
                let Some(byte) = self.peek() else {
                    return self.fail("unterminated string");
                };
                self.pos += 1;
                match byte {
                    b'"' => break,
                    b'\\' => {
                        let Some(escape) = self.peek() else {
                            return self.fail("unterminated escape");
                        };
                        self.pos += 1;
                        match escape {
                            b'"' | b'\\' | b'/' => out.push(escape),
                            b'n' => out.push(b'\n'),
                            b'r' => out.push(b'\r'),
                            b't' => out.push(b'\t'),
                            b'b' => out.push(8),
                            b'f' => out.push(12),
                            b'u' => {
                                let hex = self
                                    .bytes
                                    .get(self.pos..self.pos + 4)
                                    .and_then(|h| std::str::from_utf8(h).ok())
                                    .and_then(|h| u32::from_str_radix(h, 16).ok());
                                let Some(code) = hex.and_then(char::from_u32) else {
                                    return self.fail("bad \\u escape");
                                };
                                self.pos += 4;
                                let mut buf = [0u8; 4];
                                out.extend_from_slice(code.encode_utf8(&mut buf).as_bytes());
                            }
                            _ => return self.fail("bad escape"),
                        }
                    }
                    0..=0x1F => return self.fail("raw control character"),
                    _ => out.push(byte),
                }
            }
            String::from_utf8(out).map_err(|e| e.to_string())
        }
    }

    fn parse_strict(line: &str) -> Result<J, String> {
        let mut reader = Reader {
            bytes: line.as_bytes(),
            pos: 0,
        };
        let value = reader.value(0)?;
        if reader.pos != line.len() {
            return reader.fail("trailing bytes");
        }
        Ok(value)
    }

    fn generate(seed: u64, count: usize) -> Vec<String> {
        Generator::new(GenerateOptions {
            seed,
            ..GenerateOptions::default()
        })
        .take(count)
        .collect()
    }

    use crate::event::INPUT_FIELDS as FIELDS;

    #[test]
    fn the_first_events_of_seed_1_never_change() {
        // Golden output: if this fails, the generator's bytes changed. Only change it on
        // purpose (benchmarks and demos compare against earlier runs), and say so.
        let lines = generate(1, 2);
        assert_eq!(
            lines[0],
            r#"{"id":"gen-1-1","time":"2026-01-01T00:00:00.109Z","user":"alice.moreau","source":"panel","ip":"203.0.113.10","action":"CREATE","table":"did","primary_key":"320001","message":"Created DID +336399800708 for customer 2442","before":null,"after":{"did_id":320001,"number":"+336399800708","account_id":2442,"status":"assigned","monthly_cost":11.19,"country":"ES","cnam":false,"updated_at":"2026-01-01T00:00:00Z"},"context":{"request_id":"req_b48ab9ed4a21","session_id":"ses_d683f072d808","account_id":2442}}"#
        );
        assert_eq!(
            lines[1],
            r#"{"id":"gen-1-2","time":"2026-01-01T00:00:00.361Z","user":"chloe.bernard","source":"panel","ip":"203.0.113.38","action":"GENERATE","table":"sip_user","primary_key":"117999","message":"Generated a new password for SIP user granite2442_765","before":null,"after":{"sip_user_id":117999,"username":"granite2442_765","account_id":2442,"password_length":20,"delivered_to":"noc@granite2442.example"},"context":{"request_id":"req_dedec37361c0","session_id":"ses_f5c08609589d","account_id":2442,"ticket":"TCK-5169"}}"#
        );
    }

    #[test]
    fn the_same_seed_gives_the_same_bytes() {
        let a = generate(42, 3_000);
        let b = generate(42, 3_000);
        assert_eq!(a, b);
        // write_next appends exactly what the iterator yields.
        let mut generator = Generator::new(GenerateOptions {
            seed: 42,
            ..GenerateOptions::default()
        });
        let mut buffer = String::new();
        for line in &a {
            let start = buffer.len();
            generator.write_next(&mut buffer);
            assert_eq!(&buffer[start..], line);
        }
    }

    #[test]
    fn different_seeds_give_different_events() {
        let a = generate(1, 200);
        let b = generate(2, 200);
        let same = a.iter().zip(&b).filter(|(x, y)| x == y).count();
        assert_eq!(same, 0);
    }

    #[test]
    fn the_start_time_and_gap_options_are_honoured() {
        let lines: Vec<String> = Generator::new(GenerateOptions {
            seed: 3,
            start_unix_secs: 946_684_800, // 2000-01-01
            mean_gap_ms: 10,
        })
        .take(100)
        .collect();
        let first = parse_strict(&lines[0]).expect("json");
        let last = parse_strict(&lines[99]).expect("json");
        assert!(first.str("time").starts_with("2000-01-01T00:00:00."));
        assert!(last.str("time").starts_with("2000-01-01T00:00:0"));
    }

    fn parse_millis(time: &str) -> i64 {
        // "2026-01-01T00:00:00.272Z"
        assert_eq!(time.len(), 24, "{time}");
        assert!(time.ends_with('Z') && &time[10..11] == "T" && &time[19..20] == ".");
        let n = |range: std::ops::Range<usize>| -> i64 { time[range].parse().expect("digits") };
        let (year, month, day) = (n(0..4), n(5..7), n(8..10));
        let mut days = 0;
        for y in 1970..year {
            days += if (y % 4 == 0 && y % 100 != 0) || y % 400 == 0 {
                366
            } else {
                365
            };
        }
        let leap = (year % 4 == 0 && year % 100 != 0) || year % 400 == 0;
        let lengths = [
            31,
            if leap { 29 } else { 28 },
            31,
            30,
            31,
            30,
            31,
            31,
            30,
            31,
            30,
            31,
        ];
        days += lengths[..(month - 1) as usize].iter().sum::<i64>() + day - 1;
        ((days * 24 + n(11..13)) * 60 + n(14..16)) * 60_000 + n(17..19) * 1_000 + n(20..23)
    }

    /// Top-level keys whose values differ between two objects (added, removed or changed).
    fn changed_keys(before: &J, after: &J) -> usize {
        let b = before.members();
        let a = after.members();
        let mut keys: HashSet<&str> = b.iter().map(|(k, _)| k.as_str()).collect();
        keys.extend(a.iter().map(|(k, _)| k.as_str()));
        keys.into_iter()
            .filter(|k| before.get(k) != after.get(k))
            .count()
    }

    #[test]
    fn every_event_is_strict_json_in_the_input_form() {
        let actions = [
            "CREATE", "DELETE", "GENERATE", "LOGIN", "POST", "PUBLISH", "PUT", "SEND", "UPDATE",
        ];
        let mut previous_ms = i64::MIN;
        let mut ids = HashSet::new();
        for (n, line) in generate(5, 20_000).iter().enumerate() {
            let event = parse_strict(line).unwrap_or_else(|e| panic!("{e}: {line}"));
            let keys: Vec<&str> = event.members().iter().map(|(k, _)| k.as_str()).collect();
            for key in &keys {
                assert!(FIELDS.contains(key), "unexpected key {key}: {line}");
            }
            for key in [
                "id", "time", "user", "source", "ip", "action", "table", "message", "context",
            ] {
                assert!(keys.contains(&key), "missing {key}: {line}");
            }

            let id = event.str("id");
            assert_eq!(id, format!("gen-5-{}", n + 1));
            assert!(ids.insert(id.to_string()));

            let ms = parse_millis(event.str("time"));
            assert!(ms >= previous_ms, "time went backwards: {line}");
            previous_ms = ms;

            let user = event.str("user");
            let expected_source = if user == "Portal" {
                "portal"
            } else if user.starts_with("api:") {
                "api"
            } else if user.starts_with("system:") {
                "system"
            } else {
                "panel"
            };
            assert_eq!(event.str("source"), expected_source, "{line}");
            event
                .str("ip")
                .parse::<std::net::IpAddr>()
                .expect("ip address");

            let action = event.str("action");
            assert!(actions.contains(&action));
            assert!(!event.str("table").is_empty());
            assert!(!event.str("message").is_empty());
            let pk = event.get("primary_key");
            if ["CREATE", "UPDATE", "DELETE", "PUT"].contains(&action) {
                assert!(matches!(pk, Some(J::Str(s)) if !s.is_empty()), "{line}");
            }

            let before = event.get("before").expect("before");
            let after = event.get("after").expect("after");
            for side in [before, after] {
                match side {
                    J::Null => {}
                    J::Obj(members) => {
                        assert!(
                            (5..=30).contains(&members.len()),
                            "{} fields: {line}",
                            members.len()
                        );
                    }
                    other => panic!("before/after must be object or null: {other:?}"),
                }
            }
            match action {
                "CREATE" => assert!(*before == J::Null && matches!(after, J::Obj(_)), "{line}"),
                "DELETE" => assert!(matches!(before, J::Obj(_)) && *after == J::Null, "{line}"),
                "UPDATE" | "PUT" => {
                    let changed = changed_keys(before, after);
                    assert!((1..=4).contains(&changed), "{changed} changes: {line}");
                }
                _ => {}
            }
            let context = event.get("context").expect("context");
            assert!(
                matches!(context.get("request_id"), Some(J::Str(_))),
                "{line}"
            );
        }
    }

    #[test]
    fn a_records_before_is_its_previous_after() {
        let mut last: HashMap<(String, String), J> = HashMap::new();
        let mut checked = 0;
        for line in generate(9, 30_000) {
            let event = parse_strict(&line).expect("json");
            let action = event.str("action");
            let table = event.str("table");
            let whole_record = matches!(
                action,
                "CREATE" | "UPDATE" | "PUT" | "DELETE" | "PUBLISH" | "POST"
            ) || (action == "GENERATE" && table == "invoice");
            if !whole_record {
                continue;
            }
            let key = (table.to_string(), event.str("primary_key").to_string());
            let before = event.get("before").expect("before");
            if let (Some(previous), J::Obj(_)) = (last.get(&key), before) {
                assert_eq!(previous, before, "history broken: {line}");
                checked += 1;
            }
            match event.get("after") {
                Some(after @ J::Obj(_)) => {
                    last.insert(key, after.clone());
                }
                _ => {
                    last.remove(&key);
                }
            }
        }
        assert!(checked > 2_000, "only {checked} records changed twice");
    }

    #[test]
    fn the_mix_looks_like_the_spec() {
        let n = 50_000;
        let mut actions: HashMap<String, usize> = HashMap::new();
        let (mut portal, mut api, mut ipv6, mut accounts) = (0, 0, 0, HashMap::new());
        for line in generate(11, n) {
            let event = parse_strict(&line).expect("json");
            *actions.entry(event.str("action").to_string()).or_default() += 1;
            portal += usize::from(event.str("user") == "Portal");
            api += usize::from(event.str("user").starts_with("api:"));
            ipv6 += usize::from(event.str("ip").contains(':'));
            if let Some(J::Num(account)) = event.get("context").and_then(|c| c.get("account_id")) {
                *accounts.entry(account.clone()).or_insert(0usize) += 1;
            }
        }
        let percent = |count: usize| count as f64 * 100.0 / n as f64;
        for (action, weight) in ACTIONS {
            let share = percent(actions.get(action.name()).copied().unwrap_or(0));
            assert!(
                (share - f64::from(weight)).abs() < 1.5,
                "{action:?}: {share:.1}%"
            );
        }
        assert!(
            (11.0..19.0).contains(&percent(portal)),
            "portal {:.1}%",
            percent(portal)
        );
        assert!(
            (7.0..14.0).contains(&percent(api)),
            "api {:.1}%",
            percent(api)
        );
        assert!(
            (20.0..30.0).contains(&percent(ipv6)),
            "ipv6 {:.1}%",
            percent(ipv6)
        );
        // Zipf: the busiest account is everywhere, yet most accounts turn up.
        assert!(accounts.get("4711").copied().unwrap_or(0) > n / 25);
        assert!(accounts.len() > 3_000, "{} accounts", accounts.len());
    }

    #[test]
    fn lines_average_about_670_bytes() {
        let n = 100_000;
        let mut generator = Generator::new(GenerateOptions {
            seed: 1,
            ..GenerateOptions::default()
        });
        let mut buffer = String::with_capacity(4_096);
        let mut total = 0;
        for _ in 0..n {
            buffer.clear();
            generator.write_next(&mut buffer);
            total += buffer.len();
        }
        let average = total / n;
        assert!((600..=750).contains(&average), "average {average} bytes");
    }

    #[test]
    fn gaps_average_the_mean() {
        let n = 40_000;
        let lines: Vec<String> = Generator::new(GenerateOptions {
            seed: 4,
            start_unix_secs: DEFAULT_START_UNIX_SECS,
            mean_gap_ms: 60_000,
        })
        .take(n)
        .collect();
        let first = parse_millis(parse_strict(&lines[0]).expect("json").str("time"));
        let last = parse_millis(parse_strict(&lines[n - 1]).expect("json").str("time"));
        let mean = (last - first) as f64 / (n - 1) as f64;
        assert!((mean - 60_000.0).abs() < 1_500.0, "mean gap {mean:.0} ms");
    }

    #[test]
    fn schemas_fit_the_record_layout() {
        for def in &TABLES {
            assert!(def.fields.len() <= MAX_FIELDS, "{}", def.name);
            let keys: HashSet<&str> = def.fields.iter().map(|f| f.key).collect();
            assert_eq!(
                keys.len(),
                def.fields.len(),
                "duplicate key in {}",
                def.name
            );
            assert!(
                def.fields.iter().any(|f| f.role == Role::Mutable),
                "{}",
                def.name
            );
        }
    }

    #[test]
    fn numbers_and_dates_are_written_exactly() {
        let text = |f: &dyn Fn(&mut String)| {
            let mut s = String::new();
            f(&mut s);
            s
        };
        assert_eq!(text(&|s| push_decimal(s, 1_250, 2)), "12.5");
        assert_eq!(text(&|s| push_decimal(s, -5, 2)), "-0.05");
        assert_eq!(text(&|s| push_decimal(s, 0, 4)), "0");
        assert_eq!(text(&|s| push_decimal(s, 123, 4)), "0.0123");
        assert_eq!(text(&|s| push_decimal(s, 2_000, 4)), "0.2");
        assert_eq!(text(&|s| push_u64(s, 0)), "0");
        assert_eq!(text(&|s| push_u64(s, 1_000_007)), "1000007");
        assert_eq!(text(&|s| push_u64(s, u64::MAX)), u64::MAX.to_string());
        assert_eq!(text(&|s| push_padded(s, 7, 3)), "007");
        assert_eq!(text(&|s| push_padded(s, 12_345, 6)), "012345");
        assert_eq!(text(&|s| push_hex(s, 0xdb8)), "db8");
        assert_eq!(text(&|s| push_hex(s, 0)), "0");
        assert_eq!(text(&|s| push_timestamp(s, 0)), "\"1970-01-01T00:00:00Z\"");
        assert_eq!(
            text(&|s| push_timestamp(s, DEFAULT_START_UNIX_SECS * 1_000 - 1)),
            "\"2025-12-31T23:59:59Z\""
        );
        assert_eq!(text(&|s| push_date(s, 19_782 * MS_PER_DAY)), "2024-02-29");
        assert_eq!(
            text(&|s| push_escaped(s, "Müller \"GmbH\"\\\n\t\u{1}📞")),
            "Müller \\\"GmbH\\\"\\\\\\n\\t\\u0001📞"
        );
    }

    #[test]
    fn names_that_need_escaping_occur() {
        let lines = generate(1, 20_000);
        assert!(lines.iter().any(|l| l.contains("\\\"")));
        assert!(lines.iter().any(|l| l.contains('ü')));
        assert!(lines.iter().any(|l| l.contains("\\n")));
    }
}

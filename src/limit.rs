//! The limit grammar: `amount ("/" | "per") [multiple] unit`, several per
//! argument. Pure: bytes in, limits or a user-facing reason out.

use std::fmt;

/// Largest amount, cost or burst a client may pass (the contract's u32 range).
pub const MAX_AMOUNT: u64 = u32::MAX as u64;
/// Longest window: ten years of 365 days, in ms.
pub const MAX_WINDOW_MS: u64 = 10 * 365 * DAY_MS;
/// How many limits one argument may hold.
pub const MAX_LIMITS: usize = 16;

const SECOND_MS: u64 = 1_000;
const MINUTE_MS: u64 = 60 * SECOND_MS;
const HOUR_MS: u64 = 60 * MINUTE_MS;
const DAY_MS: u64 = 24 * HOUR_MS;

/// One parsed limit: at most `amount` per `window_ms`. Kept to two words:
/// requests are copied on the hot path ([`limit_text`] finds the text of a
/// limit for an error message).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Limit {
    pub amount: u64,
    pub window_ms: u64,
}

const NO_LIMIT: Limit = Limit {
    amount: 0,
    window_ms: 0,
};

/// Why a limit argument was rejected; `text` is the offending limit as written.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LimitError {
    pub text: String,
    pub reason: String,
}

impl fmt::Display for LimitError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "ERR invalid limit '{}': {}", self.text, self.reason)
    }
}

/// The limits of one argument, in the order written; fixed capacity so the
/// hot path never allocates.
#[derive(Clone, Copy, Debug)]
pub struct Limits {
    items: [Limit; MAX_LIMITS],
    len: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            items: [NO_LIMIT; MAX_LIMITS],
            len: 0,
        }
    }
}

impl Limits {
    /// The limits in the order written.
    pub fn iter(&self) -> impl ExactSizeIterator<Item = &Limit> + Clone {
        self.items[..self.len].iter()
    }

    /// Number of limits.
    pub fn len(&self) -> usize {
        self.len
    }

    /// Never true for a parsed argument; present for clippy's len convention.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// The i-th limit in written order.
    pub fn get(&self, i: usize) -> &Limit {
        &self.items[..self.len][i]
    }
}

/// How much of a client's text an error reply quotes.
const QUOTE_MAX: usize = 128;

/// The text to quote in an error: lossy UTF-8, cut to [`QUOTE_MAX`] bytes so
/// a huge argument does not come back as a huge error.
pub fn quote(bytes: &[u8]) -> String {
    if bytes.len() <= QUOTE_MAX {
        return String::from_utf8_lossy(bytes).into_owned();
    }
    let mut s = String::from_utf8_lossy(&bytes[..QUOTE_MAX]).into_owned();
    s.push_str("...");
    s
}

fn err(text: &[u8], reason: impl Into<String>) -> LimitError {
    LimitError {
        text: quote(text),
        reason: reason.into(),
    }
}

fn is_sep(b: u8) -> bool {
    matches!(b, b';' | b',' | b'|')
}

/// Parses a whole `limits` argument (one or more limits separated by `;`,
/// `,` or `|`). Two limits with the same window are rejected: they would
/// share one state.
pub fn parse_limits(arg: &[u8]) -> Result<Limits, LimitError> {
    let mut out = Limits::default();
    let mut start = 0;
    loop {
        let end = arg[start..]
            .iter()
            .position(|&b| is_sep(b))
            .map_or(arg.len(), |p| start + p);
        let text = &arg[start..end];
        if out.len == MAX_LIMITS {
            return Err(err(arg, format!("more than {MAX_LIMITS} limits")));
        }
        let (amount, window_ms) = parse_one(text)?;
        if out.iter().any(|l: &Limit| l.window_ms == window_ms) {
            return Err(err(text, "duplicate window in one argument"));
        }
        out.items[out.len] = Limit { amount, window_ms };
        out.len += 1;
        if end == arg.len() {
            return Ok(out);
        }
        start = end + 1;
    }
}

/// The text of the `i`-th limit of an argument `parse_limits` accepted, as
/// written (for error messages).
pub fn limit_text(arg: &[u8], i: usize) -> &[u8] {
    arg.split(|&b| is_sep(b)).nth(i).unwrap_or_default()
}

/// A tiny cursor over one limit's bytes.
struct Cursor<'a> {
    s: &'a [u8],
    i: usize,
}

/// The length in bytes of the whitespace character `s` starts with, 0 if
/// none. Whitespace is what Python's `\s` matches in a `str` pattern (the
/// `limits` library's grammar): ASCII space, `\t\n\v\f\r`, the separators
/// `\x1c`-`\x1f`, and Unicode's spaces (NEL, NBSP, U+1680, U+2000-U+200A,
/// U+2028, U+2029, U+202F, U+205F, U+3000) in UTF-8.
fn space_len(s: &[u8]) -> usize {
    match s {
        [b' ' | b'\t'..=b'\r' | 0x1c..=0x1f, ..] => 1,
        [0xc2, 0x85 | 0xa0, ..] => 2,
        [0xe1, 0x9a, 0x80, ..]
        | [0xe2, 0x80, 0x80..=0x8a | 0xa8 | 0xa9 | 0xaf, ..]
        | [0xe2, 0x81, 0x9f, ..]
        | [0xe3, 0x80, 0x80, ..] => 3,
        _ => 0,
    }
}

impl Cursor<'_> {
    fn skip_spaces(&mut self) {
        loop {
            let n = space_len(&self.s[self.i..]);
            if n == 0 {
                return;
            }
            self.i += n;
        }
    }
    fn digits(&mut self) -> &[u8] {
        let from = self.i;
        while self.i < self.s.len() && self.s[self.i].is_ascii_digit() {
            self.i += 1;
        }
        &self.s[from..self.i]
    }
    fn letters(&mut self) -> &[u8] {
        let from = self.i;
        while self.i < self.s.len() && self.s[self.i].is_ascii_alphabetic() {
            self.i += 1;
        }
        &self.s[from..self.i]
    }
    fn done(&self) -> bool {
        self.i == self.s.len()
    }
}

/// Parses a decimal number with no sign, capped so huge inputs cannot overflow.
fn number(digits: &[u8]) -> Option<u64> {
    let mut v: u64 = 0;
    for &d in digits {
        v = v.checked_mul(10)?.checked_add(u64::from(d - b'0'))?;
    }
    Some(v)
}

/// The length of a unit in ms, or None when the word is not a unit.
pub fn unit_ms(word: &[u8]) -> Option<u64> {
    // Lower-case into a stack buffer: the longest unit is 12 letters.
    let mut lower = [0u8; 16];
    if word.len() > lower.len() {
        return None;
    }
    for (d, s) in lower.iter_mut().zip(word) {
        *d = s.to_ascii_lowercase();
    }
    let w = &lower[..word.len()];
    // Words and the abbreviations msec/sec/min/hr/yr also take a plural `s`.
    let base: &[u8] = match w.strip_suffix(b"s") {
        Some(stem)
            if matches!(
                stem,
                b"msec"
                    | b"millisecond"
                    | b"sec"
                    | b"second"
                    | b"min"
                    | b"minute"
                    | b"hr"
                    | b"hour"
                    | b"day"
                    | b"week"
                    | b"month"
                    | b"yr"
                    | b"year"
            ) =>
        {
            stem
        }
        _ => w,
    };
    Some(match base {
        b"ms" | b"msec" | b"millisecond" => 1,
        b"s" | b"sec" | b"second" => SECOND_MS,
        b"m" | b"min" | b"minute" => MINUTE_MS,
        b"h" | b"hr" | b"hour" => HOUR_MS,
        b"d" | b"day" => DAY_MS,
        b"w" | b"week" => 7 * DAY_MS,
        b"mo" | b"month" => 30 * DAY_MS,
        b"y" | b"yr" | b"year" => 365 * DAY_MS,
        _ => return None,
    })
}

/// Parses one limit such as `10/s`, `5 per 2 minutes` or `20/500ms`.
fn parse_one(text: &[u8]) -> Result<(u64, u64), LimitError> {
    let mut c = Cursor { s: text, i: 0 };
    c.skip_spaces();
    if c.done() {
        return Err(err(text, "empty limit"));
    }
    let amount_digits = c.digits();
    if amount_digits.is_empty() {
        return Err(err(text, "expected an amount"));
    }
    let amount = number(amount_digits)
        .filter(|a| (1..=MAX_AMOUNT).contains(a))
        .ok_or_else(|| err(text, format!("amount must be from 1 to {MAX_AMOUNT}")))?;
    c.skip_spaces();
    if c.s[c.i..].starts_with(b"/") {
        c.i += 1;
    } else if c.s.len() >= c.i + 3 && c.s[c.i..c.i + 3].eq_ignore_ascii_case(b"per") {
        // Spaces around `per` are allowed, not required: `10persecond`.
        c.i += 3;
    } else {
        return Err(err(text, "expected '/' or 'per' after the amount"));
    }
    let window = window_at(&mut c, "window").map_err(|reason| err(text, reason))?;
    Ok((amount, window))
}

/// The `[multiple] unit` at the cursor, to the end of the text, in ms (at
/// most 10 years); on error, the reason (`what` names the duration).
fn window_at(c: &mut Cursor, what: &str) -> Result<u64, String> {
    c.skip_spaces();
    let multiple_digits = c.digits();
    let multiple = if multiple_digits.is_empty() {
        1
    } else {
        number(multiple_digits)
            .filter(|&m| m >= 1)
            .ok_or("the multiple must be a whole number from 1")?
    };
    c.skip_spaces();
    let unit = c.letters();
    if unit.is_empty() {
        return Err("expected a unit".into());
    }
    let unit_len = unit_ms(unit).ok_or_else(|| format!("unknown unit '{}'", quote(unit)))?;
    c.skip_spaces();
    if !c.done() {
        return Err(format!("unexpected '{}'", quote(&c.s[c.i..])));
    }
    multiple
        .checked_mul(unit_len)
        .filter(|&w| w <= MAX_WINDOW_MS)
        .ok_or_else(|| format!("the {what} is longer than 10 years"))
}

/// Parses a duration written like a window, `[multiple] unit` (`500ms`,
/// `15m`, `hour`, `2 days`): 1 ms to 10 years. A bare number has no unit
/// and is an error. On error, the reason.
pub fn parse_duration(text: &[u8]) -> Result<u64, String> {
    let mut c = Cursor { s: text, i: 0 };
    c.skip_spaces();
    if c.done() {
        return Err("empty duration".into());
    }
    window_at(&mut c, "duration")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn one(s: &str) -> (u64, u64) {
        let l = parse_limits(s.as_bytes()).unwrap();
        assert_eq!(l.len(), 1, "{s}");
        (l.get(0).amount, l.get(0).window_ms)
    }

    fn bad(s: &str) -> String {
        parse_limits(s.as_bytes()).unwrap_err().to_string()
    }

    #[test]
    fn limits_library_and_asok_forms() {
        assert_eq!(one("10 per second"), (10, 1000));
        assert_eq!(one("5/2 minutes"), (5, 120_000));
        assert_eq!(one("10/s"), (10, 1000));
        assert_eq!(one("60/m"), (60, 60_000));
        assert_eq!(one("1000/h"), (1000, 3_600_000));
        assert_eq!(one("5000/d"), (5000, 86_400_000));
        assert_eq!(one("3/day"), (3, 86_400_000));
        assert_eq!(one("20/500ms"), (20, 500));
        assert_eq!(one("100/15m"), (100, 900_000));
        assert_eq!(one(" 7 PER 3 Secs "), (7, 3000));
        assert_eq!(one("1/2hrs"), (1, 7_200_000));
        assert_eq!(one("1 per 1 mo"), (1, 30 * 86_400_000));
        assert_eq!(one("1/y"), (1, 365 * 86_400_000));
        assert_eq!(one("1/10 years"), (1, MAX_WINDOW_MS));
        assert_eq!(one("4294967295/msec"), (4_294_967_295, 1));
        assert_eq!(one("2/w"), (2, 7 * 86_400_000));
    }

    #[test]
    fn spaces_around_per_are_optional_and_any_python_whitespace_counts() {
        assert_eq!(one("10persecond"), (10, 1000));
        assert_eq!(one("10 persecond"), (10, 1000));
        assert_eq!(one("10per 2 seconds"), (10, 2000));
        assert_eq!(one("10PER2MINUTES"), (10, 120_000));
        assert_eq!(one("10 perm"), (10, 60_000));
        assert_eq!(one("\t10\n/\x0b2\x0cseconds\r"), (10, 2000));
        assert_eq!(one("\x1c10\x1f/ s"), (10, 1000));
        // NBSP, EM SPACE, IDEOGRAPHIC SPACE, NEL, LINE SEPARATOR.
        assert_eq!(
            one("\u{a0}10\u{2003}per\u{3000}second\u{85}\u{2028}"),
            (10, 1000)
        );
        assert!(bad("\u{a0}").contains("empty"));
        // Not whitespace: ZERO WIDTH SPACE, a lone 0xc2.
        assert!(bad("10\u{200b}/s").contains("'/' or 'per'"));
        assert!(parse_limits(b"10\xc2/s").is_err());
        assert!(parse_limits(b"10 \xe2\x80/s").is_err());
    }

    #[test]
    fn several_limits_keep_their_order() {
        let l = parse_limits(b"1000/day;10/second,5|per|1/ms").err();
        assert!(l.is_some());
        let l = parse_limits(b"1000/day;10/second,5/m|1/ms").unwrap();
        let got: Vec<_> = l.iter().map(|l| (l.amount, l.window_ms)).collect();
        assert_eq!(
            got,
            vec![(1000, 86_400_000), (10, 1000), (5, 60_000), (1, 1)]
        );
        assert_eq!(l.get(1).window_ms, 1000);
        let arg = b"1000/day;10/second,5/m|1/ms";
        assert_eq!(limit_text(arg, 1), b"10/second");
        assert_eq!(limit_text(arg, 3), b"1/ms");
    }

    #[test]
    fn errors_name_the_bad_text() {
        assert_eq!(
            bad("10/fortnight"),
            "ERR invalid limit '10/fortnight': unknown unit 'fortnight'"
        );
        assert!(bad("0/s").contains("amount must be"));
        assert!(bad("4294967296/s").contains("amount must be"));
        assert!(bad("99999999999999999999999/s").contains("amount must be"));
        assert!(bad("10/0 seconds").contains("multiple"));
        assert!(bad("1/11y").contains("10 years"));
        assert!(
            bad("1/99999999999999999999y").contains("10 years")
                || bad("1/99999999999999999999y").contains("multiple")
        );
        assert!(bad("10/s;20/1000ms").starts_with("ERR invalid limit '20/1000ms': duplicate"));
        assert!(bad("10/s;").contains("empty"));
        assert!(bad("").contains("empty"));
        assert!(bad("s/10").contains("amount"));
        assert!(bad("10 s").contains("'/' or 'per'"));
        assert!(bad("10/").contains("unit"));
        assert!(bad("10/s x").contains("unexpected"));
        assert!(bad("10/secss").contains("unknown unit"));
        assert!(bad("10/mss").contains("unknown unit"));
        assert!(bad("10 pr second").contains("'/' or 'per'"));
        assert!(bad("10 perx").contains("unknown unit 'x'"));
        assert!(bad("-1/s").contains("amount"));
        let many = vec!["1/ms"; 17]
            .iter()
            .enumerate()
            .map(|(i, _)| format!("1/{}ms", i + 1))
            .collect::<Vec<_>>()
            .join(";");
        assert!(bad(&many).contains("more than 16"));
    }

    #[test]
    fn long_text_is_quoted_cut_short() {
        let long = format!("10/{}", "x".repeat(1_000_000));
        let e = parse_limits(long.as_bytes()).unwrap_err().to_string();
        assert!(e.len() < 400, "{}", e.len());
        assert!(e.starts_with("ERR invalid limit '10/xxx"));
        assert!(e.contains("...': unknown unit 'xxx"));
    }

    #[test]
    fn non_utf8_is_quoted_lossily() {
        let e = parse_limits(b"10/\xff\xfe").unwrap_err();
        assert!(e.to_string().starts_with("ERR invalid limit '10/"));
    }
}

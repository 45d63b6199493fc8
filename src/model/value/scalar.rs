//! Numbers, identifiers and other small structured values, normalised as MISP's
//! `AttributeValidationTool` does.
//!
//! Each function takes a trimmed value and returns the normalised value or the reason it was
//! refused.

/// The HTTP methods MISP recognises in an `http-method` value.
const HTTP_METHODS: &[&str] = &[
    "OPTIONS",
    "GET",
    "HEAD",
    "POST",
    "PUT",
    "DELETE",
    "TRACE",
    "CONNECT",
    "PROPFIND",
    "PROPPATCH",
    "MKCOL",
    "COPY",
    "MOVE",
    "LOCK",
    "UNLOCK",
    "VERSION-CONTROL",
    "REPORT",
    "CHECKOUT",
    "CHECKIN",
    "UNCHECKOUT",
    "MKWORKSPACE",
    "UPDATE",
    "LABEL",
    "MERGE",
    "BASELINE-CONTROL",
    "MKACTIVITY",
    "ORDERPATCH",
    "ACL",
    "PATCH",
    "SEARCH",
];

/// Whether `s` is one or more ASCII digits.
pub(super) fn is_digits(s: &str) -> bool {
    !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit())
}

/// `digits` without leading zeros ("0" stays "0").
fn strip_zeros(digits: &str) -> String {
    let stripped = digits.trim_start_matches('0');
    if stripped.is_empty() {
        "0".to_string()
    } else {
        stripped.to_string()
    }
}

/// A whole number ≥ 0 (`counter`, `size-in-bytes`), without leading zeros.
pub(super) fn unsigned(value: &str) -> Result<String, String> {
    if !is_digits(value) {
        return Err("expected a whole number greater than or equal to 0".to_string());
    }
    Ok(strip_zeros(value))
}

/// An integer, optionally negative (`integer`), without leading zeros.
pub(super) fn integer(value: &str) -> Result<String, String> {
    let (sign, digits) = match value.strip_prefix('-') {
        Some(digits) => ("-", digits),
        None => ("", value),
    };
    if !is_digits(digits) {
        return Err("expected an integer".to_string());
    }
    let digits = strip_zeros(digits);
    Ok(if digits == "0" {
        digits
    } else {
        format!("{sign}{digits}")
    })
}

/// A decimal number as PHP's `is_numeric` accepts it (sign, digits, fraction, exponent), kept
/// as written.
pub(super) fn numeric(value: &str) -> Result<String, String> {
    let plain = value
        .bytes()
        .all(|b| b.is_ascii_digit() || matches!(b, b'+' | b'-' | b'.' | b'e' | b'E'));
    let has_digit = value.bytes().any(|b| b.is_ascii_digit());
    if !plain || !has_digit || !value.parse::<f64>().is_ok_and(f64::is_finite) {
        return Err("expected a number".to_string());
    }
    Ok(value.to_string())
}

/// An autonomous system number, stored as MISP stores it: the bare decimal number. `AS123` and
/// `as123` become `123`; asdot notation `1.10` becomes `65546`. At most 4294967295.
pub(super) fn asn(value: &str) -> Result<String, String> {
    let reason = || "expected an AS number between 0 and 4294967295".to_string();
    let number = match value.get(..2) {
        Some(prefix) if prefix.eq_ignore_ascii_case("as") => &value[2..],
        _ => value,
    };
    let parsed: u64 = match number.split_once('.') {
        Some((high, low)) if is_digits(high) && is_digits(low) => {
            let high: u64 = high.parse().map_err(|_| reason())?;
            let low: u64 = low.parse().map_err(|_| reason())?;
            if high > 0xffff || low > 0xffff {
                return Err(reason());
            }
            high * 65536 + low
        }
        _ if is_digits(number) => number.parse().map_err(|_| reason())?,
        _ => return Err(reason()),
    };
    if parsed > u64::from(u32::MAX) {
        return Err(reason());
    }
    Ok(parsed.to_string())
}

/// A boolean attribute, stored as MISP stores it: "1" or "0" (from 1/0/true/false, any case).
pub(super) fn boolean(value: &str) -> Result<String, String> {
    match value.to_ascii_lowercase().as_str() {
        "1" | "true" => Ok("1".to_string()),
        "0" | "false" => Ok("0".to_string()),
        _ => Err("expected true, false, 1 or 0".to_string()),
    }
}

/// A CVE id `CVE-YYYY-NNNN…`, upper-cased (an en dash counts as a hyphen, as in MISP).
pub(super) fn vulnerability(value: &str) -> Result<String, String> {
    let upper = value.replace('–', "-").to_uppercase();
    let valid = upper.strip_prefix("CVE-").is_some_and(|rest| {
        rest.split_once('-').is_some_and(|(year, number)| {
            year.len() == 4 && is_digits(year) && number.len() >= 4 && is_digits(number)
        })
    });
    if !valid {
        return Err("expected CVE-YYYY-NNNN".to_string());
    }
    Ok(upper)
}

/// A CWE id `CWE-N…`, upper-cased.
pub(super) fn weakness(value: &str) -> Result<String, String> {
    let upper = value.replace('–', "-").to_uppercase();
    if !upper.strip_prefix("CWE-").is_some_and(is_digits) {
        return Err("expected CWE-N".to_string());
    }
    Ok(upper)
}

/// An HTTP method, upper-cased; must name one of the methods MISP knows.
pub(super) fn http_method(value: &str) -> Result<String, String> {
    let upper = value.to_uppercase();
    if !HTTP_METHODS.iter().any(|method| upper.contains(method)) {
        return Err("unknown HTTP method".to_string());
    }
    Ok(upper)
}

/// Hex data, upper-cased as MISP does.
pub(super) fn hex(value: &str) -> Result<String, String> {
    if !value.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err("expected hexadecimal characters".to_string());
    }
    Ok(value.to_ascii_uppercase())
}

/// A card or BIN number: everything but digits is dropped, as MISP does.
pub(super) fn card_number(value: &str) -> Result<String, String> {
    let digits: String = value.chars().filter(char::is_ascii_digit).collect();
    if digits.is_empty() {
        return Err("expected digits".to_string());
    }
    Ok(digits)
}

/// An IBAN or BIC: upper-cased, everything but letters and digits dropped.
pub(super) fn bank_code(value: &str) -> Result<String, String> {
    let code: String = value
        .chars()
        .filter(char::is_ascii_alphanumeric)
        .collect::<String>()
        .to_ascii_uppercase();
    if code.is_empty() {
        return Err("expected letters and digits".to_string());
    }
    Ok(code)
}

/// A phone number: a leading `00` becomes `+`, `(0)` is dropped, then everything but `+` and
/// digits; the result must be digits with an optional leading `+`.
pub(super) fn phone(value: &str) -> Result<String, String> {
    let value = match value.strip_prefix("00") {
        Some(rest) => format!("+{rest}"),
        None => value.to_string(),
    };
    let kept: String = value
        .replace("(0)", "")
        .chars()
        .filter(|c| c.is_ascii_digit() || *c == '+')
        .collect();
    if !is_digits(kept.strip_prefix('+').unwrap_or(&kept)) {
        return Err("expected a phone number".to_string());
    }
    Ok(kept)
}

/// A cryptocurrency address of letters and digits only (`dash`, `xmr`), kept as written.
pub(super) fn alphanumeric(value: &str) -> Result<String, String> {
    if !value.bytes().all(|b| b.is_ascii_alphanumeric()) {
        return Err("expected letters and digits only".to_string());
    }
    Ok(value.to_string())
}

/// A Bitcoin address: base58 (25–35 characters starting with 1, 2, 3, m or n; case kept) or
/// bech32 (`bc1…`, `tb1…`, `bcrt1…` in one case; lower-cased).
pub(super) fn btc(value: &str) -> Result<String, String> {
    const BASE58: &str = "123456789ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz";
    const BECH32: &str = "qpzry9x8gf2tvdw0s3jn54khce6mua7l";
    let lower = value.to_ascii_lowercase();
    let one_case = value == lower || value == value.to_ascii_uppercase();
    for hrp in ["bc1", "tb1", "bcrt1"] {
        if let Some(data) = lower.strip_prefix(hrp) {
            if one_case
                && (14..=90).contains(&value.len())
                && data.chars().all(|c| BECH32.contains(c))
            {
                return Ok(lower);
            }
            return Err("not a valid bech32 Bitcoin address".to_string());
        }
    }
    let base58 = (25..=35).contains(&value.len())
        && value.starts_with(['1', '2', '3', 'm', 'n'])
        && value.chars().all(|c| BASE58.contains(c));
    if !base58 {
        return Err("not a base58 or bech32 Bitcoin address".to_string());
    }
    Ok(value.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers() {
        assert_eq!(unsigned("0042"), Ok("42".to_string()));
        assert_eq!(unsigned("0"), Ok("0".to_string()));
        assert!(unsigned("-1").is_err());
        assert!(unsigned("1.5").is_err());
        assert_eq!(integer("-007"), Ok("-7".to_string()));
        assert_eq!(integer("-0"), Ok("0".to_string()));
        assert!(integer("1e3").is_err());
        assert_eq!(numeric("2.54792"), Ok("2.54792".to_string()));
        assert_eq!(numeric("-1e3"), Ok("-1e3".to_string()));
        assert!(numeric("one").is_err());
        assert!(numeric("inf").is_err());
        assert!(numeric(".").is_err());
    }

    #[test]
    fn as_numbers_are_bare_like_misp() {
        assert_eq!(asn("AS123"), Ok("123".to_string()));
        assert_eq!(asn("as0123"), Ok("123".to_string()));
        assert_eq!(asn("1.10"), Ok("65546".to_string()));
        assert_eq!(asn("4294967295"), Ok("4294967295".to_string()));
        for bad in ["4294967296", "AS", "ASN123", "12a", "1.70000"] {
            assert!(asn(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn identifiers() {
        assert_eq!(
            vulnerability("cve-2015-1770"),
            Ok("CVE-2015-1770".to_string())
        );
        assert_eq!(
            vulnerability("CVE–2021–44228"),
            Ok("CVE-2021-44228".to_string())
        );
        assert!(vulnerability("CVE-15-1770").is_err());
        assert!(vulnerability("GHSA-xxxx").is_err());
        assert_eq!(weakness("cwe-79"), Ok("CWE-79".to_string()));
        assert!(weakness("CWE-").is_err());
        assert_eq!(http_method("post"), Ok("POST".to_string()));
        assert!(http_method("FETCH").is_err());
        assert_eq!(hex("deadBEEF"), Ok("DEADBEEF".to_string()));
        assert!(hex("xyz").is_err());
        assert_eq!(boolean("True"), Ok("1".to_string()));
        assert_eq!(boolean("0"), Ok("0".to_string()));
        assert!(boolean("yes").is_err());
    }

    #[test]
    fn financial() {
        assert_eq!(
            card_number("4111 1111-1111 1111"),
            Ok("4111111111111111".to_string())
        );
        assert_eq!(
            bank_code("de89 3704 0044 0532 0130 00"),
            Ok("DE89370400440532013000".to_string())
        );
        assert_eq!(
            phone("0041 (0)44 123 45 67"),
            Ok("+41441234567".to_string())
        );
        assert!(phone("12+34").is_err());
        let legacy = "1BvBMSEYstWetqTFn5Au4m4GFg7xJaNVN2";
        assert_eq!(btc(legacy), Ok(legacy.to_string()));
        let bech = "BC1QAR0SRRR7XFKVY5L643LYDNW9RE59GTZZWF5MDQ";
        assert_eq!(btc(bech), Ok(bech.to_ascii_lowercase()));
        assert!(btc("1BvBMSEYstWetqTFn5Au4m4GFg7xJaNVN0").is_err());
        assert!(btc("bc1qAR0srrr7xfkvy5l643lydnw9re59gtzzwf5mdq").is_err());
        assert_eq!(alphanumeric("Xabc1"), Ok("Xabc1".to_string()));
        assert!(alphanumeric("X-1").is_err());
    }
}

//! Checksums and fuzzy hashes, checked the way MISP's `AttributeValidationTool` checks them.
//!
//! Each function takes a trimmed value and returns the normalised value or the reason it was
//! refused. Hex digests are lower-cased (MISP compares them case-sensitively after lower-casing);
//! fuzzy hashes whose alphabet is case-sensitive (ssdeep, impfuzzy) keep their case.

use base64::alphabet;
use base64::engine::{DecodePaddingMode, GeneralPurpose, GeneralPurposeConfig};
use base64::Engine;

/// Standard base64 that accepts input with or without padding, as OpenSSH prints SHA256
/// fingerprints without it.
const BASE64_ANY_PADDING: GeneralPurpose = GeneralPurpose::new(
    &alphabet::STANDARD,
    GeneralPurposeConfig::new().with_decode_padding_mode(DecodePaddingMode::Indifferent),
);

/// The number of hex digits of a fixed-length hex digest type, as MISP's `HASH_HEX_LENGTH`.
pub(super) fn hex_length(type_name: &str) -> Option<usize> {
    Some(match type_name {
        "md5"
        | "imphash"
        | "ja3-fingerprint-md5"
        | "hassh-md5"
        | "hasshserver-md5"
        | "x509-fingerprint-md5"
        | "dom-hash" => 32,
        "sha1" | "git-commit-id" | "pehash" | "x509-fingerprint-sha1" => 40,
        "sha224" | "sha512/224" | "sha3-224" => 56,
        "sha256" | "sha512/256" | "sha3-256" | "authentihash" | "x509-fingerprint-sha256" => 64,
        "jarm-fingerprint" => 62,
        "sha384" | "sha3-384" => 96,
        "sha512" | "sha3-512" => 128,
        _ => return None,
    })
}

/// A hex digest of exactly `digits` hex digits, lower-cased. X.509 fingerprints are often written
/// with colons between the bytes (`AB:CD:…`); `strip_colons` removes them first, as MISP does.
pub(super) fn hex_digest(value: &str, digits: usize, strip_colons: bool) -> Result<String, String> {
    let value = if strip_colons {
        value.replace(':', "")
    } else {
        value.to_string()
    };
    if value.len() != digits || !value.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err(format!("expected {digits} hexadecimal characters"));
    }
    Ok(value.to_ascii_lowercase())
}

/// An Apple code directory hash: 40 or more hex digits, lower-cased.
pub(super) fn cdhash(value: &str) -> Result<String, String> {
    if value.len() < 40 || !value.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err("expected 40 or more hexadecimal characters".to_string());
    }
    Ok(value.to_ascii_lowercase())
}

/// A TLSH digest, lower-cased: more than 35 hex digits, optionally after a `t` (digests of
/// version 4 and later start with `T1`). In practice 70 hex digits, or `T1` and 70.
pub(super) fn tlsh(value: &str) -> Result<String, String> {
    let lower = value.to_ascii_lowercase();
    let digits = lower.strip_prefix('t').unwrap_or(&lower);
    if digits.len() <= 35 || !digits.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err(
            "expected at least 36 hexadecimal characters, optionally starting with 'T1'"
                .to_string(),
        );
    }
    Ok(lower)
}

/// A telfhash (a TLSH over ELF symbols): 70 or 72 letters and digits, lower-cased.
pub(super) fn telfhash(value: &str) -> Result<String, String> {
    if !matches!(value.len(), 70 | 72) || !value.bytes().all(|b| b.is_ascii_alphanumeric()) {
        return Err("expected 70 or 72 hexadecimal characters".to_string());
    }
    Ok(value.to_ascii_lowercase())
}

/// A VirusTotal vhash: any text on one line, lower-cased.
pub(super) fn vhash(value: &str) -> Result<String, String> {
    if value.contains(['\n', '\r']) {
        return Err("must be on one line".to_string());
    }
    Ok(value.to_lowercase())
}

/// An ssdeep fuzzy hash `blocksize:hash:hash`: decimal block size, then two base64-alphabet
/// hashes (case-sensitive, kept as is).
pub(super) fn ssdeep(value: &str) -> Result<String, String> {
    let parts: Vec<&str> = value.split(':').collect();
    let valid = match parts.as_slice() {
        [size, first, second] => {
            !size.is_empty()
                && size.bytes().all(|b| b.is_ascii_digit())
                && [first, second].iter().all(|hash| {
                    hash.bytes()
                        .all(|b| b.is_ascii_alphanumeric() || b == b'/' || b == b'+')
                })
        }
        _ => false,
    };
    if !valid {
        return Err("expected blocksize:hash:hash".to_string());
    }
    Ok(value.to_string())
}

/// An impfuzzy hash `imports:hash:hash` (decimal import count first), kept as is.
pub(super) fn impfuzzy(value: &str) -> Result<String, String> {
    let parts: Vec<&str> = value.split(':').collect();
    match parts.as_slice() {
        [count, _, _] if !count.is_empty() && count.bytes().all(|b| b.is_ascii_digit()) => {
            Ok(value.to_string())
        }
        _ => Err("expected imports:hash:hash".to_string()),
    }
}

/// An SSH key fingerprint: `SHA256:` and the base64 of 32 bytes, or an MD5 fingerprint (32 hex
/// digits, optionally colon-separated, optionally after `MD5:`). Kept as written.
pub(super) fn ssh_fingerprint(value: &str) -> Result<String, String> {
    let valid = if let Some(encoded) = value.strip_prefix("SHA256:") {
        BASE64_ANY_PADDING
            .decode(encoded)
            .is_ok_and(|bytes| bytes.len() == 32)
    } else {
        let hex = value.strip_prefix("MD5:").unwrap_or(value).replace(':', "");
        hex.len() == 32 && hex.bytes().all(|b| b.is_ascii_hexdigit())
    };
    if !valid {
        return Err("expected an MD5 or SHA256 fingerprint".to_string());
    }
    Ok(value.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fixed_length_digests() {
        assert_eq!(hex_length("md5"), Some(32));
        assert_eq!(hex_length("sha512/256"), Some(64));
        assert_eq!(hex_length("sha3-384"), Some(96));
        assert_eq!(hex_length("ssdeep"), None);
        assert_eq!(
            hex_digest("0749BAE92CA336A02C83D126E04EC628", 32, false),
            Ok("0749bae92ca336a02c83d126e04ec628".to_string())
        );
        assert_eq!(
            hex_digest("0749bae92ca336a02c83d126e04ec62", 32, false),
            Err("expected 32 hexadecimal characters".to_string())
        );
        assert!(hex_digest("0749bae92ca336a02c83d126e04ec62g", 32, false).is_err());
        let colons = "AB:CD:EF:01:23:45:67:89:AB:CD:EF:01:23:45:67:89";
        assert_eq!(
            hex_digest(colons, 32, true),
            Ok("abcdef0123456789abcdef0123456789".to_string())
        );
        assert!(hex_digest(colons, 32, false).is_err());
    }

    #[test]
    fn fuzzy_hashes() {
        let tlsh_value = format!("T1{}", "A".repeat(70));
        assert_eq!(tlsh(&tlsh_value), Ok(format!("t1{}", "a".repeat(70))));
        assert_eq!(tlsh(&"b".repeat(70)), Ok("b".repeat(70)));
        assert!(tlsh(&"b".repeat(35)).is_err());
        assert!(tlsh(&"x".repeat(70)).is_err());
        assert_eq!(telfhash(&"A".repeat(70)), Ok("a".repeat(70)));
        assert!(telfhash(&"a".repeat(71)).is_err());
        assert_eq!(cdhash(&"AB".repeat(20)), Ok("ab".repeat(20)));
        assert!(cdhash(&"ab".repeat(19)).is_err());
        let ssdeep_value =
            "48:6DhamfhRd4tvDo4Xbgj/aarU3LT88VMM8UX8i02+KfANbU7gjBRd1trWO8lGO+3L:m+5Do";
        assert_eq!(ssdeep(ssdeep_value), Ok(ssdeep_value.to_string()));
        assert!(ssdeep("abc:def:ghi").is_err());
        assert!(ssdeep("48:abc").is_err());
        assert!(ssdeep("48:a b:c").is_err());
        assert_eq!(impfuzzy("96:Ahq:Bq"), Ok("96:Ahq:Bq".to_string()));
        assert!(impfuzzy("x:Ahq:Bq").is_err());
        assert_eq!(vhash("ABC123"), Ok("abc123".to_string()));
        assert!(vhash("a\nb").is_err());
    }

    #[test]
    fn ssh_fingerprints() {
        let sha = "SHA256:nThbg6kXUpJWGl7E1IGOCspRomTxdCARLviKw6E5SY8";
        assert_eq!(ssh_fingerprint(sha), Ok(sha.to_string()));
        let md5 = "MD5:16:27:ac:a5:76:28:2d:36:63:1b:56:4d:eb:df:a6:48";
        assert_eq!(ssh_fingerprint(md5), Ok(md5.to_string()));
        assert!(ssh_fingerprint("16:27:ac:a5:76:28:2d:36:63:1b:56:4d:eb:df:a6:48").is_ok());
        assert!(ssh_fingerprint("SHA256:abc").is_err());
        assert!(ssh_fingerprint("16:27").is_err());
    }
}

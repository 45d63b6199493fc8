//! Bitcoin addresses with their checksums: base58check (legacy `1…`, `3…`) and
//! bech32/bech32m (segwit `bc1…`).

use sha2::{Digest, Sha256};

/// The base58 alphabet of Bitcoin addresses.
const BASE58: &[u8] = b"123456789ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz";
/// The bech32 alphabet of segwit addresses.
const BECH32: &[u8] = b"qpzry9x8gf2tvdw0s3jn54khce6mua7l";

/// Whether `token` is a Bitcoin address with a valid checksum: legacy base58check (`1…`,
/// `3…`) or segwit bech32/bech32m (`bc1…`).
pub(super) fn is_btc(token: &str) -> bool {
    let segwit = token
        .get(..3)
        .is_some_and(|prefix| prefix.eq_ignore_ascii_case("bc1"));
    if token.len() >= 14 && segwit {
        return is_bech32(token);
    }
    (26..=35).contains(&token.len())
        && (token.starts_with('1') || token.starts_with('3'))
        && base58check_ok(token)
}

fn base58check_ok(token: &str) -> bool {
    // 25 bytes: version, 20-byte hash, 4-byte checksum. Big-endian base conversion.
    let mut bytes = [0u8; 25];
    for c in token.bytes() {
        let Some(digit) = BASE58.iter().position(|&b| b == c) else {
            return false;
        };
        let mut carry = digit as u32;
        for byte in bytes.iter_mut().rev() {
            carry += u32::from(*byte) * 58;
            *byte = (carry & 0xff) as u8;
            carry >>= 8;
        }
        if carry != 0 {
            return false;
        }
    }
    let checksum = Sha256::digest(Sha256::digest(&bytes[..21]));
    checksum[..4] == bytes[21..]
}

fn is_bech32(token: &str) -> bool {
    if token.len() > 90 || (token != token.to_lowercase() && token != token.to_uppercase()) {
        return false;
    }
    let lower = token.to_ascii_lowercase();
    let Some((hrp, data)) = lower.rsplit_once('1') else {
        return false;
    };
    if hrp != "bc" || data.len() < 6 + 1 {
        return false;
    }
    let mut values = Vec::with_capacity(data.len());
    for c in data.bytes() {
        match BECH32.iter().position(|&b| b == c) {
            Some(value) => values.push(value as u8),
            None => return false,
        }
    }
    let mut expanded: Vec<u8> = hrp.bytes().map(|b| b >> 5).collect();
    expanded.push(0);
    expanded.extend(hrp.bytes().map(|b| b & 31));
    expanded.extend(&values);
    let polymod = expanded.iter().fold(1u32, |chk, &value| {
        let top = chk >> 25;
        let mut chk = ((chk & 0x1ff_ffff) << 5) ^ u32::from(value);
        for (bit, generator) in [
            0x3b6a_57b2,
            0x2650_8e6d,
            0x1ea1_19fa,
            0x3d42_33dd,
            0x2a14_62b3,
        ]
        .iter()
        .enumerate()
        {
            if (top >> bit) & 1 == 1 {
                chk ^= generator;
            }
        }
        chk
    });
    // Witness version 0 uses bech32 (constant 1), later versions bech32m.
    let constant = if values[0] == 0 { 1 } else { 0x2bc8_30a3 };
    polymod == constant
}

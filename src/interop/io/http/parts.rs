//! The pure parts of feed requests: a feed's `headers` setting parsed, the headers of every
//! request, and where a redirect leads.

use hyper::header::{self, HeaderMap, HeaderName, HeaderValue};
use hyper::Uri;

use super::{Validators, HEADERS_BYTES_MAX};

/// Headers a feed may not set: they frame the message or manage the connection, which the
/// client owns; and it decodes gzip only, so `Accept-Encoding` is its own too.
const HEADERS_RESERVED: [&str; 9] = [
    "host",
    "content-length",
    "transfer-encoding",
    "connection",
    "keep-alive",
    "te",
    "trailer",
    "upgrade",
    "accept-encoding",
];

/// The request headers of a feed's `headers` setting, in MISP's form: `Name: value` lines
/// separated by newlines, blank lines ignored. Messages never quote a value (it may be a key).
pub fn parse_headers(text: &str) -> Result<HeaderMap, String> {
    if text.len() > HEADERS_BYTES_MAX {
        return Err(format!("longer than {HEADERS_BYTES_MAX} bytes"));
    }
    let mut headers = HeaderMap::new();
    let lines = text.lines().map(str::trim).enumerate();
    for (number, line) in lines.filter(|(_, line)| !line.is_empty()) {
        let (name, value) = line
            .split_once(':')
            .ok_or_else(|| format!("line {} is not 'Name: value'", number + 1))?;
        let name = HeaderName::from_bytes(name.trim().as_bytes())
            .map_err(|_| format!("line {} does not start with a header name", number + 1))?;
        if HEADERS_RESERVED.contains(&name.as_str()) {
            return Err(format!("{name} is the client's own header"));
        }
        let value = HeaderValue::from_str(value.trim())
            .map_err(|_| format!("the value of {name} holds characters a header cannot"))?;
        headers.append(name, value);
    }
    Ok(headers)
}

/// The headers of every request: the client's own and the validators as conditions.
pub(super) fn request_headers(validators: Option<&Validators>) -> HeaderMap {
    let mut headers = HeaderMap::new();
    let user_agent = concat!("threatlog/", env!("CARGO_PKG_VERSION"));
    headers.insert(header::USER_AGENT, HeaderValue::from_static(user_agent));
    headers.insert(header::ACCEPT, HeaderValue::from_static("application/json"));
    headers.insert(header::ACCEPT_ENCODING, HeaderValue::from_static("gzip"));
    let conditions = validators.into_iter().flat_map(|validators| {
        [
            (header::IF_NONE_MATCH, &validators.etag),
            (header::IF_MODIFIED_SINCE, &validators.last_modified),
        ]
    });
    for (name, value) in conditions {
        // A validator that cannot be sent back is left out: the fetch is then unconditional.
        if let Some(value) = value.as_deref().and_then(|v| HeaderValue::from_str(v).ok()) {
            headers.insert(name, value);
        }
    }
    headers
}

/// Whether two URLs share scheme, host and port.
pub(super) fn same_origin(a: &Uri, b: &Uri) -> bool {
    a.scheme() == b.scheme() && a.host() == b.host() && a.port_u16() == b.port_u16()
}

/// The absolute URL a redirect's `location` names, relative to `base`.
pub(super) fn redirect_target(base: &Uri, location: &str) -> Result<Uri, String> {
    let scheme = base.scheme_str().unwrap_or("http");
    let authority = base.authority().map_or("", |authority| authority.as_str());
    let absolute = if location.starts_with("//") {
        format!("{scheme}:{location}")
    } else if location.starts_with('/') {
        format!("{scheme}://{authority}{location}")
    } else if location
        .parse::<Uri>()
        .is_ok_and(|uri| uri.scheme().is_some())
    {
        location.to_string()
    } else {
        let path = base.path();
        let folder = &path[..path.rfind('/').map_or(0, |at| at + 1)];
        format!("{scheme}://{authority}{folder}{location}")
    };
    let target: Uri = absolute
        .parse()
        .map_err(|_| format!("redirect to '{location}', which is not a URL"))?;
    match (target.scheme_str(), target.authority()) {
        (Some("http" | "https"), Some(_)) => Ok(target),
        _ => Err(format!("redirect to '{location}', not an http(s) URL")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn feed_headers_in_misps_form() {
        let headers = parse_headers("Authorization: abc\r\n\n X-Extra :  one two \n").unwrap();
        assert_eq!(headers.len(), 2);
        assert_eq!(headers["authorization"], "abc");
        assert_eq!(headers["x-extra"], "one two");
        assert!(parse_headers("").unwrap().is_empty());
        let refused = |text: &str| parse_headers(text).unwrap_err();
        assert_eq!(refused("Authorization"), "line 1 is not 'Name: value'");
        assert_eq!(
            refused("A: 1\nBad Name: secret"),
            "line 2 does not start with a header name"
        );
        assert_eq!(
            refused("Host: elsewhere"),
            "host is the client's own header"
        );
        assert_eq!(
            refused("Transfer-Encoding: chunked"),
            "transfer-encoding is the client's own header"
        );
        assert_eq!(
            refused("X-Key: sec\u{7f}ret"),
            "the value of x-key holds characters a header cannot"
        );
        let long = format!("X-Long: {}", "a".repeat(HEADERS_BYTES_MAX));
        assert_eq!(refused(&long), "longer than 8192 bytes");
    }

    #[test]
    fn conditions_come_from_the_validators() {
        let validators = Validators {
            etag: Some("\"v1\"".into()),
            last_modified: Some("Tue, 14 Nov 2023 22:13:20 GMT".into()),
        };
        let headers = request_headers(Some(&validators));
        assert_eq!(headers[header::IF_NONE_MATCH], "\"v1\"");
        assert_eq!(
            headers[header::IF_MODIFIED_SINCE],
            "Tue, 14 Nov 2023 22:13:20 GMT"
        );
        assert_eq!(headers[header::ACCEPT_ENCODING], "gzip");
        let headers = request_headers(None);
        assert!(!headers.contains_key(header::IF_NONE_MATCH));
        assert!(!headers.contains_key(header::IF_MODIFIED_SINCE));
    }

    #[test]
    fn redirect_targets_resolve_against_the_request() {
        let base: Uri = "https://feeds.example:8443/misp/manifest.json"
            .parse()
            .unwrap();
        let target = |location| redirect_target(&base, location).map(|uri| uri.to_string());
        assert_eq!(
            target("/moved/manifest.json").unwrap(),
            "https://feeds.example:8443/moved/manifest.json"
        );
        assert_eq!(
            target("v2/manifest.json").unwrap(),
            "https://feeds.example:8443/misp/v2/manifest.json"
        );
        assert_eq!(
            target("//mirror.example/misp/manifest.json").unwrap(),
            "https://mirror.example/misp/manifest.json"
        );
        assert_eq!(
            target("http://plain.example/manifest.json").unwrap(),
            "http://plain.example/manifest.json"
        );
        assert_eq!(
            target("ftp://files.example/manifest.json").unwrap_err(),
            "redirect to 'ftp://files.example/manifest.json', not an http(s) URL"
        );
        assert!(target("/bad path").is_err());
    }

    #[test]
    fn origins_are_scheme_host_and_port() {
        let uri = |text: &str| text.parse::<Uri>().unwrap();
        let feed = uri("https://feeds.example/misp/manifest.json");
        assert!(same_origin(
            &feed,
            &uri("https://feeds.example/other/1.json")
        ));
        assert!(!same_origin(
            &feed,
            &uri("http://feeds.example/misp/1.json")
        ));
        assert!(!same_origin(&feed, &uri("https://feeds.example:8443/misp")));
        assert!(!same_origin(&feed, &uri("https://mirror.example/misp")));
    }
}

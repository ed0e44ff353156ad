//! SigV4 on the AWS endpoint: the `Authorization` header read (credential scope, signed headers,
//! signature), and the signature computed again with the caller's secret by the `aws-sigv4`
//! crate over exactly the headers the client signed, the body and `X-Amz-Date`; then compared in
//! constant time. Also the checks AWS makes first: a date within 15 minutes of the server's
//! clock, a scope dated that day, for service `ecs`. Errors carry AWS's exception names and
//! words.
//! Does not decide what a caller may do (see `auth`).

use std::time::{Duration, SystemTime};

use axum::http::{HeaderMap, Method, Uri};
use subtle::ConstantTimeEq;

use super::auth::Refusal;
use tonic::Code;

/// How far a request's `X-Amz-Date` may be from the server's clock.
pub const DATE_WINDOW: Duration = Duration::from_secs(15 * 60);
const ALGORITHM: &str = "AWS4-HMAC-SHA256";
const SERVICE: &str = "ecs";

/// A SigV4 `Authorization` header, read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Authorization<'a> {
    pub access_key_id: &'a str,
    /// `YYYYMMDD`.
    pub date: &'a str,
    pub region: &'a str,
    pub service: &'a str,
    /// Lowercase header names, as the client listed them.
    pub signed_headers: Vec<&'a str>,
    pub signature: &'a str,
}

fn incomplete(message: impl Into<String>) -> Refusal {
    Refusal {
        code: Code::Unauthenticated,
        exception: "IncompleteSignatureException",
        message: message.into(),
    }
}

fn invalid(message: impl Into<String>) -> Refusal {
    Refusal {
        code: Code::Unauthenticated,
        exception: "InvalidSignatureException",
        message: message.into(),
    }
}

impl<'a> Authorization<'a> {
    /// Reads `AWS4-HMAC-SHA256 Credential=…, SignedHeaders=…, Signature=…`; `None` when the header
    /// is of another scheme.
    pub fn parse(header: &'a str) -> Option<Result<Authorization<'a>, Refusal>> {
        let rest = header.strip_prefix(ALGORITHM)?.strip_prefix(' ')?;
        let mut credential = None;
        let mut signed_headers = None;
        let mut signature = None;
        for part in rest.split(',').map(str::trim) {
            match part.split_once('=') {
                Some(("Credential", value)) => credential = Some(value),
                Some(("SignedHeaders", value)) => signed_headers = Some(value),
                Some(("Signature", value)) => signature = Some(value),
                _ => {}
            }
        }
        let missing: Vec<String> = [
            ("Credential", credential.is_none()),
            ("Signature", signature.is_none()),
            ("SignedHeaders", signed_headers.is_none()),
        ]
        .into_iter()
        .filter(|(_, missing)| *missing)
        .map(|(name, _)| format!("Authorization header requires '{name}' parameter."))
        .collect();
        if !missing.is_empty() {
            return Some(Err(incomplete(missing.join(" "))));
        }
        let (credential, signed_headers, signature) = (credential?, signed_headers?, signature?);
        let scope: Vec<&str> = credential.split('/').collect();
        let [access_key_id, date, region, service, terminator] = scope[..] else {
            return Some(Err(incomplete(format!(
                "Credential should have exactly 5 slash-delimited elements, e.g. keyID/date/region/service/term, got '{}'",
                crate::domain::ids::printable(credential)
            ))));
        };
        if terminator != "aws4_request" {
            return Some(Err(invalid(format!(
                "Credential should be scoped with a valid terminator: 'aws4_request', not '{}'.",
                crate::domain::ids::printable(terminator)
            ))));
        }
        Some(Ok(Authorization {
            access_key_id,
            date,
            region,
            service,
            signed_headers: signed_headers.split(';').collect(),
            signature,
        }))
    }
}

/// `YYYYMMDDTHHMMSSZ` → a time.
fn parse_amz_date(text: &str) -> Option<SystemTime> {
    let b = text.as_bytes();
    if b.len() != 16 || b[8] != b'T' || b[15] != b'Z' {
        return None;
    }
    let digits = |range: std::ops::Range<usize>| text.get(range).filter(|d| d.bytes().all(|c| c.is_ascii_digit()));
    let rfc3339 = format!(
        "{}-{}-{}T{}:{}:{}Z",
        digits(0..4)?,
        digits(4..6)?,
        digits(6..8)?,
        digits(9..11)?,
        digits(11..13)?,
        digits(13..15)?
    );
    let timestamp: prost_types::Timestamp = rfc3339.parse().ok()?;
    SystemTime::try_from(timestamp).ok()
}

/// A time as `YYYYMMDDTHHMMSSZ`.
fn amz_date(time: SystemTime) -> String {
    let whole = time
        .duration_since(SystemTime::UNIX_EPOCH)
        .map(|d| SystemTime::UNIX_EPOCH + Duration::from_secs(d.as_secs()))
        .unwrap_or(SystemTime::UNIX_EPOCH);
    prost_types::Timestamp::from(whole)
        .to_string()
        .chars()
        .filter(|c| c.is_ascii_alphanumeric())
        .collect()
}

/// Checks a signed request against the caller's `secret`: the date window, the scope, then the
/// signature itself.
pub fn verify(
    auth: &Authorization<'_>,
    secret: &str,
    method: &Method,
    uri: &Uri,
    headers: &HeaderMap,
    body: &[u8],
    now: SystemTime,
) -> Result<(), Refusal> {
    let date_text = headers.get("x-amz-date").and_then(|v| v.to_str().ok()).ok_or_else(|| {
        incomplete("Authorization header requires existence of either a 'X-Amz-Date' or a 'Date' header.")
    })?;
    let signed_at = parse_amz_date(date_text).ok_or_else(|| {
        incomplete(format!(
            "Date must be in ISO-8601 'basic format'. Got '{}'.",
            crate::domain::ids::printable(date_text)
        ))
    })?;
    if signed_at + DATE_WINDOW < now {
        return Err(invalid(format!(
            "Signature expired: {date_text} is now earlier than {} ({} - 15 min.)",
            amz_date(now - DATE_WINDOW),
            amz_date(now)
        )));
    }
    if signed_at > now + DATE_WINDOW {
        return Err(invalid(format!(
            "Signature not yet current: {date_text} is still later than {} ({} + 15 min.)",
            amz_date(now + DATE_WINDOW),
            amz_date(now)
        )));
    }
    if auth.date != &date_text[..8] {
        return Err(invalid(format!(
            "Date in Credential scope does not match YYYYMMDD from ISO-8601 version of date from HTTP: '{}' != '{}', from '{date_text}'.",
            crate::domain::ids::printable(auth.date),
            &date_text[..8]
        )));
    }
    if auth.service != SERVICE {
        return Err(invalid(format!(
            "Credential should be scoped to correct service: '{SERVICE}'. "
        )));
    }
    if !auth.signed_headers.contains(&"host") {
        return Err(invalid("'Host' must be a 'SignedHeader' in the AWS Authorization."));
    }
    // The headers the client signed, as it sent them (Host from the URI under HTTP/2), except
    // X-Amz-Date: the signer adds it again from the time.
    let host = headers
        .get("host")
        .and_then(|v| v.to_str().ok())
        .or_else(|| uri.authority().map(|a| a.as_str()))
        .ok_or_else(|| invalid("The request has no Host to check the signature against."))?;
    let mut signed: Vec<(&str, &str)> = vec![("host", host)];
    for &name in &auth.signed_headers {
        if name == "host" || name == "x-amz-date" {
            continue;
        }
        let values: Vec<_> = headers.get_all(name).iter().collect();
        if values.is_empty() {
            return Err(invalid(format!(
                "The request signature we calculated does not match the signature you provided: signed header '{}' is missing.",
                crate::domain::ids::printable(name)
            )));
        }
        for value in values {
            let value = value
                .to_str()
                .map_err(|_| invalid("A signed header's value is not printable ASCII."))?;
            signed.push((name, value));
        }
    }
    let path_and_query = uri.path_and_query().map_or("/", |p| p.as_str());
    let identity = aws_credential_types::Credentials::new(auth.access_key_id, secret, None, None, "auth-file").into();
    let mut settings = aws_sigv4::http_request::SigningSettings::default();
    settings.excluded_headers = Some(Vec::new());
    // The canonical URI exactly as sent: clients sign the path as they encoded it.
    settings.uri_path_normalization_mode = aws_sigv4::http_request::UriPathNormalizationMode::Disabled;
    let params = aws_sigv4::sign::v4::SigningParams::builder()
        .identity(&identity)
        .region(auth.region)
        .name(auth.service)
        .time(signed_at)
        .settings(settings)
        .build()
        .map_err(|e| invalid(format!("The signature cannot be checked: {e}")))?;
    let request = aws_sigv4::http_request::SignableRequest::new(
        method.as_str(),
        path_and_query,
        signed.into_iter(),
        aws_sigv4::http_request::SignableBody::Bytes(body),
    )
    .map_err(|e| invalid(format!("The signature cannot be checked: {e}")))?;
    let expected = aws_sigv4::http_request::sign(request, &params.into())
        .map_err(|e| invalid(format!("The signature cannot be checked: {e}")))?;
    if bool::from(expected.signature().as_bytes().ct_eq(auth.signature.as_bytes())) {
        Ok(())
    } else {
        Err(invalid(
            "The request signature we calculated does not match the signature you provided. Check your AWS Secret Access Key and signing method. Consult the service documentation for details.",
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;

    const SECRET: &str = "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY";

    /// Signs like a client would (aws-sigv4 with its defaults), returning the request's headers.
    fn signed(body: &[u8], time: SystemTime, secret: &str) -> HeaderMap {
        let identity = aws_credential_types::Credentials::new("AKIDEXAMPLE", secret, None, None, "test").into();
        let params = aws_sigv4::sign::v4::SigningParams::builder()
            .identity(&identity)
            .region("us-east-1")
            .name("ecs")
            .time(time)
            .settings(aws_sigv4::http_request::SigningSettings::default())
            .build()
            .unwrap();
        let headers = [
            ("host", "127.0.0.1:4566"),
            ("content-type", "application/x-amz-json-1.1"),
            ("x-amz-target", "AmazonEC2ContainerServiceV20141113.ListClusters"),
            ("user-agent", "test/1.0"),
        ];
        let request = aws_sigv4::http_request::SignableRequest::new(
            "POST",
            "/",
            headers.iter().copied(),
            aws_sigv4::http_request::SignableBody::Bytes(body),
        )
        .unwrap();
        let (instructions, _) = aws_sigv4::http_request::sign(request, &params.into())
            .unwrap()
            .into_parts();
        let mut map = HeaderMap::new();
        for (name, value) in headers {
            map.insert(name, HeaderValue::from_static(value));
        }
        for (name, value) in instructions.headers() {
            let name = axum::http::HeaderName::from_bytes(name.as_bytes()).unwrap();
            map.insert(name, HeaderValue::from_str(value).unwrap());
        }
        map
    }

    fn check(headers: &HeaderMap, body: &[u8], now: SystemTime) -> Result<(), Refusal> {
        let value = headers["authorization"].to_str().unwrap();
        let auth = Authorization::parse(value).unwrap()?;
        verify(&auth, SECRET, &Method::POST, &"/".parse().unwrap(), headers, body, now)
    }

    #[test]
    fn a_signature_is_accepted_only_for_its_secret_body_and_time() {
        let now = SystemTime::now();
        let body = br#"{"maxResults": 5}"#;
        let headers = signed(body, now, SECRET);
        check(&headers, body, now).unwrap();
        check(&headers, body, now + Duration::from_secs(14 * 60)).unwrap();

        let wrong_secret = signed(body, now, "not the secret");
        assert_eq!(
            check(&wrong_secret, body, now).unwrap_err().exception,
            "InvalidSignatureException"
        );
        let tampered = check(&headers, br#"{"maxResults": 6}"#, now).unwrap_err();
        assert!(tampered.message.contains("does not match"), "{}", tampered.message);
        let stale = check(&headers, body, now + Duration::from_secs(16 * 60)).unwrap_err();
        assert!(stale.message.starts_with("Signature expired"), "{}", stale.message);
        let early = check(&headers, body, now - Duration::from_secs(16 * 60)).unwrap_err();
        assert!(
            early.message.starts_with("Signature not yet current"),
            "{}",
            early.message
        );

        let mut changed = headers.clone();
        changed.insert(
            "x-amz-target",
            HeaderValue::from_static("AmazonEC2ContainerServiceV20141113.DeleteCluster"),
        );
        assert!(check(&changed, body, now).is_err(), "a signed header changed");
        let mut unsigned = headers.clone();
        unsigned.insert("user-agent", HeaderValue::from_static("other/2.0"));
        check(&unsigned, body, now).unwrap();
    }

    #[test]
    fn authorization_headers_are_read_or_refused_with_aws_words() {
        let header = "AWS4-HMAC-SHA256 Credential=AKID/20261205/eu-west-3/ecs/aws4_request, \
                      SignedHeaders=content-type;host;x-amz-date, Signature=abcd";
        let auth = Authorization::parse(header).unwrap().unwrap();
        assert_eq!(
            (auth.access_key_id, auth.date, auth.region, auth.service),
            ("AKID", "20261205", "eu-west-3", "ecs")
        );
        assert_eq!(auth.signed_headers, ["content-type", "host", "x-amz-date"]);
        assert!(Authorization::parse("Bearer abc").is_none());
        let missing = Authorization::parse("AWS4-HMAC-SHA256 Credential=AKID/20261205/eu-west-3/ecs/aws4_request")
            .unwrap()
            .unwrap_err();
        assert_eq!(missing.exception, "IncompleteSignatureException");
        assert!(missing.message.contains("'Signature'"), "{}", missing.message);
    }

    #[test]
    fn amz_dates_round_trip() {
        let time = parse_amz_date("20261205T091000Z").unwrap();
        assert_eq!(amz_date(time), "20261205T091000Z");
        assert!(parse_amz_date("2026-12-05T09:10:00Z").is_none());
        assert!(parse_amz_date("20261305T091000Z").is_none());
    }
}

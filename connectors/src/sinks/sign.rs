//! Signatures: the webhook's `X-Jicha-Signature` (hex HMAC-SHA256 of the
//! exact body) and DingTalk's signed-URL mode (URL-encoded base64 of
//! HMAC-SHA256 over `"{timestamp_ms}\n{secret}"` keyed with the secret).
//! HMAC comes from ring, base64 and the URL encoding from their crates.

use ring::hmac;

pub fn hmac_sha256(key: &[u8], message: &[u8]) -> Vec<u8> {
    let k = hmac::Key::new(hmac::HMAC_SHA256, key);
    hmac::sign(&k, message).as_ref().to_vec()
}

/// `sha256=<hex>`, the webhook's signature header value.
pub fn webhook_signature(secret: &str, body: &[u8]) -> String {
    format!(
        "sha256={}",
        hex::encode(hmac_sha256(secret.as_bytes(), body))
    )
}

/// DingTalk's `sign` query value for `timestamp_ms`, URL-encoded.
pub fn dingtalk_sign(secret: &str, timestamp_ms: i64) -> String {
    let mac = hmac_sha256(
        secret.as_bytes(),
        format!("{timestamp_ms}\n{secret}").as_bytes(),
    );
    url_encode(&base64(&mac))
}

/// Standard base64 with padding (RFC 4648 §4).
pub fn base64(data: &[u8]) -> String {
    use base64::Engine as _;
    base64::engine::general_purpose::STANDARD.encode(data)
}

/// Percent-encodes everything but the unreserved characters (RFC 3986).
pub fn url_encode(text: &str) -> String {
    const RESERVED: &percent_encoding::AsciiSet = &percent_encoding::NON_ALPHANUMERIC
        .remove(b'-')
        .remove(b'.')
        .remove(b'_')
        .remove(b'~');
    percent_encoding::utf8_percent_encode(text, RESERVED).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base64_matches_rfc_4648_vectors() {
        let got: Vec<String> = ["", "f", "fo", "foo", "foob", "fooba", "foobar"]
            .iter()
            .map(|s| base64(s.as_bytes()))
            .collect();
        assert_eq!(
            got,
            ["", "Zg==", "Zm8=", "Zm9v", "Zm9vYg==", "Zm9vYmE=", "Zm9vYmFy"]
        );
    }

    #[test]
    fn webhook_signature_matches_an_independent_hmac() {
        // python3 -c "import hmac,hashlib;
        //   print(hmac.new(b'jicha-secret', b'{\"id\":1}', hashlib.sha256).hexdigest())"
        assert_eq!(
            webhook_signature("jicha-secret", br#"{"id":1}"#),
            "sha256=56beba1d853999b871522f935f1246afb4d4a321e8d2907f65be49f985b2d13a"
        );
    }

    #[test]
    fn dingtalk_sign_matches_an_independent_computation() {
        // python3: ts='1700000000000'; sec='SEC0123456789abcdef'
        //   s = base64.b64encode(hmac.new(sec.encode(), (ts+'\n'+sec).encode(),
        //       hashlib.sha256).digest()).decode()
        //   → TSZbRFUuvaSQaRKUpF970OPCb2/LcQAP3wOvwZIzBZk=
        //   urllib.parse.quote_plus(s)
        //   → TSZbRFUuvaSQaRKUpF970OPCb2%2FLcQAP3wOvwZIzBZk%3D
        assert_eq!(
            dingtalk_sign("SEC0123456789abcdef", 1_700_000_000_000),
            "TSZbRFUuvaSQaRKUpF970OPCb2%2FLcQAP3wOvwZIzBZk%3D"
        );
        assert_eq!(url_encode("a+b/c=d 中"), "a%2Bb%2Fc%3Dd%20%E4%B8%AD");
    }
}

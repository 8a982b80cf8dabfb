//! The CSRF token of buyers' forms, bound to the browser: a random token in an `HttpOnly`,
//! `SameSite=Strict` cookie, repeated in a hidden form field. A POST is accepted only when both
//! are present and equal, so a page of another site (which can neither read nor set the cookie,
//! and whose cross-site POSTs do not carry it) cannot submit the form for the buyer.

use axum::http::{header, HeaderMap, HeaderValue};
use subtle::ConstantTimeEq;

/// The name of the hidden form field that carries the token.
pub const FIELD: &str = "csrf";

/// Tokens are 32 hex characters (128 bits).
const TOKEN_LEN: usize = 32;

/// The CSRF cookie of one server. Each server names its own: cookies do not tell ports apart.
#[derive(Debug, Clone, Copy)]
pub struct Csrf {
    cookie: &'static str,
}

/// The token a page's form carries, and the cookie to set when the browser had none.
#[derive(Debug, Clone)]
pub struct Token {
    pub value: String,
    pub set_cookie: Option<HeaderValue>,
}

impl Token {
    /// The `Set-Cookie` header to add to the page, if any.
    pub fn header(&self) -> Option<(header::HeaderName, HeaderValue)> {
        self.set_cookie.clone().map(|v| (header::SET_COOKIE, v))
    }
}

fn well_formed(token: &str) -> bool {
    token.len() == TOKEN_LEN && token.bytes().all(|b| b.is_ascii_hexdigit())
}

impl Csrf {
    pub const fn new(cookie: &'static str) -> Csrf {
        Csrf { cookie }
    }

    /// The browser's token from its cookie.
    fn cookie_token(&self, headers: &HeaderMap) -> Option<String> {
        headers
            .get_all(header::COOKIE)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .flat_map(|v| v.split(';'))
            .filter_map(|pair| pair.trim().split_once('='))
            .find(|(name, value)| *name == self.cookie && well_formed(value))
            .map(|(_, value)| value.to_owned())
    }

    /// The token for a page with a form: the browser's own, or `fresh()` (32 hex characters)
    /// with the cookie that gives it to the browser.
    pub fn token(&self, headers: &HeaderMap, fresh: impl FnOnce() -> String) -> Token {
        if let Some(value) = self.cookie_token(headers) {
            return Token {
                value,
                set_cookie: None,
            };
        }
        let value = fresh();
        let cookie = format!("{}={value}; Path=/; HttpOnly; SameSite=Strict", self.cookie);
        Token {
            set_cookie: HeaderValue::from_str(&cookie).ok(),
            value,
        }
    }

    /// Whether a POST comes from this server's own form in this browser: its cookie and the form
    /// field carry the same token, and the browser does not say the request is cross-site.
    pub fn check(&self, headers: &HeaderMap, field: Option<&str>) -> bool {
        let cross_site = headers
            .get("sec-fetch-site")
            .is_some_and(|v| v.as_bytes() == b"cross-site");
        let (Some(cookie), Some(field)) = (self.cookie_token(headers), field) else {
            return false;
        };
        !cross_site && bool::from(cookie.as_bytes().ct_eq(field.as_bytes()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const C: Csrf = Csrf::new("t");
    const TOKEN: &str = "0123456789abcdef0123456789abcdef";

    fn headers(pairs: &[(&'static str, &str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.append(
                *k,
                HeaderValue::from_str(v).unwrap_or(HeaderValue::from_static("")),
            );
        }
        h
    }

    #[test]
    fn cookie_and_field_must_match() {
        let cookie = format!("other=1; t={TOKEN}");
        assert!(C.check(&headers(&[("cookie", &cookie)]), Some(TOKEN)));
        assert!(!C.check(
            &headers(&[("cookie", &cookie)]),
            Some("0123456789abcdef0123456789abcdee")
        ));
        assert!(!C.check(&headers(&[("cookie", &cookie)]), None));
        assert!(!C.check(&headers(&[]), Some(TOKEN)));
        assert!(!C.check(&headers(&[("cookie", "t=short")]), Some("short")));
        assert!(!C.check(
            &headers(&[("cookie", &cookie), ("sec-fetch-site", "cross-site")]),
            Some(TOKEN)
        ));
    }

    #[test]
    fn a_page_reuses_the_browsers_token() {
        let cookie = format!("t={TOKEN}");
        let t = C.token(&headers(&[("cookie", &cookie)]), || "x".into());
        assert_eq!(t.value, TOKEN);
        assert!(t.set_cookie.is_none());
        let t = C.token(&headers(&[]), || TOKEN.into());
        let set = t.set_cookie.map(|v| v.to_str().unwrap_or("").to_owned());
        assert_eq!(
            set.as_deref(),
            Some("t=0123456789abcdef0123456789abcdef; Path=/; HttpOnly; SameSite=Strict")
        );
    }
}

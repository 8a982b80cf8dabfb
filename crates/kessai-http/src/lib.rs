//! What both of Kessai's servers (the gateway and the emulator) put around their routes: limits on
//! connections and time, so that idle or slow clients cannot starve the others ([`serve`],
//! [`Limits`]); the CSRF token of buyers' forms ([`csrf`]); the security headers of HTML pages
//! ([`page_headers`]); HTTP `CONNECT` tunnelled to the server itself, for the emulator
//! ([`tunnel`]).

pub mod csrf;
mod serve;
pub mod tls;
pub mod tunnel;

pub use serve::{serve, Limits};

use axum::http::{header, HeaderName};

/// The origin (`scheme://host[:port]`) of a URL, if it has one.
pub fn origin_of(url: &str) -> Option<String> {
    let u = url::Url::parse(url).ok()?;
    let origin = u.origin();
    origin.is_tuple().then(|| origin.ascii_serialization())
}

/// A `form-action` source for "any HTTPS origin": for pages whose forms lead, through a redirect,
/// to an address that Amazon Pay chooses per answer (its `amazonPayRedirectUrl`).
pub const ANY_HTTPS: &str = "https:";

/// The headers of every HTML page: a strict Content-Security-Policy whose `form-action` allows
/// this server and `form_targets` (the origins the page's forms may end up at, redirects
/// included), no MIME sniffing, and no `Referer` (buyer URLs carry references).
pub fn page_headers(form_targets: &[Option<String>]) -> [(HeaderName, String); 3] {
    let mut form_action = String::from("'self'");
    let mut seen: Vec<String> = Vec::new();
    let sources = form_targets.iter().flatten().filter_map(|u| {
        if u == ANY_HTTPS {
            Some(ANY_HTTPS.to_owned())
        } else {
            origin_of(u)
        }
    });
    for origin in sources {
        if !seen.contains(&origin) {
            form_action.push(' ');
            form_action.push_str(&origin);
            seen.push(origin);
        }
    }
    [
        (
            header::CONTENT_SECURITY_POLICY,
            format!(
                "default-src 'none'; style-src 'self'; img-src 'self'; form-action {form_action}; frame-ancestors 'none'; base-uri 'none'"
            ),
        ),
        (header::X_CONTENT_TYPE_OPTIONS, "nosniff".to_owned()),
        (header::REFERRER_POLICY, "no-referrer".to_owned()),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn form_action_names_each_origin_once() {
        let [(_, csp), _, _] = page_headers(&[
            Some("http://127.0.0.1:8443/checkout/signin?x=1".into()),
            None,
            Some("https://shop.example/ok".into()),
            Some("https://shop.example/cancel".into()),
            Some("not a url".into()),
        ]);
        assert!(csp.contains("form-action 'self' http://127.0.0.1:8443 https://shop.example;"));
        let [(_, csp), _, _] = page_headers(&[Some(ANY_HTTPS.into()), Some(ANY_HTTPS.into())]);
        assert!(csp.contains("form-action 'self' https:;"), "{csp}");
    }
}

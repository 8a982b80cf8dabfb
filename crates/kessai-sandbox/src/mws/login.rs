//! Login with Amazon as the emulator plays it: the sign-in page behind `amazon.Login.authorize`
//! (a test buyer signs in and the merchant gets an access token, by popup or by redirect), the
//! access tokens themselves, and the profile API a merchant's server calls with them
//! (`/auth/o2/tokeninfo`, `/user/profile`).
//!
//! Tokens are opaque (`Atza|` and random characters from the injected id source), live one hour
//! on the emulator's clock and are kept in memory (bounded): a restarted emulator has forgotten
//! them, and the merchant signs the buyer in again, as after an expiry.

use super::buyer::{self, Csp};
use crate::buyers::{self, TestBuyer, BUYERS};
use crate::engine::agreements::{Seller, SellerId};
use crate::server::AppState;
use axum::extract::{Query, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Form, Json, Router};
use kessai_core::IdSource;
use serde::Deserialize;
use serde_json::json;
use std::collections::HashMap;
use std::sync::Mutex;

/// How long an access token lives (Amazon's `expires_in`).
pub const TOKEN_LIFETIME: i64 = 3600;
/// The most tokens kept; beyond it the one closest to expiry goes first.
const MAX_TOKENS: usize = 10_000;
const TOKEN_ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
/// Who issues tokens, as `tokeninfo` says.
const ISSUER: &str = "https://www.amazon.com";

/// The emulator's CSRF cookie for the sign-in page (its own name: cookies do not tell ports or
/// pages apart).
const CSRF: kessai_http::csrf::Csrf = kessai_http::csrf::Csrf::new("kessai_lwa_csrf");

/// What a token lets its holder see or do.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LwaScope {
    /// Name, e-mail and user id.
    Profile,
    /// The user id alone.
    UserId,
    PostalCode,
    /// The Amazon Pay widgets.
    PaymentsWidget,
    /// The full shipping address in GetBillingAgreementDetails.
    ShippingAddress,
    BillingAddress,
}

impl LwaScope {
    pub fn parse(text: &str) -> Option<LwaScope> {
        Some(match text {
            "profile" => LwaScope::Profile,
            "profile:user_id" => LwaScope::UserId,
            "postal_code" => LwaScope::PostalCode,
            "payments:widget" => LwaScope::PaymentsWidget,
            "payments:shipping_address" => LwaScope::ShippingAddress,
            "payments:billing_address" => LwaScope::BillingAddress,
            _ => return None,
        })
    }

    pub fn as_str(self) -> &'static str {
        match self {
            LwaScope::Profile => "profile",
            LwaScope::UserId => "profile:user_id",
            LwaScope::PostalCode => "postal_code",
            LwaScope::PaymentsWidget => "payments:widget",
            LwaScope::ShippingAddress => "payments:shipping_address",
            LwaScope::BillingAddress => "payments:billing_address",
        }
    }
}

/// Reads a `scope` parameter (space-separated, as `amazon.Login.authorize` sends it).
pub fn parse_scopes(text: &str) -> Result<Vec<LwaScope>, String> {
    let mut out = Vec::new();
    for word in text.split([' ', '+']).filter(|w| !w.is_empty()) {
        let scope = LwaScope::parse(word).ok_or_else(|| format!("Unknown scope {word}."))?;
        if !out.contains(&scope) {
            out.push(scope);
        }
    }
    if out.is_empty() {
        return Err("scope is required (e.g. \"profile payments:widget\").".into());
    }
    Ok(out)
}

fn scope_text(scopes: &[LwaScope]) -> String {
    scopes
        .iter()
        .map(|s| s.as_str())
        .collect::<Vec<_>>()
        .join(" ")
}

/// One access token: whose seller's client it was issued to, for which buyer, what it allows.
#[derive(Debug, Clone)]
pub struct AccessToken {
    seller: SellerId,
    client_id: String,
    buyer_id: String,
    scopes: Vec<LwaScope>,
    issued_at: i64,
    expires_at: i64,
}

impl AccessToken {
    pub fn seller(&self) -> &SellerId {
        &self.seller
    }
    pub fn client_id(&self) -> &str {
        &self.client_id
    }
    pub fn buyer_id(&self) -> &str {
        &self.buyer_id
    }
    pub fn allows(&self, scope: LwaScope) -> bool {
        self.scopes.contains(&scope)
    }
    pub fn expires_at(&self) -> i64 {
        self.expires_at
    }
    /// The buyer's record among the test buyers.
    pub fn buyer(&self) -> Option<&'static TestBuyer> {
        buyers::buyer(&self.buyer_id)
    }
}

/// Why a token is refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum TokenProblem {
    #[error("The access token is missing: send it as Authorization: bearer <token>, x-amz-access-token or access_token.")]
    Missing,
    #[error("The access token is invalid.")]
    Unknown,
    #[error("The access token has expired; sign the buyer in again.")]
    Expired,
}

/// The access tokens issued so far.
#[derive(Default)]
pub struct Tokens {
    map: Mutex<HashMap<String, AccessToken>>,
}

impl Tokens {
    fn map(&self) -> std::sync::MutexGuard<'_, HashMap<String, AccessToken>> {
        self.map.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// A new token for `buyer_id` at `seller`'s client.
    pub fn issue(
        &self,
        ids: &dyn IdSource,
        seller: &Seller,
        buyer_id: &str,
        scopes: Vec<LwaScope>,
        now: i64,
    ) -> (String, AccessToken) {
        let record = AccessToken {
            seller: seller.id().clone(),
            client_id: seller.lwa_client_id().to_owned(),
            buyer_id: buyer_id.to_owned(),
            scopes,
            issued_at: now,
            expires_at: now + TOKEN_LIFETIME,
        };
        let token = format!("Atza|{}", ids.pick(TOKEN_ALPHABET, 96));
        let mut map = self.map();
        map.retain(|_, t| t.expires_at > now);
        while map.len() >= MAX_TOKENS {
            let Some(first) = map
                .iter()
                .min_by_key(|(_, t)| t.expires_at)
                .map(|(k, _)| k.clone())
            else {
                break;
            };
            map.remove(&first);
        }
        map.insert(token.clone(), record.clone());
        (token, record)
    }

    /// The token's record, if it is known and not expired at `now`.
    pub fn find(&self, token: &str, now: i64) -> Result<AccessToken, TokenProblem> {
        let record = self
            .map()
            .get(token)
            .cloned()
            .ok_or(TokenProblem::Unknown)?;
        if record.expires_at <= now {
            return Err(TokenProblem::Expired);
        }
        Ok(record)
    }
}

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/ap/oa", get(signin_page).post(signin_submit))
        .route("/auth/o2/tokeninfo", get(tokeninfo))
        .route("/user/profile", get(profile))
}

// ---- the sign-in page ----

/// The parameters of `/ap/oa`, as `amazon.Login.authorize` sends them. `redirect_uri` for the
/// redirect flow; `origin` (the merchant page's) for the popup flow.
#[derive(Debug, Deserialize, Default)]
pub struct AuthorizeQuery {
    client_id: Option<String>,
    scope: Option<String>,
    response_type: Option<String>,
    redirect_uri: Option<String>,
    origin: Option<String>,
    state: Option<String>,
}

/// Where the token goes once the buyer signed in.
#[derive(Debug, Clone)]
enum Handoff {
    /// The merchant's page: `redirect_uri?access_token=…`.
    Redirect(url::Url),
    /// The window that opened the popup, by `postMessage` to this origin.
    Popup(String),
}

/// A checked authorize request.
struct Authorize {
    seller: Seller,
    scopes: Vec<LwaScope>,
    handoff: Handoff,
    state: String,
}

async fn check(state: &AppState, q: &AuthorizeQuery) -> Result<Authorize, (StatusCode, String)> {
    let bad = |m: String| (StatusCode::BAD_REQUEST, m);
    if q.response_type.as_deref().unwrap_or("token") != "token" {
        return Err(bad(
            "response_type must be token: this emulator issues access tokens directly (no authorization codes).".into(),
        ));
    }
    let client_id = q
        .client_id
        .as_deref()
        .filter(|c| !c.is_empty())
        .ok_or_else(|| bad("client_id is missing: call amazon.Login.setClientId first.".into()))?;
    let seller = state
        .mws
        .agreements
        .store()
        .seller_by_lwa_client_id(client_id)
        .await
        .map_err(|e| (StatusCode::INTERNAL_SERVER_ERROR, e.to_string()))?
        .ok_or_else(|| {
            bad(format!(
                "There is no seller with the Login with Amazon client id {client_id}."
            ))
        })?;
    let scopes = parse_scopes(q.scope.as_deref().unwrap_or_default()).map_err(bad)?;
    let handoff = match (&q.redirect_uri, &q.origin) {
        (Some(uri), _) => Handoff::Redirect(
            url::Url::parse(uri)
                .ok()
                .filter(|u| matches!(u.scheme(), "http" | "https"))
                .ok_or_else(|| bad("redirect_uri must be an http(s) URL.".into()))?,
        ),
        (None, Some(origin)) => Handoff::Popup(
            kessai_http::origin_of(origin)
                .filter(|o| o == origin)
                .ok_or_else(|| bad("origin must be an http(s) origin.".into()))?,
        ),
        (None, None) => {
            return Err(bad(
                "redirect_uri (or origin, for a popup) is missing.".into()
            ))
        }
    };
    Ok(Authorize {
        seller,
        scopes,
        handoff,
        state: q.state.clone().unwrap_or_default(),
    })
}

fn handoff_targets(a: &Authorize) -> Vec<Option<String>> {
    match &a.handoff {
        Handoff::Redirect(u) => vec![Some(u.to_string())],
        Handoff::Popup(_) => Vec::new(),
    }
}

async fn signin_page(
    State(state): State<AppState>,
    headers: HeaderMap,
    Query(q): Query<AuthorizeQuery>,
) -> Response {
    let a = match check(&state, &q).await {
        Ok(a) => a,
        Err((status, message)) => return buyer::error_page(&state, status, &message),
    };
    let buyers: Vec<minijinja::Value> = BUYERS
        .iter()
        .map(|b| minijinja::context! { id => b.id, name => b.name, email => b.email })
        .collect();
    let csrf = CSRF.token(&headers, || state.ids.hex(16));
    let scopes: Vec<&str> = a.scopes.iter().map(|s| s.as_str()).collect();
    buyer::render(
        &state,
        StatusCode::OK,
        "lwa_signin.html",
        minijinja::context! {
            title => "Login with Amazon",
            buyers => buyers,
            scopes => scopes,
            client_id => a.seller.lwa_client_id(),
            scope => scope_text(&a.scopes),
            redirect_uri => q.redirect_uri,
            origin => q.origin,
            state => a.state,
            csrf => csrf.value.clone(),
        },
        Csp::page(&handoff_targets(&a)),
        Some(&csrf),
    )
}

#[derive(Debug, Deserialize)]
pub struct SigninForm {
    client_id: Option<String>,
    scope: Option<String>,
    response_type: Option<String>,
    redirect_uri: Option<String>,
    origin: Option<String>,
    state: Option<String>,
    buyer: Option<String>,
    action: Option<String>,
    csrf: Option<String>,
}

async fn signin_submit(
    State(state): State<AppState>,
    headers: HeaderMap,
    Form(form): Form<SigninForm>,
) -> Response {
    if !CSRF.check(&headers, form.csrf.as_deref()) {
        return buyer::error_page(
            &state,
            StatusCode::FORBIDDEN,
            "This form did not come from this browser's page (CSRF check). Go back, reload the page and try again.",
        );
    }
    let query = AuthorizeQuery {
        client_id: form.client_id,
        scope: form.scope,
        response_type: form.response_type,
        redirect_uri: form.redirect_uri,
        origin: form.origin,
        state: form.state,
    };
    let a = match check(&state, &query).await {
        Ok(a) => a,
        Err((status, message)) => return buyer::error_page(&state, status, &message),
    };
    let mut answer: Vec<(&str, String)> = if form.action.as_deref() == Some("cancel") {
        vec![
            ("error", "access_denied".into()),
            (
                "error_description",
                "The buyer canceled the sign-in.".into(),
            ),
        ]
    } else {
        let default = buyers::default_choice().0;
        let Some(who) = buyers::buyer(form.buyer.as_deref().unwrap_or(default.id)) else {
            return buyer::error_page(&state, StatusCode::BAD_REQUEST, "Unknown test buyer.");
        };
        let now = state.now();
        let (token, _) =
            state
                .mws
                .buyer
                .tokens
                .issue(&*state.ids, &a.seller, who.id, a.scopes.clone(), now);
        vec![
            ("access_token", token),
            ("token_type", "bearer".into()),
            ("expires_in", TOKEN_LIFETIME.to_string()),
            ("scope", scope_text(&a.scopes)),
        ]
    };
    if !a.state.is_empty() {
        answer.push(("state", a.state.clone()));
    }
    match &a.handoff {
        Handoff::Redirect(uri) => {
            let mut to = uri.clone();
            to.query_pairs_mut().extend_pairs(answer.iter());
            (StatusCode::SEE_OTHER, [(header::LOCATION, to.to_string())]).into_response()
        }
        Handoff::Popup(origin) => {
            let fields: Vec<minijinja::Value> = answer
                .iter()
                .map(|(k, v)| minijinja::context! { name => k, value => v })
                .collect();
            buyer::render(
                &state,
                StatusCode::OK,
                "lwa_done.html",
                minijinja::context! { title => "Login with Amazon", origin => origin, fields => fields },
                Csp::page(&[]),
                None,
            )
        }
    }
}

// ---- the profile API ----

/// The token from `Authorization: bearer <t>`, `x-amz-access-token: <t>` or `?access_token=<t>`.
pub fn token_of(headers: &HeaderMap, query: Option<&str>) -> Option<String> {
    let bearer = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split_once(' '))
        .filter(|(scheme, _)| scheme.eq_ignore_ascii_case("bearer"))
        .map(|(_, t)| t.trim().to_owned());
    let header = headers
        .get("x-amz-access-token")
        .and_then(|v| v.to_str().ok())
        .map(|t| t.trim().to_owned());
    let query = query.and_then(|q| {
        url::form_urlencoded::parse(q.as_bytes())
            .find(|(k, _)| k == "access_token")
            .map(|(_, v)| v.into_owned())
    });
    bearer.or(header).or(query).filter(|t| !t.is_empty())
}

fn lwa_error(status: StatusCode, error: &str, description: impl Into<String>) -> Response {
    (
        status,
        Json(json!({"error": error, "error_description": description.into()})),
    )
        .into_response()
}

fn token_error(status: StatusCode, problem: TokenProblem) -> Response {
    let code = match problem {
        TokenProblem::Missing => "invalid_request",
        TokenProblem::Unknown | TokenProblem::Expired => "invalid_token",
    };
    lwa_error(status, code, problem.to_string())
}

fn presented(
    state: &AppState,
    headers: &HeaderMap,
    query: Option<&str>,
) -> Result<AccessToken, TokenProblem> {
    let token = token_of(headers, query).ok_or(TokenProblem::Missing)?;
    state.mws.buyer.tokens.find(&token, state.now())
}

/// `GET /auth/o2/tokeninfo`: whom the token was issued to (`aud`: the client id), for whom.
async fn tokeninfo(
    State(state): State<AppState>,
    headers: HeaderMap,
    uri: axum::http::Uri,
) -> Response {
    let t = match presented(&state, &headers, uri.query()) {
        Ok(t) => t,
        Err(p) => return token_error(StatusCode::BAD_REQUEST, p),
    };
    let app = t
        .client_id
        .rsplit('.')
        .next()
        .unwrap_or(t.client_id.as_str());
    Json(json!({
        "iss": ISSUER,
        "user_id": t.buyer_id,
        "aud": t.client_id,
        "app_id": format!("amzn1.application.{app}"),
        "exp": (t.expires_at - state.now()).max(0),
        "iat": t.issued_at,
    }))
    .into_response()
}

/// `GET /user/profile`: what the token's scopes show of the buyer.
async fn profile(
    State(state): State<AppState>,
    headers: HeaderMap,
    uri: axum::http::Uri,
) -> Response {
    let t = match presented(&state, &headers, uri.query()) {
        Ok(t) => t,
        Err(p) => return token_error(StatusCode::UNAUTHORIZED, p),
    };
    let Some(who) = t.buyer() else {
        return token_error(StatusCode::UNAUTHORIZED, TokenProblem::Unknown);
    };
    let mut out = serde_json::Map::new();
    if t.allows(LwaScope::Profile) || t.allows(LwaScope::UserId) {
        out.insert("user_id".into(), json!(who.id));
    }
    if t.allows(LwaScope::Profile) {
        out.insert("name".into(), json!(who.name));
        out.insert("email".into(), json!(who.email));
    }
    if t.allows(LwaScope::PostalCode) {
        if let Some(a) = who.addresses.first() {
            out.insert("postal_code".into(), json!(a.postal_code));
        }
    }
    if out.is_empty() {
        return lwa_error(
            StatusCode::FORBIDDEN,
            "insufficient_scope",
            "The token's scopes show nothing of the profile; ask for profile, profile:user_id or postal_code.",
        );
    }
    Json(serde_json::Value::Object(out)).into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scopes_are_read_word_by_word() {
        assert_eq!(
            parse_scopes("profile payments:widget  payments:shipping_address"),
            Ok(vec![
                LwaScope::Profile,
                LwaScope::PaymentsWidget,
                LwaScope::ShippingAddress
            ])
        );
        assert_eq!(parse_scopes("profile+profile"), Ok(vec![LwaScope::Profile]));
        assert!(parse_scopes("").is_err());
        assert!(parse_scopes("profile admin").is_err());
    }

    #[test]
    fn tokens_come_from_any_of_the_three_places() {
        let mut h = HeaderMap::new();
        assert_eq!(
            token_of(&h, Some("access_token=Atza%7Cq")),
            Some("Atza|q".into())
        );
        h.insert("x-amz-access-token", "Atza|h".parse().unwrap());
        assert_eq!(token_of(&h, None), Some("Atza|h".into()));
        h.insert(header::AUTHORIZATION, "Bearer Atza|b".parse().unwrap());
        assert_eq!(token_of(&h, None), Some("Atza|b".into()));
        assert_eq!(token_of(&HeaderMap::new(), Some("x=1")), None);
    }
}

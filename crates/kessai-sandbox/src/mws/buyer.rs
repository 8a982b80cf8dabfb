//! What the Auto Pay buyer side shares: its state (access tokens, widget frames), its templates
//! and how its pages are sent. Its pages run small scripts of the emulator's own (`script-src
//! 'self'`) and, for widgets, may be framed by the merchant page that asked for them.

use super::login::Tokens;
use super::widgets::Frames;
use crate::server::AppState;
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};

/// The buyer side's state, held by the MWS face.
pub struct BuyerSide {
    pub tokens: Tokens,
    pub frames: Frames,
    templates: minijinja::Environment<'static>,
}

impl Default for BuyerSide {
    fn default() -> BuyerSide {
        let mut env = minijinja::Environment::new();
        let sources = [
            ("base.html", include_str!("../../templates/base.html")),
            ("error.html", include_str!("../../templates/error.html")),
            (
                "lwa_signin.html",
                include_str!("../../templates/lwa_signin.html"),
            ),
            (
                "lwa_done.html",
                include_str!("../../templates/lwa_done.html"),
            ),
            ("widget.html", include_str!("../../templates/widget.html")),
        ];
        for (name, source) in sources {
            if let Err(e) = env.add_template(name, source) {
                tracing::error!(%e, name, "template does not parse");
            }
        }
        BuyerSide {
            tokens: Tokens::default(),
            frames: Frames::default(),
            templates: env,
        }
    }
}

/// The Content-Security-Policy of one page.
pub struct Csp(String);

impl Csp {
    /// A top-level page: never framed; its forms go here or to `targets`' origins.
    pub fn page(targets: &[Option<String>]) -> Csp {
        let mut form_action = String::from("'self'");
        for origin in targets
            .iter()
            .flatten()
            .filter_map(|u| kessai_http::origin_of(u))
        {
            form_action.push(' ');
            form_action.push_str(&origin);
        }
        Csp::with(&form_action, "'none'")
    }

    /// A widget: framed by the merchant page at `origin` only.
    pub fn widget(origin: &str) -> Csp {
        Csp::with("'self'", origin)
    }

    fn with(form_action: &str, ancestors: &str) -> Csp {
        Csp(format!(
            "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; connect-src 'self'; form-action {form_action}; frame-ancestors {ancestors}; base-uri 'none'"
        ))
    }
}

/// Renders one of the buyer side's pages.
pub fn render(
    state: &AppState,
    status: StatusCode,
    name: &str,
    ctx: minijinja::Value,
    csp: Csp,
    csrf: Option<&kessai_http::csrf::Token>,
) -> Response {
    let html = state
        .mws
        .buyer
        .templates
        .get_template(name)
        .and_then(|t| t.render(ctx));
    let html = match html {
        Ok(html) => html,
        Err(e) => {
            tracing::error!(%e, name, "template failed");
            return (
                StatusCode::INTERNAL_SERVER_ERROR,
                "page could not be rendered",
            )
                .into_response();
        }
    };
    let mut response = (
        status,
        [
            (header::CONTENT_TYPE, "text/html; charset=utf-8".to_owned()),
            (header::CONTENT_SECURITY_POLICY, csp.0),
            (header::X_CONTENT_TYPE_OPTIONS, "nosniff".to_owned()),
            (header::REFERRER_POLICY, "no-referrer".to_owned()),
            (header::CACHE_CONTROL, "no-store".to_owned()),
        ],
        html,
    )
        .into_response();
    if let Some((name, value)) = csrf.and_then(kessai_http::csrf::Token::header) {
        response.headers_mut().insert(name, value);
    }
    response
}

/// The page that says why the buyer cannot go on.
pub fn error_page(state: &AppState, status: StatusCode, message: &str) -> Response {
    render(
        state,
        status,
        "error.html",
        minijinja::context! { title => "Error", message => message },
        Csp::page(&[]),
        None,
    )
}

/// A script of the buyer side.
pub fn script(source: &'static str) -> Response {
    (
        [
            (
                header::CONTENT_TYPE,
                HeaderValue::from_static("application/javascript; charset=utf-8"),
            ),
            (header::CACHE_CONTROL, HeaderValue::from_static("no-cache")),
            (
                header::X_CONTENT_TYPE_OPTIONS,
                HeaderValue::from_static("nosniff"),
            ),
        ],
        source,
    )
        .into_response()
}

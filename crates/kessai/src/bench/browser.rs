//! A buyer's browser, as little of one as the payment pages need: cookies per host (the pages'
//! CSRF cookies), redirects followed by hand, and the first form of a page submitted as its first
//! submit button would.

use anyhow::{anyhow, Context};
use reqwest::Method;
use std::collections::HashMap;

/// Where the buyer is: a page, or the merchant's site (not loaded).
pub struct Page {
    pub url: String,
    pub html: String,
    pub merchant_url: Option<url::Url>,
}

pub struct Browser<'a> {
    http: &'a reqwest::Client,
    merchant_site: &'a str,
    cookies: HashMap<String, Vec<(String, String)>>,
}

impl<'a> Browser<'a> {
    pub fn new(http: &'a reqwest::Client, merchant_site: &'a str) -> Self {
        Browser {
            http,
            merchant_site,
            cookies: HashMap::new(),
        }
    }

    fn cookie_header(&self, url: &url::Url) -> Option<String> {
        let jar = self.cookies.get(url.host_str()?)?;
        let pairs: Vec<String> = jar.iter().map(|(k, v)| format!("{k}={v}")).collect();
        Some(pairs.join("; "))
    }

    fn keep_cookies(&mut self, url: &url::Url, resp: &reqwest::Response) {
        let Some(host) = url.host_str() else { return };
        let jar = self.cookies.entry(host.to_owned()).or_default();
        for value in resp.headers().get_all("set-cookie") {
            let Ok(text) = value.to_str() else { continue };
            let pair = text.split(';').next().unwrap_or("");
            if let Some((name, value)) = pair.split_once('=') {
                let name = name.trim();
                jar.retain(|(n, _)| n != name);
                jar.push((name.to_owned(), value.trim().to_owned()));
            }
        }
    }

    /// Loads `url`, following redirects until a page (HTTP 200) or the merchant's site.
    pub async fn go(
        &mut self,
        method: Method,
        url: url::Url,
        form: Vec<(String, String)>,
    ) -> anyhow::Result<Page> {
        let (mut method, mut url, mut form) = (method, url, Some(form));
        for _ in 0..10 {
            if url.as_str().starts_with(self.merchant_site) {
                return Ok(Page {
                    url: url.to_string(),
                    html: String::new(),
                    merchant_url: Some(url),
                });
            }
            let mut req = self.http.request(method.clone(), url.clone());
            if let Some(f) = &form {
                req = if method == Method::GET {
                    req.query(f)
                } else {
                    req.form(f)
                };
            }
            if let Some(cookie) = self.cookie_header(&url) {
                req = req.header("cookie", cookie);
            }
            let resp = req
                .send()
                .await
                .with_context(|| format!("{method} {url}"))?;
            self.keep_cookies(&url, &resp);
            let status = resp.status();
            if status.is_redirection() {
                let location = resp
                    .headers()
                    .get("location")
                    .and_then(|v| v.to_str().ok())
                    .ok_or_else(|| anyhow!("{url} redirected without a location"))?;
                url = url.join(location)?;
                method = Method::GET;
                form = None;
                continue;
            }
            let html = resp.text().await?;
            if status != reqwest::StatusCode::OK {
                return Err(anyhow!("page {url} answered {status}"));
            }
            return Ok(Page {
                url: url.to_string(),
                html,
                merchant_url: None,
            });
        }
        Err(anyhow!("too many redirects from {url}"))
    }

    /// Submits the first form of `html` (relative to `base`), with `choices` overriding values.
    pub async fn submit(
        &mut self,
        html: &str,
        base: &str,
        choices: &[(&str, &str)],
    ) -> anyhow::Result<Page> {
        let (method, action, fields) = first_form(html, choices)?;
        let url = url::Url::parse(base)?.join(&action)?;
        self.go(method, url, fields).await
    }

    pub async fn submit_page(
        &mut self,
        page: &Page,
        choices: &[(&str, &str)],
    ) -> anyhow::Result<Page> {
        if page.merchant_url.is_some() {
            return Err(anyhow!("already back at the merchant: {}", page.url));
        }
        self.submit(&page.html, &page.url, choices).await
    }
}

/// Form fields as sent: name and value, in document order.
type Fields = Vec<(String, String)>;

/// The first form's method, action and the fields its first submit button would send.
fn first_form(html: &str, choices: &[(&str, &str)]) -> anyhow::Result<(Method, String, Fields)> {
    let doc = scraper::Html::parse_document(html);
    let form_sel = scraper::Selector::parse("form").map_err(|e| anyhow!("{e}"))?;
    let input_sel = scraper::Selector::parse("input, button").map_err(|e| anyhow!("{e}"))?;
    let form = doc
        .select(&form_sel)
        .next()
        .ok_or_else(|| anyhow!("the page has no form"))?;
    let method = match form.value().attr("method") {
        Some(m) if m.eq_ignore_ascii_case("post") => Method::POST,
        _ => Method::GET,
    };
    let action = form.value().attr("action").unwrap_or("").to_owned();
    let mut fields = Vec::new();
    let mut submitted = false;
    for el in form.select(&input_sel) {
        let v = el.value();
        let value = v.attr("value").unwrap_or("").to_owned();
        let default_kind = if v.name() == "button" {
            "submit"
        } else {
            "text"
        };
        let kind = v.attr("type").unwrap_or(default_kind);
        let chosen = v
            .attr("name")
            .and_then(|n| choices.iter().find(|(c, _)| *c == n));
        match (kind, v.attr("name")) {
            ("submit", Some(n)) if !submitted => {
                fields.push((n.to_owned(), value));
                submitted = true;
            }
            ("submit", _) => submitted = true,
            ("radio", Some(n)) => {
                let pick = match chosen {
                    Some((_, want)) => value == *want,
                    None => v.attr("checked").is_some(),
                };
                if pick {
                    fields.push((n.to_owned(), value));
                }
            }
            (_, Some(n)) => {
                let value = chosen.map(|(_, w)| (*w).to_owned()).unwrap_or(value);
                fields.push((n.to_owned(), value));
            }
            _ => {}
        }
    }
    Ok((method, action, fields))
}

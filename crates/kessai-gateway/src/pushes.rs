//! Result pushes (結果通知) to merchants: a record is written to the outbox in the same unit of
//! work as the order change it reports ([`record`]); a worker delivers due records, several in one
//! POST per target, signed with the MDK's `content-hmac` and Kessai's timestamped signature, and
//! retries with capped backoff for 25 hours until the merchant answers 2xx.
//!
//! Live orders never reach loopback, private, link-local, unique-local or metadata addresses (unless
//! the gateway is told to allow them for local development): the target is checked when the push is
//! sent, on the addresses the connection may use (the client's resolver drops forbidden ones), no
//! redirect is followed, and connect time, total time and the answer's size are bounded.

use crate::app::AppState;
use crate::mdk::{self, PushFields};
use kessai_core::push::{push_backoff, PUSH_RETRY_WINDOW_SECS};
use kessai_core::{PushKind, PushStatus, ResultCode, Yen};
use kessai_store::{OrderRecord, PushEnd, PushRecord, Write};
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

/// How pushes are sent.
#[derive(Debug, Clone)]
pub struct PushSettings {
    /// Let live orders push to private and loopback addresses (local development only).
    pub allow_private_targets: bool,
    /// How often the worker looks for due records.
    pub tick: Duration,
    pub connect_timeout: Duration,
    /// For the whole exchange, answer included.
    pub timeout: Duration,
    /// Records in one POST at the most.
    pub batch: usize,
    /// How long a worker holds the records it is sending; after a crash they are sent again when
    /// this runs out. Longer than `timeout`.
    pub lease: Duration,
}

impl Default for PushSettings {
    fn default() -> Self {
        PushSettings {
            allow_private_targets: false,
            tick: Duration::from_secs(1),
            connect_timeout: Duration::from_secs(5),
            timeout: Duration::from_secs(10),
            batch: 20,
            lease: Duration::from_secs(30),
        }
    }
}

/// The push record reporting `result` of `kind` on the order (as it is after the change), or
/// `None` when the merchant gave no URL for it.
pub fn record(
    state: &AppState,
    order: &OrderRecord,
    kind: PushKind,
    result: &ResultCode,
    amount: Yen,
    transaction_id: Option<&str>,
    amazon_status: Option<&str>,
) -> Option<Write> {
    let url = match kind {
        PushKind::Authorize | PushKind::ReAuthorize | PushKind::UpdateAuthorize => {
            order.authorize_push_url.as_ref()
        }
        PushKind::Capture => order.capture_push_url.as_ref(),
        PushKind::Cancel | PushKind::Refund | PushKind::Terminate => order.cancel_push_url.as_ref(),
    }?;
    let now = state.now();
    let fields = mdk::push_record(&PushFields {
        order_id: order.order_id.as_str(),
        txn_type: kind.as_str(),
        result,
        amount: amount.get(),
        center_order_id: order.charge_permission_id.as_deref(),
        center_transaction_id: transaction_id.or(order.charge_id.as_deref()),
        at: now,
        dummy: order.dummy,
        amazon_status,
    });
    Some(Write::Push(PushRecord {
        id: 0,
        merchant: order.merchant.clone(),
        order_id: order.order_id.clone(),
        kind,
        url: url.clone(),
        dummy: order.dummy,
        fields,
        status: PushStatus::Pending,
        attempts: 0,
        next_attempt_at: now.unix_timestamp(),
        lease_until: None,
        push_id: None,
        last_error: None,
        created_at: now.unix_timestamp(),
        delivered_at: None,
    }))
}

/// True for addresses a live push must never reach.
pub fn forbidden(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => {
            let o = v4.octets();
            v4.is_loopback()
                || v4.is_private()
                || v4.is_link_local() // 169.254/16, cloud metadata included
                || v4.is_unspecified()
                || v4.is_broadcast()
                || v4.is_multicast()
                || o[0] == 0
                || (o[0] == 100 && (o[1] & 0xc0) == 64) // 100.64/10, carrier-grade NAT
                || (o[0] == 192 && o[1] == 0 && o[2] == 0) // 192.0.0/24, protocol assignments
        }
        IpAddr::V6(v6) => {
            if let Some(v4) = v6.to_ipv4_mapped() {
                return forbidden(IpAddr::V4(v4));
            }
            let s = v6.segments();
            v6.is_loopback()
                || v6.is_unspecified()
                || v6.is_multicast()
                || (s[0] & 0xfe00) == 0xfc00 // fc00::/7 unique local (fd00:ec2::254 included)
                || (s[0] & 0xffc0) == 0xfe80 // fe80::/10 link local
        }
    }
}

/// A resolver that hands the HTTP client only addresses a live push may use, so the address
/// checked is the address connected to.
struct SafeResolver;

impl reqwest::dns::Resolve for SafeResolver {
    fn resolve(&self, name: reqwest::dns::Name) -> reqwest::dns::Resolving {
        let host = name.as_str().to_owned();
        Box::pin(async move {
            let addrs: Vec<SocketAddr> = tokio::net::lookup_host((host.as_str(), 0))
                .await?
                .filter(|a| !forbidden(a.ip()))
                .collect();
            if addrs.is_empty() {
                let e: Box<dyn std::error::Error + Send + Sync> =
                    format!("{host} resolves only to addresses pushes may not reach").into();
                return Err(e);
            }
            let iter: reqwest::dns::Addrs = Box::new(addrs.into_iter());
            Ok(iter)
        })
    }
}

/// The HTTP clients of the worker: one for test orders and allowed local targets, one that
/// refuses forbidden addresses.
pub struct Senders {
    open: reqwest::Client,
    safe: reqwest::Client,
}

impl Senders {
    pub fn new(settings: &PushSettings) -> Result<Senders, reqwest::Error> {
        let base = || {
            reqwest::Client::builder()
                .redirect(reqwest::redirect::Policy::none())
                .connect_timeout(settings.connect_timeout)
                .timeout(settings.timeout)
                .user_agent("Kessai-Push/1")
        };
        Ok(Senders {
            open: base().build()?,
            safe: base().dns_resolver(Arc::new(SafeResolver)).build()?,
        })
    }
}

/// Why a target is refused before anything is sent, if it is.
async fn refusal(url: &str, live: bool, settings: &PushSettings) -> Option<String> {
    let parsed = match url::Url::parse(url) {
        Ok(u) if u.scheme() == "http" || u.scheme() == "https" => u,
        _ => return Some(format!("{url} is not an http(s) URL")),
    };
    if !live || settings.allow_private_targets {
        return None;
    }
    let host = match parsed.host() {
        Some(url::Host::Ipv4(ip)) => {
            return forbidden(IpAddr::V4(ip)).then(|| refused_ip(ip.into()))
        }
        Some(url::Host::Ipv6(ip)) => {
            return forbidden(IpAddr::V6(ip)).then(|| refused_ip(ip.into()))
        }
        Some(url::Host::Domain(d)) => d.to_owned(),
        None => return Some(format!("{url} has no host")),
    };
    let port = parsed.port_or_known_default().unwrap_or(443);
    match tokio::net::lookup_host(format!("{host}:{port}")).await {
        Ok(addrs) => {
            let addrs: Vec<SocketAddr> = addrs.collect();
            if !addrs.is_empty() && addrs.iter().all(|a| forbidden(a.ip())) {
                Some(format!(
                    "{host} resolves only to addresses pushes of live orders may not reach"
                ))
            } else {
                None
            }
        }
        // A name that does not resolve now may later: retried, not refused.
        Err(_) => None,
    }
}

fn refused_ip(ip: IpAddr) -> String {
    format!("{ip} is an address pushes of live orders may not reach (loopback, private, link-local, unique-local or metadata)")
}

/// Runs the push worker until the process ends.
pub fn spawn_worker(state: AppState) {
    tokio::spawn(async move {
        let senders = match Senders::new(&state.push) {
            Ok(s) => s,
            Err(e) => {
                tracing::error!(%e, "cannot build the push client; no pushes will be sent");
                return;
            }
        };
        loop {
            match deliver_due(&state, &senders).await {
                Ok(_) => {}
                Err(e) => tracing::error!(%e, "push worker: cannot read the outbox; retrying"),
            }
            tokio::time::sleep(state.push.tick).await;
        }
    });
}

/// Delivers the records due now; returns how many POSTs were made.
pub async fn deliver_due(
    state: &AppState,
    senders: &Senders,
) -> Result<usize, kessai_store::StoreError> {
    let now = state.clock.unix();
    let lease = i64::try_from(state.push.lease.as_secs())
        .unwrap_or(30)
        .max(1);
    let claimed = state.store.claim_pushes(now, lease, 200).await?;
    let mut groups: Vec<Vec<PushRecord>> = Vec::new();
    for record in claimed {
        let same = groups.iter_mut().find(|g| {
            g.first().is_some_and(|f| {
                f.merchant == record.merchant && f.url == record.url && f.dummy == record.dummy
            }) && g.len() < state.push.batch.max(1)
        });
        match same {
            Some(g) => g.push(record),
            None => groups.push(vec![record]),
        }
    }
    let mut posts = 0;
    for group in groups {
        posts += 1;
        let end = send(state, senders, &group).await;
        if matches!(end, PushEnd::Delivered { .. }) {
            state
                .abort_at
                .reached(crate::crash::Point::PushAfterPost, None);
        }
        let ids: Vec<i64> = group.iter().map(|r| r.id).collect();
        match &end {
            PushEnd::Delivered { push_id, .. } => {
                tracing::info!(merchant = %group[0].merchant, records = ids.len(), push_id = %push_id, "push delivered")
            }
            PushEnd::Retry { error, .. }
            | PushEnd::Failed { error }
            | PushEnd::Refused { error } => {
                tracing::warn!(merchant = %group[0].merchant, records = ids.len(), %error, "push not delivered")
            }
        }
        state.store.finish_pushes(&ids, &end).await?;
    }
    Ok(posts)
}

async fn send(state: &AppState, senders: &Senders, group: &[PushRecord]) -> PushEnd {
    let Some(first) = group.first() else {
        return PushEnd::Failed {
            error: "empty group".into(),
        };
    };
    let now = state.clock.unix();
    let retry = |error: String| {
        let oldest = group.iter().map(|r| r.created_at).min().unwrap_or(now);
        if now - oldest >= PUSH_RETRY_WINDOW_SECS {
            PushEnd::Failed { error }
        } else {
            PushEnd::Retry {
                error,
                next_attempt_at: now + push_backoff(first.attempts),
            }
        }
    };
    let live = !first.dummy;
    if let Some(why) = refusal(&first.url, live, &state.push).await {
        return PushEnd::Refused { error: why };
    }
    let secret = match state.store.merchant(&first.merchant).await {
        Ok(Some(m)) => m.secret_hex.expose().clone(),
        Ok(None) => {
            return PushEnd::Refused {
                error: format!("merchant {} is not known", first.merchant),
            }
        }
        Err(e) => return retry(format!("cannot read the merchant: {e}")),
    };
    let push_id = state.ids.hex(16);
    let records: Vec<(i64, &[(String, String)])> =
        group.iter().map(|r| (r.id, r.fields.as_slice())).collect();
    let body = mdk::push_body(&records, &push_id, state.now());
    let (Some(hmac), Some(signature)) = (
        mdk::content_hmac(first.merchant.as_str(), &secret, &body),
        mdk::timestamped_signature(&secret, now, &body),
    ) else {
        return PushEnd::Refused {
            error: "the merchant's secret key is not hex".into(),
        };
    };
    let client = if live && !state.push.allow_private_targets {
        &senders.safe
    } else {
        &senders.open
    };
    let sent = client
        .post(&first.url)
        .header(
            "content-type",
            "application/x-www-form-urlencoded; charset=utf-8",
        )
        .header("content-hmac", hmac)
        .header("kessai-signature", signature)
        .body(body)
        .send()
        .await;
    match sent {
        Ok(mut resp) => {
            let status = resp.status();
            // Read a little of the answer and drop the rest: a merchant's body is not ours to hold.
            let mut read = 0usize;
            while read < 4096 {
                match resp.chunk().await {
                    Ok(Some(c)) => read += c.len(),
                    _ => break,
                }
            }
            if status.is_success() {
                PushEnd::Delivered {
                    push_id,
                    at: state.clock.unix(),
                }
            } else {
                retry(format!("the merchant answered HTTP {}", status.as_u16()))
            }
        }
        Err(e) => retry(format!("not delivered: {e}")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn forbidden_addresses() {
        for bad in [
            "127.0.0.1",
            "10.0.0.1",
            "172.16.5.4",
            "192.168.1.1",
            "169.254.169.254",
            "0.0.0.0",
            "100.64.0.1",
            "::1",
            "fd00:ec2::254",
            "fe80::1",
            "::ffff:10.0.0.1",
            "::ffff:127.0.0.1",
        ] {
            assert!(forbidden(bad.parse().unwrap()), "{bad}");
        }
        for good in ["93.184.216.34", "8.8.8.8", "2606:4700::1111"] {
            assert!(!forbidden(good.parse().unwrap()), "{good}");
        }
    }

    #[tokio::test]
    async fn live_targets_on_private_addresses_are_refused_without_connecting() {
        let s = PushSettings::default();
        for url in [
            "http://169.254.169.254/latest/meta-data/",
            "http://10.0.0.1/push",
            "http://127.0.0.1:9/push",
            "http://[::1]/push",
            "http://localhost/push",
        ] {
            assert!(refusal(url, true, &s).await.is_some(), "{url}");
            assert!(refusal(url, false, &s).await.is_none(), "test mode: {url}");
        }
        let dev = PushSettings {
            allow_private_targets: true,
            ..PushSettings::default()
        };
        assert!(refusal("http://127.0.0.1:9/push", true, &dev)
            .await
            .is_none());
        assert!(refusal("ftp://example.com/", false, &s).await.is_some());
    }
}

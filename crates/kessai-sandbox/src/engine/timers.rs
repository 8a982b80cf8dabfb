//! The transitions Amazon makes on its own when their time comes: a session expires, a pending
//! authorization or a late capture settles, an authorization expires unused, a refund settles,
//! a one-time charge permission expires.

use super::{Changed, ChargeId, Engine, Kind, PermissionId, RefundId, SessionId};

impl Engine {
    /// When Amazon would next change the object on its own, if ever.
    pub(super) fn deadline_of(&self, kind: Kind, id: &str) -> Option<i64> {
        match kind {
            Kind::CheckoutSession => self
                .sessions
                .get(&SessionId::new(id))
                .and_then(|s| s.deadline()),
            Kind::Charge => self
                .charges
                .get(&ChargeId::new(id))
                .and_then(|c| c.deadline()),
            Kind::ChargePermission => self
                .permissions
                .get(&PermissionId::new(id))
                .and_then(|p| p.deadline()),
            Kind::Refund => self
                .refunds
                .get(&RefundId::new(id))
                .and_then(|r| r.deadline()),
        }
    }

    /// Makes every transition whose time has come. Returns the objects that changed on their
    /// own (for notifications).
    pub fn settle(&mut self, now: i64) -> Vec<Changed> {
        let mut fired = Vec::new();
        while let Some(first) = self.deadlines.first().cloned() {
            if first.0 > now {
                break;
            }
            self.deadlines.remove(&first);
            let (when, kind, id) = first;
            let changed = match kind {
                Kind::CheckoutSession => self.expire_session(&SessionId::new(id.as_str()), when),
                Kind::Charge => self.settle_charge(&ChargeId::new(id.as_str()), when),
                Kind::Refund => self.settle_refund(&RefundId::new(id.as_str()), when),
                Kind::ChargePermission => {
                    self.expire_permission(&PermissionId::new(id.as_str()), when)
                }
            };
            if changed {
                fired.push(Changed { kind, id });
            }
        }
        self.fired.extend(fired.iter().cloned());
        fired
    }
}

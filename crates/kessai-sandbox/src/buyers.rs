//! The sandbox's test buyers, their addresses and payment methods.
//!
//! Payment methods end in the card numbers Amazon's sandbox uses to simulate outcomes.

/// What happens when a payment method is charged.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Simulation {
    Success,
    /// `3064`: the checkout session is canceled (`BuyerCanceled`) after the buyer returns.
    BuyerCanceled,
    /// `3434`: the checkout session is canceled (`Declined`).
    Declined,
    /// `0701`: the charge is `AuthorizationInitiated`, then `Authorized` after 30 s.
    PendingThenAuthorized,
    /// `4354`: the charge is `AuthorizationInitiated`, then `Declined`/`HardDeclined` after 30 s.
    PendingThenDeclined,
}

#[derive(Debug, Clone, Copy)]
pub struct Instrument {
    pub id: &'static str,
    pub descriptor: &'static str,
    pub label: &'static str,
    pub simulation: Simulation,
}

#[derive(Debug, Clone, Copy)]
pub struct TestAddress {
    pub id: &'static str,
    pub name: &'static str,
    pub postal_code: &'static str,
    pub state_or_region: &'static str,
    pub city: &'static str,
    pub line1: &'static str,
    pub line2: &'static str,
    pub phone: &'static str,
}

#[derive(Debug, Clone, Copy)]
pub struct TestBuyer {
    pub id: &'static str,
    pub name: &'static str,
    pub email: &'static str,
    pub phone: &'static str,
    pub addresses: &'static [TestAddress],
}

pub const INSTRUMENTS: &[Instrument] = &[
    Instrument {
        id: "visa-1111",
        descriptor: "Visa ****1111",
        label: "Visa ****1111 (成功 / succeeds)",
        simulation: Simulation::Success,
    },
    Instrument {
        id: "mc-4444",
        descriptor: "Mastercard ****4444",
        label: "Mastercard ****4444 (成功 / succeeds)",
        simulation: Simulation::Success,
    },
    Instrument {
        id: "jcb-0005",
        descriptor: "JCB ****0005",
        label: "JCB ****0005 (成功 / succeeds)",
        simulation: Simulation::Success,
    },
    Instrument {
        id: "visa-3434",
        descriptor: "Visa ****3434",
        label: "Visa ****3434 (拒否 / declined)",
        simulation: Simulation::Declined,
    },
    Instrument {
        id: "visa-3064",
        descriptor: "Visa ****3064",
        label: "Visa ****3064 (購入者キャンセル / buyer cancels)",
        simulation: Simulation::BuyerCanceled,
    },
    Instrument {
        id: "visa-0701",
        descriptor: "Visa ****0701",
        label: "Visa ****0701 (保留→成功 / pending, then authorized)",
        simulation: Simulation::PendingThenAuthorized,
    },
    Instrument {
        id: "visa-4354",
        descriptor: "Visa ****4354",
        label: "Visa ****4354 (保留→拒否 / pending, then declined)",
        simulation: Simulation::PendingThenDeclined,
    },
];

const TARO_ADDRESSES: &[TestAddress] = &[
    TestAddress {
        id: "taro-home",
        name: "山田 太郎",
        postal_code: "150-0002",
        state_or_region: "東京都",
        city: "渋谷区",
        line1: "渋谷2-21-1",
        line2: "テストビル 10F",
        phone: "03-1234-5678",
    },
    TestAddress {
        id: "taro-office",
        name: "山田 太郎",
        postal_code: "530-0001",
        state_or_region: "大阪府",
        city: "大阪市北区",
        line1: "梅田3-1-1",
        line2: "",
        phone: "06-1234-5678",
    },
];

const HANAKO_ADDRESSES: &[TestAddress] = &[TestAddress {
    id: "hanako-home",
    name: "佐藤 花子",
    postal_code: "060-0001",
    state_or_region: "北海道",
    city: "札幌市中央区",
    line1: "北一条西2-1",
    line2: "",
    phone: "011-123-4567",
}];

pub const BUYERS: &[TestBuyer] = &[
    TestBuyer {
        id: "amzn1.account.SANDBOXTARO0000000000000001",
        name: "山田 太郎",
        email: "taro.yamada@example.jp",
        phone: "090-1234-5678",
        addresses: TARO_ADDRESSES,
    },
    TestBuyer {
        id: "amzn1.account.SANDBOXHANAKO000000000000002",
        name: "佐藤 花子",
        email: "hanako.sato@example.jp",
        phone: "080-2345-6789",
        addresses: HANAKO_ADDRESSES,
    },
];

pub fn buyer(id: &str) -> Option<&'static TestBuyer> {
    BUYERS.iter().find(|b| b.id == id)
}

pub fn instrument(id: &str) -> Option<&'static Instrument> {
    INSTRUMENTS.iter().find(|i| i.id == id)
}

pub fn default_choice() -> (
    &'static TestBuyer,
    &'static TestAddress,
    &'static Instrument,
) {
    (&BUYERS[0], &TARO_ADDRESSES[0], &INSTRUMENTS[0])
}

/// The buyer token a SignIn redirect would carry for a test buyer (`/test_helpers/buyerTokens`).
pub fn token_for(buyer: &TestBuyer) -> String {
    format!("SANDBOX-BUYER-TOKEN-{}", hex::encode(buyer.id))
}

pub fn buyer_for_token(token: &str) -> Option<&'static TestBuyer> {
    BUYERS.iter().find(|b| token_for(b) == token)
}

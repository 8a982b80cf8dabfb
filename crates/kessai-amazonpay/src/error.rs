use thiserror::Error;

/// What went wrong talking to Amazon Pay.
#[derive(Debug, Error)]
pub enum AmazonPayError {
    /// Amazon Pay answered with an error body (`reasonCode`, `message`).
    #[error("Amazon Pay answered HTTP {status} {reason_code}: {message}")]
    Api {
        status: u16,
        reason_code: String,
        message: String,
    },
    /// The request did not reach Amazon Pay or no answer came back: the outcome is unknown.
    #[error("Amazon Pay could not be reached: {0}")]
    Transport(String),
    /// Amazon Pay answered something that is not the expected JSON.
    #[error("Amazon Pay's answer could not be read (HTTP {status}): {detail}")]
    Decode { status: u16, detail: String },
    /// The request could not be signed or built.
    #[error("the request could not be prepared: {0}")]
    Request(String),
}

impl AmazonPayError {
    pub fn reason_code(&self) -> Option<&str> {
        match self {
            AmazonPayError::Api { reason_code, .. } => Some(reason_code),
            _ => None,
        }
    }

    /// True when Amazon Pay may or may not have carried out the request.
    pub fn outcome_unknown(&self) -> bool {
        match self {
            AmazonPayError::Api { status, .. } => {
                *status >= 500 || *status == 408 || *status == 429
            }
            AmazonPayError::Transport(_) | AmazonPayError::Decode { .. } => true,
            AmazonPayError::Request(_) => false,
        }
    }
}

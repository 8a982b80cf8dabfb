//! The documents every answer is written in: the `{Action}Response` envelope with its
//! `ResponseMetadata`, Amazon's `ErrorResponse`, and a notification's `NotificationData`.

use super::{IPN_NS, NS};
use crate::mws::error::MwsError;
use quick_xml::events::{BytesDecl, BytesText, Event};
use quick_xml::Writer;
use serde::Serialize;

#[derive(Serialize)]
#[serde(rename_all = "PascalCase")]
struct Metadata<'a> {
    request_id: &'a str,
}

fn io(e: impl std::fmt::Display) -> std::io::Error {
    std::io::Error::other(e.to_string())
}

fn finish(writer: Writer<Vec<u8>>) -> Result<String, MwsError> {
    String::from_utf8(writer.into_inner()).map_err(MwsError::internal)
}

fn declared() -> Result<Writer<Vec<u8>>, MwsError> {
    let mut w = Writer::new(Vec::new());
    w.write_event(Event::Decl(BytesDecl::new("1.0", Some("UTF-8"), None)))
        .map_err(MwsError::internal)?;
    w.write_event(Event::Text(BytesText::from_escaped("\n")))
        .map_err(MwsError::internal)?;
    Ok(w)
}

/// `<{Action}Response xmlns=…><{Action}Result>…</…><ResponseMetadata>…` (an empty Result
/// element when the operation answers nothing).
pub fn render_ok<T: Serialize>(
    action: &str,
    result: Option<&T>,
    request_id: &str,
) -> Result<String, MwsError> {
    let mut w = declared()?;
    w.create_element(format!("{action}Response"))
        .with_attribute(("xmlns", NS))
        .write_inner_content(|w| {
            let tag = format!("{action}Result");
            match result {
                Some(r) => w.write_serializable(&tag, r).map_err(io)?,
                None => {
                    w.create_element(tag.as_str()).write_empty()?;
                }
            }
            w.write_serializable("ResponseMetadata", &Metadata { request_id })
                .map_err(io)
        })
        .map_err(MwsError::internal)?;
    finish(w)
}

#[derive(Serialize)]
#[serde(rename_all = "PascalCase")]
struct ErrorBody<'a> {
    #[serde(rename = "Type")]
    side: &'a str,
    code: &'a str,
    message: &'a str,
}

/// Amazon's `ErrorResponse` document. It cannot fail: a failure to render falls back to a
/// fixed document in the same shape.
pub fn render_error(e: &MwsError, request_id: &str) -> String {
    let rendered = (|| -> Result<String, MwsError> {
        let mut w = declared()?;
        w.create_element("ErrorResponse")
            .with_attribute(("xmlns", NS))
            .write_inner_content(|w| {
                w.write_serializable(
                    "Error",
                    &ErrorBody {
                        side: e.side.as_str(),
                        code: e.code,
                        message: &e.message,
                    },
                )
                .map_err(io)?;
                w.create_element("RequestId")
                    .write_text_content(BytesText::new(request_id))?;
                Ok(())
            })
            .map_err(MwsError::internal)?;
        finish(w)
    })();
    rendered.unwrap_or_else(|_| {
        format!("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<ErrorResponse xmlns=\"{NS}\"><Error><Type>Receiver</Type><Code>InternalServerError</Code><Message>The answer could not be rendered.</Message></Error><RequestId>{}</RequestId></ErrorResponse>", request_id.replace(['<', '>', '&'], ""))
    })
}

/// A notification's `NotificationData`: `<{root} xmlns=IPN_NS>` around `child`.
pub fn render_notification<T: Serialize>(
    root: &str,
    child: &str,
    content: &T,
) -> Result<String, MwsError> {
    let mut w = declared()?;
    w.create_element(root)
        .with_attribute(("xmlns", IPN_NS))
        .write_inner_content(|w| w.write_serializable(child, content).map_err(io))
        .map_err(MwsError::internal)?;
    finish(w)
}

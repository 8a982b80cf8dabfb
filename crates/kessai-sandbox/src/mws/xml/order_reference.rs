//! The order reference's elements and the answer that carries them.

use super::shared::{
    address, buyer, constraints, id_list, Buyer, Constraints, Destination, IdList, Price, Status,
};
use super::timestamp;
use crate::engine::agreements::*;
use serde::Serialize;

#[derive(Debug, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct SellerOrderAttributes {
    #[serde(skip_serializing_if = "Option::is_none")]
    seller_order_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    store_name: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    custom_information: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    supplementary_data: Option<String>,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct ParentDetails {
    id: String,
    #[serde(rename = "Type")]
    kind: &'static str,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct OrderReferenceDetails {
    amazon_order_reference_id: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    buyer: Option<Buyer>,
    #[serde(skip_serializing_if = "Option::is_none")]
    order_total: Option<Price>,
    #[serde(skip_serializing_if = "Option::is_none")]
    seller_note: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    platform_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    destination: Option<Destination>,
    release_environment: &'static str,
    seller_order_attributes: SellerOrderAttributes,
    order_reference_status: Status,
    #[serde(skip_serializing_if = "Option::is_none")]
    constraints: Option<Constraints>,
    creation_timestamp: String,
    expiration_timestamp: String,
    parent_details: ParentDetails,
    id_list: IdList,
    order_language: &'static str,
}

pub fn order_reference_details(o: &OrderReference) -> OrderReferenceDetails {
    let a = o.attributes();
    OrderReferenceDetails {
        amazon_order_reference_id: o.id().to_string(),
        buyer: buyer(o.buyer_id()),
        order_total: a.order_total.map(Price::from),
        seller_note: a.seller_note.clone(),
        platform_id: a.platform_id.clone(),
        destination: address(o.buyer_id(), o.address_id(), true).map(|p| Destination {
            destination_type: "Physical",
            physical_destination: p,
        }),
        release_environment: o.environment().as_str(),
        seller_order_attributes: SellerOrderAttributes {
            seller_order_id: a.seller_order_id.clone(),
            store_name: a.store_name.clone(),
            custom_information: a.custom_information.clone(),
            supplementary_data: a.supplementary_data.clone(),
        },
        order_reference_status: Status::of(
            o.state().as_str(),
            o.updated_at(),
            o.reason().map(|r| r.as_str()),
            o.reason_description(),
        ),
        constraints: constraints(
            o.constraints()
                .into_iter()
                .map(|c| (c.id(), c.description()))
                .collect(),
        ),
        creation_timestamp: timestamp(o.created_at()),
        expiration_timestamp: timestamp(o.expires_at()),
        parent_details: ParentDetails {
            id: o.parent().to_string(),
            kind: "BillingAgreement",
        },
        id_list: id_list(o.authorizations().iter().map(|a| a.to_string())),
        order_language: "ja-JP",
    }
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct OrderReferenceResult {
    order_reference_details: OrderReferenceDetails,
}

pub fn order_reference_result(o: &OrderReference) -> OrderReferenceResult {
    OrderReferenceResult {
        order_reference_details: order_reference_details(o),
    }
}

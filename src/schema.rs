//! OpenAPI schemas that the derive macros cannot state, for `schema_with`. A leaf: it imports
//! nothing of the crate, so any layer may use it.

use utoipa::openapi::schema::{
    AnyOfBuilder, ArrayBuilder, KnownFormat, ObjectBuilder, Schema, SchemaFormat, SchemaType, Type,
};

/// No control characters (U+0000–U+001F, U+007F–U+009F) and none of the invisible characters
/// that reorder or hide text: what every text field accepts (`domain::text`).
pub const NO_CONTROL_CHARACTERS: &str = "^[^\\x00-\\x1F\\x7F-\\x9F\\u00AD\\u061C\\u180E\\u200B\\u200E\\u200F\\u2028-\\u202E\\u2060-\\u2064\\u2066-\\u206F\\uFEFF\\uFFF9-\\uFFFB]*$";

/// An IPv4 or IPv6 address. `anyOf`, not `oneOf`: where formats are only annotations, both
/// branches accept any string, and exactly one must not be required.
pub fn ip_address() -> Schema {
    let format = |f| {
        ObjectBuilder::new()
            .schema_type(Type::String)
            .format(Some(SchemaFormat::KnownFormat(f)))
    };
    AnyOfBuilder::new()
        .item(format(KnownFormat::Ipv4))
        .item(format(KnownFormat::Ipv6))
        .description(Some(
            "An IPv4 or IPv6 address. The server answers with its canonical form \
             (`2001:DB8:0:0::1` becomes `2001:db8::1`).",
        ))
        .into()
}

/// At most 16 roles of 1–64 characters without control characters, or null.
pub fn roles() -> Schema {
    let role = ObjectBuilder::new()
        .schema_type(Type::String)
        .min_length(Some(1))
        .max_length(Some(64))
        .pattern(Some(NO_CONTROL_CHARACTERS))
        .examples(["admin"]);
    ArrayBuilder::new()
        .schema_type(SchemaType::from_iter([Type::Array, Type::Null]))
        .items(role)
        .max_items(Some(16))
        .examples([serde_json::json!(["admin"])])
        .into()
}

//! JSON in and out the way Docker's `httputils` does it: responses are one JSON value and a
//! newline (Go's `json.Encoder`, HTML escaping off), request bodies that do not parse are a
//! 400 with the parser's text, and an empty body means "no options".

use axum::body::Bytes;
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use serde::de::DeserializeOwned;
use serde::Serialize;

use crate::error::ApiError;

/// `200 OK` with `value` as JSON.
pub fn ok<T: Serialize>(value: &T) -> Response {
    with_status(StatusCode::OK, value)
}

/// `status` with `value` as JSON followed by a newline.
pub fn with_status<T: Serialize>(status: StatusCode, value: &T) -> Response {
    match serde_json::to_vec(value) {
        Ok(mut body) => {
            body.push(b'\n');
            (status, [(header::CONTENT_TYPE, "application/json")], body).into_response()
        }
        Err(e) => ApiError::new(
            berth_api::ErrorKind::Internal,
            format!("encoding the response: {e}"),
        )
        .into_response(),
    }
}

/// Parses a JSON request body; an empty body is `T::default()`, as Docker treats it.
pub fn parse<T: DeserializeOwned + Default>(body: &Bytes) -> Result<T, ApiError> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Ok(T::default());
    }
    serde_json::from_slice(body).map_err(|e| ApiError::invalid(e.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn malformed_body_is_invalid_argument() {
        let err = parse::<std::collections::BTreeMap<String, String>>(&Bytes::from_static(b"{"))
            .expect_err("malformed");
        assert_eq!(err.kind, berth_api::ErrorKind::InvalidArgument);
    }

    #[test]
    fn empty_body_is_default() {
        let value: std::collections::BTreeMap<String, String> =
            parse(&Bytes::from_static(b"  ")).expect("empty");
        assert!(value.is_empty());
    }
}

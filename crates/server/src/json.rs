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

/// Parses a JSON request body; an empty body is `T::default()`, as Docker treats it. A body
/// that is not UTF-8 is refused whole (RFC 8259 §8.1), also where the bad bytes sit in a
/// field the route ignores (serde skips those unchecked).
pub fn parse<T: DeserializeOwned + Default>(body: &Bytes) -> Result<T, ApiError> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Ok(T::default());
    }
    let text = std::str::from_utf8(body)
        .map_err(|e| ApiError::invalid(format!("invalid JSON in the request body: {e}")))?;
    serde_json::from_str(text).map_err(|e| ApiError::invalid(e.to_string()))
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
    fn a_body_that_is_not_utf8_is_invalid_even_in_ignored_fields() {
        #[derive(Debug, Default, serde::Deserialize)]
        struct Start {
            #[serde(default, rename = "Detach")]
            _detach: bool,
        }
        let err = parse::<Start>(&Bytes::from_static(b"{\"Image\": \"\xff\xfe\"}"))
            .expect_err("not UTF-8");
        assert_eq!(err.kind, berth_api::ErrorKind::InvalidArgument);
        assert!(err.message.contains("utf-8"), "{}", err.message);
    }

    #[test]
    fn empty_body_is_default() {
        let value: std::collections::BTreeMap<String, String> =
            parse(&Bytes::from_static(b"  ")).expect("empty");
        assert!(value.is_empty());
    }
}

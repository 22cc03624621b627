//! How server functions' answers travel: JSON, as with leptos's default, but decoded in the
//! browser with `serde_json::from_str`, the same entry point leptos uses for the hydration data of
//! resources. With the default codec (`from_slice`) every answer type's `Deserialize` code was
//! compiled twice into the WebAssembly bundle, once per input kind; every `#[server]` here names
//! [`Json`] as its output.

use leptos::server_fn::{codec::Post, Bytes, ContentType, Decodes, Encodes, Format, FormatType};
use serde::{de::DeserializeOwned, Serialize};

/// JSON bodies, decoded from text (see the module note).
pub struct TextJsonEncoding;

impl ContentType for TextJsonEncoding {
    const CONTENT_TYPE: &'static str = "application/json";
}

impl FormatType for TextJsonEncoding {
    const FORMAT_TYPE: Format = Format::Text;
}

impl<T: Serialize> Encodes<T> for TextJsonEncoding {
    type Error = serde_json::Error;

    fn encode(output: &T) -> Result<Bytes, Self::Error> {
        serde_json::to_vec(output).map(Bytes::from)
    }
}

impl<T: DeserializeOwned> Decodes<T> for TextJsonEncoding {
    type Error = serde_json::Error;

    fn decode(bytes: Bytes) -> Result<T, Self::Error> {
        let text = std::str::from_utf8(&bytes).map_err(|e| {
            <serde_json::Error as serde::de::Error>::custom(format_args!("answer is not UTF-8: {e}"))
        })?;
        serde_json::from_str(text)
    }
}

/// The output codec of Vigil's server functions: a POST answered with [`TextJsonEncoding`].
pub type Json = Post<TextJsonEncoding>;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn answers_round_trip_and_bad_bytes_are_named() {
        let sent = vec![("a".to_string(), 1.5_f64), ("é".to_string(), -0.0)];
        let bytes = <TextJsonEncoding as Encodes<_>>::encode(&sent).unwrap();
        let back: Vec<(String, f64)> = TextJsonEncoding::decode(bytes).unwrap();
        assert_eq!(back, sent);

        let err =
            <TextJsonEncoding as Decodes<Vec<u8>>>::decode(Bytes::from_static(b"[1,\xff]")).unwrap_err();
        assert!(err.to_string().contains("not UTF-8"), "{err}");
        let err = <TextJsonEncoding as Decodes<Vec<u8>>>::decode(Bytes::from_static(b"[1,")).unwrap_err();
        assert!(err.is_eof(), "{err}");
    }
}

//! Values of Rust types by name, as postcard encodes them: how a member
//! written in Python shares commands, queries and collection items with
//! Rust members (`"i64"` is an `i64`, `"str"` a `String`, ...).
//!
//! postcard writes `u8`/`i8` as one byte, wider integers as varints
//! (zigzag for signed ones), `bool` as one byte, `f64` as 8 little-endian
//! bytes, and strings and byte vectors with a varint length.

use bytes::Bytes;

use super::encoding::{self, EncodingError};

/// A Rust type a value can be encoded as.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RustType {
    Unit,
    Bool,
    U8,
    U16,
    U32,
    U64,
    I8,
    I16,
    I32,
    I64,
    F64,
    Str,
    Bytes,
}

/// A value of one of those types.
#[derive(Clone, Debug, PartialEq)]
pub enum Value {
    Unit,
    Bool(bool),
    Int(i128),
    F64(f64),
    Str(String),
    Bytes(Vec<u8>),
}

/// Why a value cannot be encoded as the type asked for.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ValueError {
    #[error("expected a value of Rust type {0}")]
    WrongKind(&'static str),
    #[error("{value} is out of range for {ty}")]
    OutOfRange { value: i128, ty: &'static str },
}

impl RustType {
    /// Every name, with the type it stands for.
    pub const NAMES: &'static [(&'static str, RustType)] = &[
        ("()", RustType::Unit),
        ("bool", RustType::Bool),
        ("u8", RustType::U8),
        ("u16", RustType::U16),
        ("u32", RustType::U32),
        ("u64", RustType::U64),
        ("i8", RustType::I8),
        ("i16", RustType::I16),
        ("i32", RustType::I32),
        ("i64", RustType::I64),
        ("f64", RustType::F64),
        ("str", RustType::Str),
        ("bytes", RustType::Bytes),
    ];

    pub fn from_name(name: &str) -> Option<Self> {
        Self::NAMES.iter().find(|(n, _)| *n == name).map(|(_, t)| *t)
    }

    pub fn name(self) -> &'static str {
        Self::NAMES
            .iter()
            .find(|(_, t)| *t == self)
            .map(|(n, _)| *n)
            .expect("every type is named")
    }

    /// The integer range of an integer type.
    fn range(self) -> Option<(i128, i128)> {
        Some(match self {
            RustType::U8 => (0, u8::MAX.into()),
            RustType::U16 => (0, u16::MAX.into()),
            RustType::U32 => (0, u32::MAX.into()),
            RustType::U64 => (0, u64::MAX.into()),
            RustType::I8 => (i8::MIN.into(), i8::MAX.into()),
            RustType::I16 => (i16::MIN.into(), i16::MAX.into()),
            RustType::I32 => (i32::MIN.into(), i32::MAX.into()),
            RustType::I64 => (i64::MIN.into(), i64::MAX.into()),
            _ => return None,
        })
    }

    pub fn is_integer(self) -> bool {
        self.range().is_some()
    }

    pub fn encode(self, value: &Value) -> Result<Bytes, ValueError> {
        let kind = || ValueError::WrongKind(self.name());
        let encoded = match (self, value) {
            (RustType::Unit, Value::Unit) => encoding::encode(&()),
            (RustType::Bool, Value::Bool(b)) => encoding::encode(b),
            (RustType::F64, Value::F64(f)) => encoding::encode(f),
            (RustType::Str, Value::Str(s)) => encoding::encode(s),
            (RustType::Bytes, Value::Bytes(b)) => encoding::encode(&serde_bytes_ref(b)),
            (ty, Value::Int(v)) if ty.is_integer() => {
                let (low, high) = ty.range().expect("an integer type");
                if *v < low || *v > high {
                    return Err(ValueError::OutOfRange {
                        value: *v,
                        ty: ty.name(),
                    });
                }
                let v = *v;
                match ty {
                    RustType::U8 => encoding::encode(&(v as u8)),
                    RustType::U16 => encoding::encode(&(v as u16)),
                    RustType::U32 => encoding::encode(&(v as u32)),
                    RustType::U64 => encoding::encode(&(v as u64)),
                    RustType::I8 => encoding::encode(&(v as i8)),
                    RustType::I16 => encoding::encode(&(v as i16)),
                    RustType::I32 => encoding::encode(&(v as i32)),
                    _ => encoding::encode(&(v as i64)),
                }
            }
            _ => return Err(kind()),
        };
        Ok(encoded.expect("plain values always encode"))
    }

    pub fn decode(self, bytes: &[u8]) -> Result<Value, EncodingError> {
        Ok(match self {
            RustType::Unit => {
                encoding::decode::<()>(bytes)?;
                Value::Unit
            }
            RustType::Bool => Value::Bool(encoding::decode(bytes)?),
            RustType::U8 => Value::Int(encoding::decode::<u8>(bytes)?.into()),
            RustType::U16 => Value::Int(encoding::decode::<u16>(bytes)?.into()),
            RustType::U32 => Value::Int(encoding::decode::<u32>(bytes)?.into()),
            RustType::U64 => Value::Int(encoding::decode::<u64>(bytes)?.into()),
            RustType::I8 => Value::Int(encoding::decode::<i8>(bytes)?.into()),
            RustType::I16 => Value::Int(encoding::decode::<i16>(bytes)?.into()),
            RustType::I32 => Value::Int(encoding::decode::<i32>(bytes)?.into()),
            RustType::I64 => Value::Int(encoding::decode::<i64>(bytes)?.into()),
            RustType::F64 => Value::F64(encoding::decode(bytes)?),
            RustType::Str => Value::Str(encoding::decode(bytes)?),
            RustType::Bytes => Value::Bytes(encoding::decode::<bytes::Bytes>(bytes)?.to_vec()),
        })
    }
}

/// A byte slice serialized as postcard bytes (length + bytes), as `Vec<u8>`
/// with `serde_bytes` and `Bytes` both are on the wire.
fn serde_bytes_ref(bytes: &[u8]) -> bytes::Bytes {
    bytes::Bytes::copy_from_slice(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hex(ty: RustType, value: Value) -> String {
        hex::encode(ty.encode(&value).unwrap())
    }

    #[test]
    fn encodings_match_postcard() {
        assert_eq!(hex(RustType::I64, Value::Int(-1)), "01");
        assert_eq!(hex(RustType::I64, Value::Int(1)), "02");
        assert_eq!(hex(RustType::U64, Value::Int(300)), "ac02");
        assert_eq!(hex(RustType::U8, Value::Int(200)), "c8");
        assert_eq!(hex(RustType::Bool, Value::Bool(true)), "01");
        assert_eq!(hex(RustType::Str, Value::Str("hi".into())), "026869");
        assert_eq!(hex(RustType::Bytes, Value::Bytes(vec![1, 2])), "020102");
        assert_eq!(hex(RustType::Unit, Value::Unit), "");
        assert_eq!(hex(RustType::F64, Value::F64(1.0)), "000000000000f03f");
        for (ty, value) in [
            (RustType::I64, Value::Int(i64::MIN.into())),
            (RustType::U64, Value::Int(u64::MAX.into())),
            (RustType::Str, Value::Str("é".into())),
            (RustType::F64, Value::F64(-2.5)),
        ] {
            assert_eq!(ty.decode(&ty.encode(&value).unwrap()).unwrap(), value);
        }
    }

    #[test]
    fn out_of_range_and_wrong_kinds_are_refused() {
        assert!(matches!(
            RustType::U8.encode(&Value::Int(256)),
            Err(ValueError::OutOfRange { .. })
        ));
        assert!(matches!(
            RustType::U64.encode(&Value::Int(-1)),
            Err(ValueError::OutOfRange { .. })
        ));
        assert!(matches!(
            RustType::Str.encode(&Value::Int(1)),
            Err(ValueError::WrongKind("str"))
        ));
        assert!(RustType::Bool.decode(&[2]).is_err());
    }
}

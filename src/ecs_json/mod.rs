//! ECS's own JSON (AWS JSON 1.1, as boto3 and the AWS CLI send and receive it) for taskledger's
//! protobuf messages, driven by their descriptors: ECS member names, ECS enum spellings, and
//! times as epoch seconds (or ISO-8601 for EventBridge events).
//! Does not check ECS constraints (required members, lengths, quotas); callers validate the
//! decoded message.

use std::{collections::HashMap, sync::LazyLock};

use prost::{Message, Name};
use prost_reflect::{
    DescriptorPool, DynamicMessage, EnumDescriptor, ExtensionDescriptor, FieldDescriptor, Kind, MapKey,
    MessageDescriptor, ReflectMessage, Value as Proto,
};
use serde_json::{Number, Value};

use crate::proto::FILE_DESCRIPTOR_SET;

mod base64;
mod descriptors;
mod read;
mod time;
mod write;

use base64::*;
use descriptors::*;
use read::*;
pub use time::iso8601_millis;
use time::*;
use write::*;

/// How deeply messages may nest in JSON being read; ECS shapes nest far less.
const MAX_DEPTH: usize = 64;
const TIMESTAMP: &str = "google.protobuf.Timestamp";
/// The range of `google.protobuf.Timestamp`: 0001-01-01T00:00:00Z ..= 9999-12-31T23:59:59Z.
const MIN_SECONDS: i64 = -62_135_596_800;
const MAX_SECONDS: i64 = 253_402_300_799;
const NANOS_PER_SECOND: i128 = 1_000_000_000;

/// How timestamps are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum TimeStyle {
    /// Seconds since the epoch as a JSON number, fractional when needed (`1700000000.123`), as
    /// the ECS API returns them.
    #[default]
    EpochSeconds,
    /// ISO-8601 UTC strings with milliseconds (`"2020-01-23T17:57:34.402Z"`), as EventBridge
    /// events carry them.
    Iso8601Millis,
}

/// Options for writing ECS JSON.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct WriteOptions {
    /// How timestamps are written.
    pub time_style: TimeStyle,
    /// Write empty repeated fields as `[]` instead of omitting them.
    pub emit_empty_lists: bool,
}

/// Why JSON could not be read into a message. `path` names the offending member, such as
/// `overrides.containerOverrides[2].environment[0].name`; it is empty for the whole document.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{path}{}{message}", if .path.is_empty() { "" } else { ": " })]
pub struct JsonError {
    /// The path of the offending member, empty for the document itself.
    pub path: String,
    /// What is wrong with it.
    pub message: String,
}

impl From<serde_json::Error> for JsonError {
    /// Malformed JSON: serde's message carries the line and column.
    fn from(error: serde_json::Error) -> Self {
        JsonError {
            path: String::new(),
            message: error.to_string(),
        }
    }
}

/// A message read from JSON, with the paths of the members it ignored because the message has
/// no such field (AWS ignores them too; callers may want to log them).
#[derive(Debug, Clone, PartialEq)]
pub struct Parsed<M> {
    /// The message read.
    pub message: M,
    /// Paths of unknown members, such as `containerDefinitions[0].imageTag`.
    pub unknown_members: Vec<String>,
}

/// Renders `message` as an ECS JSON object.
///
/// # Panics
///
/// If `M` is not a message of taskledger's descriptor set (a programming error).
pub fn to_value<M: Message + Name>(message: &M, options: &WriteOptions) -> Value {
    serde_json::from_slice(&to_vec(message, options)).expect("the writer writes valid JSON")
}

/// Renders `message` as ECS JSON text (UTF-8), written straight from the message: what the AWS
/// endpoint answers with, and the cheapest way to JSON.
///
/// # Panics
///
/// As [`to_value`].
pub fn to_vec<M: Message + Name>(message: &M, options: &WriteOptions) -> Vec<u8> {
    let dynamic = DynamicMessage::decode(descriptor_of::<M>(), message.encode_to_vec().as_slice())
        .expect("a message prost encoded decodes under its own descriptor");
    let mut writer = Writer {
        options,
        out: Vec::with_capacity(message.encoded_len() * 2),
    };
    writer.message(&dynamic);
    writer.out
}

/// Renders `message` as compact ECS JSON with default options.
///
/// # Panics
///
/// As [`to_value`].
pub fn to_string<M: Message + Name>(message: &M) -> String {
    String::from_utf8(to_vec(message, &WriteOptions::default())).expect("JSON text is UTF-8")
}

/// The length in bytes of [`to_string`]`(message)`, which is what ECS's size limits measure
/// (8 KiB of overrides, 64 KiB of task definition).
///
/// # Panics
///
/// As [`to_value`].
pub fn json_len<M: Message + Name>(message: &M) -> usize {
    to_vec(message, &WriteOptions::default()).len()
}

/// Reads a message from ECS JSON, ignoring unknown members.
///
/// # Panics
///
/// If `M` is not a message of taskledger's descriptor set (a programming error); never because
/// of `value`.
pub fn from_value<M: Message + Name + Default>(value: &Value) -> Result<M, JsonError> {
    from_value_reporting_unknown(value).map(|parsed| parsed.message)
}

/// Reads a message from ECS JSON and lists the unknown members it ignored.
///
/// # Panics
///
/// As [`from_value`].
pub fn from_value_reporting_unknown<M: Message + Name + Default>(value: &Value) -> Result<Parsed<M>, JsonError> {
    let mut reader = Reader::default();
    let dynamic = reader.message(&descriptor_of::<M>(), value, "", 1)?;
    let message = dynamic.transcode_to::<M>().map_err(|error| JsonError {
        path: String::new(),
        message: format!("the message read does not decode: {error}"),
    })?;
    Ok(Parsed {
        message,
        unknown_members: reader.unknown_members,
    })
}

/// Reads a message from ECS JSON bytes, ignoring unknown members. Malformed JSON is an error
/// with an empty path.
///
/// # Panics
///
/// As [`from_value`].
pub fn from_slice<M: Message + Name + Default>(bytes: &[u8]) -> Result<M, JsonError> {
    from_value(&serde_json::from_slice(bytes)?)
}

#[cfg(test)]
mod tests;

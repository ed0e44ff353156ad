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

static POOL: LazyLock<DescriptorPool> =
    LazyLock::new(|| DescriptorPool::decode(FILE_DESCRIPTOR_SET).expect("build.rs embeds a valid descriptor set"));

fn descriptor_of<M: Name>() -> MessageDescriptor {
    let name = M::full_name();
    POOL.get_message_by_name(&name)
        .unwrap_or_else(|| panic!("{name} is not in taskledger's descriptor set"))
}

/// The JSON spellings of one enum's values.
struct Spellings {
    by_number: HashMap<i32, String>,
    by_spelling: HashMap<String, i32>,
    /// Every spelling, in declaration order, for error messages.
    allowed: Vec<String>,
}

/// Spellings per enum full name, from the `(taskledger.v1.ecs_value)` option.
static ENUMS: LazyLock<HashMap<String, Spellings>> = LazyLock::new(|| {
    let ecs_value = POOL
        .get_extension_by_name("taskledger.v1.ecs_value")
        .expect("options.proto defines taskledger.v1.ecs_value");
    POOL.all_enums()
        .map(|enum_desc| (enum_desc.full_name().to_owned(), spellings_of(&enum_desc, &ecs_value)))
        .collect()
});

/// An ECS enum's values are spelled by their `ecs_value` option; values without it (the
/// `*_UNSPECIFIED` zero) have no spelling, so they are never written and cannot be read.
fn spellings_of(enum_desc: &EnumDescriptor, ecs_value: &ExtensionDescriptor) -> Spellings {
    let mut spellings = Spellings {
        by_number: HashMap::new(),
        by_spelling: HashMap::new(),
        allowed: Vec::new(),
    };
    for value in enum_desc.values() {
        let options = value.options();
        let spelling = options.get_extension(ecs_value);
        let Some(spelling) = spelling.as_str().filter(|s| !s.is_empty()) else {
            continue;
        };
        spellings
            .by_number
            .entry(value.number())
            .or_insert_with(|| spelling.to_owned());
        spellings.by_spelling.insert(spelling.to_owned(), value.number());
        spellings.allowed.push(spelling.to_owned());
    }
    spellings
}

/// The fields of every message in the order their JSON members are written: by JSON name, as
/// a `serde_json` object (a sorted map) would hold them, so `to_vec` and `to_value` agree.
static MEMBER_ORDER: LazyLock<HashMap<String, Vec<FieldDescriptor>>> = LazyLock::new(|| {
    POOL.all_messages()
        .map(|desc| {
            let mut fields: Vec<FieldDescriptor> = desc.fields().collect();
            fields.sort_by(|a, b| a.json_name().cmp(b.json_name()));
            (desc.full_name().to_owned(), fields)
        })
        .collect()
});

/// Writes JSON text straight from a `DynamicMessage`, with no intermediate `Value` tree.
struct Writer<'a> {
    options: &'a WriteOptions,
    out: Vec<u8>,
}

impl Writer<'_> {
    fn message(&mut self, message: &DynamicMessage) {
        let desc = message.descriptor();
        if desc.full_name() == TIMESTAMP {
            return self.timestamp(message);
        }
        self.out.push(b'{');
        let mut first = true;
        for field in MEMBER_ORDER.get(desc.full_name()).into_iter().flatten() {
            let value = if message.has_field(field) {
                let value = message.get_field(field);
                if !writable_field(field, &value) {
                    continue;
                }
                Some(value)
            } else if field.is_list() && self.options.emit_empty_lists {
                None
            } else {
                continue;
            };
            if !std::mem::take(&mut first) {
                self.out.push(b',');
            }
            self.put(field.json_name());
            self.out.push(b':');
            match value {
                Some(value) => self.field(field, &value),
                None => self.out.extend_from_slice(b"[]"),
            }
        }
        self.out.push(b'}');
    }

    fn field(&mut self, field: &FieldDescriptor, value: &Proto) {
        let kind = field.kind();
        match value {
            Proto::List(items) => {
                self.out.push(b'[');
                let mut first = true;
                for item in items.iter().filter(|item| writable(&kind, item)) {
                    if !std::mem::take(&mut first) {
                        self.out.push(b',');
                    }
                    self.single(&kind, item);
                }
                self.out.push(b']');
            }
            Proto::Map(entries) => {
                let value_kind = match kind.as_message() {
                    Some(entry) => entry.map_entry_value_field().kind(),
                    None => return self.out.extend_from_slice(b"{}"),
                };
                let mut sorted: Vec<(String, &Proto)> = entries
                    .iter()
                    .filter(|(_, value)| writable(&value_kind, value))
                    .map(|(key, value)| (map_key_text(key), value))
                    .collect();
                sorted.sort_by(|a, b| a.0.cmp(&b.0));
                self.out.push(b'{');
                for (n, (key, value)) in sorted.into_iter().enumerate() {
                    if n > 0 {
                        self.out.push(b',');
                    }
                    self.put(&key);
                    self.out.push(b':');
                    self.single(&value_kind, value);
                }
                self.out.push(b'}');
            }
            single => self.single(&kind, single),
        }
    }

    /// One value of `kind`, which `writable` has let through.
    fn single(&mut self, kind: &Kind, value: &Proto) {
        match value {
            Proto::Bool(b) => self.put(b),
            Proto::I32(n) => self.put(n),
            Proto::I64(n) => self.put(n),
            Proto::U32(n) => self.put(n),
            Proto::U64(n) => self.put(n),
            Proto::F32(x) => self.put(&f64::from(*x)),
            Proto::F64(x) => self.put(x),
            Proto::String(s) => self.put(s),
            Proto::Bytes(bytes) => self.put(&base64_encode(bytes)),
            Proto::EnumNumber(number) => match spelling(kind, *number) {
                Some(spelling) => self.put(spelling),
                None => self.out.extend_from_slice(b"null"),
            },
            Proto::Message(message) => self.message(message),
            Proto::List(_) | Proto::Map(_) => self.out.extend_from_slice(b"null"),
        }
    }

    fn timestamp(&mut self, message: &DynamicMessage) {
        let mut time = message.transcode_to::<prost_types::Timestamp>().unwrap_or_default();
        time.normalize();
        match self.options.time_style {
            TimeStyle::EpochSeconds => self.put(&epoch_seconds_number(time.seconds, time.nanos)),
            TimeStyle::Iso8601Millis => self.put(&iso8601_millis(time.seconds, time.nanos)),
        }
    }

    /// A scalar or string as serde_json writes it (its number formatting and string escaping).
    fn put(&mut self, value: &(impl serde::Serialize + ?Sized)) {
        serde_json::to_writer(&mut self.out, value).expect("numbers, strings and booleans always serialize");
    }
}

fn spelling(kind: &Kind, number: i32) -> Option<&'static String> {
    ENUMS.get(kind.as_enum()?.full_name())?.by_number.get(&number)
}

/// Whether JSON can carry a value of `kind`: not an enum number without a spelling, nor a
/// non-finite double. Such values are left out, as a member or as a list item.
fn writable(kind: &Kind, value: &Proto) -> bool {
    match value {
        Proto::F32(x) => x.is_finite(),
        Proto::F64(x) => x.is_finite(),
        Proto::EnumNumber(number) => spelling(kind, *number).is_some(),
        Proto::List(_) | Proto::Map(_) => false,
        _ => true,
    }
}

fn writable_field(field: &FieldDescriptor, value: &Proto) -> bool {
    match value {
        Proto::List(_) | Proto::Map(_) => true,
        single => writable(&field.kind(), single),
    }
}

fn map_key_text(key: &MapKey) -> String {
    match key {
        MapKey::Bool(b) => b.to_string(),
        MapKey::I32(n) => n.to_string(),
        MapKey::I64(n) => n.to_string(),
        MapKey::U32(n) => n.to_string(),
        MapKey::U64(n) => n.to_string(),
        MapKey::String(s) => s.clone(),
    }
}

/// An integer when whole; otherwise the double nearest the exact decimal, which keeps
/// millisecond (indeed microsecond) precision for present-day times.
fn epoch_seconds_number(seconds: i64, nanos: i32) -> Value {
    if nanos == 0 {
        return Value::from(seconds);
    }
    let total = i128::from(seconds) * NANOS_PER_SECOND + i128::from(nanos);
    let magnitude = total.unsigned_abs();
    let decimal = format!(
        "{}{}.{:09}",
        if total < 0 { "-" } else { "" },
        magnitude / NANOS_PER_SECOND.unsigned_abs(),
        magnitude % NANOS_PER_SECOND.unsigned_abs()
    );
    decimal
        .parse::<f64>()
        .ok()
        .and_then(Number::from_f64)
        .map_or(Value::from(seconds), Value::Number)
}

/// `2020-01-23T17:57:34.402Z`: UTC, milliseconds truncated.
pub fn iso8601_millis(seconds: i64, nanos: i32) -> String {
    let (year, month, day) = civil_from_days(seconds.div_euclid(86_400));
    let second_of_day = seconds.rem_euclid(86_400);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}.{:03}Z",
        second_of_day / 3_600,
        second_of_day % 3_600 / 60,
        second_of_day % 60,
        nanos / 1_000_000
    )
}

/// Proleptic Gregorian (year, month, day) of a day count since 1970-01-01 (H. Hinnant's
/// algorithm).
fn civil_from_days(days: i64) -> (i64, i64, i64) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let day_of_era = z.rem_euclid(146_097);
    let year_of_era = (day_of_era - day_of_era / 1_460 + day_of_era / 36_524 - day_of_era / 146_096) / 365;
    let day_of_year = day_of_era - (365 * year_of_era + year_of_era / 4 - year_of_era / 100);
    let shifted_month = (5 * day_of_year + 2) / 153; // March = 0
    let day = day_of_year - (153 * shifted_month + 2) / 5 + 1;
    let month = if shifted_month < 10 {
        shifted_month + 3
    } else {
        shifted_month - 9
    };
    let year = year_of_era + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

/// Days since 1970-01-01 of a proleptic Gregorian date; the inverse of [`civil_from_days`].
fn days_from_civil(year: i64, month: i64, day: i64) -> i64 {
    let year = if month <= 2 { year - 1 } else { year };
    let era = year.div_euclid(400);
    let year_of_era = year.rem_euclid(400);
    let shifted_month = if month > 2 { month - 3 } else { month + 9 };
    let day_of_year = (153 * shifted_month + 2) / 5 + day - 1;
    let day_of_era = year_of_era * 365 + year_of_era / 4 - year_of_era / 100 + day_of_year;
    era * 146_097 + day_of_era - 719_468
}

fn days_in_month(year: i64, month: i64) -> i64 {
    let leap = year % 4 == 0 && (year % 100 != 0 || year % 400 == 0);
    match month {
        2 if leap => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

#[derive(Default)]
struct Reader {
    unknown_members: Vec<String>,
}

impl Reader {
    fn message(
        &mut self,
        desc: &MessageDescriptor,
        json: &Value,
        path: &str,
        depth: usize,
    ) -> Result<DynamicMessage, JsonError> {
        if depth > MAX_DEPTH {
            return Err(error(path, format!("nested deeper than {MAX_DEPTH} levels")));
        }
        if desc.full_name() == TIMESTAMP {
            return read_timestamp(desc, json, path);
        }
        let Value::Object(members) = json else {
            return Err(expected(path, "an object", json));
        };
        let mut message = DynamicMessage::new(desc.clone());
        // Real oneofs (not proto3 `optional`) take one member; remember which one did.
        let mut oneof_members: HashMap<String, &str> = HashMap::new();
        for (name, member) in members {
            let member_path = join(path, name);
            let Some(field) = desc.get_field_by_json_name(name) else {
                self.unknown_members.push(member_path);
                continue;
            };
            if member.is_null() {
                continue;
            }
            if let Some(oneof) = field.containing_oneof().filter(|oneof| !oneof.is_synthetic()) {
                if let Some(other) = oneof_members.insert(oneof.name().to_owned(), name) {
                    return Err(error(
                        &member_path,
                        format!("only one of {other} and {name} may be set"),
                    ));
                }
            }
            let value = self.field(&field, member, &member_path, depth)?;
            message
                .try_set_field(&field, value)
                .map_err(|set_error| error(&member_path, set_error.to_string()))?;
        }
        Ok(message)
    }

    fn field(&mut self, field: &FieldDescriptor, json: &Value, path: &str, depth: usize) -> Result<Proto, JsonError> {
        let kind = field.kind();
        match kind.as_message() {
            Some(entry) if field.is_map() => {
                let Value::Object(entries) = json else {
                    return Err(expected(path, "an object", json));
                };
                let key_kind = entry.map_entry_key_field().kind();
                let value_kind = entry.map_entry_value_field().kind();
                let mut map = HashMap::with_capacity(entries.len());
                for (key, value) in entries {
                    let entry_path = join(path, key);
                    let key = map_key(&key_kind, key, &entry_path)?;
                    map.insert(key, self.single(&value_kind, value, &entry_path, depth)?);
                }
                Ok(Proto::Map(map))
            }
            _ if field.is_list() => {
                let Value::Array(items) = json else {
                    return Err(expected(path, "an array", json));
                };
                let items = items
                    .iter()
                    .enumerate()
                    .map(|(index, item)| self.single(&kind, item, &format!("{path}[{index}]"), depth))
                    .collect::<Result<_, _>>()?;
                Ok(Proto::List(items))
            }
            _ => self.single(&kind, json, path, depth),
        }
    }

    fn single(&mut self, kind: &Kind, json: &Value, path: &str, depth: usize) -> Result<Proto, JsonError> {
        match kind {
            Kind::Double => json
                .as_f64()
                .map(Proto::F64)
                .ok_or_else(|| expected(path, "a number", json)),
            Kind::Float => {
                let x = json.as_f64().ok_or_else(|| expected(path, "a number", json))?;
                // Narrowing is the point; out-of-range values become infinite and are refused.
                let narrow = x as f32;
                narrow
                    .is_finite()
                    .then_some(Proto::F32(narrow))
                    .ok_or_else(|| out_of_range(path, json, "float"))
            }
            Kind::Int32 | Kind::Sint32 | Kind::Sfixed32 => integer(json, path, "int32").map(Proto::I32),
            Kind::Int64 | Kind::Sint64 | Kind::Sfixed64 => integer(json, path, "int64").map(Proto::I64),
            Kind::Uint32 | Kind::Fixed32 => integer(json, path, "uint32").map(Proto::U32),
            Kind::Uint64 | Kind::Fixed64 => integer(json, path, "uint64").map(Proto::U64),
            Kind::Bool => json
                .as_bool()
                .map(Proto::Bool)
                .ok_or_else(|| expected(path, "true or false", json)),
            Kind::String => json
                .as_str()
                .map(|s| Proto::String(s.to_owned()))
                .ok_or_else(|| expected(path, "a string", json)),
            Kind::Bytes => {
                let text = json.as_str().ok_or_else(|| expected(path, "a base64 string", json))?;
                let bytes = base64_decode(text).ok_or_else(|| expected(path, "a base64 string", json))?;
                Ok(Proto::Bytes(bytes.into()))
            }
            Kind::Enum(enum_desc) => enum_number(enum_desc, json, path),
            Kind::Message(desc) => self.message(desc, json, path, depth + 1).map(Proto::Message),
        }
    }
}

fn enum_number(enum_desc: &EnumDescriptor, json: &Value, path: &str) -> Result<Proto, JsonError> {
    let spellings = ENUMS.get(enum_desc.full_name());
    let allowed = || {
        let quoted: Vec<String> = spellings
            .map(|s| {
                s.allowed
                    .iter()
                    .map(|spelling| Value::from(spelling.as_str()).to_string())
                    .collect()
            })
            .unwrap_or_default();
        quoted.join(", ")
    };
    let Some(text) = json.as_str() else {
        return Err(error(
            path,
            format!("expected one of {}, got {}", allowed(), describe(json)),
        ));
    };
    match spellings.and_then(|s| s.by_spelling.get(text)) {
        Some(number) => Ok(Proto::EnumNumber(*number)),
        None => Err(error(
            path,
            format!("unknown value {}; expected one of {}", describe(json), allowed()),
        )),
    }
}

/// A JSON integer (not a fraction, not a string) that fits `T`.
fn integer<T: TryFrom<i128>>(json: &Value, path: &str, type_name: &str) -> Result<T, JsonError> {
    let wide = match json {
        Value::Number(n) => n.as_i64().map(i128::from).or_else(|| n.as_u64().map(i128::from)),
        _ => None,
    };
    let wide = wide.ok_or_else(|| expected(path, "an integer", json))?;
    T::try_from(wide).map_err(|_| out_of_range(path, json, type_name))
}

fn map_key(kind: &Kind, key: &str, path: &str) -> Result<MapKey, JsonError> {
    let parsed = match kind {
        Kind::String => Some(MapKey::String(key.to_owned())),
        Kind::Bool => key.parse().ok().map(MapKey::Bool),
        Kind::Int32 | Kind::Sint32 | Kind::Sfixed32 => key.parse().ok().map(MapKey::I32),
        Kind::Int64 | Kind::Sint64 | Kind::Sfixed64 => key.parse().ok().map(MapKey::I64),
        Kind::Uint32 | Kind::Fixed32 => key.parse().ok().map(MapKey::U32),
        Kind::Uint64 | Kind::Fixed64 => key.parse().ok().map(MapKey::U64),
        _ => None,
    };
    parsed.ok_or_else(|| error(path, format!("{} is not a valid map key", describe(&Value::from(key)))))
}

fn read_timestamp(desc: &MessageDescriptor, json: &Value, path: &str) -> Result<DynamicMessage, JsonError> {
    let parsed = match json {
        Value::Number(n) => epoch_from_decimal(&n.to_string()),
        Value::String(s) => epoch_from_rfc3339(s),
        _ => {
            return Err(expected(
                path,
                "a timestamp (epoch seconds or an ISO-8601 string)",
                json,
            ))
        }
    };
    let (seconds, nanos) = parsed.filter(|(seconds, _)| (MIN_SECONDS..=MAX_SECONDS).contains(seconds)).ok_or_else(|| {
        error(
            path,
            format!(
                "{} is not a timestamp: expected epoch seconds or ISO-8601 like \"2020-01-23T17:57:34.402Z\", between years 1 and 9999",
                describe(json)
            ),
        )
    })?;
    let mut message = DynamicMessage::new(desc.clone());
    message
        .transcode_from(&prost_types::Timestamp { seconds, nanos })
        .map_err(|decode_error| error(path, decode_error.to_string()))?;
    Ok(message)
}

/// Epoch seconds and nanoseconds of a JSON number's decimal text (`1700000000.123`, `1.7e9`),
/// computed exactly; digits below a nanosecond are dropped.
fn epoch_from_decimal(text: &str) -> Option<(i64, i32)> {
    let (negative, unsigned) = match text.strip_prefix('-') {
        Some(rest) => (true, rest),
        None => (false, text),
    };
    let (mantissa, exponent) = match unsigned.split_once(['e', 'E']) {
        Some((mantissa, exponent)) => (mantissa, exponent.parse::<i64>().ok()?),
        None => (unsigned, 0),
    };
    let (whole, fraction) = mantissa.split_once('.').unwrap_or((mantissa, ""));
    let digits = whole.bytes().chain(fraction.bytes());
    if whole.is_empty() || !digits.clone().all(|b| b.is_ascii_digit()) {
        return None;
    }
    // value = digits × 10^(exponent − fraction digits); in nanoseconds, × 10^shift.
    let shift = exponent
        .checked_sub(i64::try_from(fraction.len()).ok()?)?
        .checked_add(9)?;
    let count = whole.len() + fraction.len();
    let kept = if shift < 0 {
        count.saturating_sub(usize::try_from(shift.unsigned_abs()).unwrap_or(usize::MAX))
    } else {
        count
    };
    let mut nanos: i128 = 0;
    for digit in digits.take(kept) {
        nanos = nanos.checked_mul(10)?.checked_add(i128::from(digit - b'0'))?;
    }
    for _ in 0..shift.max(0) {
        if nanos == 0 {
            break;
        }
        nanos = nanos.checked_mul(10)?;
    }
    if negative {
        nanos = -nanos;
    }
    let seconds = i64::try_from(nanos.div_euclid(NANOS_PER_SECOND)).ok()?;
    let sub_second = i32::try_from(nanos.rem_euclid(NANOS_PER_SECOND)).ok()?;
    Some((seconds, sub_second))
}

/// Epoch seconds and nanoseconds of an RFC 3339 time: `2020-01-23T17:57:34.402Z`,
/// `2020-01-23T18:57:34+01:00`; the offset is required.
fn epoch_from_rfc3339(text: &str) -> Option<(i64, i32)> {
    let bytes = text.as_bytes();
    let separators_ok = bytes.len() >= 20
        && bytes[4] == b'-'
        && bytes[7] == b'-'
        && matches!(bytes[10], b'T' | b't' | b' ')
        && bytes[13] == b':'
        && bytes[16] == b':';
    if !separators_ok {
        return None;
    }
    let number = |from: usize, to: usize| -> Option<i64> {
        let part = text.get(from..to)?;
        part.bytes()
            .all(|b| b.is_ascii_digit())
            .then(|| part.parse().ok())
            .flatten()
    };
    let (year, month, day) = (number(0, 4)?, number(5, 7)?, number(8, 10)?);
    let (hour, minute, second) = (number(11, 13)?, number(14, 16)?, number(17, 19)?);
    let valid = (1..=12).contains(&month)
        && (1..=days_in_month(year, month)).contains(&day)
        && hour < 24
        && minute < 60
        && second < 60;
    if !valid {
        return None;
    }
    let mut rest = text.get(19..)?;
    let mut nanos: i64 = 0;
    if let Some(fraction) = rest.strip_prefix('.') {
        let digits = fraction.bytes().take_while(|b| b.is_ascii_digit()).count();
        if digits == 0 {
            return None;
        }
        for position in 0..9 {
            let digit = fraction.as_bytes().get(position).filter(|_| position < digits);
            nanos = nanos * 10 + digit.map_or(0, |d| i64::from(d - b'0'));
        }
        rest = fraction.get(digits..)?;
    }
    let offset = match rest.as_bytes() {
        [b'Z' | b'z'] => 0,
        [sign @ (b'+' | b'-'), _, _, b':', _, _] => {
            // The offset is the last six bytes of `text`: `+HH:MM`.
            let end = text.len();
            let (hours, minutes) = (number(end - 5, end - 3)?, number(end - 2, end)?);
            if hours > 23 || minutes > 59 {
                return None;
            }
            let offset = hours * 3_600 + minutes * 60;
            if *sign == b'+' {
                offset
            } else {
                -offset
            }
        }
        _ => return None,
    };
    let seconds = days_from_civil(year, month, day) * 86_400 + hour * 3_600 + minute * 60 + second - offset;
    Some((seconds, i32::try_from(nanos).ok()?))
}

const BASE64_ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

/// Standard base64 with padding.
fn base64_encode(bytes: &[u8]) -> String {
    let mut out = String::with_capacity(bytes.len().div_ceil(3) * 4);
    for chunk in bytes.chunks(3) {
        let group = chunk
            .iter()
            .enumerate()
            .fold(0u32, |acc, (i, &b)| acc | u32::from(b) << (16 - 8 * i));
        for sextet in 0..4 {
            if sextet <= chunk.len() {
                out.push(char::from(BASE64_ALPHABET[(group >> (18 - 6 * sextet) & 63) as usize]));
            } else {
                out.push('=');
            }
        }
    }
    out
}

/// Standard base64, padding optional.
fn base64_decode(text: &str) -> Option<Vec<u8>> {
    let unpadded = text.trim_end_matches('=');
    let padding = text.len() - unpadded.len();
    if padding > 2 || (padding > 0 && !text.len().is_multiple_of(4)) || unpadded.len() % 4 == 1 {
        return None;
    }
    let mut out = Vec::with_capacity(unpadded.len() / 4 * 3 + 2);
    for chunk in unpadded.as_bytes().chunks(4) {
        let mut group = 0u32;
        for (i, &c) in chunk.iter().enumerate() {
            let sextet = BASE64_ALPHABET.iter().position(|&a| a == c)?;
            group |= (sextet as u32) << (18 - 6 * i);
        }
        out.extend_from_slice(&group.to_be_bytes()[1..chunk.len()]);
    }
    Some(out)
}

fn join(path: &str, member: &str) -> String {
    if path.is_empty() {
        member.to_owned()
    } else {
        format!("{path}.{member}")
    }
}

fn error(path: &str, message: impl Into<String>) -> JsonError {
    JsonError {
        path: path.to_owned(),
        message: message.into(),
    }
}

fn expected(path: &str, what: &str, got: &Value) -> JsonError {
    error(path, format!("expected {what}, got {}", describe(got)))
}

fn out_of_range(path: &str, got: &Value, type_name: &str) -> JsonError {
    error(path, format!("{} is out of range for {type_name}", describe(got)))
}

/// A short rendering of a JSON value for error messages.
fn describe(json: &Value) -> String {
    const SHOWN: usize = 40;
    match json {
        Value::Array(_) => "an array".to_owned(),
        Value::Object(_) => "an object".to_owned(),
        Value::String(s) if s.chars().count() > SHOWN => {
            let mut quoted = Value::String(s.chars().take(SHOWN).collect()).to_string();
            quoted.insert(quoted.len() - 1, '…');
            quoted
        }
        other => other.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use prost_types::Timestamp;
    use serde_json::json;

    use super::*;
    use crate::proto::{log, v1};

    fn s(text: &str) -> Option<String> {
        Some(text.to_owned())
    }

    fn rich_register_request() -> v1::RegisterTaskDefinitionRequest {
        v1::RegisterTaskDefinitionRequest {
            family: s("web"),
            task_role_arn: s("arn:aws:iam::123456789012:role/app"),
            network_mode: Some(v1::NetworkMode::Awsvpc as i32),
            requires_compatibilities: vec![v1::Compatibility::Fargate as i32, v1::Compatibility::Ec2 as i32],
            cpu: s("256"),
            memory: s("512"),
            tags: vec![v1::Tag {
                key: s("team"),
                value: s("core"),
            }],
            ephemeral_storage: Some(v1::EphemeralStorage { size_in_gib: Some(30) }),
            enable_fault_injection: Some(false),
            container_definitions: vec![
                v1::ContainerDefinition {
                    name: s("app"),
                    image: s("nginx:1.25"),
                    cpu: Some(128),
                    memory: Some(0),
                    essential: Some(true),
                    port_mappings: vec![
                        v1::PortMapping {
                            container_port: Some(80),
                            host_port: Some(80),
                            protocol: Some(v1::TransportProtocol::Tcp as i32),
                            ..Default::default()
                        },
                        v1::PortMapping {
                            container_port: Some(53),
                            protocol: Some(v1::TransportProtocol::Udp as i32),
                            ..Default::default()
                        },
                    ],
                    environment: vec![v1::KeyValuePair {
                        name: s("MODE"),
                        value: s(""),
                    }],
                    command: vec!["nginx".into(), "-g".into(), "daemon off;".into()],
                    docker_labels: [("a.b".to_owned(), "1".to_owned())].into(),
                    log_configuration: Some(v1::LogConfiguration {
                        log_driver: Some(v1::LogDriver::Awslogs as i32),
                        options: [
                            ("awslogs-group".to_owned(), "/ecs/web".to_owned()),
                            ("awslogs-region".to_owned(), "us-east-1".to_owned()),
                        ]
                        .into(),
                        ..Default::default()
                    }),
                    health_check: Some(v1::HealthCheck {
                        command: vec!["CMD-SHELL".into(), "curl -f http://localhost/ || exit 1".into()],
                        interval: Some(30),
                        timeout: Some(5),
                        retries: Some(3),
                        start_period: Some(0),
                    }),
                    ..Default::default()
                },
                v1::ContainerDefinition {
                    name: s("sidecar"),
                    image: s("busybox"),
                    essential: Some(false),
                    log_configuration: Some(v1::LogConfiguration {
                        log_driver: Some(v1::LogDriver::JsonFile as i32),
                        ..Default::default()
                    }),
                    ..Default::default()
                },
            ],
            ..Default::default()
        }
    }

    #[test]
    fn round_trip_of_a_full_register_task_definition_request() {
        let request = rich_register_request();
        let json = to_value(&request, &WriteOptions::default());
        let back: v1::RegisterTaskDefinitionRequest = from_value(&json).expect("own output reads back");
        assert_eq!(back, request);
        let back: v1::RegisterTaskDefinitionRequest = from_slice(to_string(&request).as_bytes()).expect("reads back");
        assert_eq!(back, request);
    }

    #[test]
    fn enum_values_use_their_ecs_spelling() {
        let json = to_value(&rich_register_request(), &WriteOptions::default());
        assert_eq!(json["networkMode"], "awsvpc");
        assert_eq!(json["requiresCompatibilities"], json!(["FARGATE", "EC2"]));
        assert_eq!(json["containerDefinitions"][0]["portMappings"][1]["protocol"], "udp");
        assert_eq!(
            json["containerDefinitions"][0]["logConfiguration"]["logDriver"],
            "awslogs"
        );
        assert_eq!(
            json["containerDefinitions"][1]["logConfiguration"]["logDriver"],
            "json-file"
        );
    }

    #[test]
    fn unspecified_enum_is_omitted_and_cannot_be_read() {
        let request = v1::RegisterTaskDefinitionRequest {
            network_mode: Some(v1::NetworkMode::Unspecified as i32),
            ..Default::default()
        };
        assert_eq!(to_value(&request, &WriteOptions::default()), json!({}));
        let err = from_value::<v1::RegisterTaskDefinitionRequest>(&json!({"networkMode": "NETWORK_MODE_UNSPECIFIED"}))
            .expect_err("proto names are not ECS spellings");
        assert_eq!(err.path, "networkMode");
    }

    #[test]
    fn unspellable_enum_items_are_left_out_of_lists_and_members_are_sorted() {
        let request = v1::RegisterTaskDefinitionRequest {
            family: Some("web".into()),
            requires_compatibilities: vec![
                v1::Compatibility::Fargate as i32,
                v1::Compatibility::Unspecified as i32,
                v1::Compatibility::Ec2 as i32,
            ],
            network_mode: Some(v1::NetworkMode::Unspecified as i32),
            cpu: Some("256".into()),
            ..Default::default()
        };
        let text = String::from_utf8(to_vec(&request, &WriteOptions::default())).unwrap();
        assert_eq!(
            text,
            r#"{"cpu":"256","family":"web","requiresCompatibilities":["FARGATE","EC2"]}"#
        );
        // The text is what a sorted serde_json map of the same members prints.
        assert_eq!(text, to_value(&request, &WriteOptions::default()).to_string());
        assert_eq!(json_len(&request), text.len());
    }

    #[test]
    fn unknown_enum_value_is_an_error_naming_the_path() {
        let input = json!({"containerDefinitions": [{}, {"logConfiguration": {"logDriver": "AWSLOGS"}}]});
        let err =
            from_value::<v1::RegisterTaskDefinitionRequest>(&input).expect_err("ECS spellings are case-sensitive");
        assert_eq!(err.path, "containerDefinitions[1].logConfiguration.logDriver");
        assert!(
            err.message
                .starts_with(r#"unknown value "AWSLOGS"; expected one of "json-file", "syslog""#),
            "{err}"
        );
        let err = from_value::<v1::RegisterTaskDefinitionRequest>(&json!({"networkMode": 3}))
            .expect_err("numbers are not spellings");
        assert!(err.message.contains("\"awsvpc\""), "{err}");
    }

    #[test]
    fn absent_and_null_members_leave_fields_unset() {
        let input = json!({"family": "web", "cpu": null, "containerDefinitions": null, "ephemeralStorage": null});
        let request: v1::RegisterTaskDefinitionRequest = from_value(&input).expect("nulls are absent members");
        assert_eq!(
            request,
            v1::RegisterTaskDefinitionRequest {
                family: s("web"),
                ..Default::default()
            }
        );
    }

    #[test]
    fn unknown_members_are_ignored_and_reported() {
        let input = json!({"family": "web", "Family": "x", "containerDefinitions": [{"name": "a", "imageTag": "1"}]});
        let parsed = from_value_reporting_unknown::<v1::RegisterTaskDefinitionRequest>(&input)
            .expect("unknown members are ignored");
        assert_eq!(parsed.message.family.as_deref(), Some("web"));
        assert_eq!(parsed.unknown_members, ["Family", "containerDefinitions[0].imageTag"]);
    }

    #[test]
    fn json_member_names_follow_ecs() {
        let run = v1::RunTaskRequest {
            enable_ecs_managed_tags: Some(true),
            ..Default::default()
        };
        assert_eq!(
            to_value(&run, &WriteOptions::default()),
            json!({"enableECSManagedTags": true})
        );
        let storage = v1::EphemeralStorage { size_in_gib: Some(21) };
        assert_eq!(to_string(&storage), r#"{"sizeInGiB":21}"#);
        let binding = v1::NetworkBinding {
            bind_ip: s("0.0.0.0"),
            ..Default::default()
        };
        assert_eq!(
            to_value(&binding, &WriteOptions::default()),
            json!({"bindIP": "0.0.0.0"})
        );

        let parsed = from_value_reporting_unknown::<v1::RunTaskRequest>(&json!({"enableEcsManagedTags": true}))
            .expect("a misspelt member is merely unknown");
        assert_eq!(parsed.message.enable_ecs_managed_tags, None);
        assert_eq!(parsed.unknown_members, ["enableEcsManagedTags"]);
    }

    #[test]
    fn integers_reject_strings_and_fractions() {
        let cpu = |value: Value| {
            from_value::<v1::RegisterTaskDefinitionRequest>(&json!({"containerDefinitions": [{"cpu": value}]}))
                .map(|request| request.container_definitions[0].cpu)
        };
        assert_eq!(cpu(json!(1024)), Ok(Some(1024)));
        assert_eq!(
            cpu(json!("abc")).expect_err("strings are not integers").to_string(),
            r#"containerDefinitions[0].cpu: expected an integer, got "abc""#
        );
        assert_eq!(
            cpu(json!(1.5)).expect_err("fraction").message,
            "expected an integer, got 1.5"
        );
        assert_eq!(
            cpu(json!(true)).expect_err("bool").message,
            "expected an integer, got true"
        );
        assert_eq!(
            cpu(json!(3_000_000_000_u64)).expect_err("too big").message,
            "3000000000 is out of range for int32"
        );
        let version = from_value::<v1::Task>(&json!({"version": u64::MAX})).expect_err("int64 overflow");
        assert_eq!(version.path, "version");
        let family = from_value::<v1::RegisterTaskDefinitionRequest>(&json!({"family": 7}))
            .expect_err("numbers are not strings");
        assert_eq!(family.to_string(), "family: expected a string, got 7");
    }

    #[test]
    fn maps_are_objects_of_strings() {
        let input = json!({"containerDefinitions": [{"logConfiguration": {"options": {"max-size": 10}}}]});
        let err = from_value::<v1::RegisterTaskDefinitionRequest>(&input).expect_err("map values are strings");
        assert_eq!(err.path, "containerDefinitions[0].logConfiguration.options.max-size");
        let err = from_value::<v1::RegisterTaskDefinitionRequest>(&json!({"containerDefinitions": {}}))
            .expect_err("lists are arrays");
        assert_eq!(
            err.to_string(),
            "containerDefinitions: expected an array, got an object"
        );
    }

    #[test]
    fn timestamps_are_epoch_seconds_by_default() {
        let task = v1::Task {
            created_at: Some(Timestamp {
                seconds: 1_700_000_000,
                nanos: 123_000_000,
            }),
            started_at: Some(Timestamp {
                seconds: 1_700_000_001,
                nanos: 0,
            }),
            ..Default::default()
        };
        let json = to_value(&task, &WriteOptions::default());
        assert_eq!(json["createdAt"], json!(1_700_000_000.123));
        assert_eq!(json["startedAt"], json!(1_700_000_001));
        assert_eq!(
            to_string(&task),
            r#"{"createdAt":1700000000.123,"startedAt":1700000001}"#
        );
        let back: v1::Task = from_value(&json).expect("reads back");
        assert_eq!(back, task);
    }

    #[test]
    fn iso_times_render_with_milliseconds() {
        let task = v1::Task {
            created_at: Some(Timestamp {
                seconds: 1_579_802_254,
                nanos: 402_999_999,
            }),
            stopped_at: Some(Timestamp { seconds: 0, nanos: 0 }),
            ..Default::default()
        };
        let options = WriteOptions {
            time_style: TimeStyle::Iso8601Millis,
            ..Default::default()
        };
        let json = to_value(&task, &options);
        assert_eq!(json["createdAt"], "2020-01-23T17:57:34.402Z");
        assert_eq!(json["stoppedAt"], "1970-01-01T00:00:00.000Z");
        assert_eq!(iso8601_millis(MIN_SECONDS, 0), "0001-01-01T00:00:00.000Z");
        assert_eq!(iso8601_millis(MAX_SECONDS, 999_999_999), "9999-12-31T23:59:59.999Z");
        assert_eq!(iso8601_millis(951_782_400, 0), "2000-02-29T00:00:00.000Z");
    }

    #[test]
    fn timestamps_read_from_numbers_and_iso_strings() {
        let created = |value: Value| from_value::<v1::Task>(&json!({"createdAt": value})).map(|task| task.created_at);
        let expected = Some(Timestamp {
            seconds: 1_579_802_254,
            nanos: 402_000_000,
        });
        assert_eq!(created(json!(1_579_802_254.402)), Ok(expected));
        assert_eq!(created(json!("2020-01-23T17:57:34.402Z")), Ok(expected));
        assert_eq!(created(json!("2020-01-23T18:57:34.402+01:00")), Ok(expected));
        assert_eq!(created(json!("2020-01-23t17:57:34.4020000009z")), Ok(expected));
        assert_eq!(
            created(json!(-1.5)),
            Ok(Some(Timestamp {
                seconds: -2,
                nanos: 500_000_000
            }))
        );
        assert_eq!(
            created(json!(1.7e9)),
            Ok(Some(Timestamp {
                seconds: 1_700_000_000,
                nanos: 0
            }))
        );
        for bad in [
            json!("2020-02-30T00:00:00Z"),
            json!("2020-01-23T17:57:34"),
            json!("yesterday"),
            json!(1e300),
            json!(true),
        ] {
            let err = created(bad.clone()).expect_err("not a timestamp");
            assert_eq!(err.path, "createdAt", "{bad}");
        }
    }

    #[test]
    fn empty_lists_are_omitted_unless_asked() {
        let task = v1::Task {
            task_arn: s("arn"),
            ..Default::default()
        };
        assert_eq!(to_value(&task, &WriteOptions::default()), json!({"taskArn": "arn"}));
        let options = WriteOptions {
            emit_empty_lists: true,
            ..Default::default()
        };
        let json = to_value(&task, &options);
        assert_eq!(json["containers"], json!([]));
        assert_eq!(json["taskArn"], "arn");
    }

    #[test]
    fn set_but_empty_messages_are_written() {
        let task = v1::Task {
            overrides: Some(v1::TaskOverride::default()),
            ..Default::default()
        };
        assert_eq!(to_value(&task, &WriteOptions::default()), json!({"overrides": {}}));
    }

    #[test]
    fn bytes_are_standard_base64() {
        let record = log::ClientTokenRecorded {
            fingerprint: vec![0xfb, 0xff, 0x00, 0x41],
            ..Default::default()
        };
        assert_eq!(
            to_value(&record, &WriteOptions::default()),
            json!({"fingerprint": "+/8AQQ=="})
        );
        assert_eq!(
            from_value::<log::ClientTokenRecorded>(&json!({"fingerprint": "+/8AQQ=="})),
            Ok(record.clone())
        );
        assert_eq!(
            from_value::<log::ClientTokenRecorded>(&json!({"fingerprint": "+/8AQQ"})),
            Ok(record)
        );
        for input in [b"".as_slice(), b"f", b"fo", b"foo", b"foob", b"fooba", b"foobar"] {
            assert_eq!(base64_decode(&base64_encode(input)).as_deref(), Some(input));
        }
        assert_eq!(base64_encode(b"foobar"), "Zm9vYmFy");
        assert!(from_value::<log::ClientTokenRecorded>(&json!({"fingerprint": "a$=="})).is_err());
    }

    #[test]
    fn only_one_member_of_a_oneof_may_be_set() {
        let input = json!({"taskCreated": {}, "clusterDeleted": {"clusterArn": "x"}});
        let err = from_value::<log::Event>(&input).expect_err("a oneof holds one member");
        assert!(err.message.contains("only one of"), "{err}");
        let event: log::Event = from_value(&json!({"clusterDeleted": {"clusterArn": "x"}})).expect("one member");
        assert_eq!(
            event.kind,
            Some(log::event::Kind::ClusterDeleted(log::ClusterDeleted {
                cluster_arn: "x".into()
            }))
        );
    }

    #[test]
    fn documents_must_be_objects_and_well_formed() {
        let err = from_value::<v1::Task>(&json!([1])).expect_err("top level is an object");
        assert_eq!(err.to_string(), "expected an object, got an array");
        let err = from_slice::<v1::Task>(b"{\"taskArn\": ").expect_err("malformed");
        assert_eq!(err.path, "");
        assert!(err.message.contains("line 1 column"), "{err}");
    }

    #[test]
    fn deep_nesting_is_refused_not_a_crash() {
        // DescriptorProto nests itself, so it can go as deep as the input does.
        let desc = POOL
            .get_message_by_name("google.protobuf.DescriptorProto")
            .expect("descriptor.proto is in the pool");
        let mut nested = json!({"name": "leaf"});
        for _ in 0..100 {
            nested = json!({"nestedType": [nested]});
        }
        let err = Reader::default().message(&desc, &nested, "", 1).expect_err("too deep");
        assert!(err.message.contains("deeper than 64"), "{err}");
        assert!(err.path.starts_with("nestedType[0].nestedType[0]"), "{err}");

        let mut shallow = json!({"name": "leaf"});
        for _ in 0..10 {
            shallow = json!({"nestedType": [shallow]});
        }
        assert!(Reader::default().message(&desc, &shallow, "", 1).is_ok());

        let mut arrays = json!(1);
        for _ in 0..120 {
            arrays = json!([arrays]);
        }
        let err = from_value::<v1::RegisterTaskDefinitionRequest>(&json!({"containerDefinitions": arrays}))
            .expect_err("wrong shape");
        assert_eq!(
            err.to_string(),
            "containerDefinitions[0]: expected an object, got an array"
        );
    }

    #[test]
    fn aws_cli_register_task_definition_input_parses() {
        let input = br#"{"family":"web","networkMode":"awsvpc","requiresCompatibilities":["FARGATE"],"cpu":"256","memory":"512","containerDefinitions":[{"name":"app","image":"nginx:1.25","essential":true,"portMappings":[{"containerPort":80,"protocol":"tcp"}],"logConfiguration":{"logDriver":"awslogs","options":{"awslogs-group":"/ecs/web"}}}]}"#;
        let request: v1::RegisterTaskDefinitionRequest = from_slice(input).expect("the CLI's input parses");
        assert_eq!(request.family.as_deref(), Some("web"));
        assert_eq!(request.network_mode(), v1::NetworkMode::Awsvpc);
        assert_eq!(request.requires_compatibilities, [v1::Compatibility::Fargate as i32]);
        assert_eq!(request.cpu.as_deref(), Some("256"));
        let container = &request.container_definitions[0];
        assert_eq!(container.essential, Some(true));
        assert_eq!(container.port_mappings[0].container_port, Some(80));
        assert_eq!(container.port_mappings[0].protocol(), v1::TransportProtocol::Tcp);
        let logs = container
            .log_configuration
            .as_ref()
            .expect("logConfiguration was given");
        assert_eq!(logs.log_driver(), v1::LogDriver::Awslogs);
        assert_eq!(logs.options.get("awslogs-group").map(String::as_str), Some("/ecs/web"));
        assert_eq!(json_len(&request), to_string(&request).len());
        let reparsed: Value = serde_json::from_slice(input).expect("valid JSON");
        assert_eq!(to_value(&request, &WriteOptions::default()), reparsed);
    }

    #[test]
    fn every_ecs_enum_value_but_zero_has_a_spelling() {
        for enum_desc in POOL.all_enums().filter(|e| e.package_name() == "taskledger.v1") {
            let spellings = &ENUMS[enum_desc.full_name()];
            for value in enum_desc.values() {
                assert_eq!(
                    spellings.by_number.contains_key(&value.number()),
                    value.number() != 0,
                    "{} (no `ecs_value` options at all means the descriptor set was encoded \
                     through prost_types, which drops extension options)",
                    value.full_name()
                );
            }
        }
    }
}

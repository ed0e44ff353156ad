//! Reading ECS JSON into a message: member by member against the descriptor, with the path of
//! the offending member in every error and unknown members reported, not refused.

use super::*;

#[derive(Default)]
pub(super) struct Reader {
    pub(super) unknown_members: Vec<String>,
}

impl Reader {
    pub(super) fn message(
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

pub(super) fn enum_number(enum_desc: &EnumDescriptor, json: &Value, path: &str) -> Result<Proto, JsonError> {
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
pub(super) fn integer<T: TryFrom<i128>>(json: &Value, path: &str, type_name: &str) -> Result<T, JsonError> {
    let wide = match json {
        Value::Number(n) => n.as_i64().map(i128::from).or_else(|| n.as_u64().map(i128::from)),
        _ => None,
    };
    let wide = wide.ok_or_else(|| expected(path, "an integer", json))?;
    T::try_from(wide).map_err(|_| out_of_range(path, json, type_name))
}

pub(super) fn map_key(kind: &Kind, key: &str, path: &str) -> Result<MapKey, JsonError> {
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

pub(super) fn read_timestamp(desc: &MessageDescriptor, json: &Value, path: &str) -> Result<DynamicMessage, JsonError> {
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

pub(super) fn join(path: &str, member: &str) -> String {
    if path.is_empty() {
        member.to_owned()
    } else {
        format!("{path}.{member}")
    }
}

pub(super) fn error(path: &str, message: impl Into<String>) -> JsonError {
    JsonError {
        path: path.to_owned(),
        message: message.into(),
    }
}

pub(super) fn expected(path: &str, what: &str, got: &Value) -> JsonError {
    error(path, format!("expected {what}, got {}", describe(got)))
}

pub(super) fn out_of_range(path: &str, got: &Value, type_name: &str) -> JsonError {
    error(path, format!("{} is out of range for {type_name}", describe(got)))
}

/// A short rendering of a JSON value for error messages.
pub(super) fn describe(json: &Value) -> String {
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

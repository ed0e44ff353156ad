//! Writing ECS JSON straight from a message: members in JSON-name order, enums by their ECS
//! spelling, values JSON cannot carry left out.

use super::*;

/// Writes JSON text straight from a `DynamicMessage`, with no intermediate `Value` tree.
pub(super) struct Writer<'a> {
    pub(super) options: &'a WriteOptions,
    pub(super) out: Vec<u8>,
}

impl Writer<'_> {
    pub(super) fn message(&mut self, message: &DynamicMessage) {
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

/// Whether JSON can carry a value of `kind`: not an enum number without a spelling, nor a
/// non-finite double. Such values are left out, as a member or as a list item.
pub(super) fn writable(kind: &Kind, value: &Proto) -> bool {
    match value {
        Proto::F32(x) => x.is_finite(),
        Proto::F64(x) => x.is_finite(),
        Proto::EnumNumber(number) => spelling(kind, *number).is_some(),
        Proto::List(_) | Proto::Map(_) => false,
        _ => true,
    }
}

pub(super) fn writable_field(field: &FieldDescriptor, value: &Proto) -> bool {
    match value {
        Proto::List(_) | Proto::Map(_) => true,
        single => writable(&field.kind(), single),
    }
}

pub(super) fn map_key_text(key: &MapKey) -> String {
    match key {
        MapKey::Bool(b) => b.to_string(),
        MapKey::I32(n) => n.to_string(),
        MapKey::I64(n) => n.to_string(),
        MapKey::U32(n) => n.to_string(),
        MapKey::U64(n) => n.to_string(),
        MapKey::String(s) => s.clone(),
    }
}

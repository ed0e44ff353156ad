//! The descriptors behind the transcoder: taskledger's descriptor pool, each ECS enum's
//! spellings (from the `ecs_value` option) and each message's members in writing order.

use super::*;

pub(super) static POOL: LazyLock<DescriptorPool> =
    LazyLock::new(|| DescriptorPool::decode(FILE_DESCRIPTOR_SET).expect("build.rs embeds a valid descriptor set"));

pub(super) fn descriptor_of<M: Name>() -> MessageDescriptor {
    let name = M::full_name();
    POOL.get_message_by_name(&name)
        .unwrap_or_else(|| panic!("{name} is not in taskledger's descriptor set"))
}

/// The JSON spellings of one enum's values.
pub(super) struct Spellings {
    pub(super) by_number: HashMap<i32, String>,
    pub(super) by_spelling: HashMap<String, i32>,
    /// Every spelling, in declaration order, for error messages.
    pub(super) allowed: Vec<String>,
}

/// Spellings per enum full name, from the `(taskledger.v1.ecs_value)` option.
pub(super) static ENUMS: LazyLock<HashMap<String, Spellings>> = LazyLock::new(|| {
    let ecs_value = POOL
        .get_extension_by_name("taskledger.v1.ecs_value")
        .expect("options.proto defines taskledger.v1.ecs_value");
    POOL.all_enums()
        .map(|enum_desc| (enum_desc.full_name().to_owned(), spellings_of(&enum_desc, &ecs_value)))
        .collect()
});

/// An ECS enum's values are spelled by their `ecs_value` option; values without it (the
/// `*_UNSPECIFIED` zero) have no spelling, so they are never written and cannot be read.
pub(super) fn spellings_of(enum_desc: &EnumDescriptor, ecs_value: &ExtensionDescriptor) -> Spellings {
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
pub(super) static MEMBER_ORDER: LazyLock<HashMap<String, Vec<FieldDescriptor>>> = LazyLock::new(|| {
    POOL.all_messages()
        .map(|desc| {
            let mut fields: Vec<FieldDescriptor> = desc.fields().collect();
            fields.sort_by(|a, b| a.json_name().cmp(b.json_name()));
            (desc.full_name().to_owned(), fields)
        })
        .collect()
});

pub(super) fn spelling(kind: &Kind, number: i32) -> Option<&'static String> {
    ENUMS.get(kind.as_enum()?.full_name())?.by_number.get(&number)
}

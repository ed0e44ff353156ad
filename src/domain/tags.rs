//! Tag rules shared by every taggable resource (ECS_SEMANTICS §1.5): key/value length and
//! characters, the reserved `aws:` prefix, the 50-tag limit, merge and removal.
//! Does not decide which resources exist; the caller does.

use super::error::{DomainError, DomainResult, EcsException};
use super::ids::printable;
use super::limits::{TAGS_MAX, TAG_KEY_MAX, TAG_VALUE_MAX};
use crate::proto::v1::Tag;

fn allowed_char(c: char) -> bool {
    c.is_alphanumeric() || c.is_whitespace() || "_.:/=+-@".contains(c)
}

fn reserved(text: &str) -> bool {
    text.len() >= 4 && text[..4].eq_ignore_ascii_case("aws:")
}

/// Checks a tag key (TagResource keys, UntagResource keys).
pub fn validate_key(field: &str, key: &str) -> DomainResult<()> {
    let chars = key.chars().count();
    if chars == 0 || chars > TAG_KEY_MAX {
        return Err(DomainError::invalid_parameter(
            field,
            format!("Tag keys must be 1 to {TAG_KEY_MAX} characters; got {chars}."),
        ));
    }
    if let Some(c) = key.chars().find(|c| !allowed_char(*c)) {
        return Err(DomainError::invalid_parameter(
            field,
            format!(
                "Tag key '{}' contains {c:?}; keys may hold letters, digits, spaces and _ . : / = + - @.",
                printable(key)
            ),
        ));
    }
    if reserved(key) {
        return Err(DomainError::invalid_parameter(
            field,
            format!(
                "Tag key '{}' uses the reserved prefix 'aws:', which only AWS may set.",
                printable(key)
            ),
        ));
    }
    Ok(())
}

/// Checks a list of tags given by a caller: each key and value, no duplicate keys, at most 50.
pub fn validate_tags(field: &str, tags: &[Tag]) -> DomainResult<()> {
    if tags.len() > TAGS_MAX {
        return Err(DomainError::invalid_parameter(
            field,
            format!(
                "At most {TAGS_MAX} tags are allowed per resource; the request has {}.",
                tags.len()
            ),
        ));
    }
    for (i, tag) in tags.iter().enumerate() {
        let at = format!("{field}[{i}]");
        let key = tag
            .key
            .as_deref()
            .ok_or_else(|| DomainError::invalid_parameter(format!("{at}.key"), "Every tag needs a key."))?;
        validate_key(&format!("{at}.key"), key)?;
        let value = tag.value.as_deref().unwrap_or("");
        let chars = value.chars().count();
        if chars > TAG_VALUE_MAX {
            return Err(DomainError::invalid_parameter(
                format!("{at}.value"),
                format!(
                    "Tag values may be at most {TAG_VALUE_MAX} characters; '{}' has {chars}.",
                    printable(key)
                ),
            ));
        }
        if let Some(c) = value.chars().find(|c| !allowed_char(*c)) {
            return Err(DomainError::invalid_parameter(
                format!("{at}.value"),
                format!(
                    "The value of tag '{}' contains {c:?}, which tags do not allow.",
                    printable(key)
                ),
            ));
        }
        if reserved(value) {
            return Err(DomainError::invalid_parameter(
                format!("{at}.value"),
                format!("The value of tag '{}' uses the reserved prefix 'aws:'.", printable(key)),
            ));
        }
        if tags[..i].iter().any(|t| t.key.as_deref() == Some(key)) {
            return Err(DomainError::invalid_parameter(
                format!("{at}.key"),
                format!(
                    "Tag key '{}' appears twice; a resource holds one value per key.",
                    printable(key)
                ),
            ));
        }
    }
    Ok(())
}

/// The tags after merging `update` into `current` (request keys overwrite), refusing to go over
/// the limit with `LimitExceededException`. `aws:` tags do not count.
pub fn merge(field: &str, current: &[Tag], update: &[Tag]) -> DomainResult<Vec<Tag>> {
    let mut merged = current.to_vec();
    for tag in update {
        match merged.iter_mut().find(|t| t.key == tag.key) {
            Some(existing) => existing.value = tag.value.clone(),
            None => merged.push(tag.clone()),
        }
    }
    let user_tags = merged
        .iter()
        .filter(|t| !reserved(t.key.as_deref().unwrap_or("")))
        .count();
    if user_tags > TAGS_MAX {
        return Err(DomainError::new(
            EcsException::LimitExceededException,
            format!(
                "The resource would have {user_tags} tags; at most {TAGS_MAX} are allowed. Remove some \
                 with UntagResource first."
            ),
        )
        .at(field));
    }
    Ok(merged)
}

/// The tags after removing `keys`; keys that are not present are ignored.
pub fn remove(current: &[Tag], keys: &[String]) -> Vec<Tag> {
    current
        .iter()
        .filter(|t| !keys.iter().any(|k| Some(k.as_str()) == t.key.as_deref()))
        .cloned()
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tag(k: &str, v: &str) -> Tag {
        Tag {
            key: Some(k.into()),
            value: Some(v.into()),
        }
    }

    #[test]
    fn reserved_prefix_is_refused_in_any_case() {
        assert!(validate_tags("tags", &[tag("AWS:x", "1")]).is_err());
        assert!(validate_tags("tags", &[tag("x", "Aws:1")]).is_err());
        assert!(validate_tags("tags", &[tag("team", "blue")]).is_ok());
    }

    #[test]
    fn merge_overwrites_and_limits() {
        let merged = merge("tags", &[tag("a", "1"), tag("b", "2")], &[tag("a", "3")]).unwrap();
        assert_eq!(merged, vec![tag("a", "3"), tag("b", "2")]);
        let many: Vec<Tag> = (0..50).map(|i| tag(&format!("k{i}"), "v")).collect();
        let err = merge("tags", &many, &[tag("one-more", "v")]).unwrap_err();
        assert_eq!(err.exception, EcsException::LimitExceededException);
        assert_eq!(remove(&merged, &["a".into(), "zzz".into()]), vec![tag("b", "2")]);
    }
}

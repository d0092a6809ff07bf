//! Conditional requests (RFC 9110 §13 as S3 applies them): `If-Match`,
//! `If-None-Match`, `If-Modified-Since`, `If-Unmodified-Since` against an
//! object's ETag and modification time. Pure: the gateway turns the
//! answer into `412 Precondition Failed` or `304 Not Modified`.

/// An `If-Match` / `If-None-Match` value.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Tag {
    /// `*`: any current object.
    Any,
    /// One ETag, without quotes.
    Is(String),
}

/// The conditions one request carries; times in whole seconds since the
/// epoch (HTTP dates have no finer grain).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Conditions {
    pub if_match: Option<Tag>,
    pub if_none_match: Option<Tag>,
    pub if_modified_since: Option<i64>,
    pub if_unmodified_since: Option<i64>,
}

/// What the conditions say about a read.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Verdict {
    Proceed,
    /// 412.
    PreconditionFailed,
    /// 304 (reads only).
    NotModified,
}

fn matches(tag: &Tag, etag: &str) -> bool {
    match tag {
        Tag::Any => true,
        Tag::Is(t) => t.trim_matches('"') == etag,
    }
}

impl Conditions {
    /// For a GET or HEAD of an object with `etag` last modified at
    /// `mtime_s`. If-Match wins over If-Unmodified-Since, If-None-Match
    /// over If-Modified-Since, as S3 documents.
    pub fn for_read(&self, etag: &str, mtime_s: i64) -> Verdict {
        match &self.if_match {
            Some(t) if !matches(t, etag) => return Verdict::PreconditionFailed,
            Some(_) => {}
            None => {
                if self.if_unmodified_since.is_some_and(|s| mtime_s > s) {
                    return Verdict::PreconditionFailed;
                }
            }
        }
        match &self.if_none_match {
            Some(t) if matches(t, etag) => return Verdict::NotModified,
            Some(_) => {}
            None => {
                if self.if_modified_since.is_some_and(|s| mtime_s <= s) {
                    return Verdict::NotModified;
                }
            }
        }
        Verdict::Proceed
    }

    /// For a PUT over `current` (the existing object's ETag, if any):
    /// `If-None-Match: *` means "only if absent", `If-Match` "only if it
    /// is this one".
    pub fn for_write(&self, current: Option<&str>) -> Verdict {
        if let Some(t) = &self.if_none_match {
            if current.is_some_and(|e| matches(t, e)) {
                return Verdict::PreconditionFailed;
            }
        }
        if let Some(t) = &self.if_match {
            if !current.is_some_and(|e| matches(t, e)) {
                return Verdict::PreconditionFailed;
            }
        }
        Verdict::Proceed
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tag(s: &str) -> Option<Tag> {
        Some(Tag::Is(s.into()))
    }

    #[test]
    fn reads_follow_the_precedence_s3_documents() {
        let c = |c: Conditions| c.for_read("abc", 100);
        assert_eq!(c(Conditions::default()), Verdict::Proceed);
        assert_eq!(
            c(Conditions {
                if_match: tag("\"abc\""),
                ..Default::default()
            }),
            Verdict::Proceed
        );
        assert_eq!(
            c(Conditions {
                if_match: tag("zzz"),
                ..Default::default()
            }),
            Verdict::PreconditionFailed
        );
        // If-Match true beats If-Unmodified-Since false.
        assert_eq!(
            c(Conditions {
                if_match: tag("abc"),
                if_unmodified_since: Some(50),
                ..Default::default()
            }),
            Verdict::Proceed
        );
        assert_eq!(
            c(Conditions {
                if_unmodified_since: Some(50),
                ..Default::default()
            }),
            Verdict::PreconditionFailed
        );
        assert_eq!(
            c(Conditions {
                if_none_match: tag("abc"),
                ..Default::default()
            }),
            Verdict::NotModified
        );
        // If-None-Match false beats If-Modified-Since true.
        assert_eq!(
            c(Conditions {
                if_none_match: tag("other"),
                if_modified_since: Some(200),
                ..Default::default()
            }),
            Verdict::Proceed
        );
        assert_eq!(
            c(Conditions {
                if_modified_since: Some(100),
                ..Default::default()
            }),
            Verdict::NotModified
        );
        assert_eq!(
            c(Conditions {
                if_modified_since: Some(99),
                ..Default::default()
            }),
            Verdict::Proceed
        );
    }

    #[test]
    fn writes_check_presence_and_identity() {
        let absent_only = Conditions {
            if_none_match: Some(Tag::Any),
            ..Default::default()
        };
        assert_eq!(absent_only.for_write(None), Verdict::Proceed);
        assert_eq!(
            absent_only.for_write(Some("e")),
            Verdict::PreconditionFailed
        );
        let this_one = Conditions {
            if_match: tag("e"),
            ..Default::default()
        };
        assert_eq!(this_one.for_write(Some("e")), Verdict::Proceed);
        assert_eq!(this_one.for_write(Some("f")), Verdict::PreconditionFailed);
        assert_eq!(this_one.for_write(None), Verdict::PreconditionFailed);
    }
}

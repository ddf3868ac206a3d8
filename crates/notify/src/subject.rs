//! The subject of a notice: SNS's limit, and what a shortened one keeps.

/// SNS rejects subjects of 100 characters or more.
const SUBJECT_MAX: usize = 99;

/// The fewest characters of the pipeline's name a shortened subject keeps.
const NAME_MIN: usize = 8;

/// `[pipeline] EVENT: detail` as an SNS subject (printable ASCII, no line breaks, under 100
/// characters). The event word and the detail (image ids) matter most: a long pipeline name is
/// shortened first, and only a detail too long on its own is cut, at its end.
pub fn subject_line(pipeline: &str, detail: &str) -> String {
    let (name, detail) = (printable(pipeline), printable(detail));
    let room = SUBJECT_MAX.saturating_sub(detail.len() + 3); // "[" + "] "
    let name = if name.len() <= room.max(NAME_MIN + 3) {
        name
    } else {
        let keep = room.max(NAME_MIN + 3) - 3;
        format!("{}...", &name[..keep.min(name.len())])
    };
    let subject = format!("[{name}] {detail}");
    if subject.len() <= SUBJECT_MAX {
        subject
    } else {
        format!("{}...", &subject[..SUBJECT_MAX - 3])
    }
}

pub(crate) fn printable(text: &str) -> String {
    text.chars()
        .map(|c| {
            if c.is_ascii_graphic() || c == ' ' {
                c
            } else {
                '?'
            }
        })
        .collect()
}

//! What fits in one SNS message, and what a notice says when all of it does not.
//!
//! SNS counts a Publish message in bytes: "messages must be UTF-8 encoded strings and at most
//! 256 KB in size (262,144 bytes, not 262,144 characters)" (Publish, Message:
//! https://docs.aws.amazon.com/sns/latest/api/API_Publish.html), and the message attributes
//! count towards it: "All parts of the message attribute, including name, type, and value, are
//! included in the message size restriction" (MessageAttributeValue:
//! https://docs.aws.amazon.com/sns/latest/api/API_MessageAttributeValue.html). A run of many
//! families in many regions, each failing with a long cause, can pass it; SNS then refuses the
//! notice (InvalidParameter: "Message too long") and nobody hears of the run. So a body past
//! its budget is summarised: every family keeps its headline, the detail of the families that
//! do not fit is left out (failed families' detail is kept first), and the notice says how many
//! were summarised and where the full details are.

/// The most bytes SNS accepts in a message, its attributes included.
pub const SNS_MESSAGE_MAX_BYTES: usize = 262_144;

/// Room kept beyond the attributes as counted (the subject, and whatever SNS adds to its count
/// that its pages do not spell out).
pub const MARGIN_BYTES: usize = 2048;

/// No line of a notice past its budget keeps more than this (a cause of hundreds of KB).
pub const LINE_MAX_BYTES: usize = 2048;

/// The bytes a body may take next to these message attributes (name, value).
pub fn body_budget(attributes: &[(&str, &str)]) -> usize {
    let attributes: usize = attributes
        .iter()
        // Every attribute of ours is of data type "String".
        .map(|(name, value)| name.len() + "String".len() + value.len())
        .sum();
    SNS_MESSAGE_MAX_BYTES.saturating_sub(attributes + MARGIN_BYTES)
}

/// One family's part of a notice.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Section {
    pub family: String,
    /// The line that says how the family ended, kept in every notice; None where the notice
    /// has no such line (a run that failed outside its families).
    pub headline: Option<String>,
    pub detail: Vec<String>,
    /// A failed family's detail is the last to be left out.
    pub failed: bool,
}

impl Section {
    /// What a summarised notice keeps of the family.
    fn summary(&self) -> String {
        self.headline.clone().unwrap_or_else(|| {
            format!(
                "Family {}: where its pointers stand is left out here.",
                self.family
            )
        })
    }

    fn full(&self) -> impl Iterator<Item = &String> {
        self.headline.iter().chain(&self.detail)
    }
}

/// A notice before it is measured: lines before the families, the families, lines after.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Notice {
    pub head: Vec<String>,
    pub sections: Vec<Section>,
    pub tail: Vec<String>,
    /// Where the full details are ("`golden-ami why NAME`", a report bucket), for a notice that
    /// had to be summarised or could not be sent.
    pub details_at: String,
}

impl Notice {
    /// The body: all of it when it fits in `budget` bytes, else summarised to fit.
    pub fn render(&self, budget: usize) -> String {
        let full = join(
            self.head
                .iter()
                .chain(self.sections.iter().flat_map(Section::full))
                .chain(&self.tail)
                .map(String::as_str),
        );
        if full.len() <= budget {
            return full;
        }
        let summarised = self.summarised(budget, None);
        if summarised.len() <= budget {
            return summarised;
        }
        // The lines kept are too long themselves (a huge cause): shorten each, then cut.
        let shortened = self.summarised(budget, Some(LINE_MAX_BYTES));
        if shortened.len() <= budget {
            return shortened;
        }
        let note = format!(
            "\n[cut here to stay under SNS's 256 KiB limit; the full details: {}]",
            self.details_at
        );
        let mut cut = shortened;
        truncate_to(&mut cut, budget.saturating_sub(note.len()));
        cut.push_str(&note);
        cut
    }

    /// Every family's headline; the detail of as many families as fit (failed ones first);
    /// a line that says how many were summarised and where to look.
    fn summarised(&self, budget: usize, line_max: Option<usize>) -> String {
        let line = |text: &str| match line_max {
            Some(max) => shorten(text, max),
            None => text.to_string(),
        };
        let head: Vec<String> = self.head.iter().map(|l| line(l)).collect();
        let tail: Vec<String> = self.tail.iter().map(|l| line(l)).collect();
        let summaries: Vec<String> = self.sections.iter().map(|s| line(&s.summary())).collect();
        let details: Vec<Vec<String>> = self
            .sections
            .iter()
            .map(|s| s.detail.iter().map(|l| line(l)).collect())
            .collect();
        // The note at its longest (every family summarised) is reserved up front.
        let everyone: Vec<usize> = (0..self.sections.len()).collect();
        let fixed = lines_len(&head)
            + lines_len(&summaries)
            + lines_len(&tail)
            + self.note(&everyone).len()
            + 1;
        let mut room = budget.saturating_sub(fixed);
        let mut order: Vec<usize> = (0..self.sections.len()).collect();
        // Failed families first, each group in the notice's order.
        order.sort_by_key(|&i| !self.sections[i].failed);
        let mut kept = vec![false; self.sections.len()];
        for i in order {
            let size = lines_len(&details[i]);
            if size <= room {
                room -= size;
                kept[i] = true;
            }
        }
        let left_out: Vec<usize> = (0..self.sections.len()).filter(|&i| !kept[i]).collect();
        let mut lines = head;
        if !left_out.is_empty() {
            lines.push(self.note(&left_out));
        }
        for (i, summary) in summaries.into_iter().enumerate() {
            if kept[i] && self.sections[i].headline.is_none() {
                lines.extend(details[i].iter().cloned());
                continue;
            }
            lines.push(summary);
            if kept[i] {
                lines.extend(details[i].iter().cloned());
            }
        }
        lines.extend(tail);
        join(lines.iter().map(String::as_str))
    }

    fn note(&self, left_out: &[usize]) -> String {
        let names: Vec<&str> = left_out
            .iter()
            .map(|&i| self.sections[i].family.as_str())
            .collect();
        let families = if names.len() == 1 {
            "1 family".to_string()
        } else {
            format!("{} families", names.len())
        };
        format!(
            "This notice is summarised to stay under SNS's 256 KiB limit: {families} ({}) show only their headline here. The full details: {}.",
            names.join(", "),
            self.details_at
        )
    }
}

/// The short notice sent when SNS refuses the full one: what happened, why, where to look.
pub fn fallback_body(headline: &str, full_bytes: usize, reason: &str, details_at: &str) -> String {
    let mut body = format!(
        "{headline}\n\nThe full notice ({full_bytes} bytes) could not be sent: {reason}.\nThe full details: {details_at}."
    );
    // Every part is short but the reason, which comes from SNS.
    truncate_to(&mut body, LINE_MAX_BYTES * 2);
    body
}

fn join<'a>(lines: impl Iterator<Item = &'a str>) -> String {
    lines.collect::<Vec<_>>().join("\n")
}

/// The bytes the lines take joined by line breaks (one more per line: an upper bound).
fn lines_len(lines: &[String]) -> usize {
    lines.iter().map(|l| l.len() + 1).sum()
}

/// `text` in at most `max` bytes, cut at a character boundary and marked.
fn shorten(text: &str, max: usize) -> String {
    const MARK: &str = " ... (cut)";
    if text.len() <= max {
        return text.to_string();
    }
    let mut cut = text.to_string();
    truncate_to(&mut cut, max.saturating_sub(MARK.len()));
    cut.push_str(MARK);
    cut
}

/// Truncate to at most `max` bytes at a character boundary.
fn truncate_to(text: &mut String, max: usize) {
    if text.len() > max {
        let mut end = max;
        while !text.is_char_boundary(end) {
            end -= 1;
        }
        text.truncate(end);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn section(family: &str, failed: bool, detail_bytes: usize) -> Section {
        Section {
            family: family.into(),
            headline: Some(format!(
                "Family {family}: {}.",
                if failed { "FAILED" } else { "published" }
            )),
            detail: vec!["é".repeat(detail_bytes / 2), String::new()],
            failed,
        }
    }

    fn notice(sections: Vec<Section>) -> Notice {
        Notice {
            head: vec!["The run ended.".into()],
            sections,
            tail: vec!["Execution: arn:x".into()],
            details_at: "`golden-ami why x`".into(),
        }
    }

    #[test]
    fn the_budget_is_the_sns_limit_less_the_attributes_and_a_margin() {
        assert_eq!(
            body_budget(&[("event", "FAILED"), ("pipeline", "p")]),
            262_144 - (5 + 6 + 6) - (8 + 6 + 1) - MARGIN_BYTES
        );
    }

    #[test]
    fn a_notice_that_fits_is_sent_whole() {
        let notice = notice(vec![section("a", true, 100), section("b", false, 100)]);
        let body = notice.render(10_000);
        assert!(!body.contains("summarised"), "{body}");
        assert_eq!(body.matches('é').count(), 100);
    }

    #[test]
    fn past_the_budget_failed_families_keep_their_detail_first_and_every_headline_stays() {
        let notice = notice(vec![
            section("ok-1", false, 4000),
            section("bad", true, 4000),
            section("ok-2", false, 4000),
        ]);
        let body = notice.render(9000);
        assert!(body.len() <= 9000, "{}", body.len());
        for headline in [
            "Family ok-1: published.",
            "Family bad: FAILED.",
            "Family ok-2: published.",
        ] {
            assert!(body.contains(headline), "{headline} missing");
        }
        // The failed family's detail is whole; one published family's fits after it.
        assert_eq!(body.matches('é').count(), 4000);
        assert!(body.contains(
            "This notice is summarised to stay under SNS's 256 KiB limit: 1 family (ok-2) show only their headline here. The full details: `golden-ami why x`."
        ), "{body}");
    }

    #[test]
    fn a_family_without_a_headline_is_named_when_its_detail_is_left_out() {
        let mut notice = notice(vec![section("a", true, 4000), section("b", true, 4000)]);
        for s in &mut notice.sections {
            s.headline = None;
        }
        let body = notice.render(5000);
        assert!(
            body.contains("Family b: where its pointers stand is left out here."),
            "{body}"
        );
        assert!(!body.contains("Family a:"), "{body}");
    }

    #[test]
    fn lines_too_long_on_their_own_are_shortened_and_the_rest_is_cut_at_a_character() {
        let mut notice = notice(vec![section("a", true, 10)]);
        notice.head.push(format!("Cause: {}", "é".repeat(100_000)));
        let body = notice.render(3000);
        assert!(body.len() <= 3000, "{}", body.len());
        assert!(body.contains(" ... (cut)"), "{body}");
        assert!(body.contains("Family a: FAILED."));
        assert!(body.ends_with("Execution: arn:x"), "{body}");

        notice.head = vec!["x".repeat(1000); 10];
        let body = notice.render(3000);
        assert!(body.len() <= 3000, "{}", body.len());
        assert!(
            body.ends_with("the full details: `golden-ami why x`]"),
            "{body}"
        );
    }

    #[test]
    fn the_fallback_says_what_could_not_be_sent_why_and_where_to_look() {
        assert_eq!(
            fallback_body(
                "The run ended FAILED.",
                300_000,
                "InvalidParameter: Message too long",
                "`golden-ami why x`"
            ),
            "The run ended FAILED.\n\nThe full notice (300000 bytes) could not be sent: InvalidParameter: Message too long.\nThe full details: `golden-ami why x`."
        );
        assert!(fallback_body("h", 1, &"r".repeat(100_000), "w").len() <= LINE_MAX_BYTES * 2);
    }
}

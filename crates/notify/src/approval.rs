//! The APPROVAL NEEDED message of a gated family (RequestApproval sends it).

use std::collections::BTreeMap;

use golden_ami_core::{NotifyEvent, PipelineState, RegionTarget};

use crate::budget::{self, Notice};
use crate::family::{change_lines, test_line};
use crate::{Message, PointerNow, attributes, shell_word, subject_line};

/// The approval request of a gated family (sent by RequestApproval): what approving
/// publishes, what each region's pointer holds now, what changed, the boot test, the deadline,
/// and the exact commands. `now` is each region's pointer read when the request is written
/// (by region); a region missing from it is described from what the run read.
pub fn approval_message(
    config: &golden_ami_core::Config,
    request: &golden_ami_core::ApprovalRequest,
    state: &PipelineState,
    now: &BTreeMap<String, PointerNow>,
) -> Message {
    let execution = request
        .execution_id
        .rsplit(':')
        .next()
        .unwrap_or(&request.execution_id);
    let home = state.family.as_ref().map(|f| f.home_region.as_str());
    let pointer = state
        .family
        .as_ref()
        .map(|f| f.pointer.as_str())
        .unwrap_or("the pointer");
    let mut lines = vec![format!(
        "Family {} has a new golden image, verified in every region and booted, and waits for your approval until {}.",
        request.family, request.deadline
    )];
    lines.push(format!("Approving moves {pointer} in:"));
    for image in &request.images {
        let read = run_read(state, &image.region);
        let from = holds(read, now.get(&image.region));
        lines.push(format!("- {}: {}{from}", image.region, image.ami_id));
    }
    lines.extend(change_lines(state));
    if let Some(test) = &state.test_status {
        lines.push(test_line(test));
    }
    let flags = format!(
        "--family {} --stack {} --stack-region {}",
        request.family,
        config.pipeline_name,
        home.unwrap_or(config.home_region.as_str())
    );
    let execution = shell_word(execution);
    let approve = format!("golden-ami approve {execution} {flags}");
    // The commands and the deadline are what the reader needs: they close the notice, which
    // keeps them whatever else a notice past SNS's limit leaves out.
    let tail = vec![
        String::new(),
        format!("To publish: {approve}"),
        format!("To refuse:  golden-ami deny {execution} {flags} --reason \"...\""),
        format!(
            "Without a decision by {}, nothing is published, the new copies are removed and the run reports the family FAILED (States.Timeout at AwaitApproval); the pointers keep their images either way until approved.",
            request.deadline
        ),
        format!("Execution: {}", request.execution_id),
    ];
    let detail = format!(
        "APPROVAL NEEDED: {} {}",
        request.family,
        request
            .images
            .first()
            .map(|image| image.ami_id.as_str())
            .unwrap_or_default()
    );
    let notice = Notice {
        head: lines,
        sections: Vec::new(),
        tail,
        details_at: format!(
            "`golden-ami status` (what waits, until {}); to publish: {approve}",
            request.deadline
        ),
    };
    let budget = budget::body_budget(&attributes(config, NotifyEvent::ApprovalRequested));
    Message {
        subject: subject_line(&config.pipeline_name, &detail),
        body: notice.render(budget),
        event: NotifyEvent::ApprovalRequested,
        details_at: notice.details_at,
    }
}

/// What the run read of a region's pointer: its region result's target, else the family's
/// `current.regions` (ReadCurrentAmi).
fn run_read<'a>(state: &'a PipelineState, region: &str) -> Option<&'a RegionTarget> {
    state
        .regions
        .iter()
        .filter_map(|result| result.target.as_ref())
        .chain(state.current.iter().flat_map(|current| &current.regions))
        .find(|target| target.region == region)
}

/// What a region's pointer holds, as a person deciding needs it: read now, since a pin or a
/// rollback may have moved it after the run read it, and PublishPointer will then refuse to
/// overwrite it (PointerChangedConcurrently) whatever the approval says.
fn holds(read: Option<&RegionTarget>, now: Option<&PointerNow>) -> String {
    let was = read.and_then(|t| t.ami_id.as_deref());
    let read_version = read.map(|t| t.parameter_version);
    match now {
        Some(PointerNow::Read {
            value,
            version,
            changed_by,
            changed_at,
        }) => {
            if read_version.is_none_or(|v| v == *version) {
                format!(" (now {value})")
            } else {
                let who = changed_by.as_deref().unwrap_or("someone");
                let when = changed_at
                    .as_deref()
                    .map(|at| format!(" at {at}"))
                    .unwrap_or_default();
                format!(
                    " (now {value}, version {version}: changed by {who}{when} since this run read {} (version {}); approving will not overwrite it in this region: PointerChangedConcurrently)",
                    was.unwrap_or("no pointer"),
                    read_version.unwrap_or_default()
                )
            }
        }
        Some(PointerNow::Missing) => {
            " (no pointer there yet: approving creates it and adds it to the region's pointer share)"
                .to_string()
        }
        Some(PointerNow::Unreadable(why)) => format!(
            " (could not be read now: {why}; {})",
            was.map_or("the run found no pointer there".to_string(), |was| format!(
                "{was} when the run read it"
            ))
        ),
        Some(PointerNow::NotRead) | None => match was {
            Some(was) => format!(" ({was} when the run read it)"),
            None => " (no pointer when the run read it)".to_string(),
        },
    }
}

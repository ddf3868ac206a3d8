//! The APPROVAL NEEDED message of a gated family (RequestApproval sends it).

use golden_ami_core::{NotifyEvent, PipelineState};

use crate::budget::{self, Notice};
use crate::family::{change_lines, test_line};
use crate::{Message, attributes, shell_word, subject_line};

/// The approval request of a gated family (sent by RequestApproval): what approving
/// publishes, what changed, the boot test, the deadline, and the exact commands.
pub fn approval_message(
    config: &golden_ami_core::Config,
    request: &golden_ami_core::ApprovalRequest,
    state: &PipelineState,
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
        let from = match (&state.current, home) {
            (Some(current), Some(home)) if home == image.region => {
                format!(" (now {})", current.ami_id)
            }
            _ => String::new(),
        };
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

//! Cleanup: remove what a run created and did not publish.
//!
//! - SUCCESS (a family published): deregister its intermediate (baked, account-key) image and
//!   delete its snapshots. A family of the direct encryption mode has none: its bake's image is
//!   the home region's golden image.
//! - FAILURE (a family failed): stop its bake or boot test if still running (the documents'
//!   onCancel routes terminate their instances), terminate an instance a document left behind,
//!   and remove its intermediate image and its golden copies in every region of the family.
//! - SWEEP (the run failed outside any family, or ended without its state: aborted, timed out):
//!   the same for every planned family, finding everything by this execution's deterministic
//!   names and tags alone.
//!
//! Images are found by their deterministic names as well as by the ids in the state, so an id
//! that never reached the state (a lost response, an aborted iteration) is no leak. It never
//! touches what a pointer holds, what this run published, or the run's source images.
//! Everything is idempotent: already gone is fine.

use aws_sdk_ec2::types::{Filter, Image, Tag};
use aws_sdk_ssm::types::{
    AutomationExecutionFilter, AutomationExecutionFilterKey, AutomationExecutionStatus,
};
use golden_ami_core::automation::get_automation;
use golden_ami_core::naming::{
    TAG_AUTOMATION_EXECUTION, TAG_POINTER_WRITE, TAG_TYPE, TYPE_GOLDEN, TYPE_INTERMEDIATE,
    golden_image_name, run_suffix,
};
use golden_ami_core::pacing;
use golden_ami_core::targets::DEFAULT_FAMILY;
use golden_ami_core::{
    ApprovalRequest, CleanupInput, CleanupMode, CleanupResult, Deps, Encryption, ExecutionContext,
    FamilyTarget, PipelineState, StepError, classify_sdk_error, error_code, read_pointer,
    stop_automation,
};

pub async fn handler(deps: &Deps, input: CleanupInput) -> Result<CleanupResult, StepError> {
    let state = &input.state;
    let mut result = CleanupResult::default();
    match input.mode {
        CleanupMode::Success => {
            let family = state.require_family()?;
            let baked = state.require_baked_ami_id()?;
            if family.encryption == Encryption::Copy {
                let protected = Protected::read(deps, family, Some(state)).await?;
                if let Some(reason) = protected.reason(baked) {
                    return Err(StepError::CleanupRefused(format!(
                        "the intermediate image {baked} is {reason}: refusing to remove it; check the run's state"
                    )));
                }
                let home = deps.clients.region(&family.home_region);
                remove_image(home.ec2(), baked, TYPE_INTERMEDIATE, &mut result).await?;
            }
            withdraw_approval(deps, &input.context, family, &mut result).await?;
            record_durations(deps, family, state, &mut result).await;
        }
        CleanupMode::Failure => {
            let family = state.require_family()?;
            sweep_family(deps, &input.context, family, Some(state), &mut result).await?;
        }
        CleanupMode::Sweep => {
            // Nothing was created before PlanRun produced a plan.
            let families = state
                .plan
                .as_ref()
                .map(|plan| plan.families.as_slice())
                .unwrap_or_default();
            for family in families {
                let family_state = state.family_result(&family.name);
                sweep_family(deps, &input.context, family, family_state, &mut result).await?;
            }
        }
    }
    tracing::info!(?result, "cleanup done");
    Ok(result)
}

/// A gated family's approval request (its task token), however its run ends: answered or
/// not, the request must not outlive the run. Already gone (`golden-ami approve` removes it)
/// is fine, and so is a name SSM refuses (ValidationException): no request can be stored
/// under it, so there is nothing to withdraw.
async fn withdraw_approval(
    deps: &Deps,
    context: &ExecutionContext,
    family: &FamilyTarget,
    result: &mut CleanupResult,
) -> Result<(), StepError> {
    if family.approval.is_none() {
        return Ok(());
    }
    let name = ApprovalRequest::parameter_name(
        &deps.config.approvals_path,
        context.execution_name(),
        &family.name,
    );
    match deps
        .clients
        .ssm()
        .delete_parameter()
        .name(&name)
        .send()
        .await
    {
        Ok(_) => result.withdrawn_approvals.push(name),
        Err(error)
            if error.as_service_error().is_some_and(|e| {
                e.is_parameter_not_found() || golden_ami_core::naming::is_invalid_parameter_name(e)
            }) => {}
        Err(error) => return Err(classify_sdk_error("ssm:DeleteParameter", error)),
    }
    Ok(())
}

/// A published family's bake, slowest copy and boot test join its history, so its next runs
/// wait about as long as they take (crates/core/src/pacing.rs). Best effort: a failure is
/// reported in the result and never fails the published family.
async fn record_durations(
    deps: &Deps,
    family: &FamilyTarget,
    state: &PipelineState,
    result: &mut CleanupResult,
) {
    let bake = state.bake_status.as_ref().and_then(|s| s.duration_seconds);
    let copy = state
        .regions
        .iter()
        .filter_map(|r| r.copy_status.as_ref().and_then(|s| s.duration_seconds))
        .max();
    let test = state.test_status.as_ref().and_then(|s| s.duration_seconds);
    if bake.is_none() && copy.is_none() && test.is_none() {
        return;
    }
    let name = pacing::parameter_name(&deps.config.durations_path, &family.name);
    let mut durations = pacing::read(deps.clients.ssm(), &name).await;
    durations.record(bake, copy, test);
    let written = match serde_json::to_string(&durations) {
        Ok(value) => deps
            .clients
            .ssm()
            .put_parameter()
            .name(&name)
            .description(format!(
                "What family {}'s last runs took (bake, slowest copy, boot test, in seconds): its next runs pace their polls by it",
                family.name
            ))
            .r#type(aws_sdk_ssm::types::ParameterType::String)
            .value(value)
            .overwrite(true)
            .send()
            .await
            .map(|_| ())
            .map_err(|error| classify_sdk_error("ssm:PutParameter", error).to_string()),
        Err(error) => Err(error.to_string()),
    };
    match written {
        Ok(()) => result.durations = Some(durations),
        Err(error) => {
            tracing::warn!(%name, %error, "the durations were not recorded");
            result.durations_not_recorded = Some(format!("{name}: {error}"));
        }
    }
}

/// Everything this execution created for `family`, wherever it is, removed unless protected.
async fn sweep_family(
    deps: &Deps,
    context: &ExecutionContext,
    family: &FamilyTarget,
    state: Option<&PipelineState>,
    result: &mut CleanupResult,
) -> Result<(), StepError> {
    let prefix = &deps.config.image_name_prefix;
    let home = deps.clients.region(&family.home_region);
    withdraw_approval(deps, context, family, result).await?;
    let protected = Protected::read(deps, family, state).await?;

    // Automations: those the state names, and any still running that this execution started
    // for this family (found by the names it gave them).
    let mut automations: Vec<String> = state
        .into_iter()
        .flat_map(|s| {
            [
                s.bake.as_ref().map(|b| &b.automation_execution_id),
                s.test.as_ref().map(|t| &t.automation_execution_id),
            ]
        })
        .flatten()
        .cloned()
        .collect();
    let names = RunNames::new(prefix, family, context)?;
    automations.extend(running_automations(deps, &names).await?);
    automations.sort();
    automations.dedup();
    for automation in &automations {
        stop_if_running(deps, automation, result).await?;
    }
    // A document whose own terminate step failed leaves its instance behind.
    terminate_leftover_instances(home.ec2(), &automations, &names, result).await?;

    // The bake's image, at home: the intermediate image, or (direct encryption) the home
    // region's golden image, which the golden name finds below as well.
    let baked_kind = family.encryption.baked_image_type();
    let mut intermediate: Vec<String> = state
        .and_then(PipelineState::baked_ami_id)
        .map(str::to_string)
        .into_iter()
        .collect();
    intermediate.extend(find_by_name(home.ec2(), &names.intermediate_pattern).await?);
    for id in dedup(intermediate) {
        remove_unless_protected(home.ec2(), &id, baked_kind, &protected, result).await?;
    }
    // The golden copies, in every region of the family.
    for region in &family.regions {
        let clients = deps.clients.region(&region.region);
        let mut copies: Vec<String> = state
            .into_iter()
            .flat_map(|s| s.regions.iter())
            .filter(|r| r.target.as_ref().is_some_and(|t| t.region == region.region))
            .filter_map(|r| r.copy.as_ref().map(|c| c.golden_ami_id.clone()))
            .collect();
        copies.extend(find_by_name(clients.ec2(), &names.golden).await?);
        for id in dedup(copies) {
            remove_unless_protected(clients.ec2(), &id, TYPE_GOLDEN, &protected, result).await?;
        }
    }
    Ok(())
}

fn dedup(mut ids: Vec<String>) -> Vec<String> {
    ids.sort();
    ids.dedup();
    ids
}

async fn remove_unless_protected(
    ec2: &aws_sdk_ec2::Client,
    id: &str,
    kind: &str,
    protected: &Protected,
    result: &mut CleanupResult,
) -> Result<(), StepError> {
    match protected.reason(id) {
        Some(reason) => {
            result.kept.push(format!("{id} ({reason})"));
            Ok(())
        }
        None => remove_image(ec2, id, kind, result).await,
    }
}

/// The names this execution gives a family's images and instances: deterministic, so a sweep
/// needs no state to find them.
pub struct RunNames {
    /// The golden copy's name, the same in every region.
    pub golden: String,
    /// A DescribeImages name filter for the intermediate image (its name holds the source id).
    pub intermediate_pattern: String,
    /// What the bake's TargetAmiName parameter starts and ends with.
    intermediate_start: String,
    suffix: String,
}

impl RunNames {
    pub fn new(
        prefix: &str,
        family: &FamilyTarget,
        context: &ExecutionContext,
    ) -> Result<Self, StepError> {
        let golden = golden_image_name(prefix, &family.name, context)?;
        let suffix = format!("-{}", run_suffix(&context.execution_id));
        let intermediate_start = if family.name == DEFAULT_FAMILY {
            format!("{prefix}-intermediate-")
        } else {
            format!("{prefix}-{}-intermediate-", family.name)
        };
        Ok(Self {
            intermediate_pattern: format!("{intermediate_start}*{suffix}"),
            golden,
            intermediate_start,
            suffix,
        })
    }

    pub fn is_intermediate(&self, name: &str) -> bool {
        name.starts_with(&self.intermediate_start) && name.ends_with(&self.suffix)
    }
}

/// Automations of the bake and test documents still running for this execution and family.
async fn running_automations(deps: &Deps, names: &RunNames) -> Result<Vec<String>, StepError> {
    let mut found = Vec::new();
    for document in [
        &deps.config.bake_document_name,
        &deps.config.test_document_name,
    ] {
        let listed = deps
            .clients
            .ssm()
            .describe_automation_executions()
            .filters(automation_filter(
                AutomationExecutionFilterKey::DocumentNamePrefix,
                vec![document.clone()],
            )?)
            .filters(automation_filter(
                AutomationExecutionFilterKey::ExecutionStatus,
                ["Pending", "InProgress", "Waiting"]
                    .map(str::to_string)
                    .to_vec(),
            )?)
            .send()
            .await
            .map_err(|error| classify_sdk_error("ssm:DescribeAutomationExecutions", error))?;
        for listed in listed.automation_execution_metadata_list() {
            let Some(id) = listed.automation_execution_id() else {
                continue;
            };
            if listed.document_name() != Some(document.as_str()) {
                continue;
            }
            let Some(execution) = get_automation(deps.clients.ssm(), id).await? else {
                continue;
            };
            let parameter = |name: &str| {
                execution
                    .parameters()
                    .and_then(|p| p.get(name))
                    .and_then(|values| values.first())
                    .cloned()
                    .unwrap_or_default()
            };
            // A bake names its image as intermediate, or as golden in the direct mode.
            if names.is_intermediate(&parameter("TargetAmiName"))
                || parameter("TargetAmiName") == names.golden
                || parameter("TestName") == names.golden
            {
                found.push(id.to_string());
            }
        }
    }
    Ok(found)
}

fn automation_filter(
    key: AutomationExecutionFilterKey,
    values: Vec<String>,
) -> Result<AutomationExecutionFilter, StepError> {
    AutomationExecutionFilter::builder()
        .key(key)
        .set_values(Some(values))
        .build()
        .map_err(|error| StepError::invalid_input(format!("automation filter: {error}")))
}

/// Images cleanup must never remove, with the reason.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Protected(Vec<(String, String)>);

impl Protected {
    /// What every pointer of the family holds now, what this run published, and the images
    /// the run started from.
    pub async fn read(
        deps: &Deps,
        family: &FamilyTarget,
        state: Option<&PipelineState>,
    ) -> Result<Self, StepError> {
        let mut images = Vec::new();
        for region in &family.regions {
            let clients = deps.clients.region(&region.region);
            let ssm = clients.ssm();
            match read_pointer(ssm, &family.pointer).await {
                Ok(pointer) => images.push((
                    pointer.value,
                    format!(
                        "held by the pointer {} in {}",
                        family.pointer, region.region
                    ),
                )),
                Err(StepError::PointerNotFound { .. }) => {}
                Err(error) => return Err(error),
            }
        }
        let mut protected = Self(images);
        if let Some(state) = state {
            protected.add_state(state);
        }
        Ok(protected)
    }

    fn add_state(&mut self, state: &PipelineState) {
        let published = state
            .pointers
            .iter()
            .filter_map(|p| p.publish.as_ref())
            .chain(state.publish.as_ref());
        for publish in published {
            self.0.push((
                publish.new_ami_id.clone(),
                format!("published by this run in {}", publish.region),
            ));
        }
        if let Some(current) = &state.current {
            for region in &current.regions {
                if let Some(ami_id) = &region.ami_id {
                    self.0.push((
                        ami_id.clone(),
                        format!(
                            "the golden image this run started from in {}",
                            region.region
                        ),
                    ));
                }
            }
            self.0.push((
                current.ami_id.clone(),
                "the previous golden image this run started from".to_string(),
            ));
        }
    }

    pub fn reason(&self, image_id: &str) -> Option<&str> {
        self.0
            .iter()
            .find(|(id, _)| id == image_id)
            .map(|(_, reason)| reason.as_str())
    }
}

async fn stop_if_running(
    deps: &Deps,
    id: &str,
    result: &mut CleanupResult,
) -> Result<(), StepError> {
    let output = match deps
        .clients
        .ssm()
        .get_automation_execution()
        .automation_execution_id(id)
        .send()
        .await
    {
        Ok(output) => output,
        Err(error)
            if error
                .as_service_error()
                .is_some_and(|service| service.is_automation_execution_not_found_exception()) =>
        {
            return Ok(());
        }
        Err(error) => return Err(classify_sdk_error("ssm:GetAutomationExecution", error)),
    };
    let status = output
        .automation_execution()
        .and_then(|execution| execution.automation_execution_status());
    if !status.is_some_and(is_active) {
        return Ok(());
    }
    stop_automation(deps.clients.ssm(), id).await?;
    result.stopped_automations.push(id.to_string());
    Ok(())
}

pub fn is_active(status: &AutomationExecutionStatus) -> bool {
    matches!(
        status,
        AutomationExecutionStatus::Pending
            | AutomationExecutionStatus::Inprogress
            | AutomationExecutionStatus::Waiting
            | AutomationExecutionStatus::RunbookInprogress
            | AutomationExecutionStatus::Scheduled
    )
}

/// Instance states that still cost money and may still run code.
const ALIVE: &[&str] = &["pending", "running", "stopping", "stopped"];

/// Terminate the instances the run's automations launched (they tag them with their execution
/// id) that are still alive. Terminating one the document is terminating too is harmless.
async fn terminate_leftover_instances(
    ec2: &aws_sdk_ec2::Client,
    automations: &[String],
    names: &RunNames,
    result: &mut CleanupResult,
) -> Result<(), StepError> {
    // The documents tag their instances with the automation's id and name them after the image.
    let mut by: Vec<Filter> = vec![
        Filter::builder()
            .name("tag:Name")
            .values(format!("golden-ami-bake {}", names.intermediate_pattern))
            .values(format!("golden-ami-bake {}", names.golden))
            .values(format!("golden-ami-test {}", names.golden))
            .build(),
    ];
    if !automations.is_empty() {
        by.push(
            Filter::builder()
                .name(format!("tag:{TAG_AUTOMATION_EXECUTION}"))
                .set_values(Some(automations.to_vec()))
                .build(),
        );
    }
    let mut alive: Vec<String> = Vec::new();
    for filter in by {
        let output = ec2
            .describe_instances()
            .filters(filter)
            .filters(
                Filter::builder()
                    .name("instance-state-name")
                    .set_values(Some(ALIVE.iter().map(|s| s.to_string()).collect()))
                    .build(),
            )
            .send()
            .await
            .map_err(|error| classify_sdk_error("ec2:DescribeInstances", error))?;
        alive.extend(
            output
                .reservations()
                .iter()
                .flat_map(|reservation| reservation.instances())
                .filter_map(|instance| instance.instance_id().map(str::to_string)),
        );
    }
    let alive = dedup(alive);
    if alive.is_empty() {
        return Ok(());
    }
    match ec2
        .terminate_instances()
        .set_instance_ids(Some(alive.clone()))
        .send()
        .await
    {
        Ok(_) => result.terminated_instances.extend(alive),
        Err(error)
            if error_code(&error).is_some_and(|code| code.starts_with("InvalidInstanceID.")) => {}
        Err(error) => return Err(classify_sdk_error("ec2:TerminateInstances", error)),
    }
    Ok(())
}

/// Tag untagged resources of this run with the pipeline's Type (the only tag cleanup may add).
async fn tag_type(
    ec2: &aws_sdk_ec2::Client,
    resources: Vec<String>,
    kind: &str,
) -> Result<(), StepError> {
    ec2.create_tags()
        .set_resources(Some(resources))
        .tags(Tag::builder().key(TAG_TYPE).value(kind).build())
        .send()
        .await
        .map_err(|error| classify_sdk_error("ec2:CreateTags", error))?;
    Ok(())
}

async fn find_by_name(ec2: &aws_sdk_ec2::Client, name: &str) -> Result<Vec<String>, StepError> {
    let output = ec2
        .describe_images()
        .owners("self")
        .filters(Filter::builder().name("name").values(name).build())
        .send()
        .await
        .map_err(|error| classify_sdk_error("ec2:DescribeImages", error))?;
    Ok(output
        .images()
        .iter()
        .filter_map(|image| image.image_id().map(str::to_string))
        .collect())
}

/// The EBS snapshots behind an image.
pub fn snapshot_ids(image: &Image) -> Vec<String> {
    image
        .block_device_mappings()
        .iter()
        .filter_map(|mapping| mapping.ebs()?.snapshot_id().map(str::to_string))
        .collect()
}

/// The pointer PublishPointer was writing to this image (its TAG_POINTER_WRITE tag), if any.
pub fn pointer_write(image: &Image) -> Option<&str> {
    image
        .tags()
        .iter()
        .find(|tag| tag.key() == Some(TAG_POINTER_WRITE))
        .and_then(|tag| tag.value())
}

/// Deregister an image and delete its snapshots; an image or snapshot already gone is fine.
/// An image a pointer write was issued for is kept (see `pointer_write`).
async fn remove_image(
    ec2: &aws_sdk_ec2::Client,
    id: &str,
    kind: &str,
    result: &mut CleanupResult,
) -> Result<(), StepError> {
    let image = match ec2.describe_images().image_ids(id).send().await {
        Ok(output) => output.images().first().cloned(),
        Err(error) if error_code(&error).is_some_and(|code| code.starts_with("InvalidAMIID.")) => {
            None
        }
        Err(error) => return Err(classify_sdk_error("ec2:DescribeImages", error)),
    };
    if let Some(pointer) = image.as_ref().and_then(pointer_write) {
        // PublishPointer wrote a pointer to it: SSM validates that write asynchronously, so the
        // pointer may still come to hold it. Removing it could leave a pointer on nothing.
        result.kept.push(format!(
            "{id} (a write of the pointer {pointer} to it was issued, and SSM may still validate it: not removed; once no pointer holds it, Retain removes it in a later run)"
        ));
        return Ok(());
    }
    let mut snapshots = image.as_ref().map(snapshot_ids).unwrap_or_default();
    if let Some(image) = &image {
        // A create that failed half way leaves its image (and snapshots) untagged; the removal
        // rights only cover what carries the pipeline's Type tag, so tag it first.
        if !image.tags().iter().any(|tag| tag.key() == Some(TAG_TYPE)) {
            let mut resources = vec![id.to_string()];
            resources.extend(snapshots.iter().cloned());
            tag_type(ec2, resources, kind).await?;
            result.tagged_untagged.push(id.to_string());
        }
    }
    if image.is_some() {
        match ec2.deregister_image().image_id(id).send().await {
            Ok(_) => result.deregistered_images.push(id.to_string()),
            Err(error)
                if error_code(&error).is_some_and(|code| code.starts_with("InvalidAMIID.")) => {}
            Err(error) => return Err(classify_sdk_error("ec2:DeregisterImage", error)),
        }
    }
    // A retry after a partial cleanup: the image is gone but its snapshots may not be. EC2
    // names the image in the descriptions of the snapshots it makes for it.
    let leftovers = ec2
        .describe_snapshots()
        .owner_ids("self")
        .filters(
            Filter::builder()
                .name("description")
                .values(format!("*{id}*"))
                .build(),
        )
        .send()
        .await
        .map_err(|error| classify_sdk_error("ec2:DescribeSnapshots", error))?;
    let untagged: Vec<String> = leftovers
        .snapshots()
        .iter()
        .filter(|snapshot| {
            !snapshot
                .tags()
                .iter()
                .any(|tag| tag.key() == Some(TAG_TYPE))
        })
        .filter_map(|snapshot| snapshot.snapshot_id().map(str::to_string))
        .filter(|snapshot| !snapshots.contains(snapshot))
        .collect();
    if !untagged.is_empty() {
        tag_type(ec2, untagged, kind).await?;
    }
    snapshots.extend(
        leftovers
            .snapshots()
            .iter()
            .filter_map(|snapshot| snapshot.snapshot_id().map(str::to_string)),
    );
    snapshots.sort();
    snapshots.dedup();
    for snapshot in snapshots {
        match ec2.delete_snapshot().snapshot_id(&snapshot).send().await {
            Ok(_) => result.deleted_snapshots.push(snapshot),
            Err(error) => match error_code(&error) {
                Some("InvalidSnapshot.NotFound") => {}
                // Another image still uses it (e.g. a copy made from it): not ours to delete.
                Some("InvalidSnapshot.InUse") => result
                    .kept
                    .push(format!("{snapshot} (still used by another image)")),
                _ => return Err(classify_sdk_error("ec2:DeleteSnapshot", error)),
            },
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use aws_sdk_ec2::Client as Ec2;
    use aws_sdk_ec2::operation::create_tags::CreateTagsOutput;
    use aws_sdk_ec2::operation::delete_snapshot::{DeleteSnapshotError, DeleteSnapshotOutput};
    use aws_sdk_ec2::operation::deregister_image::DeregisterImageOutput;
    use aws_sdk_ec2::operation::describe_images::{DescribeImagesError, DescribeImagesOutput};
    use aws_sdk_ec2::operation::describe_instances::DescribeInstancesOutput;
    use aws_sdk_ec2::operation::describe_snapshots::DescribeSnapshotsOutput;
    use aws_sdk_ec2::operation::terminate_instances::TerminateInstancesOutput;
    use aws_sdk_ec2::types::{BlockDeviceMapping, EbsBlockDevice, ImageState};
    use aws_sdk_ec2::types::{Instance, Reservation};
    use aws_sdk_ssm::Client as Ssm;
    use aws_sdk_ssm::operation::delete_parameter::{DeleteParameterError, DeleteParameterOutput};
    use aws_sdk_ssm::operation::describe_automation_executions::DescribeAutomationExecutionsOutput;
    use aws_sdk_ssm::operation::get_automation_execution::GetAutomationExecutionOutput;
    use aws_sdk_ssm::operation::get_parameter::GetParameterOutput;
    use aws_sdk_ssm::operation::put_parameter::{PutParameterError, PutParameterOutput};
    use aws_sdk_ssm::operation::stop_automation_execution::StopAutomationExecutionOutput;
    use aws_sdk_ssm::types::StopType;
    use aws_sdk_ssm::types::error::ParameterNotFound;
    use aws_sdk_ssm::types::{AutomationExecution, Parameter};
    use golden_ami_core::testing::{self, MockClients, Rule, mock};

    use super::*;

    const SUCCESS: &str = include_str!("../../../events/cleanup/success.json");
    const FAILURE_BEFORE: &str =
        include_str!("../../../events/cleanup/failure-before-publish.json");
    const FAILURE_AFTER: &str = include_str!("../../../events/cleanup/failure-after-publish.json");
    const FAILURE_DURING_BAKE: &str =
        include_str!("../../../events/cleanup/failure-during-bake.json");
    const SWEEP: &str = include_str!("../../../events/cleanup/sweep.json");
    const OLD: &str = "ami-0123456789abcdef0";
    const BAKED: &str = "ami-0bbbbbbbbbbbbbbbb";
    const GOLDEN: &str = "ami-0ccccccccccccccc0";
    const AUTOMATION: &str = "4c5d6e7f-1111-4222-8333-944455556666";
    /// Another execution's bake, running at the same time.
    const THEIRS: &str = "99999999-1111-4222-8333-944455556666";

    fn pointer(value: &'static str) -> Rule {
        mock!(Ssm::get_parameter).then_output(move || {
            GetParameterOutput::builder()
                .parameter(
                    Parameter::builder()
                        .name(testing::POINTER)
                        .value(value)
                        .version(7)
                        .build(),
                )
                .build()
        })
    }

    fn image_with_snapshot(id: &str, snapshot: &str) -> Image {
        Image::builder()
            .image_id(id)
            .state(ImageState::Available)
            .tags(
                Tag::builder()
                    .key(TAG_TYPE)
                    .value(TYPE_INTERMEDIATE)
                    .build(),
            )
            .block_device_mappings(
                BlockDeviceMapping::builder()
                    .device_name("/dev/xvda")
                    .ebs(EbsBlockDevice::builder().snapshot_id(snapshot).build())
                    .build(),
            )
            .build()
    }

    /// DescribeImages by id answers the image with one snapshot named after it.
    fn describe(id: &'static str) -> Rule {
        mock!(Ec2::describe_images)
            .match_requests(move |request| request.image_ids() == [id])
            .then_output(move || {
                DescribeImagesOutput::builder()
                    .images(image_with_snapshot(id, &format!("snap-{}", &id[4..])))
                    .build()
            })
    }

    fn by_name_none() -> Rule {
        mock!(Ec2::describe_images)
            .match_requests(|request| !request.filters().is_empty())
            .then_output(|| DescribeImagesOutput::builder().build())
    }

    /// GetAutomationExecution: the automations of the run ended (Success).
    fn finished_automation() -> Rule {
        mock!(Ssm::get_automation_execution).then_output(|| {
            GetAutomationExecutionOutput::builder()
                .automation_execution(
                    AutomationExecution::builder()
                        .automation_execution_status(AutomationExecutionStatus::Success)
                        .build(),
                )
                .build()
        })
    }

    fn deregister() -> Rule {
        mock!(Ec2::deregister_image).then_output(|| DeregisterImageOutput::builder().build())
    }

    fn no_leftovers() -> Rule {
        mock!(Ec2::describe_snapshots).then_output(|| DescribeSnapshotsOutput::builder().build())
    }

    fn delete() -> Rule {
        mock!(Ec2::delete_snapshot).then_output(|| DeleteSnapshotOutput::builder().build())
    }

    /// DescribeAutomationExecutions: nothing of either document is running.
    fn none_running() -> Rule {
        mock!(Ssm::describe_automation_executions)
            .then_output(|| DescribeAutomationExecutionsOutput::builder().build())
    }

    fn no_instances() -> Rule {
        mock!(Ec2::describe_instances).then_output(|| DescribeInstancesOutput::builder().build())
    }

    #[tokio::test]
    async fn success_removes_only_the_intermediate_image_and_its_snapshot() {
        let result = succeed(testing::event(SUCCESS), &[]).await;
        assert_eq!(result.deleted_snapshots, ["snap-0bbbbbbbbbbbbbbbb"]);
        // Nothing to record: the event's steps reported no durations.
        assert_eq!(result.durations, None);
    }

    /// A SUCCESS cleanup that removes the intermediate image, with `ssm` rules tried before
    /// the pointer's (which answers any GetParameter).
    async fn succeed(input: CleanupInput, ssm: &[&Rule]) -> CleanupResult {
        let (get, desc, dereg, left, del) = (
            pointer(GOLDEN),
            describe(BAKED),
            deregister(),
            no_leftovers(),
            delete(),
        );
        let mut rules = ssm.to_vec();
        rules.push(&get);
        let deps = MockClients {
            ssm: rules,
            ec2: vec![&desc, &dereg, &left, &del],
            ..Default::default()
        }
        .deps();
        let result = handler(&deps, input).await.unwrap();
        assert_eq!(result.deregistered_images, [BAKED]);
        result
    }

    #[tokio::test]
    async fn a_gated_family_s_approval_request_is_withdrawn_gone_or_not() {
        let mut input: CleanupInput = testing::event(SUCCESS);
        input.state.family.as_mut().expect("a family").approval =
            Some(golden_ami_core::targets::ApprovalGate {
                timeout_seconds: 3600,
            });
        let name = format!(
            "/golden-ami-pipeline/approvals/{}/default",
            input.context.execution_name()
        );
        let expected = name.clone();
        let withdraw = mock!(Ssm::delete_parameter)
            .match_requests(move |r| r.name() == Some(expected.as_str()))
            .then_output(|| DeleteParameterOutput::builder().build());
        let result = succeed(input.clone(), &[&withdraw]).await;
        assert_eq!(withdraw.num_calls(), 1);
        assert_eq!(result.withdrawn_approvals, std::slice::from_ref(&name));

        let already_gone = mock!(Ssm::delete_parameter).then_error(|| {
            DeleteParameterError::ParameterNotFound(ParameterNotFound::builder().build())
        });
        let result = succeed(input, &[&already_gone]).await;
        assert_eq!(already_gone.num_calls(), 1);
        assert!(result.withdrawn_approvals.is_empty());
    }

    #[tokio::test]
    async fn a_run_whose_name_ssm_refuses_withdraws_the_request_under_its_safe_name() {
        let mut input: CleanupInput = testing::event(SUCCESS);
        input.state.family.as_mut().expect("a family").approval =
            Some(golden_ami_core::targets::ApprovalGate {
                timeout_seconds: 3600,
            });
        input.context.execution_id =
            "arn:aws:states:eu-west-1:111122223333:execution:golden-ami-pipeline:rerun@dec".into();
        // The name RequestApproval stored it under: no `@`, the hash of the real name.
        let name = format!(
            "/golden-ami-pipeline/approvals/rerun_dec-{}/default",
            &golden_ami_core::naming::parameter_segment("rerun@dec")["rerun_dec-".len()..]
        );
        let expected = name.clone();
        let withdraw = mock!(Ssm::delete_parameter)
            .match_requests(move |r| r.name() == Some(expected.as_str()))
            .then_output(|| DeleteParameterOutput::builder().build());
        let result = succeed(input.clone(), &[&withdraw]).await;
        assert_eq!(withdraw.num_calls(), 1);
        assert_eq!(result.withdrawn_approvals, [name]);

        // A name SSM refuses anyway holds no request: nothing to withdraw, not an error.
        let refused = mock!(Ssm::delete_parameter).then_error(|| {
            DeleteParameterError::generic(testing::service_error(
                "ValidationException",
                "Parameter name: can't be prefixed with \"ssm\" (case-insensitive). If formed as a path, it can consist of sub-paths divided by slash symbol; each sub-path can be formed as a mix of letters, numbers and the following 3 symbols .-_",
            ))
        });
        let result = succeed(input.clone(), &[&refused]).await;
        assert_eq!(refused.num_calls(), 1);
        assert!(result.withdrawn_approvals.is_empty());

        // Any other refusal still fails the cleanup, named.
        let denied = mock!(Ssm::delete_parameter).then_error(|| {
            DeleteParameterError::generic(testing::service_error(
                "AccessDeniedException",
                "not authorized to perform ssm:DeleteParameter",
            ))
        });
        let (get, desc, dereg, left, del) = (
            pointer(GOLDEN),
            describe(BAKED),
            deregister(),
            no_leftovers(),
            delete(),
        );
        let deps = MockClients {
            ssm: vec![&denied, &get],
            ec2: vec![&desc, &dereg, &left, &del],
            ..Default::default()
        }
        .deps();
        let error = handler(&deps, input).await.unwrap_err();
        assert_eq!(denied.num_calls(), 1);
        assert!(error.to_string().contains("ssm:DeleteParameter"), "{error}");
    }

    #[tokio::test]
    async fn success_records_what_the_run_took_for_the_next_runs_and_never_fails_on_it() {
        let mut input: CleanupInput = testing::event(SUCCESS);
        let state = &mut input.state;
        state.bake_status.get_or_insert_default().duration_seconds = Some(2400);
        state.test_status.get_or_insert_default().duration_seconds = Some(600);
        // A second region whose copy was slower.
        let other = state.regions[0].clone();
        state.regions.push(other);
        for (region, seconds) in state.regions.iter_mut().zip([900, 1200]) {
            region.copy_status = Some(golden_ami_core::CopyStatus {
                done: true,
                state: "available".into(),
                duration_seconds: Some(seconds),
            });
        }
        let history = testing::durations(Some(
            r#"{"bake": [1, 2, 3, 4, 5], "copy": [], "test": [7]}"#,
        ));
        let recorded = mock!(Ssm::put_parameter)
            .match_requests(|r| {
                r.name() == Some("/golden-ami-pipeline/durations/default")
                    && r.overwrite() == Some(true)
            })
            .then_output(|| PutParameterOutput::builder().version(2).build());
        let result = succeed(input.clone(), &[&history, &recorded]).await;
        assert_eq!(recorded.num_calls(), 1);
        let durations = result.durations.unwrap();
        // The last five bakes, the slowest region's copy, the test.
        assert_eq!(durations.bake, [2, 3, 4, 5, 2400]);
        assert_eq!(durations.copy, [1200]);
        assert_eq!(durations.test, [7, 600]);

        // Not allowed to write it: reported, and the published family's cleanup still succeeds.
        let refused = mock!(Ssm::put_parameter).then_error(|| {
            PutParameterError::generic(testing::service_error(
                "AccessDeniedException",
                "not authorized to perform ssm:PutParameter",
            ))
        });
        let result = succeed(input, &[&history, &refused]).await;
        assert_eq!(result.durations, None);
        assert!(
            result
                .durations_not_recorded
                .as_deref()
                .is_some_and(|e| e.contains("AccessDeniedException")),
            "{result:?}"
        );
    }

    #[tokio::test]
    async fn success_of_a_direct_family_removes_nothing_its_bake_made() {
        // The bake's image is the published home golden image: no EC2 call at all (the mocked
        // client fails on any).
        let mut input: CleanupInput = testing::event(SUCCESS);
        input.state.family.as_mut().expect("a family").encryption = Encryption::Direct;
        let deps = MockClients::default().deps();
        let result = handler(&deps, input).await.unwrap();
        assert!(result.deregistered_images.is_empty() && result.deleted_snapshots.is_empty());
    }

    #[tokio::test]
    async fn success_refuses_to_remove_an_image_the_pointer_holds() {
        let (get, dereg) = (pointer(BAKED), deregister());
        let deps = MockClients {
            ssm: vec![&get],
            ec2: vec![&dereg],
            ..Default::default()
        }
        .deps();
        let error = handler(&deps, testing::event(SUCCESS)).await.unwrap_err();
        assert_eq!(error.error_type(), "CleanupRefused");
        assert!(error.to_string().contains("held by the pointer"));
        assert_eq!(dereg.num_calls(), 0);
    }

    /// A family that failed before publishing, its golden copy answered by `golden`.
    async fn fail_before_publishing(golden: Rule) -> CleanupResult {
        let (instances, running, automation) =
            (no_instances(), none_running(), finished_automation());
        let (get, baked, names, dereg, left, del) = (
            pointer(OLD),
            describe(BAKED),
            by_name_none(),
            deregister(),
            no_leftovers(),
            delete(),
        );
        let deps = MockClients {
            ssm: vec![&get, &automation, &running],
            ec2: vec![&instances, &baked, &golden, &names, &dereg, &left, &del],
            ..Default::default()
        }
        .deps();
        handler(&deps, testing::event(FAILURE_BEFORE))
            .await
            .unwrap()
    }

    #[tokio::test]
    async fn failure_before_publishing_removes_the_intermediate_image_and_the_copy() {
        let result = fail_before_publishing(describe(GOLDEN)).await;
        assert_eq!(result.deregistered_images, [BAKED, GOLDEN]);
        assert_eq!(result.deleted_snapshots.len(), 2);
        assert!(result.stopped_automations.is_empty());
        assert!(result.kept.is_empty());
    }

    #[tokio::test]
    async fn a_copy_a_pointer_write_was_issued_for_is_kept_while_ssm_may_validate_it() {
        // The pointer still reads as before (its write is pending): only the tag says so.
        let written = mock!(Ec2::describe_images)
            .match_requests(|request| request.image_ids() == [GOLDEN])
            .then_output(|| {
                let mut image = image_with_snapshot(GOLDEN, "snap-0ccccccccccccccc0");
                image.tags.get_or_insert_with(Vec::new).push(
                    Tag::builder()
                        .key(TAG_POINTER_WRITE)
                        .value(testing::POINTER)
                        .build(),
                );
                DescribeImagesOutput::builder().images(image).build()
            });
        let result = fail_before_publishing(written).await;
        assert_eq!(result.deregistered_images, [BAKED]);
        assert_eq!(result.kept.len(), 1, "{:?}", result.kept);
        assert!(
            result.kept[0].starts_with(GOLDEN)
                && result.kept[0].contains("SSM may still validate it"),
            "{:?}",
            result.kept
        );
    }

    #[tokio::test]
    async fn failure_after_publishing_keeps_the_published_copy() {
        let instances = no_instances();
        let running = none_running();
        let automation = finished_automation();
        let (get, baked, names, dereg, left, del) = (
            pointer(GOLDEN),
            describe(BAKED),
            by_name_none(),
            deregister(),
            no_leftovers(),
            delete(),
        );
        let deregistered_golden = mock!(Ec2::deregister_image)
            .match_requests(|request| request.image_id() == Some(GOLDEN))
            .then_output(|| DeregisterImageOutput::builder().build());
        let deps = MockClients {
            ssm: vec![&get, &automation, &running],
            ec2: vec![
                &instances,
                &deregistered_golden,
                &baked,
                &names,
                &dereg,
                &left,
                &del,
            ],
            ..Default::default()
        }
        .deps();
        let result = handler(&deps, testing::event(FAILURE_AFTER)).await.unwrap();
        assert_eq!(result.deregistered_images, [BAKED]);
        assert_eq!(deregistered_golden.num_calls(), 0);
        assert_eq!(result.kept.len(), 1);
        assert!(result.kept[0].starts_with(GOLDEN), "{:?}", result.kept);
    }

    #[tokio::test]
    async fn failure_during_the_bake_stops_it_and_finds_its_image_by_name() {
        let instances = no_instances();
        let running = none_running();
        let automation = mock!(Ssm::get_automation_execution)
            .match_requests(|request| request.automation_execution_id() == Some(AUTOMATION))
            .then_output(|| {
                GetAutomationExecutionOutput::builder()
                    .automation_execution(
                        AutomationExecution::builder()
                            .automation_execution_status(AutomationExecutionStatus::Inprogress)
                            .build(),
                    )
                    .build()
            });
        let stop = mock!(Ssm::stop_automation_execution)
            .match_requests(|request| request.r#type() == Some(&StopType::Cancel))
            .then_output(|| StopAutomationExecutionOutput::builder().build());
        let named = mock!(Ec2::describe_images)
            .match_requests(|request| {
                request.owners() == ["self"]
                    && request
                        .filters()
                        .first()
                        .and_then(|f| f.values().first())
                        .is_some_and(|name| {
                            // The run's intermediate names, whatever the source image was.
                            name == "golden-ami-intermediate-*-0420140d"
                        })
            })
            .then_output(|| {
                DescribeImagesOutput::builder()
                    .images(Image::builder().image_id(BAKED).build())
                    .build()
            });
        let (get, baked, other_names, dereg, left, del) = (
            pointer(OLD),
            describe(BAKED),
            by_name_none(),
            deregister(),
            no_leftovers(),
            delete(),
        );
        let deps = MockClients {
            ssm: vec![&get, &automation, &stop, &running],
            ec2: vec![
                &instances,
                &named,
                &baked,
                &other_names,
                &dereg,
                &left,
                &del,
            ],
            ..Default::default()
        }
        .deps();
        let result = handler(&deps, testing::event(FAILURE_DURING_BAKE))
            .await
            .unwrap();
        assert_eq!(result.stopped_automations, [AUTOMATION]);
        assert_eq!(stop.num_calls(), 1);
        assert_eq!(result.deregistered_images, [BAKED]);
    }

    #[tokio::test]
    async fn an_instance_left_by_a_failed_terminate_step_is_terminated() {
        let running = none_running();
        let automation = mock!(Ssm::get_automation_execution).then_output(|| {
            GetAutomationExecutionOutput::builder()
                .automation_execution(
                    AutomationExecution::builder()
                        .automation_execution_status(AutomationExecutionStatus::Failed)
                        .build(),
                )
                .build()
        });
        let alive = mock!(Ec2::describe_instances)
            .match_requests(|request| {
                request.filters().iter().any(|f| {
                    f.name() == Some("tag:golden-ami:automation-execution")
                        && f.values() == [AUTOMATION]
                })
            })
            .then_output(|| {
                DescribeInstancesOutput::builder()
                    .reservations(
                        Reservation::builder()
                            .instances(
                                Instance::builder()
                                    .instance_id("i-0left0000000000000")
                                    .build(),
                            )
                            .build(),
                    )
                    .build()
            });
        let by_name = no_instances();
        let terminate = mock!(Ec2::terminate_instances)
            .match_requests(|request| request.instance_ids() == ["i-0left0000000000000"])
            .then_output(|| TerminateInstancesOutput::builder().build());
        let (get, baked, names, dereg, left, del) = (
            pointer(OLD),
            describe(BAKED),
            by_name_none(),
            deregister(),
            no_leftovers(),
            delete(),
        );
        let golden = describe(GOLDEN);
        let deps = MockClients {
            ssm: vec![&get, &automation, &running],
            ec2: vec![
                &alive, &by_name, &terminate, &baked, &golden, &names, &dereg, &left, &del,
            ],
            ..Default::default()
        }
        .deps();
        let result = handler(&deps, testing::event(FAILURE_BEFORE))
            .await
            .unwrap();
        assert_eq!(result.terminated_instances, ["i-0left0000000000000"]);
        assert_eq!(terminate.num_calls(), 1);
    }

    #[tokio::test]
    async fn an_image_a_create_left_untagged_is_tagged_then_removed() {
        let untagged = mock!(Ec2::describe_images)
            .match_requests(|request| request.image_ids() == [BAKED])
            .then_output(|| {
                let mut image = image_with_snapshot(BAKED, "snap-0bbbbbbbbbbbbbbbb");
                image.tags = None;
                DescribeImagesOutput::builder().images(image).build()
            });
        let tag = mock!(Ec2::create_tags)
            .match_requests(|request| {
                request.resources() == [BAKED, "snap-0bbbbbbbbbbbbbbbb"]
                    && request
                        .tags()
                        .iter()
                        .all(|t| t.key() == Some(TAG_TYPE) && t.value() == Some(TYPE_INTERMEDIATE))
            })
            .then_output(|| CreateTagsOutput::builder().build());
        let (get, dereg, left, del) = (pointer(GOLDEN), deregister(), no_leftovers(), delete());
        let deps = MockClients {
            ssm: vec![&get],
            ec2: vec![&untagged, &tag, &dereg, &left, &del],
            ..Default::default()
        }
        .deps();
        let result = handler(&deps, testing::event(SUCCESS)).await.unwrap();
        assert_eq!(tag.num_calls(), 1);
        assert_eq!(result.tagged_untagged, [BAKED]);
        assert_eq!(result.deregistered_images, [BAKED]);
        assert_eq!(result.deleted_snapshots, ["snap-0bbbbbbbbbbbbbbbb"]);
    }

    #[tokio::test]
    async fn images_and_snapshots_already_gone_are_fine() {
        let gone = mock!(Ec2::describe_images)
            .match_requests(|request| request.image_ids() == [BAKED])
            .then_error(|| {
                DescribeImagesError::generic(testing::service_error(
                    "InvalidAMIID.NotFound",
                    "gone",
                ))
            });
        let leftover = mock!(Ec2::describe_snapshots)
            .match_requests(|request| {
                request
                    .filters()
                    .first()
                    .and_then(|f| f.values().first())
                    .map(String::as_str)
                    == Some("*ami-0bbbbbbbbbbbbbbbb*")
            })
            .then_output(|| {
                DescribeSnapshotsOutput::builder()
                    .snapshots(
                        aws_sdk_ec2::types::Snapshot::builder()
                            .snapshot_id("snap-0left")
                            .tags(
                                Tag::builder()
                                    .key(TAG_TYPE)
                                    .value(TYPE_INTERMEDIATE)
                                    .build(),
                            )
                            .build(),
                    )
                    .build()
            });
        let already_deleted = mock!(Ec2::delete_snapshot).then_error(|| {
            DeleteSnapshotError::generic(testing::service_error("InvalidSnapshot.NotFound", "gone"))
        });
        let (get, dereg) = (pointer(GOLDEN), deregister());
        let deps = MockClients {
            ssm: vec![&get],
            ec2: vec![&gone, &leftover, &already_deleted, &dereg],
            ..Default::default()
        }
        .deps();
        let result = handler(&deps, testing::event(SUCCESS)).await.unwrap();
        assert_eq!(dereg.num_calls(), 0);
        assert_eq!(already_deleted.num_calls(), 1);
        assert!(result.deregistered_images.is_empty() && result.deleted_snapshots.is_empty());
    }

    #[tokio::test]
    async fn throttled_deregistration_is_retryable() {
        let throttled =
            mock!(Ec2::deregister_image).then_http_response(|| testing::http_status(503));
        let (get, desc) = (pointer(GOLDEN), describe(BAKED));
        let deps = MockClients {
            ssm: vec![&get],
            ec2: vec![&desc, &throttled],
            ..Default::default()
        }
        .deps();
        let error = handler(&deps, testing::event(SUCCESS)).await.unwrap_err();
        assert_eq!(error.error_type(), "Throttled");
    }

    #[tokio::test]
    async fn protected_images_name_their_reason() {
        let input: CleanupInput = testing::event(FAILURE_AFTER);
        let get = pointer(GOLDEN);
        let deps = MockClients {
            ssm: vec![&get],
            ..Default::default()
        }
        .deps();
        let protected = Protected::read(&deps, &testing::family(), Some(&input.state))
            .await
            .unwrap();
        assert_eq!(
            protected.reason(GOLDEN),
            Some("held by the pointer /golden-ami/current in eu-west-1")
        );
        assert_eq!(
            protected.reason(OLD),
            Some("the golden image this run started from in eu-west-1")
        );
        assert_eq!(protected.reason(BAKED), None);
    }

    /// A running automation of the bake document with the given TargetAmiName.
    fn running_bake(id: &'static str, target_ami_name: &'static str) -> (Rule, Rule) {
        use aws_sdk_ssm::types::AutomationExecutionMetadata;
        let list = mock!(Ssm::describe_automation_executions)
            .match_requests(|request| {
                request
                    .filters()
                    .iter()
                    .any(|f| f.values() == [testing::BAKE_DOCUMENT])
            })
            .then_output(move || {
                let listed = |id: &str| {
                    AutomationExecutionMetadata::builder()
                        .automation_execution_id(id)
                        .document_name(testing::BAKE_DOCUMENT)
                        .automation_execution_status(AutomationExecutionStatus::Inprogress)
                        .build()
                };
                DescribeAutomationExecutionsOutput::builder()
                    .automation_execution_metadata_list(listed(id))
                    .automation_execution_metadata_list(listed(THEIRS))
                    .build()
            });
        let get = mock!(Ssm::get_automation_execution)
            .match_requests(move |request| request.automation_execution_id() == Some(id))
            .then_output(move || {
                GetAutomationExecutionOutput::builder()
                    .automation_execution(
                        AutomationExecution::builder()
                            .automation_execution_id(id)
                            .automation_execution_status(AutomationExecutionStatus::Inprogress)
                            .parameters("TargetAmiName", vec![target_ami_name.to_string()])
                            .build(),
                    )
                    .build()
            });
        (list, get)
    }

    #[tokio::test]
    async fn a_sweep_without_a_plan_touches_nothing() {
        let deps = MockClients::default().deps();
        let mut input: CleanupInput = testing::event(SWEEP);
        input.state.plan = None;
        let result = handler(&deps, input).await.unwrap();
        assert_eq!(result, CleanupResult::default());
    }

    #[tokio::test]
    async fn a_sweep_finds_every_planned_familys_leftovers_by_name_alone() {
        sweep_with_our_bake_running(
            "golden-ami-intermediate-2026-12-01-ami-0123456789abcdef0-0420140d",
            Encryption::Copy,
        )
        .await;
    }

    #[tokio::test]
    async fn a_sweep_finds_a_direct_bake_by_the_golden_name_it_gives_its_image() {
        sweep_with_our_bake_running("golden-ami-2026-12-01-0420140d", Encryption::Direct).await;
    }

    /// This execution's bake of the default family (its image named `ours`) is still running;
    /// its golden copy of arm64-minimal exists. Another execution's bake is running too and is
    /// not ours.
    async fn sweep_with_our_bake_running(ours: &'static str, encryption: Encryption) {
        let (list, get_ours) = running_bake(AUTOMATION, ours);
        let (_, get_theirs) = running_bake(
            THEIRS,
            "golden-ami-intermediate-2026-11-01-ami-0123456789abcdef0-1a2b3c4d",
        );
        let test_list = none_running();
        let stop = mock!(Ssm::stop_automation_execution)
            .match_requests(|request| request.automation_execution_id() == Some(AUTOMATION))
            .then_output(|| StopAutomationExecutionOutput::builder().build());
        let arm_golden = mock!(Ec2::describe_images)
            .match_requests(|request| {
                request
                    .filters()
                    .iter()
                    .any(|f| f.values() == ["golden-ami-arm64-minimal-2026-12-01-0420140d"])
            })
            .then_output(|| {
                DescribeImagesOutput::builder()
                    .images(Image::builder().image_id(GOLDEN).build())
                    .build()
            });
        let (get, golden, names, instances, dereg, left, del) = (
            pointer(OLD),
            describe(GOLDEN),
            by_name_none(),
            no_instances(),
            deregister(),
            no_leftovers(),
            delete(),
        );
        let deps = MockClients {
            ssm: vec![&get, &list, &test_list, &get_ours, &get_theirs, &stop],
            ec2: vec![
                &arm_golden,
                &golden,
                &names,
                &instances,
                &dereg,
                &left,
                &del,
            ],
            ..Default::default()
        }
        .deps();
        let mut input: CleanupInput = testing::event(SWEEP);
        if let Some(plan) = input.state.plan.as_mut() {
            plan.families[0].encryption = encryption;
        }
        let result = handler(&deps, input).await.unwrap();
        assert_eq!(result.stopped_automations, [AUTOMATION]);
        assert_eq!(stop.num_calls(), 1);
        assert!(get_theirs.num_calls() > 0, "the other bake was looked at");
        assert_eq!(result.deregistered_images, [GOLDEN]);
        // Both families' pointers were read to protect what they hold.
        assert_eq!(get.num_calls(), 2);
    }

    #[test]
    fn run_names_tell_this_runs_intermediate_images_from_others() {
        let context = testing::context();
        let names = RunNames::new("golden-ami", &testing::family(), &context).unwrap();
        assert!(
            names.is_intermediate(
                "golden-ami-intermediate-2026-12-01-ami-0123456789abcdef0-0420140d"
            )
        );
        assert!(
            !names.is_intermediate(
                "golden-ami-intermediate-2026-11-01-ami-0123456789abcdef0-1a2b3c4d"
            )
        );
        let mut arm = testing::family();
        arm.name = "arm64-minimal".into();
        let arm_names = RunNames::new("golden-ami", &arm, &context).unwrap();
        assert!(
            !arm_names.is_intermediate(
                "golden-ami-intermediate-2026-12-01-ami-0123456789abcdef0-0420140d"
            )
        );
        assert_eq!(
            arm_names.golden,
            "golden-ami-arm64-minimal-2026-12-01-0420140d"
        );
    }
}

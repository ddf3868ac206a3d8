//! Cleanup: remove what a run created and did not publish.
//!
//! On the success path it deregisters the intermediate (baked, account-key) image and deletes
//! its snapshots. On the failure path it also stops a bake or boot test still running (the
//! documents' onCancel routes terminate their instances) and removes the unpublished golden copy,
//! finding images by their deterministic names when an id never reached the state. It never
//! touches the image the pointer holds, the image this run published, or the run's source image.
//! Everything is idempotent: already gone is fine.

use aws_sdk_ec2::types::{Filter, Image, Tag};
use aws_sdk_ssm::types::AutomationExecutionStatus;
use golden_ami_core::naming::{
    TAG_AUTOMATION_EXECUTION, TAG_TYPE, TYPE_GOLDEN, TYPE_INTERMEDIATE, golden_image_name,
};
use golden_ami_core::{
    CleanupInput, CleanupMode, CleanupResult, Deps, PipelineState, StepError, classify_sdk_error,
    error_code, read_pointer, stop_automation,
};

pub async fn handler(deps: &Deps, input: CleanupInput) -> Result<CleanupResult, StepError> {
    let state = &input.state;
    let protected = Protected::new(
        state,
        pointer_value(deps).await?,
        &deps.config.pointer_parameter_name,
    );
    let mut result = CleanupResult::default();
    match input.mode {
        CleanupMode::Success => {
            let baked = state.require_baked_ami_id()?;
            if let Some(reason) = protected.reason(baked) {
                return Err(StepError::CleanupRefused(format!(
                    "the intermediate image {baked} is {reason}: refusing to remove it; check the run's state"
                )));
            }
            remove_image(deps, baked, TYPE_INTERMEDIATE, &mut result).await?;
        }
        CleanupMode::Failure => {
            // Stopping an automation runs its onCancel route, which terminates its instance.
            let automations: Vec<&str> = [
                state
                    .bake
                    .as_ref()
                    .map(|bake| bake.automation_execution_id.as_str()),
                state
                    .test
                    .as_ref()
                    .map(|test| test.automation_execution_id.as_str()),
            ]
            .into_iter()
            .flatten()
            .collect();
            for automation in &automations {
                stop_if_running(deps, automation, &mut result).await?;
            }
            // A document whose own terminate step failed leaves its instance behind.
            terminate_leftover_instances(deps, &automations, &mut result).await?;
            // (image id, the Type it must carry to be removed)
            let mut targets: Vec<(String, &str)> = Vec::new();
            let intermediate = |id: String| (id, TYPE_INTERMEDIATE);
            let golden = |id: String| (id, TYPE_GOLDEN);
            targets.extend(state.baked_ami_id().map(str::to_string).map(intermediate));
            if let Some(bake) = &state.bake {
                // The bake may have created its image without the id reaching the state.
                targets.extend(
                    find_by_name(deps, &bake.target_ami_name)
                        .await?
                        .into_iter()
                        .map(intermediate),
                );
                // Likewise a copy whose CopyImage response was lost.
                let golden_name =
                    golden_image_name(&deps.config.image_name_prefix, &input.context)?;
                targets.extend(
                    find_by_name(deps, &golden_name)
                        .await?
                        .into_iter()
                        .map(golden),
                );
            }
            targets.extend(
                state
                    .copy
                    .as_ref()
                    .map(|copy| copy.golden_ami_id.clone())
                    .map(golden),
            );
            targets.sort();
            targets.dedup_by(|a, b| a.0 == b.0);
            for (id, kind) in targets {
                match protected.reason(&id) {
                    Some(reason) => result.kept.push(format!("{id} ({reason})")),
                    None => remove_image(deps, &id, kind, &mut result).await?,
                }
            }
        }
    }
    tracing::info!(?result, "cleanup done");
    Ok(result)
}

/// Images cleanup must never remove, with the reason.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Protected(Vec<(String, String)>);

impl Protected {
    pub fn new(state: &PipelineState, pointer_value: Option<String>, pointer: &str) -> Self {
        let mut images = Vec::new();
        if let Some(value) = pointer_value {
            images.push((value, format!("held by the pointer {pointer}")));
        }
        if let Some(publish) = &state.publish {
            images.push((
                publish.new_ami_id.clone(),
                "published by this run".to_string(),
            ));
        }
        if let Some(current) = &state.current {
            images.push((
                current.ami_id.clone(),
                "the previous golden image this run started from".to_string(),
            ));
        }
        Self(images)
    }

    pub fn reason(&self, image_id: &str) -> Option<&str> {
        self.0
            .iter()
            .find(|(id, _)| id == image_id)
            .map(|(_, reason)| reason.as_str())
    }
}

/// What the pointer holds now (None if the parameter does not exist).
async fn pointer_value(deps: &Deps) -> Result<Option<String>, StepError> {
    match read_pointer(&deps.clients.ssm, &deps.config.pointer_parameter_name).await {
        Ok(pointer) => Ok(Some(pointer.value)),
        Err(StepError::PointerNotFound { .. }) => Ok(None),
        Err(error) => Err(error),
    }
}

async fn stop_if_running(
    deps: &Deps,
    id: &str,
    result: &mut CleanupResult,
) -> Result<(), StepError> {
    let output = match deps
        .clients
        .ssm
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
    stop_automation(&deps.clients.ssm, id).await?;
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
    deps: &Deps,
    automations: &[&str],
    result: &mut CleanupResult,
) -> Result<(), StepError> {
    if automations.is_empty() {
        return Ok(());
    }
    let ec2 = &deps.clients.ec2;
    let output = ec2
        .describe_instances()
        .filters(
            Filter::builder()
                .name(format!("tag:{TAG_AUTOMATION_EXECUTION}"))
                .set_values(Some(automations.iter().map(|id| id.to_string()).collect()))
                .build(),
        )
        .filters(
            Filter::builder()
                .name("instance-state-name")
                .set_values(Some(ALIVE.iter().map(|s| s.to_string()).collect()))
                .build(),
        )
        .send()
        .await
        .map_err(|error| classify_sdk_error("ec2:DescribeInstances", error))?;
    let alive: Vec<String> = output
        .reservations()
        .iter()
        .flat_map(|reservation| reservation.instances())
        .filter_map(|instance| instance.instance_id().map(str::to_string))
        .collect();
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
async fn tag_type(deps: &Deps, resources: Vec<String>, kind: &str) -> Result<(), StepError> {
    deps.clients
        .ec2
        .create_tags()
        .set_resources(Some(resources))
        .tags(Tag::builder().key(TAG_TYPE).value(kind).build())
        .send()
        .await
        .map_err(|error| classify_sdk_error("ec2:CreateTags", error))?;
    Ok(())
}

async fn find_by_name(deps: &Deps, name: &str) -> Result<Vec<String>, StepError> {
    let output = deps
        .clients
        .ec2
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

/// Deregister an image and delete its snapshots; an image or snapshot already gone is fine.
async fn remove_image(
    deps: &Deps,
    id: &str,
    kind: &str,
    result: &mut CleanupResult,
) -> Result<(), StepError> {
    let ec2 = &deps.clients.ec2;
    let image = match ec2.describe_images().image_ids(id).send().await {
        Ok(output) => output.images().first().cloned(),
        Err(error) if error_code(&error).is_some_and(|code| code.starts_with("InvalidAMIID.")) => {
            None
        }
        Err(error) => return Err(classify_sdk_error("ec2:DescribeImages", error)),
    };
    let mut snapshots = image.as_ref().map(snapshot_ids).unwrap_or_default();
    if let Some(image) = &image {
        // A create that failed half way leaves its image (and snapshots) untagged; the removal
        // rights only cover what carries the pipeline's Type tag, so tag it first.
        if !image.tags().iter().any(|tag| tag.key() == Some(TAG_TYPE)) {
            let mut resources = vec![id.to_string()];
            resources.extend(snapshots.iter().cloned());
            tag_type(deps, resources, kind).await?;
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
        tag_type(deps, untagged, kind).await?;
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
    use aws_sdk_ssm::operation::get_automation_execution::GetAutomationExecutionOutput;
    use aws_sdk_ssm::operation::get_parameter::GetParameterOutput;
    use aws_sdk_ssm::operation::stop_automation_execution::StopAutomationExecutionOutput;
    use aws_sdk_ssm::types::StopType;
    use aws_sdk_ssm::types::{AutomationExecution, Parameter};
    use golden_ami_core::testing::{self, MockClients, Rule, mock};

    use super::*;

    const SUCCESS: &str = include_str!("../../../events/cleanup/success.json");
    const FAILURE_BEFORE: &str =
        include_str!("../../../events/cleanup/failure-before-publish.json");
    const FAILURE_AFTER: &str = include_str!("../../../events/cleanup/failure-after-publish.json");
    const FAILURE_DURING_BAKE: &str =
        include_str!("../../../events/cleanup/failure-during-bake.json");
    const OLD: &str = "ami-0123456789abcdef0";
    const BAKED: &str = "ami-0bbbbbbbbbbbbbbbb";
    const GOLDEN: &str = "ami-0ccccccccccccccc0";
    const AUTOMATION: &str = "4c5d6e7f-1111-4222-8333-944455556666";

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

    fn deregister() -> Rule {
        mock!(Ec2::deregister_image).then_output(|| DeregisterImageOutput::builder().build())
    }

    fn no_leftovers() -> Rule {
        mock!(Ec2::describe_snapshots).then_output(|| DescribeSnapshotsOutput::builder().build())
    }

    fn delete() -> Rule {
        mock!(Ec2::delete_snapshot).then_output(|| DeleteSnapshotOutput::builder().build())
    }

    fn no_instances() -> Rule {
        mock!(Ec2::describe_instances).then_output(|| DescribeInstancesOutput::builder().build())
    }

    #[tokio::test]
    async fn success_removes_only_the_intermediate_image_and_its_snapshot() {
        let (get, desc, dereg, left, del) = (
            pointer(GOLDEN),
            describe(BAKED),
            deregister(),
            no_leftovers(),
            delete(),
        );
        let deps = MockClients {
            ssm: vec![&get],
            ec2: vec![&desc, &dereg, &left, &del],
            ..Default::default()
        }
        .deps();
        let result = handler(&deps, testing::event(SUCCESS)).await.unwrap();
        assert_eq!(result.deregistered_images, [BAKED]);
        assert_eq!(result.deleted_snapshots, ["snap-0bbbbbbbbbbbbbbbb"]);
        assert_eq!((dereg.num_calls(), del.num_calls()), (1, 1));
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

    #[tokio::test]
    async fn failure_before_publishing_removes_the_intermediate_image_and_the_copy() {
        let instances = no_instances();
        let automation = mock!(Ssm::get_automation_execution).then_output(|| {
            GetAutomationExecutionOutput::builder()
                .automation_execution(
                    AutomationExecution::builder()
                        .automation_execution_status(AutomationExecutionStatus::Success)
                        .build(),
                )
                .build()
        });
        let (get, baked, golden, names, dereg, left, del) = (
            pointer(OLD),
            describe(BAKED),
            describe(GOLDEN),
            by_name_none(),
            deregister(),
            no_leftovers(),
            delete(),
        );
        let deps = MockClients {
            ssm: vec![&get, &automation],
            ec2: vec![&instances, &baked, &golden, &names, &dereg, &left, &del],
            ..Default::default()
        }
        .deps();
        let result = handler(&deps, testing::event(FAILURE_BEFORE))
            .await
            .unwrap();
        assert_eq!(result.deregistered_images, [BAKED, GOLDEN]);
        assert_eq!(result.deleted_snapshots.len(), 2);
        assert!(result.stopped_automations.is_empty());
        assert!(result.kept.is_empty());
    }

    #[tokio::test]
    async fn failure_after_publishing_keeps_the_published_copy() {
        let instances = no_instances();
        let automation = mock!(Ssm::get_automation_execution).then_output(|| {
            GetAutomationExecutionOutput::builder()
                .automation_execution(
                    AutomationExecution::builder()
                        .automation_execution_status(AutomationExecutionStatus::Success)
                        .build(),
                )
                .build()
        });
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
            ssm: vec![&get, &automation],
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
                    && request.filters().first().and_then(|f| f.values().first()).is_some_and(|name| {
                        name == "golden-ami-intermediate-2026-12-01-ami-0123456789abcdef0-5e6f7a8b"
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
            ssm: vec![&get, &automation, &stop],
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
            ssm: vec![&get, &automation],
            ec2: vec![
                &alive, &terminate, &baked, &golden, &names, &dereg, &left, &del,
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

    #[test]
    fn protected_images_name_their_reason() {
        let input: CleanupInput = testing::event(FAILURE_AFTER);
        let protected = Protected::new(&input.state, Some(GOLDEN.into()), testing::POINTER);
        assert_eq!(
            protected.reason(GOLDEN),
            Some("held by the pointer /golden-ami/current")
        );
        assert_eq!(
            protected.reason(OLD),
            Some("the previous golden image this run started from")
        );
        assert_eq!(protected.reason(BAKED), None);
    }
}

//! PublishPointer: move one region's pointer to the verified golden image - the one change
//! consumers see.
//!
//! It runs only after every region's copy was verified and the boot test passed (the state
//! machine's order, and this step checks both results itself). It refuses to overwrite a
//! pointer that moved during the run (a manual pin or rollback), and a retry after a lost
//! response recognises its own write. A family's first image in a region creates the pointer
//! there (Overwrite=false, so a pointer someone created meanwhile is never replaced) and adds it
//! to the region's AWS RAM pointer share, so the organization can read it.
//!
//! A family is published in all of its regions or in none: before the first pointer moves,
//! CheckPointers (mode CHECK) reads every region's pointer and stops the family if one is no
//! longer what the run read; when a region's pointer still did not move, RestorePointers (mode
//! RESTORE) puts back the pointers this run moved, waiting until SSM shows each put-back.

use aws_sdk_ec2::types::{ImageState, Tag};
use aws_sdk_ram::types::{
    ResourceOwner, ResourceShareAssociationStatus, ResourceShareAssociationType,
    ResourceShareStatus,
};
use aws_sdk_ssm::types::{ParameterTier, ParameterType};
use golden_ami_core::image::describe_image;
use golden_ami_core::naming::TAG_POINTER_WRITE;
use golden_ami_core::types::{
    Pin, PipelineState, PointersAsRead, PublishInput, PublishMode, PublishOutput, RegionTarget,
    RestoreResult, RestoredPointer,
};
use golden_ami_core::{
    Deps, PointerValue, PublishResult, RegionClients, StepError, StepInput, WriteOutcome,
    await_pointer_write, classify_sdk_error, read_pointer,
};

/// The function's entry: one region's publication, or the family-wide check or put-back.
pub async fn run(deps: &Deps, input: PublishInput) -> Result<PublishOutput, StepError> {
    match input.mode {
        PublishMode::Publish => handler(
            deps,
            StepInput {
                context: input.context,
                state: input.state,
            },
        )
        .await
        .map(PublishOutput::Published),
        PublishMode::Check => check_pointers(deps, &input.state)
            .await
            .map(PublishOutput::Checked),
        PublishMode::Restore => restore_pointers(deps, &input.context.execution_id, &input.state)
            .await
            .map(PublishOutput::Restored),
    }
}

pub async fn handler(deps: &Deps, input: StepInput) -> Result<PublishResult, StepError> {
    let new_ami_id = input.state.tested_golden_image()?.to_string();
    let target = input.state.require_target()?;
    // A pin set while the run was in flight stops every region's pointer, even one to the image
    // the pointer already holds: PlanRun read the pins before the run began, this is the last
    // look before the write.
    stop_if_pinned(deps, &input.state.require_family()?.name).await?;
    let clients = deps.clients.region(&target.region);
    let parameter = &target.parameter_name;
    let description = format!(
        "Golden AMI{} by {}",
        target
            .ami_id
            .as_ref()
            .map(|previous| format!(", patched from {previous},"))
            .unwrap_or_default(),
        input.context.execution_id
    );
    let published = |version: i64, reshared: bool| PublishResult {
        parameter_name: parameter.clone(),
        region: target.region.clone(),
        version,
        previous_ami_id: target.ami_id.clone(),
        new_ami_id: new_ami_id.clone(),
        reshared,
    };
    let now = read_now(clients.ssm(), parameter).await?;
    let now_pair = now
        .as_ref()
        .map(|pointer| (pointer.value.clone(), pointer.version));
    match decide(target, &new_ami_id, now_pair.as_ref()) {
        Decision::AlreadyPublished(version) => {
            tracing::info!(%parameter, version, region = %target.region, "pointer already holds the new image (retried step)");
            // A retry may come after the write but before the share.
            let reshared = ensure_shared(deps, &clients, target).await?;
            // A created pointer is associated for the first time: that is no repair.
            Ok(published(version, reshared && target.ami_id.is_some()))
        }
        Decision::Refuse { found, value } => Err(StepError::PointerChangedConcurrently {
            parameter: format!("{parameter} in {}", target.region),
            expected: target.parameter_version,
            found,
            found_value: value,
        }),
        Decision::Create => {
            // The share must exist before the pointer does: a pointer nobody can read is no
            // publication.
            let share = pointer_share(deps, &clients, &target.region).await?;
            mark_pointer_write(&clients, &new_ami_id, parameter).await?;
            if let Err(error) =
                put(clients.ssm(), parameter, &new_ami_id, &description, false).await
            {
                return Err(
                    match unmark_if_refused(&clients, &new_ami_id, error).await {
                        // Created by someone else between the read and the put.
                        PutError::AlreadyExists => StepError::PointerChangedConcurrently {
                            parameter: format!("{parameter} in {}", target.region),
                            expected: 0,
                            found: 1,
                            found_value: "(created during this run)".into(),
                        },
                        PutError::Other(error) => error,
                    },
                );
            }
            let version = await_visible(deps, &clients, target, None, &new_ami_id).await?;
            // A parameter can only be associated once it exists, i.e. once SSM validated it.
            ensure_associated(deps, &clients, &share, target).await?;
            tracing::info!(%parameter, region = %target.region, version, %new_ami_id, "pointer created and shared");
            Ok(published(version, false))
        }
        Decision::Publish => {
            // The organization must be able to read what it is about to hold: a pointer that
            // ended up outside its share (consumers get ParameterNotFound) is repaired first.
            let reshared = ensure_shared(deps, &clients, target).await?;
            mark_pointer_write(&clients, &new_ami_id, parameter).await?;
            if let Err(error) = put(clients.ssm(), parameter, &new_ami_id, &description, true).await
            {
                return Err(unmark_if_refused(&clients, &new_ami_id, error)
                    .await
                    .into_step_error());
            }
            let version = await_visible(deps, &clients, target, now.as_ref(), &new_ami_id).await?;
            tracing::info!(%parameter, region = %target.region, version, %new_ami_id, "pointer published");
            Ok(published(version, reshared))
        }
    }
}

/// FamilyPinned if the family has a pin (whatever its region: one pin stops every region).
async fn stop_if_pinned(deps: &Deps, family: &str) -> Result<(), StepError> {
    let Some(pin) = read_pin(deps, family).await? else {
        return Ok(());
    };
    tracing::warn!(%family, pin = ?pin, "the family was pinned during the run; its pointers stay");
    Err(StepError::FamilyPinned {
        family: family.to_string(),
        ami_id: pin.ami_id,
        pinned_by: pin.pinned_by,
        pinned_at: pin.pinned_at,
        reason: pin
            .reason
            .map(|reason| format!(" ({reason})"))
            .unwrap_or_default(),
    })
}

/// CheckPointers, before the first pointer of the family moves: the family is not pinned, and
/// every region's pointer is what ReadCurrentAmi read (state.current.regions). One changed by
/// hand stops every region: none moves.
pub async fn check_pointers(
    deps: &Deps,
    state: &PipelineState,
) -> Result<PointersAsRead, StepError> {
    stop_if_pinned(deps, &state.require_family()?.name).await?;
    let current = state.require_current()?;
    for target in &current.regions {
        let now = read_now(
            deps.clients.region(&target.region).ssm(),
            &target.parameter_name,
        )
        .await?
        .map(|pointer| (pointer.value, pointer.version));
        if let Some((found_value, found)) = changed_since_read(target, now.as_ref()) {
            return Err(StepError::PointerChangedConcurrently {
                parameter: format!("{} in {}", target.parameter_name, target.region),
                expected: target.parameter_version,
                found,
                found_value,
            });
        }
    }
    Ok(PointersAsRead {
        regions: current.regions.iter().map(|t| t.region.clone()).collect(),
    })
}

/// The pointer now, None if it does not exist.
async fn read_now(
    ssm: &aws_sdk_ssm::Client,
    parameter: &str,
) -> Result<Option<PointerValue>, StepError> {
    match read_pointer(ssm, parameter).await {
        Ok(pointer) => Ok(Some(pointer)),
        Err(StepError::PointerNotFound { .. }) => Ok(None),
        Err(error) => Err(error),
    }
}

/// What the pointer holds now (value, version) if that is not what the run read.
pub fn changed_since_read(
    target: &RegionTarget,
    now: Option<&(String, i64)>,
) -> Option<(String, i64)> {
    match (now, &target.ami_id) {
        (None, None) => None,
        (None, Some(_)) => Some(("(deleted during this run)".into(), 0)),
        (Some((value, version)), read)
            if *version == target.parameter_version && read.as_deref() == Some(value.as_str()) =>
        {
            None
        }
        (Some((value, version)), _) => Some((value.clone(), *version)),
    }
}

/// RestorePointers, after a region's pointer did not move: every pointer this run moved
/// (state.pointers, published) gets its previous value back, and the put-back is awaited the
/// way the write was. A pointer someone changed after this run's write, or that this run
/// created, is left as it is, and the result says why.
pub async fn restore_pointers(
    deps: &Deps,
    execution_id: &str,
    state: &PipelineState,
) -> Result<RestoreResult, StepError> {
    let mut pointers = Vec::new();
    for region in &state.pointers {
        if region.published != Some(true) {
            continue;
        }
        if let Some(publish) = &region.publish {
            pointers.push(put_back(deps, execution_id, publish).await?);
        }
    }
    Ok(RestoreResult { pointers })
}

async fn put_back(
    deps: &Deps,
    execution_id: &str,
    publish: &PublishResult,
) -> Result<RestoredPointer, StepError> {
    let clients = deps.clients.region(&publish.region);
    let parameter = &publish.parameter_name;
    let mut restored = RestoredPointer {
        parameter_name: parameter.clone(),
        region: publish.region.clone(),
        moved_to: publish.new_ami_id.clone(),
        moved_version: publish.version,
        restored_to: None,
        restored_version: None,
        left_because: None,
    };
    let now = read_now(clients.ssm(), parameter).await?;
    let Some(previous) = &publish.previous_ami_id else {
        restored.left_because = Some(
            "this run created it (it did not exist before), so there is no value to put back"
                .into(),
        );
        return Ok(restored);
    };
    match now {
        // A retry of this step after the put-back showed.
        Some(now) if &now.value == previous && now.version == publish.version + 1 => {
            restored.restored_to = Some(now.value);
            restored.restored_version = Some(now.version);
        }
        Some(now) if now.value == publish.new_ami_id && now.version == publish.version => {
            let description = format!(
                "Golden AMI put back by {execution_id}: another region's pointer did not move"
            );
            if let Err(error) = put(clients.ssm(), parameter, previous, &description, true).await {
                let error = error.into_step_error();
                if error.is_retryable() {
                    return Err(error);
                }
                restored.left_because = Some(format!("the put-back failed: {error}"));
                return Ok(restored);
            }
            match await_pointer_write(
                clients.ssm(),
                parameter,
                Some(&now),
                previous,
                deps.config.pointer_wait,
                deps.config.pointer_poll,
            )
            .await?
            {
                WriteOutcome::Visible(version) => {
                    restored.restored_to = Some(previous.clone());
                    restored.restored_version = Some(version);
                }
                WriteOutcome::Changed(then) => {
                    restored.left_because = Some(format!(
                        "someone else changed it while it was put back (it holds {})",
                        then.map_or_else(
                            || "nothing".into(),
                            |then| format!("{} (version {})", then.value, then.version)
                        )
                    ));
                }
                WriteOutcome::NotVisible => {
                    restored.left_because = Some(format!(
                        "the put-back of {previous} did not show within {} s: {}",
                        deps.config.pointer_wait.as_secs(),
                        why_not_visible(&clients, previous, deps.config.pointer_wait).await?
                    ));
                }
            }
        }
        now => {
            restored.left_because = Some(format!(
                "it no longer holds this run's write (it holds {}): a later change stands",
                now.map_or_else(
                    || "nothing".into(),
                    |now| format!("{} (version {})", now.value, now.version)
                )
            ));
        }
    }
    if let Some(version) = restored.restored_version {
        tracing::warn!(%parameter, region = %publish.region, %previous, version, "pointer put back");
    }
    Ok(restored)
}

/// The family's pin (PINS_PATH/<family>, in the home region's SSM, as `golden-ami pin` writes
/// it), or None. A pin that does not parse still stops the pointer: it names the parameter.
async fn read_pin(deps: &Deps, family: &str) -> Result<Option<Pin>, StepError> {
    let name = format!("{}/{family}", deps.config.pins_path);
    match deps.clients.ssm().get_parameter().name(&name).send().await {
        Ok(output) => {
            let value = output
                .parameter()
                .and_then(|p| p.value())
                .unwrap_or_default();
            Ok(Some(serde_json::from_str(value).unwrap_or_else(|_| Pin {
                family: family.to_string(),
                ami_id: format!("(the parameter {name} is not a pin: {value:?})"),
                region: String::new(),
                pinned_by: "(unknown)".into(),
                pinned_at: "(unknown)".into(),
                reason: None,
            })))
        }
        Err(error)
            if error
                .as_service_error()
                .is_some_and(|service| service.is_parameter_not_found()) =>
        {
            Ok(None)
        }
        Err(error) => Err(classify_sdk_error("ssm:GetParameter", error)),
    }
}

/// Before the write, the image says a pointer write to it was issued (TAG_POINTER_WRITE): until
/// SSM has validated it, the pointer may come to hold the image whatever happens to this
/// invocation, so the failure path and the reaper keep an image with this tag.
async fn mark_pointer_write(
    clients: &RegionClients,
    image_id: &str,
    parameter: &str,
) -> Result<(), StepError> {
    clients
        .ec2()
        .create_tags()
        .resources(image_id)
        .tags(
            Tag::builder()
                .key(TAG_POINTER_WRITE)
                .value(parameter)
                .build(),
        )
        .send()
        .await
        .map_err(|error| classify_sdk_error("ec2:CreateTags", error))?;
    Ok(())
}

/// A write SSM refused (anything but a throttle, a 5xx or a lost response, after which it may
/// have been accepted) can never show: the image's TAG_POINTER_WRITE goes again, so the failure
/// path may remove it. If that fails too, the tag stays and the image is kept: the safe side.
async fn unmark_if_refused(clients: &RegionClients, image_id: &str, error: PutError) -> PutError {
    let refused = match &error {
        PutError::AlreadyExists => true,
        PutError::Other(error) => !error.is_retryable(),
    };
    if refused {
        let removed = clients
            .ec2()
            .delete_tags()
            .resources(image_id)
            .tags(Tag::builder().key(TAG_POINTER_WRITE).build())
            .send()
            .await;
        if let Err(untag) = removed {
            tracing::warn!(%image_id, error = %classify_sdk_error("ec2:DeleteTags", untag), "the refused write's tag stays: the failure path keeps the image");
        }
    }
    error
}

/// Wait until the write shows (its version), or fail: someone else's write came first
/// (PointerChangedConcurrently), or it never showed (PointerValidationFailed, saying whether the
/// image can explain it).
async fn await_visible(
    deps: &Deps,
    clients: &RegionClients,
    target: &RegionTarget,
    before: Option<&PointerValue>,
    new_ami_id: &str,
) -> Result<i64, StepError> {
    let parameter = &target.parameter_name;
    let outcome = await_pointer_write(
        clients.ssm(),
        parameter,
        before,
        new_ami_id,
        deps.config.pointer_wait,
        deps.config.pointer_poll,
    )
    .await?;
    match outcome {
        WriteOutcome::Visible(version) => Ok(version),
        WriteOutcome::Changed(now) => Err(StepError::PointerChangedConcurrently {
            parameter: format!("{parameter} in {}", target.region),
            expected: target.parameter_version,
            found: now.as_ref().map_or(0, |now| now.version),
            found_value: now.map_or_else(|| "(deleted during this run)".into(), |now| now.value),
        }),
        WriteOutcome::NotVisible => Err(StepError::PointerValidationFailed {
            parameter: parameter.clone(),
            region: target.region.clone(),
            image_id: new_ami_id.to_string(),
            reason: why_not_visible(clients, new_ami_id, deps.config.pointer_wait).await?,
        }),
    }
}

/// Why a write of `image_id` may never show: what EC2 says of the image now.
async fn why_not_visible(
    clients: &RegionClients,
    image_id: &str,
    waited: std::time::Duration,
) -> Result<String, StepError> {
    let image = describe_image(clients.ec2(), image_id, true).await?;
    Ok(validation_failure(
        image.as_ref().and_then(|image| image.state()),
        waited,
    ))
}

/// The reason a write did not show, from the image's state (None: the image does not exist).
pub fn validation_failure(state: Option<&ImageState>, waited: std::time::Duration) -> String {
    match state {
        None => "the image does not exist (deregistered?), so its validation fails".into(),
        Some(ImageState::Available) => format!(
            "the write did not show within {} s (its validation failed, or SSM is slower than that: the image stays, tagged {TAG_POINTER_WRITE})",
            waited.as_secs()
        ),
        Some(state) => format!(
            "the image is {}, not available, so its validation fails",
            state.as_str()
        ),
    }
}

enum PutError {
    AlreadyExists,
    Other(StepError),
}

impl PutError {
    fn into_step_error(self) -> StepError {
        match self {
            Self::AlreadyExists => StepError::AwsError {
                operation: "ssm:PutParameter".into(),
                code: "ParameterAlreadyExists".into(),
                message: "an overwrite was refused as a create".into(),
            },
            Self::Other(error) => error,
        }
    }
}

/// PutParameter of the pointer: an overwrite of the existing one, or the create of a new one
/// (Advanced tier: AWS RAM shares only Advanced parameters).
async fn put(
    ssm: &aws_sdk_ssm::Client,
    parameter: &str,
    value: &str,
    description: &str,
    overwrite: bool,
) -> Result<(), PutError> {
    let mut request = ssm
        .put_parameter()
        .name(parameter)
        .value(value)
        .r#type(ParameterType::String)
        .data_type("aws:ec2:image")
        .overwrite(overwrite)
        .description(description);
    if !overwrite {
        request = request.tier(ParameterTier::Advanced);
    }
    match request.send().await {
        Ok(_) => Ok(()),
        Err(error)
            if error
                .as_service_error()
                .is_some_and(|service| service.is_parameter_already_exists()) =>
        {
            Err(PutError::AlreadyExists)
        }
        Err(error) => Err(PutError::Other(classify_sdk_error(
            "ssm:PutParameter",
            error,
        ))),
    }
}

/// What to do given the pointer as read at the start and as it is now.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decision {
    Publish,
    /// The pointer does not exist in the region yet, nor did it at the start.
    Create,
    /// A retry after our own PutParameter went through; the version it made.
    AlreadyPublished(i64),
    /// Someone else moved (or created) the pointer during the run.
    Refuse {
        found: i64,
        value: String,
    },
}

pub fn decide(target: &RegionTarget, new_ami_id: &str, now: Option<&(String, i64)>) -> Decision {
    match changed_since_read(target, now) {
        None if now.is_none() => Decision::Create,
        None => Decision::Publish,
        Some((value, version))
            if value == new_ami_id && version == target.parameter_version + 1 =>
        {
            Decision::AlreadyPublished(version)
        }
        Some((value, found)) => Decision::Refuse { found, value },
    }
}

/// The region's pointer share (POINTER_SHARE_NAME), owned by this account and active.
async fn pointer_share(
    deps: &Deps,
    clients: &RegionClients,
    region: &str,
) -> Result<String, StepError> {
    let name = &deps.config.pointer_share_name;
    let output = clients
        .ram()
        .get_resource_shares()
        .resource_owner(ResourceOwner::SelfValue)
        .name(name)
        .send()
        .await
        .map_err(|error| classify_sdk_error("ram:GetResourceShares", error))?;
    output
        .resource_shares()
        .iter()
        .find(|share| {
            share.name() == Some(name.as_str())
                && share.status() == Some(&ResourceShareStatus::Active)
        })
        .and_then(|share| share.resource_share_arn().map(str::to_string))
        .ok_or_else(|| {
            StepError::ConfigError(format!(
                "there is no active AWS RAM share named {name} in {region}, so a pointer created there could not be read by the organization: deploy infra/region.yaml in {region} (it creates the share), or fix POINTER_SHARE_NAME"
            ))
        })
}

/// The pointer is associated with the region's pointer share, or is made so: true if it had to
/// be (re)associated although it existed already.
async fn ensure_shared(
    deps: &Deps,
    clients: &RegionClients,
    target: &RegionTarget,
) -> Result<bool, StepError> {
    let share = pointer_share(deps, clients, &target.region).await?;
    let associated = ensure_associated(deps, clients, &share, target).await?;
    if associated {
        tracing::warn!(parameter = %target.parameter_name, region = %target.region, %share, "the pointer was not associated with its share: associated again");
    }
    Ok(associated)
}

/// Wait until the pointer's association with `share_arn` is ASSOCIATED, associating it when it
/// has none (or a FAILED or DISASSOCIATED one from before). AssociateResourceShare returns
/// while the association is ASSOCIATING; it becomes ASSOCIATED or FAILED later
/// (https://docs.aws.amazon.com/ram/latest/APIReference/API_ResourceShareAssociation.html).
/// True if this call associated it.
async fn ensure_associated(
    deps: &Deps,
    clients: &RegionClients,
    share_arn: &str,
    target: &RegionTarget,
) -> Result<bool, StepError> {
    let arn = parameter_arn(share_arn, &target.region, &target.parameter_name)?;
    let deadline = std::time::Instant::now() + deps.config.pointer_wait;
    let poll = deps.config.pointer_poll;
    let mut pause = poll / 10;
    let mut associated_here = false;
    loop {
        let (status, message) = association(clients, share_arn, &arn).await?;
        match (status, associated_here) {
            (Some(ResourceShareAssociationStatus::Associated), _) => return Ok(associated_here),
            (Some(ResourceShareAssociationStatus::Failed), true) => {
                return Err(StepError::PointerShareFailed {
                    parameter: arn,
                    share: share_arn.to_string(),
                    reason: format!(
                        "FAILED ({})",
                        message.unwrap_or_else(|| "RAM gave no reason".into())
                    ),
                });
            }
            (Some(ResourceShareAssociationStatus::Associating), _) | (_, true) => {}
            (_, false) => {
                associate(clients, share_arn, &arn).await?;
                associated_here = true;
            }
        }
        if std::time::Instant::now() >= deadline {
            return Err(StepError::PointerShareFailed {
                parameter: arn,
                share: share_arn.to_string(),
                reason: format!(
                    "was not ASSOCIATED within {} s",
                    deps.config.pointer_wait.as_secs()
                ),
            });
        }
        tokio::time::sleep(pause).await;
        pause = (pause * 2)
            .min(poll)
            .max(std::time::Duration::from_millis(1));
    }
}

/// The status of the association of `resource_arn` with the share (None: there is none).
async fn association(
    clients: &RegionClients,
    share_arn: &str,
    resource_arn: &str,
) -> Result<(Option<ResourceShareAssociationStatus>, Option<String>), StepError> {
    let mut pages = clients
        .ram()
        .get_resource_share_associations()
        .association_type(ResourceShareAssociationType::Resource)
        .resource_share_arns(share_arn)
        .resource_arn(resource_arn)
        .into_paginator()
        .send();
    let mut found = (None, None);
    while let Some(page) = pages.next().await {
        let page =
            page.map_err(|error| classify_sdk_error("ram:GetResourceShareAssociations", error))?;
        for association in page.resource_share_associations() {
            if association.associated_entity() == Some(resource_arn)
                && association.resource_share_arn() == Some(share_arn)
            {
                found = (
                    association.status().cloned(),
                    association.status_message().map(str::to_string),
                );
            }
        }
    }
    Ok(found)
}

/// Add the pointer to the share (associating it again is a no-op for RAM).
async fn associate(
    clients: &RegionClients,
    share_arn: &str,
    resource_arn: &str,
) -> Result<(), StepError> {
    clients
        .ram()
        .associate_resource_share()
        .resource_share_arn(share_arn)
        .resource_arns(resource_arn)
        .send()
        .await
        .map_err(|error| classify_sdk_error("ram:AssociateResourceShare", error))?;
    tracing::info!(parameter = %resource_arn, share = share_arn, "pointer added to the organization's share");
    Ok(())
}

/// arn:PARTITION:ssm:REGION:ACCOUNT:parameter/NAME, the partition and account from the share's
/// own ARN (the share and the parameter belong to the same account).
pub fn parameter_arn(share_arn: &str, region: &str, parameter: &str) -> Result<String, StepError> {
    let parts: Vec<&str> = share_arn.split(':').collect();
    match parts.as_slice() {
        ["arn", partition, "ram", _, account, _] if !account.is_empty() => Ok(format!(
            "arn:{partition}:ssm:{region}:{account}:parameter{parameter}"
        )),
        _ => Err(StepError::AwsError {
            operation: "ram:GetResourceShares".into(),
            code: "UnexpectedArn".into(),
            message: format!(
                "the share ARN {share_arn} is not arn:PARTITION:ram:REGION:ACCOUNT:resource-share/ID"
            ),
        }),
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicUsize, Ordering};

    use aws_sdk_ec2::Client as Ec2;
    use aws_sdk_ec2::operation::create_tags::CreateTagsOutput;
    use aws_sdk_ec2::operation::describe_images::DescribeImagesOutput;
    use aws_sdk_ec2::types::Image;
    use aws_sdk_ram::Client as Ram;
    use aws_sdk_ram::operation::associate_resource_share::AssociateResourceShareOutput;
    use aws_sdk_ram::operation::get_resource_share_associations::GetResourceShareAssociationsOutput;
    use aws_sdk_ram::operation::get_resource_shares::GetResourceSharesOutput;
    use aws_sdk_ram::types::{ResourceShare, ResourceShareAssociation};
    use aws_sdk_ssm::Client as Ssm;
    use aws_sdk_ssm::operation::get_parameter::{GetParameterError, GetParameterOutput};
    use aws_sdk_ssm::operation::put_parameter::PutParameterOutput;
    use aws_sdk_ssm::types::Parameter;
    use aws_sdk_ssm::types::error::ParameterNotFound;
    use golden_ami_core::testing::{self, MockClients, Rule, mock};

    use super::*;

    const EVENT: &str = include_str!("../../../events/publish-pointer/ok.json");
    const UNVERIFIED: &str = include_str!("../../../events/publish-pointer/unverified.json");
    const UNTESTED: &str = include_str!("../../../events/publish-pointer/untested.json");
    const OLD: &str = "ami-0123456789abcdef0";
    const NEW: &str = "ami-0ccccccccccccccc0";
    const SHARE_ARN: &str =
        "arn:aws:ram:eu-west-1:111122223333:resource-share/0c6a1f6e-1111-4222-8333-444455556666";
    const POINTER_ARN: &str = "arn:aws:ssm:eu-west-1:111122223333:parameter/golden-ami/current";

    const PIN_PARAMETER: &str = "/golden-ami-pipeline/pins/default";

    fn no_pin() -> Rule {
        mock!(Ssm::get_parameter)
            .match_requests(|r| r.name() == Some(PIN_PARAMETER))
            .then_error(|| {
                GetParameterError::ParameterNotFound(ParameterNotFound::builder().build())
            })
    }

    #[tokio::test]
    async fn a_pin_set_during_the_run_stops_the_pointer_even_on_the_image_it_holds() {
        // The pin names the image the pointer holds: the version does not change, and only
        // reading the pin can tell the run to leave it.
        let pin = mock!(Ssm::get_parameter)
            .match_requests(|r| r.name() == Some(PIN_PARAMETER))
            .then_output(|| {
                GetParameterOutput::builder()
                    .parameter(
                        Parameter::builder()
                            .name(PIN_PARAMETER)
                            .value(format!(
                                r#"{{"family": "default", "amiId": "{OLD}", "region": "eu-west-1", "pinnedBy": "arn:aws:sts::111122223333:assumed-role/oncall/alice", "pinnedAt": "2026-12-01T09:00:00Z", "reason": "kernel regression"}}"#
                            ))
                            .version(1)
                            .build(),
                    )
                    .build()
            });
        let calls = Arc::new(AtomicUsize::new(0));
        let get = pointer(Some((OLD, 7)), 0, (NEW, 8), calls.clone());
        let put = put(NEW, true, calls.clone());
        let mark = mark(NEW);
        let deps = MockClients {
            ssm: vec![&pin, &get, &put],
            ec2: vec![&mark],
            ..Default::default()
        }
        .deps();
        let error = handler(&deps, testing::event(EVENT)).await.unwrap_err();
        assert_eq!(error.error_type(), "FamilyPinned");
        let message = error.to_string();
        assert!(
            message.contains(&format!("family default was pinned to {OLD} by arn:aws:sts::111122223333:assumed-role/oncall/alice at 2026-12-01T09:00:00Z (kernel regression)")),
            "{message}"
        );
        assert_eq!(
            (
                pin.num_calls(),
                get.num_calls(),
                put.num_calls(),
                mark.num_calls()
            ),
            (1, 0, 0, 0)
        );
    }

    fn parameter(value: &str, version: i64) -> GetParameterOutput {
        GetParameterOutput::builder()
            .parameter(
                Parameter::builder()
                    .name(testing::POINTER)
                    .value(value)
                    .version(version)
                    .build(),
            )
            .build()
    }

    /// GetParameter: `before` (None: no such parameter) until PutParameter ran and for
    /// `pending` reads after it (SSM still validating), then `after`.
    fn pointer(
        before: Option<(&'static str, i64)>,
        pending: usize,
        after: (&'static str, i64),
        put_calls: Arc<AtomicUsize>,
    ) -> Rule {
        let reads_after_put = Arc::new(AtomicUsize::new(0));
        mock!(Ssm::get_parameter)
            .match_requests(|request| request.name() == Some(testing::POINTER))
            .then_compute_response(move |_| {
                let written = put_calls.load(Ordering::SeqCst) > 0
                    && reads_after_put.fetch_add(1, Ordering::SeqCst) >= pending;
                match (written, before) {
                    (true, _) => testing::MockResponse::Output(parameter(after.0, after.1)),
                    (false, Some((value, version))) => {
                        testing::MockResponse::Output(parameter(value, version))
                    }
                    (false, None) => testing::MockResponse::Error(
                        GetParameterError::ParameterNotFound(ParameterNotFound::builder().build()),
                    ),
                }
            })
    }

    fn put(value: &'static str, overwrite: bool, calls: Arc<AtomicUsize>) -> Rule {
        mock!(Ssm::put_parameter)
            .match_requests(move |request| {
                request.name() == Some(testing::POINTER)
                    && request.value() == Some(value)
                    && request.data_type() == Some("aws:ec2:image")
                    && request.overwrite() == Some(overwrite)
                    && request.r#type() == Some(&ParameterType::String)
                    && (overwrite || request.tier() == Some(&ParameterTier::Advanced))
            })
            .then_output(move || {
                calls.fetch_add(1, Ordering::SeqCst);
                PutParameterOutput::builder().version(8).build()
            })
    }

    /// The image is tagged with the pointer it is about to be written to.
    fn mark(image: &'static str) -> Rule {
        mock!(Ec2::create_tags)
            .match_requests(move |request| {
                request.resources() == [image]
                    && request.tags().iter().any(|tag| {
                        tag.key() == Some(TAG_POINTER_WRITE)
                            && tag.value() == Some(testing::POINTER)
                    })
            })
            .then_output(|| CreateTagsOutput::builder().build())
    }

    fn image_in_state(state: ImageState) -> Rule {
        mock!(Ec2::describe_images)
            .match_requests(|request| {
                request.image_ids() == [NEW] && request.include_disabled() == Some(true)
            })
            .then_output(move || {
                DescribeImagesOutput::builder()
                    .images(Image::builder().image_id(NEW).state(state.clone()).build())
                    .build()
            })
    }

    fn shares(status: ResourceShareStatus) -> Rule {
        mock!(Ram::get_resource_shares)
            .match_requests(|request| {
                request.name() == Some("golden-ami-pipeline-pointers")
                    && request.resource_owner() == Some(&ResourceOwner::SelfValue)
            })
            .then_output(move || {
                GetResourceSharesOutput::builder()
                    .resource_shares(
                        ResourceShare::builder()
                            .name("golden-ami-pipeline-pointers")
                            .resource_share_arn(SHARE_ARN)
                            .status(status.clone())
                            .build(),
                    )
                    .build()
            })
    }

    /// GetResourceShareAssociations of the pointer: the n-th call answers `statuses[n]` (the
    /// last one again after that; None: no association).
    fn associations(statuses: Vec<Option<ResourceShareAssociationStatus>>) -> Rule {
        let calls = Arc::new(AtomicUsize::new(0));
        mock!(Ram::get_resource_share_associations)
            .match_requests(|request| {
                request.association_type() == Some(&ResourceShareAssociationType::Resource)
                    && request.resource_share_arns() == [SHARE_ARN]
                    && request.resource_arn() == Some(POINTER_ARN)
            })
            .then_output(move || {
                let n = calls.fetch_add(1, Ordering::SeqCst);
                let status = statuses.get(n).or(statuses.last()).cloned().flatten();
                let mut output = GetResourceShareAssociationsOutput::builder();
                if let Some(status) = status {
                    output = output.resource_share_associations(
                        ResourceShareAssociation::builder()
                            .resource_share_arn(SHARE_ARN)
                            .associated_entity(POINTER_ARN)
                            .association_type(ResourceShareAssociationType::Resource)
                            .status(status)
                            .status_message("the parameter is not in the Advanced tier")
                            .build(),
                    );
                }
                output.build()
            })
    }

    /// The association: `before` (None: none), then ASSOCIATING once, then ASSOCIATED.
    fn associated_after(before: Option<ResourceShareAssociationStatus>) -> Rule {
        associations(vec![
            before,
            Some(ResourceShareAssociationStatus::Associating),
            Some(ResourceShareAssociationStatus::Associated),
        ])
    }

    /// Mocked clients answering from these SSM, RAM and EC2 rules; the family is not pinned.
    fn deps(ssm: Vec<&Rule>, ram: Vec<&Rule>, ec2: Vec<&Rule>) -> Deps {
        let unpinned = no_pin();
        MockClients {
            ssm: ssm.into_iter().chain([&unpinned]).collect(),
            ram,
            ec2,
            ..Default::default()
        }
        .deps()
    }

    fn associated() -> Rule {
        associations(vec![Some(ResourceShareAssociationStatus::Associated)])
    }

    fn associate_rule() -> Rule {
        mock!(Ram::associate_resource_share)
            .match_requests(|request| {
                request.resource_share_arn() == Some(SHARE_ARN)
                    && request.resource_arns() == [POINTER_ARN]
            })
            .then_output(|| AssociateResourceShareOutput::builder().build())
    }

    #[tokio::test]
    async fn publishes_the_verified_copy_once_ssm_has_validated_it() {
        let calls = Arc::new(AtomicUsize::new(0));
        // The write shows on the third read after the put: SSM validates it asynchronously.
        let get = pointer(Some((OLD, 7)), 2, (NEW, 8), calls.clone());
        let put = put(NEW, true, calls.clone());
        let (list, assoc, mark) = (shares(ResourceShareStatus::Active), associated(), mark(NEW));
        let deps = deps(vec![&get, &put], vec![&list, &assoc], vec![&mark]);
        let result = handler(&deps, testing::event(EVENT)).await.unwrap();
        assert_eq!(
            result,
            PublishResult {
                parameter_name: testing::POINTER.into(),
                region: testing::REGION.into(),
                version: 8,
                previous_ami_id: Some(OLD.into()),
                new_ami_id: NEW.into(),
                reshared: false,
            }
        );
        assert_eq!((put.num_calls(), mark.num_calls()), (1, 1));
        // One read before the write, two while it is validated, one that sees it.
        assert_eq!(get.num_calls(), 4);
    }

    #[tokio::test]
    async fn a_write_that_never_shows_fails_validation_naming_the_image_and_why() {
        for (state, why) in [
            (ImageState::Disabled, "the image is disabled, not available"),
            (ImageState::Available, "did not show within 1 s"),
        ] {
            let calls = Arc::new(AtomicUsize::new(0));
            let get = pointer(Some((OLD, 7)), usize::MAX, (NEW, 8), calls.clone());
            let put = put(NEW, true, calls.clone());
            let (list, assoc, mark) =
                (shares(ResourceShareStatus::Active), associated(), mark(NEW));
            let describe = image_in_state(state);
            let deps = deps(
                vec![&get, &put],
                vec![&list, &assoc],
                vec![&mark, &describe],
            );
            let error = handler(&deps, testing::event(EVENT)).await.unwrap_err();
            assert_eq!(error.error_type(), "PointerValidationFailed");
            let message = error.to_string();
            assert!(
                message.contains(NEW)
                    && message.contains(why)
                    && message.contains("holds what it held before"),
                "{message}"
            );
            assert_eq!((put.num_calls(), describe.num_calls()), (1, 1));
            assert!(get.num_calls() > 2, "it waited: {}", get.num_calls());
        }
    }

    #[tokio::test]
    async fn another_write_that_shows_first_is_a_concurrent_change() {
        let calls = Arc::new(AtomicUsize::new(0));
        let get = pointer(
            Some((OLD, 7)),
            1,
            ("ami-0dddddddddddddddd", 8),
            calls.clone(),
        );
        let put = put(NEW, true, calls.clone());
        let (list, assoc, mark) = (shares(ResourceShareStatus::Active), associated(), mark(NEW));
        let deps = deps(vec![&get, &put], vec![&list, &assoc], vec![&mark]);
        let error = handler(&deps, testing::event(EVENT)).await.unwrap_err();
        assert_eq!(error.error_type(), "PointerChangedConcurrently");
        assert!(
            error
                .to_string()
                .contains("version 8 = ami-0dddddddddddddddd"),
            "{error}"
        );
    }

    #[tokio::test]
    async fn a_pointer_moved_during_the_run_is_not_overwritten() {
        let calls = Arc::new(AtomicUsize::new(0));
        let get = pointer(
            Some(("ami-0dddddddddddddddd", 8)),
            0,
            ("unused", 0),
            calls.clone(),
        );
        let put = put(NEW, true, calls);
        let deps = deps(vec![&get, &put], vec![], vec![]);
        let error = handler(&deps, testing::event(EVENT)).await.unwrap_err();
        assert_eq!(error.error_type(), "PointerChangedConcurrently");
        assert!(
            error
                .to_string()
                .contains("version 8 = ami-0dddddddddddddddd"),
            "{error}"
        );
        assert_eq!(put.num_calls(), 0);
    }

    #[tokio::test]
    async fn a_retry_after_its_own_write_does_not_write_again() {
        let calls = Arc::new(AtomicUsize::new(0));
        let get = pointer(Some((NEW, 8)), 0, ("unused", 0), calls.clone());
        let put = put(NEW, true, calls);
        let (list, assoc) = (shares(ResourceShareStatus::Active), associated());
        let deps = deps(vec![&get, &put], vec![&list, &assoc], vec![]);
        let result = handler(&deps, testing::event(EVENT)).await.unwrap();
        assert_eq!(result.version, 8);
        assert_eq!(put.num_calls(), 0);
    }

    #[tokio::test]
    async fn an_existing_pointer_outside_its_share_is_shared_again_before_it_moves() {
        let calls = Arc::new(AtomicUsize::new(0));
        let get = pointer(Some((OLD, 7)), 0, (NEW, 8), calls.clone());
        let put = put(NEW, true, calls.clone());
        // No association (or a FAILED one from before): associated again, ASSOCIATING, then
        // ASSOCIATED.
        for before in [None, Some(ResourceShareAssociationStatus::Failed)] {
            let (list, associate, mark) = (
                shares(ResourceShareStatus::Active),
                associate_rule(),
                mark(NEW),
            );
            let assoc = associated_after(before);
            let deps = deps(
                vec![&get, &put],
                vec![&list, &assoc, &associate],
                vec![&mark],
            );
            calls.store(0, Ordering::SeqCst);
            let result = handler(&deps, testing::event(EVENT)).await.unwrap();
            assert!(result.reshared);
            assert_eq!((associate.num_calls(), assoc.num_calls()), (1, 3));
        }
    }

    #[tokio::test]
    async fn a_failed_association_is_named_and_the_pointer_does_not_move() {
        let calls = Arc::new(AtomicUsize::new(0));
        let get = pointer(Some((OLD, 7)), 0, (NEW, 8), calls.clone());
        let put = put(NEW, true, calls.clone());
        let (list, associate) = (shares(ResourceShareStatus::Active), associate_rule());
        let assoc = associations(vec![None, Some(ResourceShareAssociationStatus::Failed)]);
        let deps = deps(vec![&get, &put], vec![&list, &assoc, &associate], vec![]);
        let error = handler(&deps, testing::event(EVENT)).await.unwrap_err();
        assert_eq!(error.error_type(), "PointerShareFailed");
        let message = error.to_string();
        assert!(
            message.contains(SHARE_ARN)
                && message.contains(POINTER_ARN)
                && message.contains("FAILED (the parameter is not in the Advanced tier)"),
            "{message}"
        );
        assert_eq!(put.num_calls(), 0);
    }

    #[tokio::test]
    async fn an_unverified_image_is_never_published() {
        let calls = Arc::new(AtomicUsize::new(0));
        let get = pointer(Some((OLD, 7)), 0, (NEW, 8), calls.clone());
        let put = put(NEW, true, calls);
        let deps = deps(vec![&get, &put], vec![], vec![]);
        let error = handler(&deps, testing::event(UNVERIFIED))
            .await
            .unwrap_err();
        assert_eq!(error.error_type(), "InvalidInput");
        assert!(error.to_string().contains("never tested nor published"));
        assert_eq!((get.num_calls(), put.num_calls()), (0, 0));
    }

    #[tokio::test]
    async fn an_image_without_a_passed_boot_test_is_never_published() {
        let calls = Arc::new(AtomicUsize::new(0));
        let get = pointer(Some((OLD, 7)), 0, (NEW, 8), calls.clone());
        let put = put(NEW, true, calls);
        let deps = deps(vec![&get, &put], vec![], vec![]);
        let error = handler(&deps, testing::event(UNTESTED)).await.unwrap_err();
        assert_eq!(error.error_type(), "InvalidInput");
        assert!(error.to_string().contains("nobody has booted"), "{error}");
        assert_eq!((get.num_calls(), put.num_calls()), (0, 0));
    }

    #[tokio::test]
    async fn a_refused_write_takes_its_mark_back_and_a_throttled_one_keeps_it() {
        use aws_sdk_ec2::operation::delete_tags::DeleteTagsOutput;
        use aws_sdk_ssm::operation::put_parameter::PutParameterError;
        for (refuse, untagged) in [(true, 1), (false, 0)] {
            let calls = Arc::new(AtomicUsize::new(0));
            let get = pointer(Some((OLD, 7)), 0, (NEW, 8), calls);
            let put = if refuse {
                mock!(Ssm::put_parameter).then_error(|| {
                    PutParameterError::generic(testing::service_error(
                        "AccessDeniedException",
                        "not authorized to perform ssm:PutParameter",
                    ))
                })
            } else {
                mock!(Ssm::put_parameter).then_http_response(|| testing::http_status(503))
            };
            let untag = mock!(Ec2::delete_tags)
                .match_requests(|request| {
                    request.resources() == [NEW]
                        && request.tags().len() == 1
                        && request.tags()[0].key() == Some(TAG_POINTER_WRITE)
                })
                .then_output(|| DeleteTagsOutput::builder().build());
            let (list, assoc, mark) =
                (shares(ResourceShareStatus::Active), associated(), mark(NEW));
            let deps = deps(vec![&get, &put], vec![&list, &assoc], vec![&mark, &untag]);
            let error = handler(&deps, testing::event(EVENT)).await.unwrap_err();
            assert_eq!(
                error.error_type(),
                if refuse { "AwsError" } else { "Throttled" }
            );
            assert_eq!((mark.num_calls(), untag.num_calls()), (1, untagged));
        }
    }

    #[tokio::test]
    async fn throttled_put_is_retryable() {
        let calls = Arc::new(AtomicUsize::new(0));
        let get = pointer(Some((OLD, 7)), 0, (NEW, 8), calls);
        let put = mock!(Ssm::put_parameter).then_http_response(|| testing::http_status(503));
        let (list, assoc, mark) = (shares(ResourceShareStatus::Active), associated(), mark(NEW));
        let deps = deps(vec![&get, &put], vec![&list, &assoc], vec![&mark]);
        let error = handler(&deps, testing::event(EVENT)).await.unwrap_err();
        assert_eq!(error.error_type(), "Throttled");
    }

    #[test]
    fn decisions() {
        let target = |ami: Option<&str>, version| RegionTarget {
            region: testing::REGION.into(),
            kms_key_arn: testing::GOLDEN_KEY_ARN.into(),
            parameter_name: testing::POINTER.into(),
            parameter_version: version,
            ami_id: ami.map(str::to_string),
        };
        let now = |value: &str, version: i64| Some((value.to_string(), version));
        let refuse = |value: &str, found| Decision::Refuse {
            found,
            value: value.into(),
        };
        let old = target(Some(OLD), 7);
        assert_eq!(decide(&old, NEW, now(OLD, 7).as_ref()), Decision::Publish);
        assert_eq!(
            decide(&old, NEW, now(NEW, 8).as_ref()),
            Decision::AlreadyPublished(8)
        );
        assert_eq!(decide(&old, NEW, now(OLD, 8).as_ref()), refuse(OLD, 8));
        assert_eq!(decide(&old, NEW, now(NEW, 9).as_ref()), refuse(NEW, 9));
        assert_eq!(
            decide(&old, NEW, now("ami-0eeeeeeeeeeeeeeee", 7).as_ref()),
            refuse("ami-0eeeeeeeeeeeeeeee", 7)
        );
        assert_eq!(
            decide(&old, NEW, None),
            refuse("(deleted during this run)", 0)
        );
        // A region where the family has no pointer yet.
        let new = target(None, 0);
        assert_eq!(decide(&new, NEW, None), Decision::Create);
        assert_eq!(
            decide(&new, NEW, now(NEW, 1).as_ref()),
            Decision::AlreadyPublished(1)
        );
        assert_eq!(decide(&new, NEW, now(OLD, 1).as_ref()), refuse(OLD, 1));
    }

    #[test]
    fn a_write_that_did_not_show_is_explained_by_the_image() {
        let waited = std::time::Duration::from_secs(60);
        assert!(validation_failure(None, waited).contains("does not exist"));
        assert!(validation_failure(Some(&ImageState::Pending), waited).contains("is pending"));
        let slow = validation_failure(Some(&ImageState::Available), waited);
        assert!(
            slow.contains("within 60 s") && slow.contains(TAG_POINTER_WRITE),
            "{slow}"
        );
    }

    /// The event for the same family's copy in a second region: its own image, not the one the
    /// boot test booted in the home region.
    fn second_region_event(golden: &str) -> StepInput {
        let mut input: StepInput = testing::event(EVENT);
        let mut family = testing::family();
        family.regions.push(golden_ami_core::RegionSpec {
            region: "us-east-1".into(),
            kms_key_arn: "arn:aws:kms:us-east-1:111122223333:key/mrk-1".into(),
        });
        input.state.family = Some(family);
        if let Some(target) = input.state.target.as_mut() {
            target.region = "us-east-1".into();
        }
        if let Some(copy) = input.state.copy.as_mut() {
            copy.golden_ami_id = golden.into();
        }
        if let Some(verify) = input.state.verify.as_mut() {
            verify.golden_ami_id = golden.into();
        }
        input
    }

    #[tokio::test]
    async fn another_region_publishes_its_own_verified_copy_of_the_tested_bake() {
        const REGIONAL: &str = "ami-0eeeeeeeeeeeeeee1";
        let calls = Arc::new(AtomicUsize::new(0));
        let get = pointer(Some((OLD, 7)), 0, (REGIONAL, 8), calls.clone());
        let put = put(REGIONAL, true, calls.clone());
        let list = shares(ResourceShareStatus::Active);
        let assoc = mock!(Ram::get_resource_share_associations).then_output(|| {
            GetResourceShareAssociationsOutput::builder()
                .resource_share_associations(
                    ResourceShareAssociation::builder()
                        .resource_share_arn(SHARE_ARN)
                        .associated_entity(
                            "arn:aws:ssm:us-east-1:111122223333:parameter/golden-ami/current",
                        )
                        .status(ResourceShareAssociationStatus::Associated)
                        .build(),
                )
                .build()
        });
        let mark = mark(REGIONAL);
        let deps = deps(vec![&get, &put], vec![&list, &assoc], vec![&mark]);
        let result = handler(&deps, second_region_event(REGIONAL)).await.unwrap();
        assert_eq!(
            (result.region.as_str(), result.new_ami_id.as_str()),
            ("us-east-1", REGIONAL)
        );
        assert_eq!((put.num_calls(), mark.num_calls()), (1, 1));
    }

    #[tokio::test]
    async fn in_the_home_region_only_the_booted_image_is_published() {
        let mut input = second_region_event("ami-0eeeeeeeeeeeeeee1");
        if let Some(target) = input.state.target.as_mut() {
            target.region = testing::REGION.into();
        }
        let calls = Arc::new(AtomicUsize::new(0));
        let get = pointer(Some((OLD, 7)), 0, (NEW, 8), calls.clone());
        let put = put(NEW, true, calls);
        let deps = deps(vec![&get, &put], vec![], vec![]);
        let error = handler(&deps, input).await.unwrap_err();
        assert_eq!(error.error_type(), "InvalidInput");
        assert!(
            error.to_string().contains("the boot test passed for"),
            "{error}"
        );
        assert_eq!((get.num_calls(), put.num_calls()), (0, 0));
    }

    /// The event of a region where the family has no pointer yet.
    fn first_image_event() -> StepInput {
        let mut input: StepInput = testing::event(EVENT);
        if let Some(target) = input.state.target.as_mut() {
            target.ami_id = None;
            target.parameter_version = 0;
        }
        input
    }

    #[tokio::test]
    async fn a_first_image_creates_the_pointer_and_shares_it_once_both_are_done() {
        let calls = Arc::new(AtomicUsize::new(0));
        // The created parameter exists only once SSM validated it; then it is associated, which
        // RAM does asynchronously too.
        let get = pointer(None, 1, (NEW, 1), calls.clone());
        let create = put(NEW, false, calls.clone());
        let (list, associate, mark) = (
            shares(ResourceShareStatus::Active),
            associate_rule(),
            mark(NEW),
        );
        let assoc = associated_after(None);
        let deps = deps(
            vec![&get, &create],
            vec![&list, &assoc, &associate],
            vec![&mark],
        );
        let result = handler(&deps, first_image_event()).await.unwrap();
        assert_eq!(result.previous_ami_id, None);
        assert_eq!((result.version, result.new_ami_id.as_str()), (1, NEW));
        assert!(!result.reshared);
        assert_eq!((create.num_calls(), associate.num_calls()), (1, 1));
        assert_eq!((get.num_calls(), assoc.num_calls()), (3, 3));
    }

    #[tokio::test]
    async fn without_the_regions_share_no_pointer_is_created() {
        let calls = Arc::new(AtomicUsize::new(0));
        let get = pointer(None, 0, (NEW, 1), calls.clone());
        let create = put(NEW, false, calls);
        let list = shares(ResourceShareStatus::Deleted);
        let deps = deps(vec![&get, &create], vec![&list], vec![]);
        let error = handler(&deps, first_image_event()).await.unwrap_err();
        assert_eq!(error.error_type(), "ConfigError");
        let message = error.to_string();
        assert!(
            message.contains("golden-ami-pipeline-pointers")
                && message.contains("deploy infra/region.yaml in eu-west-1"),
            "{message}"
        );
        assert_eq!(create.num_calls(), 0);
    }

    #[tokio::test]
    async fn a_pointer_someone_created_during_the_run_is_not_replaced() {
        let calls = Arc::new(AtomicUsize::new(0));
        let get = pointer(
            Some(("ami-0dddddddddddddddd", 1)),
            0,
            ("unused", 0),
            calls.clone(),
        );
        let create = put(NEW, false, calls);
        let deps = deps(vec![&get, &create], vec![], vec![]);
        let error = handler(&deps, first_image_event()).await.unwrap_err();
        assert_eq!(error.error_type(), "PointerChangedConcurrently");
        assert_eq!(create.num_calls(), 0);
    }

    #[tokio::test]
    async fn a_retry_after_the_create_shares_it_without_writing_again() {
        let calls = Arc::new(AtomicUsize::new(0));
        let get = pointer(Some((NEW, 1)), 0, ("unused", 0), calls.clone());
        let create = put(NEW, false, calls);
        let (list, associate) = (shares(ResourceShareStatus::Active), associate_rule());
        let assoc = associations(vec![None, Some(ResourceShareAssociationStatus::Associated)]);
        let deps = deps(vec![&get, &create], vec![&list, &assoc, &associate], vec![]);
        let result = handler(&deps, first_image_event()).await.unwrap();
        assert_eq!(result.version, 1);
        assert_eq!((create.num_calls(), associate.num_calls()), (0, 1));
    }

    #[test]
    fn the_parameter_arn_comes_from_the_shares_account() {
        assert_eq!(
            parameter_arn(SHARE_ARN, "us-east-1", "/golden-ami/arm64").unwrap(),
            "arn:aws:ssm:us-east-1:111122223333:parameter/golden-ami/arm64"
        );
        assert!(parameter_arn("not-an-arn", "us-east-1", "/x").is_err());
    }

    // ---- all regions or none: CHECK before the first pointer moves, RESTORE after --------

    /// The family's state as CheckPointers sees it: ok.json's, its pointer read at (OLD, 7).
    fn family_state() -> PipelineState {
        testing::event::<StepInput>(EVENT).state
    }

    #[tokio::test]
    async fn the_check_passes_when_every_pointer_is_what_the_run_read() {
        let get = mock!(Ssm::get_parameter)
            .match_requests(|r| r.name() == Some(testing::POINTER))
            .then_output(|| parameter(OLD, 7));
        let deps = deps(vec![&get], vec![], vec![]);
        let checked = check_pointers(&deps, &family_state()).await.unwrap();
        assert_eq!(checked.regions, ["eu-west-1"]);
        assert_eq!(get.num_calls(), 1);
    }

    #[tokio::test]
    async fn a_pointer_changed_by_hand_stops_the_family_before_any_pointer_moves() {
        let get = mock!(Ssm::get_parameter)
            .match_requests(|r| r.name() == Some(testing::POINTER))
            .then_output(|| parameter("ami-0dddddddddddddddd", 8));
        let put = put(NEW, true, Arc::new(AtomicUsize::new(0)));
        let deps = deps(vec![&get, &put], vec![], vec![]);
        let input = PublishInput {
            context: testing::context(),
            mode: PublishMode::Check,
            state: family_state(),
        };
        let error = run(&deps, input).await.unwrap_err();
        assert_eq!(error.error_type(), "PointerChangedConcurrently");
        assert!(
            error.to_string().contains(
                "pointer /golden-ami/current in eu-west-1 changed during the run (read at version 7, now version 8 = ami-0dddddddddddddddd)"
            ),
            "{error}"
        );
        assert_eq!(put.num_calls(), 0);
    }

    #[test]
    fn a_pointer_is_as_read_only_with_the_value_and_the_version_read() {
        let target = family_state().target.unwrap();
        let now = |value: &str, version| Some((value.to_string(), version));
        assert_eq!(changed_since_read(&target, now(OLD, 7).as_ref()), None);
        assert_eq!(
            changed_since_read(&target, now(OLD, 8).as_ref()),
            Some((OLD.into(), 8))
        );
        assert_eq!(
            changed_since_read(&target, None),
            Some(("(deleted during this run)".into(), 0))
        );
        let new = RegionTarget {
            ami_id: None,
            parameter_version: 0,
            ..target
        };
        assert_eq!(changed_since_read(&new, None), None);
        assert_eq!(
            changed_since_read(&new, now(NEW, 1).as_ref()),
            Some((NEW.into(), 1))
        );
    }

    /// The family's state after PublishPointers: eu-west-1 moved OLD (7) -> NEW (8), another
    /// region failed.
    fn moved_state(previous: Option<&str>) -> PipelineState {
        let publish = PublishResult {
            parameter_name: testing::POINTER.into(),
            region: testing::REGION.into(),
            version: 8,
            previous_ami_id: previous.map(str::to_string),
            new_ami_id: NEW.into(),
            reshared: false,
        };
        let mut state = family_state();
        state.pointers = vec![
            PipelineState {
                publish: Some(publish),
                published: Some(true),
                ..Default::default()
            },
            PipelineState {
                published: Some(false),
                ..Default::default()
            },
        ];
        state
    }

    #[tokio::test]
    async fn a_pointer_this_run_moved_is_put_back_once_ssm_shows_it() {
        let calls = Arc::new(AtomicUsize::new(0));
        let get = pointer(Some((NEW, 8)), 1, (OLD, 9), calls.clone());
        let put_back = mock!(Ssm::put_parameter)
            .match_requests(|r| {
                r.name() == Some(testing::POINTER)
                    && r.value() == Some(OLD)
                    && r.overwrite() == Some(true)
                    && r.data_type() == Some("aws:ec2:image")
            })
            .then_output(move || {
                calls.fetch_add(1, Ordering::SeqCst);
                PutParameterOutput::builder().version(9).build()
            });
        let deps = deps(vec![&get, &put_back], vec![], vec![]);
        let input = PublishInput {
            context: testing::context(),
            mode: PublishMode::Restore,
            state: moved_state(Some(OLD)),
        };
        let PublishOutput::Restored(result) = run(&deps, input).await.unwrap() else {
            panic!("not a RestoreResult");
        };
        let [restored] = result.pointers.as_slice() else {
            panic!("{result:?}");
        };
        assert_eq!(
            (
                restored.restored_to.as_deref(),
                restored.restored_version,
                restored.left_because.as_deref()
            ),
            (Some(OLD), Some(9), None)
        );
        // Read before, then until the put-back showed.
        assert_eq!((put_back.num_calls(), get.num_calls()), (1, 3));

        // A retry of the step finds it put back and writes nothing.
        let calls = Arc::new(AtomicUsize::new(0));
        let done = pointer(Some((OLD, 9)), 0, (OLD, 9), calls);
        let deps_again = super::tests::deps(vec![&done, &put_back], vec![], vec![]);
        let again = restore_pointers(&deps_again, "x", &moved_state(Some(OLD)))
            .await
            .unwrap();
        assert_eq!(again.pointers[0].restored_version, Some(9));
        assert_eq!(put_back.num_calls(), 1);
    }

    #[tokio::test]
    async fn a_pointer_changed_after_this_runs_write_or_created_by_it_is_left() {
        let calls = Arc::new(AtomicUsize::new(0));
        let get = pointer(
            Some(("ami-0dddddddddddddddd", 9)),
            0,
            (OLD, 10),
            calls.clone(),
        );
        let any_put = put(OLD, true, calls);
        let deps = deps(vec![&get, &any_put], vec![], vec![]);
        let later = restore_pointers(&deps, "x", &moved_state(Some(OLD)))
            .await
            .unwrap();
        assert!(
            later.pointers[0]
                .left_because
                .as_deref()
                .is_some_and(|why| why.contains("it holds ami-0dddddddddddddddd (version 9)")),
            "{later:?}"
        );
        let created = restore_pointers(&deps, "x", &moved_state(None))
            .await
            .unwrap();
        assert!(
            created.pointers[0]
                .left_because
                .as_deref()
                .is_some_and(|why| why.contains("this run created it")),
            "{created:?}"
        );
        assert_eq!(any_put.num_calls(), 0);
    }
}

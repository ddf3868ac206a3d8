//! `golden-ami`: day-2 operations on a deployed pipeline, for the people on call.
//!
//! Every command reads the stack's outputs (CloudFormation DescribeStacks) unless they are all
//! given with flags, talks to SSM, EC2 and Step Functions with the same SDK as the steps, and
//! answers either in plain text or, with `--json`, with one JSON document. An error says what is
//! wrong and what to do; the exit status is 0 on success, 1 when the command ran and found a
//! failure (a failed run, a refused rollback), 2 when it could not run (no stack, bad input).

use std::collections::BTreeMap;
use std::fmt::Write as _;

use aws_sdk_ec2::types::ImageState;
use aws_sdk_sfn::types::{ExecutionStatus, HistoryEvent};
use aws_sdk_ssm::error::ProvideErrorMetadata;
use aws_sdk_ssm::types::{ParameterTier, ParameterType};
use golden_ami_core::config::split_list;
use golden_ami_core::golden::{GoldenSpec, inspect, split};
use golden_ami_core::naming::{self, TAG_FAMILY, TAG_TYPE, TYPE_GOLDEN, format_timestamp};
use golden_ami_core::targets::{Architecture, region_key};
use golden_ami_core::{
    APPROVAL_DENIED, ApprovalDecision, ApprovalRequest, LaunchPrincipals, Pin, ShareConfig,
    StepError, Targets, WriteOutcome, await_pointer_write, read_pointer, read_pointer_history,
};
use serde::Serialize;
use serde_json::Value;
use time::OffsetDateTime;

mod aws;
pub use aws::Aws;

/// What went wrong, and what to do about it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CliError {
    /// 1: the command ran and found a failure; 2: it could not run.
    pub code: i32,
    pub message: String,
}

impl CliError {
    pub fn refused(message: impl Into<String>) -> Self {
        Self {
            code: 2,
            message: message.into(),
        }
    }

    pub fn failed(message: impl Into<String>) -> Self {
        Self {
            code: 1,
            message: message.into(),
        }
    }
}

impl std::fmt::Display for CliError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.message)
    }
}

/// An SDK error as one line: the operation, the service's code and message.
pub fn sdk<E, R>(operation: &str) -> impl Fn(aws_sdk_ssm::error::SdkError<E, R>) -> CliError + '_
where
    E: ProvideErrorMetadata + std::fmt::Debug,
    R: std::fmt::Debug,
{
    move |error| {
        let detail = match (error.code(), error.message()) {
            (Some(code), Some(message)) => format!("{code}: {message}"),
            (Some(code), None) => code.to_string(),
            _ => format!("{error:?}"),
        };
        CliError::refused(format!(
            "{operation} failed ({detail}): check the credentials, the region and --endpoint-url"
        ))
    }
}

/// The stack's names, from its outputs or from flags.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Stack {
    pub name: String,
    pub region: String,
    pub targets_parameter: String,
    pub state_machine_arn: Option<String>,
    pub schedule: Option<String>,
    /// The schedule's ScheduleTimezone (IANA name); UTC when the stack was not read.
    #[serde(default)]
    pub timezone: Option<String>,
    /// The golden key at home (the GoldenKeyArn output, or --golden-key-arn): a target region
    /// without its own kmsKeyArn uses its multi-Region replica. `pin` checks the snapshots.
    #[serde(skip)]
    pub golden_key_arn: Option<String>,
    /// Who the stack shares its golden images with (its OrganizationArn, ShareWithOrganization,
    /// ShareOuArns and ShareAccountIds, or --shared-with): `pin` checks the launch permission.
    #[serde(skip)]
    pub shared_with: Option<LaunchPrincipals>,
}

impl Stack {
    /// Where `golden-ami pin` writes and PlanRun reads the pins (the template's PINS_PATH).
    pub fn pins_path(&self) -> String {
        format!("/{}/pins", self.name)
    }

    /// Where RequestApproval stores the approval requests (the template's APPROVALS_PATH).
    pub fn approvals_path(&self) -> String {
        format!("/{}/approvals", self.name)
    }

    fn state_machine(&self) -> Result<&str, CliError> {
        self.state_machine_arn.as_deref().ok_or_else(|| {
            CliError::refused(format!(
                "no state machine for the stack {}: give --state-machine-arn, or deploy the stack (its StateMachineArn output)",
                self.name
            ))
        })
    }
}

/// Read the stack's outputs and parameters, unless --targets-parameter names the targets.
pub async fn find_stack(
    aws: &Aws,
    name: &str,
    targets_parameter: Option<String>,
    state_machine_arn: Option<String>,
) -> Result<Stack, CliError> {
    let mut stack = Stack {
        name: name.to_string(),
        region: aws.region.clone(),
        targets_parameter: targets_parameter.clone().unwrap_or_default(),
        state_machine_arn: state_machine_arn.clone(),
        schedule: None,
        timezone: None,
        golden_key_arn: None,
        shared_with: None,
    };
    // Given the targets, the stack itself is not needed (the local stack has none): the runs
    // then need --state-machine-arn.
    if targets_parameter.is_some() {
        return Ok(stack);
    }
    let described = aws
        .cloudformation
        .describe_stacks()
        .stack_name(name)
        .send()
        .await
        .map_err(|error| {
            if error
                .as_service_error()
                .and_then(|e| e.message())
                .is_some_and(|m| m.contains("does not exist"))
            {
                CliError::refused(format!(
                    "the stack {name} does not exist in {}: pass --stack (or GOLDEN_AMI_STACK) and --stack-region, or give --targets-parameter (and --state-machine-arn)",
                    aws.region
                ))
            } else {
                sdk("cloudformation:DescribeStacks")(error)
            }
        })?;
    let found = described.stacks().first().ok_or_else(|| {
        CliError::refused(format!("the stack {name} was not found in {}", aws.region))
    })?;
    let outputs: BTreeMap<&str, &str> = found
        .outputs()
        .iter()
        .filter_map(|o| Some((o.output_key()?, o.output_value()?)))
        .collect();
    let parameters: BTreeMap<&str, &str> = found
        .parameters()
        .iter()
        .filter_map(|p| Some((p.parameter_key()?, p.parameter_value()?)))
        .collect();
    if stack.targets_parameter.is_empty() {
        stack.targets_parameter = outputs
            .get("TargetsParameterName")
            .ok_or_else(|| {
                CliError::refused(format!(
                    "the stack {name} has no TargetsParameterName output: update it (make deploy)"
                ))
            })?
            .to_string();
    }
    if stack.state_machine_arn.is_none() {
        stack.state_machine_arn = outputs.get("StateMachineArn").map(|v| v.to_string());
    }
    let timezone = parameters.get("ScheduleTimezone").copied().unwrap_or("UTC");
    stack.schedule = Some(match parameters.get("ScheduleState") {
        Some(&"DISABLED") => "disabled (ScheduleState)".to_string(),
        _ => format!("cron(0 8 1 * ? *) {timezone}"),
    });
    stack.timezone = Some(timezone.to_string());
    stack.golden_key_arn = outputs.get("GoldenKeyArn").map(|v| v.to_string());
    stack.shared_with = parameters.get("OrganizationArn").map(|organization| {
        let list = |key: &str| {
            parameters
                .get(key)
                .map(|value| split_list(value))
                .unwrap_or_default()
        };
        ShareConfig {
            organization_arn: Some(organization.to_string()),
            organizational_unit_arns: list("ShareOuArns"),
            account_ids: list("ShareAccountIds"),
            share_with_organization: parameters.get("ShareWithOrganization") != Some(&"false"),
        }
        .principals(None)
    });
    Ok(stack)
}

/// `--shared-with`: organization ARNs, OU ARNs and 12-digit account ids, comma-separated.
pub fn parse_shared_with(value: &str) -> Result<LaunchPrincipals, CliError> {
    let mut principals = LaunchPrincipals::default();
    for item in split_list(value) {
        if naming::is_organization_arn(&item) {
            principals.organization_arns.push(item);
        } else if naming::is_organizational_unit_arn(&item) {
            principals.organizational_unit_arns.push(item);
        } else if item.len() == 12 && item.bytes().all(|b| b.is_ascii_digit()) {
            principals.account_ids.push(item);
        } else {
            return Err(CliError::refused(format!(
                "--shared-with: {item} is neither an organization ARN, an OU ARN nor a 12-digit account id"
            )));
        }
    }
    Ok(principals)
}

/// One family as the targets list it, with the regions it is published in.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Family {
    pub name: String,
    pub pointer: String,
    pub regions: Vec<String>,
    #[serde(skip)]
    pub architecture: Architecture,
    /// The golden key of each region whose key is known (the targets' kmsKeyArn, or the
    /// replica of the stack's golden key).
    #[serde(skip)]
    pub golden_keys: BTreeMap<String, String>,
}

pub async fn families(aws: &Aws, stack: &Stack) -> Result<Vec<Family>, CliError> {
    let text = aws
        .ssm
        .get_parameter()
        .name(&stack.targets_parameter)
        .send()
        .await
        .map_err(sdk("ssm:GetParameter (the targets)"))?
        .parameter()
        .and_then(|p| p.value())
        .unwrap_or_default()
        .to_string();
    let targets: Targets = serde_json::from_str(&text).map_err(|error| {
        CliError::refused(format!(
            "the targets parameter {} is not a targets document ({error})",
            stack.targets_parameter
        ))
    })?;
    let all: Vec<String> = targets.regions.iter().map(|r| r.region.clone()).collect();
    let golden_keys: BTreeMap<String, String> = targets
        .regions
        .iter()
        .filter_map(|entry| {
            region_key(entry, stack.golden_key_arn.as_deref())
                .ok()
                .map(|key| (entry.region.clone(), key))
        })
        .collect();
    Ok(targets
        .families
        .into_iter()
        .map(|f| Family {
            regions: f.regions.unwrap_or_else(|| all.clone()),
            name: f.name,
            pointer: f.pointer,
            architecture: f.architecture,
            golden_keys: golden_keys.clone(),
        })
        .collect())
}

/// The family a command works on: the one named, or the only one.
pub fn pick<'a>(families: &'a [Family], name: Option<&str>) -> Result<&'a Family, CliError> {
    let names = || {
        families
            .iter()
            .map(|f| f.name.as_str())
            .collect::<Vec<_>>()
            .join(", ")
    };
    match (name, families) {
        (Some(name), _) => families.iter().find(|f| f.name == name).ok_or_else(|| {
            CliError::refused(format!("no family {name}: the targets have {}", names()))
        }),
        (None, [only]) => Ok(only),
        (None, _) => Err(CliError::refused(format!(
            "several families ({}): say which with --family",
            names()
        ))),
    }
}

/// The regions a command works on: the one named (it must be the family's), or all of them.
pub fn regions_of<'a>(
    family: &'a Family,
    region: Option<&'a str>,
) -> Result<Vec<&'a str>, CliError> {
    match region {
        Some(region) if family.regions.iter().any(|r| r == region) => Ok(vec![region]),
        Some(region) => Err(CliError::refused(format!(
            "family {} is not published in {region}: its regions are {}",
            family.name,
            family.regions.join(", ")
        ))),
        None => Ok(family.regions.iter().map(String::as_str).collect()),
    }
}

// ---- pointers and pins ---------------------------------------------------------------------

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct PointerNow {
    pub family: String,
    pub region: String,
    pub parameter: String,
    /// None: the family has no pointer there yet.
    pub value: Option<String>,
    pub version: Option<i64>,
    pub modified: Option<String>,
    pub age_days: Option<i64>,
}

pub async fn pointer_now(
    aws: &Aws,
    family: &Family,
    region: &str,
    now: OffsetDateTime,
) -> Result<PointerNow, CliError> {
    let ssm = aws.ssm_in(region);
    let mut pointer = PointerNow {
        family: family.name.clone(),
        region: region.to_string(),
        parameter: family.pointer.clone(),
        value: None,
        version: None,
        modified: None,
        age_days: None,
    };
    match ssm.get_parameter().name(&family.pointer).send().await {
        Ok(output) => {
            let parameter = output.parameter();
            pointer.value = parameter.and_then(|p| p.value()).map(str::to_string);
            pointer.version = parameter.map(|p| p.version());
            if let Some(modified) = parameter.and_then(|p| p.last_modified_date()) {
                let at = OffsetDateTime::from_unix_timestamp(modified.secs()).unwrap_or(now);
                pointer.modified = Some(format_timestamp(at));
                pointer.age_days = Some((now - at).whole_days());
            }
        }
        Err(error)
            if error
                .as_service_error()
                .is_some_and(|e| e.is_parameter_not_found()) => {}
        Err(error) => return Err(sdk("ssm:GetParameter")(error)),
    }
    Ok(pointer)
}

pub async fn pins(aws: &Aws, stack: &Stack) -> Result<Vec<Pin>, CliError> {
    let mut pins = Vec::new();
    let mut pages = aws
        .ssm
        .get_parameters_by_path()
        .path(stack.pins_path())
        .into_paginator()
        .send();
    while let Some(page) = pages.next().await {
        for parameter in page
            .map_err(sdk("ssm:GetParametersByPath (the pins)"))?
            .parameters()
        {
            let pin: Pin =
                serde_json::from_str(parameter.value().unwrap_or_default()).map_err(|error| {
                    CliError::refused(format!(
                        "the pin {} is not a pin ({error}): `golden-ami unpin` removes it",
                        parameter.name().unwrap_or_default()
                    ))
                })?;
            pins.push(pin);
        }
    }
    Ok(pins)
}

/// An image a pointer may be moved to: it exists and is available in that region.
async fn usable_image(aws: &Aws, region: &str, image: &str) -> Result<(), CliError> {
    let found = aws
        .ec2_in(region)
        .describe_images()
        .image_ids(image)
        .send()
        .await;
    let state = match found {
        Ok(output) => output.images().first().and_then(|i| i.state().cloned()),
        Err(error) if error.code().is_some_and(|c| c.starts_with("InvalidAMIID.")) => None,
        Err(error) => return Err(sdk("ec2:DescribeImages")(error)),
    };
    match state {
        Some(ImageState::Available) => Ok(()),
        Some(state) => Err(CliError::failed(format!(
            "{image} is {} in {region}, not available: pick another image (golden-ami pin AMI)",
            state.as_str()
        ))),
        None => Err(CliError::failed(format!(
            "{image} does not exist in {region} (deregistered?): pick another image (golden-ami pin AMI)"
        ))),
    }
}

/// How long `rollback` and `pin` wait for SSM to make a pointer write visible, and the longest
/// pause between two reads meanwhile.
pub const POINTER_WAIT: std::time::Duration = std::time::Duration::from_secs(120);
const POINTER_POLL: std::time::Duration = std::time::Duration::from_secs(2);

/// Write the pointer and wait until the write shows: SSM validates an aws:ec2:image value
/// asynchronously, and a value that fails validation is never written although PutParameter
/// succeeded (PutParameter API reference, DataType). The version the write made.
async fn put_pointer(aws: &Aws, region: &str, name: &str, image: &str) -> Result<i64, CliError> {
    let ssm = aws.ssm_in(region);
    let before = match read_pointer(&ssm, name).await {
        Ok(before) => Some(before),
        Err(StepError::PointerNotFound { .. }) => None,
        Err(error) => return Err(CliError::refused(error.to_string())),
    };
    ssm.put_parameter()
        .name(name)
        .value(image)
        .r#type(ParameterType::String)
        .data_type("aws:ec2:image")
        .overwrite(true)
        .send()
        .await
        .map_err(sdk("ssm:PutParameter"))?;
    let outcome = await_pointer_write(
        &ssm,
        name,
        before.as_ref(),
        image,
        aws.pointer_wait,
        POINTER_POLL,
    )
    .await
    .map_err(|error| CliError::refused(error.to_string()))?;
    let held = |value: Option<&golden_ami_core::PointerValue>| {
        value.map_or_else(
            || "nothing (it does not exist)".to_string(),
            |value| format!("{} (version {})", value.value, value.version),
        )
    };
    match outcome {
        WriteOutcome::Visible(version) => Ok(version),
        WriteOutcome::Changed(now) => Err(CliError::failed(format!(
            "{name} in {region} was changed by someone else while this wrote {image}: it holds {}; `golden-ami status` shows it, then decide again",
            held(now.as_ref())
        ))),
        WriteOutcome::NotVisible => Err(CliError::failed(format!(
            "SSM accepted {image} for {name} in {region} but the write did not show within {} s: SSM validates an aws:ec2:image value asynchronously and drops a value that fails (the image must be available to this account in {region}); the pointer holds {}",
            aws.pointer_wait.as_secs(),
            held(before.as_ref())
        ))),
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Moved {
    pub family: String,
    pub region: String,
    pub parameter: String,
    pub from: Option<String>,
    pub to: String,
    pub version: i64,
}

/// `rollback`: put back the value the pointer held before its current one, in each region.
pub async fn rollback(
    aws: &Aws,
    family: &Family,
    regions: &[&str],
) -> Result<Vec<Moved>, CliError> {
    // Check every region first: a rollback is all or nothing.
    let mut plan = Vec::new();
    for region in regions {
        let history = read_pointer_history(&aws.ssm_in(region), &family.pointer)
            .await
            .map_err(|error| {
                if error
                    .as_service_error()
                    .is_some_and(|e| e.is_parameter_not_found())
                {
                    CliError::failed(format!(
                        "{} has no pointer {} in {region}: nothing to roll back",
                        family.name, family.pointer
                    ))
                } else {
                    sdk("ssm:GetParameterHistory")(error)
                }
            })?;
        let current = history.current().unwrap_or_default().to_string();
        let previous = history.previous().map(str::to_string).ok_or_else(|| {
            CliError::failed(format!(
                "{} in {region}: the pointer {} never held another image: nothing to roll back to",
                family.name, family.pointer
            ))
        })?;
        usable_image(aws, region, &previous).await.map_err(|e| {
            CliError::failed(format!(
                "cannot roll back {} in {region} to {previous}: {}",
                family.name, e.message
            ))
        })?;
        plan.push((region.to_string(), current, previous));
    }
    let mut moved = Vec::new();
    for (region, current, previous) in plan {
        let version = put_pointer(aws, &region, &family.pointer, &previous).await?;
        moved.push(Moved {
            family: family.name.clone(),
            region,
            parameter: family.pointer.clone(),
            from: Some(current),
            to: previous,
            version,
        });
    }
    Ok(moved)
}

/// `pin`: the pointer holds `image` in `region` and runs skip the family until `unpin`.
pub async fn pin(
    aws: &Aws,
    stack: &Stack,
    family: &Family,
    region: &str,
    image: &str,
    reason: Option<String>,
    now: OffsetDateTime,
) -> Result<(Pin, Option<Moved>), CliError> {
    if !naming::is_ami_id(image) {
        return Err(CliError::refused(format!(
            "{image} is not an AMI id (ami- and 8 or 17 hex digits)"
        )));
    }
    let caller = aws
        .sts
        .get_caller_identity()
        .send()
        .await
        .map_err(sdk("sts:GetCallerIdentity"))?;
    let pinned_by = caller.arn().unwrap_or("unknown").to_string();
    let account = caller.account().unwrap_or_default();
    pinnable(aws, stack, family, region, image, account, now).await?;
    let pin = Pin {
        family: family.name.clone(),
        ami_id: image.to_string(),
        region: region.to_string(),
        pinned_by,
        pinned_at: format_timestamp(now),
        reason,
    };
    // The pin first: a run that starts in between skips the family instead of overwriting.
    let text = serde_json::to_string(&pin)
        .map_err(|e| CliError::refused(format!("the pin does not serialize: {e}")))?;
    aws.ssm
        .put_parameter()
        .name(format!("{}/{}", stack.pins_path(), family.name))
        .value(text)
        .r#type(ParameterType::String)
        .tier(ParameterTier::Standard)
        .overwrite(true)
        .send()
        .await
        .map_err(sdk("ssm:PutParameter (the pin)"))?;
    let before = pointer_now(aws, family, region, now).await?;
    let moved = if before.value.as_deref() == Some(image) {
        None
    } else {
        let version = put_pointer(aws, region, &family.pointer, image).await?;
        Some(Moved {
            family: family.name.clone(),
            region: region.to_string(),
            parameter: family.pointer.clone(),
            from: before.value,
            to: image.to_string(),
            version,
        })
    };
    Ok((pin, moved))
}

/// A pin is as strict as VerifyImage: the image must be a golden image of the family in the
/// region (golden::inspect: owned by this account, the family's golden tags, every snapshot
/// under the region's golden key, shared as the stack shares, the family's architecture,
/// available and not deprecated). NotPinnable lists every check it fails.
async fn pinnable(
    aws: &Aws,
    stack: &Stack,
    family: &Family,
    region: &str,
    image: &str,
    account: &str,
    now: OffsetDateTime,
) -> Result<(), CliError> {
    let key_arn = family.golden_keys.get(region).ok_or_else(|| {
        CliError::refused(format!(
            "the golden key of {region} is not known, so {image} cannot be checked: give --golden-key-arn (the stack's GoldenKeyArn output), or the region's kmsKeyArn in the targets"
        ))
    })?;
    let principals = stack.shared_with.as_ref().ok_or_else(|| {
        CliError::refused(format!(
            "who the stack shares its golden images with is not known, so {image} cannot be checked: give --shared-with (the stack's OrganizationArn, ShareOuArns, ShareAccountIds)"
        ))
    })?;
    let tags = [
        (TAG_TYPE, TYPE_GOLDEN.to_string()),
        (TAG_FAMILY, family.name.clone()),
    ];
    let spec = GoldenSpec {
        tags: &tags,
        key_arn,
        principals,
        architecture: family.architecture,
        owner: Some(account),
        now,
    };
    let inspection = inspect(&aws.ec2_in(region), &aws.kms_in(region), image, &spec)
        .await
        .map_err(|error| CliError::refused(error.to_string()))?;
    let (_, problems) = split(inspection.checks);
    if problems.is_empty() {
        return Ok(());
    }
    Err(CliError::failed(
        StepError::NotPinnable {
            family: family.name.clone(),
            region: region.to_string(),
            image_id: image.to_string(),
            problems,
        }
        .to_string(),
    ))
}

/// `unpin`: remove the family's pin (its pointer keeps its value until the next run).
pub async fn unpin(aws: &Aws, stack: &Stack, family: &Family) -> Result<bool, CliError> {
    let name = format!("{}/{}", stack.pins_path(), family.name);
    delete_if_present(aws, &name, "ssm:DeleteParameter (the pin)").await
}

/// Delete a parameter; false when it was already gone.
async fn delete_if_present(aws: &Aws, name: &str, operation: &str) -> Result<bool, CliError> {
    match aws.ssm.delete_parameter().name(name).send().await {
        Ok(_) => Ok(true),
        Err(error)
            if error
                .as_service_error()
                .is_some_and(|e| e.is_parameter_not_found()) =>
        {
            Ok(false)
        }
        Err(error) => Err(sdk(operation)(error)),
    }
}

// ---- runs ------------------------------------------------------------------------------------

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Run {
    pub name: String,
    pub arn: String,
    pub status: String,
    pub started: String,
    pub duration_seconds: Option<i64>,
    /// family: outcome; and per region old -> new (from the run's output).
    pub families: Vec<FamilyOutcome>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct FamilyOutcome {
    pub family: String,
    pub outcome: String,
    pub moved: Vec<String>,
}

fn to_time(t: &aws_smithy_types::DateTime) -> OffsetDateTime {
    OffsetDateTime::from_unix_timestamp(t.secs()).unwrap_or(OffsetDateTime::UNIX_EPOCH)
}

/// An execution's ARN from its name (or its ARN as given).
pub fn execution_arn(stack: &Stack, execution: &str) -> Result<String, CliError> {
    if execution.starts_with("arn:") {
        return Ok(execution.to_string());
    }
    Ok(format!(
        "{}:{execution}",
        stack
            .state_machine()?
            .replacen(":stateMachine:", ":execution:", 1)
    ))
}

/// The families' outcomes in a run's output (or its last state, for a failed run).
pub fn outcomes(output: &Value) -> Vec<FamilyOutcome> {
    let mut found = Vec::new();
    for family in output["families"].as_array().into_iter().flatten() {
        let moved = family["pointers"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|p| {
                let publish = &p["publish"];
                Some(format!(
                    "{}: {} -> {}",
                    publish["region"].as_str()?,
                    publish["previousAmiId"].as_str().unwrap_or("(none)"),
                    publish["newAmiId"].as_str()?
                ))
            })
            .collect();
        found.push(FamilyOutcome {
            family: family["family"]["name"].as_str().unwrap_or("?").to_string(),
            outcome: family["outcome"].as_str().unwrap_or("?").to_string(),
            moved,
        });
    }
    for pin in output["plan"]["pinned"].as_array().into_iter().flatten() {
        found.push(FamilyOutcome {
            family: pin["family"].as_str().unwrap_or("?").to_string(),
            outcome: "PINNED".to_string(),
            moved: Vec::new(),
        });
    }
    found
}

pub async fn history(aws: &Aws, stack: &Stack, n: i32) -> Result<Vec<Run>, CliError> {
    let machine = stack.state_machine()?;
    let listed = aws
        .sfn
        .list_executions()
        .state_machine_arn(machine)
        .max_results(n)
        .send()
        .await
        .map_err(sdk("states:ListExecutions"))?;
    let mut runs = Vec::new();
    for execution in listed.executions() {
        let described = aws
            .sfn
            .describe_execution()
            .execution_arn(execution.execution_arn())
            .send()
            .await
            .map_err(sdk("states:DescribeExecution"))?;
        let output: Value = described
            .output()
            .and_then(|o| serde_json::from_str(o).ok())
            .unwrap_or(Value::Null);
        let started = to_time(described.start_date());
        runs.push(Run {
            name: execution.name().to_string(),
            arn: execution.execution_arn().to_string(),
            status: described.status().as_str().to_string(),
            started: format_timestamp(started),
            duration_seconds: described
                .stop_date()
                .map(|stop| (to_time(stop) - started).whole_seconds()),
            families: outcomes(&output),
        });
    }
    Ok(runs)
}

async fn all_events(aws: &Aws, execution: &str) -> Result<Vec<HistoryEvent>, CliError> {
    let mut events = Vec::new();
    let mut pages = aws
        .sfn
        .get_execution_history()
        .execution_arn(execution)
        .into_paginator()
        .send();
    while let Some(page) = pages.next().await {
        events.extend(
            page.map_err(sdk("states:GetExecutionHistory"))?
                .events()
                .iter()
                .cloned(),
        );
    }
    Ok(events)
}

/// The states entered, in order, with their inputs.
fn entered(events: &[HistoryEvent]) -> Vec<(String, Value)> {
    events
        .iter()
        .filter_map(|e| e.state_entered_event_details())
        .map(|d| {
            let input = d
                .input()
                .and_then(|i| serde_json::from_str(i).ok())
                .unwrap_or(Value::Null);
            (d.name().to_string(), input)
        })
        .collect()
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Why {
    pub execution: String,
    pub status: String,
    /// Each failure the run recorded: the state (and region), the error and its cause.
    pub failures: Vec<FailureSeen>,
    /// The automation step that failed, with its message and outputs (a failed bake or test).
    pub automation: Option<String>,
    pub pointers: Vec<PointerNow>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct FailureSeen {
    pub family: Option<String>,
    pub state: String,
    pub region: Option<String>,
    pub error: String,
    pub cause: String,
}

/// Lambda errors arrive as a JSON string whose errorMessage is the useful part.
fn readable(cause: &str) -> String {
    serde_json::from_str::<Value>(cause)
        .ok()
        .and_then(|v| v["errorMessage"].as_str().map(str::to_string))
        .unwrap_or_else(|| cause.to_string())
}

pub async fn why(
    aws: &Aws,
    stack: &Stack,
    execution: Option<String>,
    families: &[Family],
    now: OffsetDateTime,
) -> Result<Why, CliError> {
    let execution = match execution {
        // A full ARN names its state machine: the stack's is not needed.
        Some(arn) if arn.starts_with("arn:") => arn,
        Some(name) => execution_arn(stack, &name)?,
        None => aws
            .sfn
            .list_executions()
            .state_machine_arn(stack.state_machine()?)
            .status_filter(ExecutionStatus::Failed)
            .max_results(1)
            .send()
            .await
            .map_err(sdk("states:ListExecutions"))?
            .executions()
            .first()
            .map(|e| e.execution_arn().to_string())
            .ok_or_else(|| CliError::refused("no failed run: nothing to explain"))?,
    };
    let described = aws
        .sfn
        .describe_execution()
        .execution_arn(&execution)
        .send()
        .await
        .map_err(sdk("states:DescribeExecution"))?;
    let events = all_events(aws, &execution).await?;
    let mut failures = Vec::new();
    let mut automation = None;
    for (name, input) in entered(&events) {
        // `<State>Failed` Pass states record a caught error in $.error.
        let Some(state) = name.strip_suffix("Failed") else {
            continue;
        };
        let error = &input["error"];
        // FamilyFailed and PipelineFailed end a failure path: their input still carries the
        // error the first `<State>Failed` recorded.
        if !error.is_object()
            || state.is_empty()
            || matches!(name.as_str(), "PipelineFailed" | "FamilyFailed")
        {
            continue;
        }
        failures.push(FailureSeen {
            family: input["family"]["name"].as_str().map(str::to_string),
            state: state.to_string(),
            region: input["target"]["region"].as_str().map(str::to_string),
            error: error["Error"].as_str().unwrap_or("?").to_string(),
            cause: readable(error["Cause"].as_str().unwrap_or("")),
        });
        let id = match state {
            "CheckBake" => input["bake"]["automationExecutionId"].as_str(),
            "CheckTest" => input["test"]["automationExecutionId"].as_str(),
            _ => None,
        };
        if let Some(id) = id {
            automation = Some(failed_step(aws, id).await?);
        }
    }
    if failures.is_empty()
        && let (Some(error), Some(cause)) = (described.error(), described.cause())
    {
        failures.push(FailureSeen {
            family: None,
            state: "Execution".to_string(),
            region: None,
            error: error.to_string(),
            cause: readable(cause),
        });
    }
    let mut pointers = Vec::new();
    for family in families {
        for region in &family.regions {
            pointers.push(pointer_now(aws, family, region, now).await?);
        }
    }
    Ok(Why {
        execution,
        status: described.status().as_str().to_string(),
        failures,
        automation,
        pointers,
    })
}

async fn failed_step(aws: &Aws, id: &str) -> Result<String, CliError> {
    let automation = aws
        .ssm
        .get_automation_execution()
        .automation_execution_id(id)
        .send()
        .await
        .map_err(sdk("ssm:GetAutomationExecution"))?;
    let Some(execution) = automation.automation_execution() else {
        return Ok(format!("automation {id}: not found"));
    };
    let failed = execution.step_executions().iter().find(|s| {
        matches!(
            s.step_status().map(|s| s.as_str()),
            Some("Failed" | "TimedOut" | "Cancelled")
        )
    });
    Ok(match failed {
        Some(step) => {
            let mut line = format!(
                "automation {id}: step {} {}: {}",
                step.step_name().unwrap_or("?"),
                step.step_status().map(|s| s.as_str()).unwrap_or("?"),
                step.failure_message().unwrap_or("(no message)")
            );
            for (key, values) in step.outputs().into_iter().flatten() {
                let _ = write!(line, "\n    {key}: {}", values.join(", "));
            }
            line
        }
        None => format!(
            "automation {id}: {} (no step failed)",
            execution
                .automation_execution_status()
                .map(|s| s.as_str())
                .unwrap_or("?")
        ),
    })
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Status {
    pub stack: Stack,
    pub pointers: Vec<PointerNow>,
    pub pins: Vec<Pin>,
    /// The last runs, newest first; None when Step Functions could not be read (and why).
    pub runs: Option<Vec<Run>>,
    pub runs_unavailable: Option<String>,
    /// A run in progress and the state it is in.
    pub running: Option<(String, String)>,
    pub next_run: Option<String>,
    /// Gated families waiting for `golden-ami approve`.
    pub approvals: Vec<Waiting>,
}

pub async fn status(
    aws: &Aws,
    stack: &Stack,
    families: &[Family],
    now: OffsetDateTime,
) -> Result<Status, CliError> {
    let mut pointers = Vec::new();
    for family in families {
        for region in &family.regions {
            pointers.push(pointer_now(aws, family, region, now).await?);
        }
    }
    let pins = pins(aws, stack).await?;
    let (runs, runs_unavailable) = match history(aws, stack, 3).await {
        Ok(runs) => (Some(runs), None),
        Err(error) => (None, Some(error.message)),
    };
    let mut running = None;
    if let Some(run) = runs
        .iter()
        .flatten()
        .find(|r| r.status == ExecutionStatus::Running.as_str())
    {
        // The run is known to be running even when its history cannot be read.
        let state = match all_events(aws, &run.arn).await {
            Ok(events) => entered(&events)
                .last()
                .map(|(name, _)| name.clone())
                .unwrap_or_default(),
            Err(error) => format!("(its state is not available: {error})"),
        };
        running = Some((run.name.clone(), state));
    }
    let next_run = stack.schedule.as_ref().map(|schedule| {
        if schedule.starts_with("disabled") {
            schedule.clone()
        } else {
            let zone = stack.timezone.as_deref().unwrap_or("UTC");
            match next_first_of_month(now, zone) {
                Ok(next) => format!("{next} ({schedule})"),
                Err(error) => format!("unknown ({error}; {schedule})"),
            }
        }
    });
    let approvals = waiting_approvals(aws, stack, None).await?;
    Ok(Status {
        stack: stack.clone(),
        pointers,
        pins,
        runs,
        runs_unavailable,
        running,
        next_run,
        approvals,
    })
}

/// The next 1st of a month at 08:00 in `timezone` (the schedule's cron(0 8 1 * ? *) in its
/// ScheduleTimezone) after `now`: "2026-12-01 08:00 CET (07:00 UTC)".
pub fn next_first_of_month(now: OffsetDateTime, timezone: &str) -> Result<String, String> {
    let zone =
        jiff::tz::TimeZone::get(timezone).map_err(|e| format!("time zone {timezone:?}: {e}"))?;
    let local = jiff::Timestamp::from_second(now.unix_timestamp())
        .map_err(|e| e.to_string())?
        .to_zoned(zone.clone());
    let this_month_run_passed = local.day() > 1 || local.hour() >= 8;
    let (year, month) = match (this_month_run_passed, local.month()) {
        (false, m) => (local.year(), m),
        (true, 12) => (local.year() + 1, 1),
        (true, m) => (local.year(), m + 1),
    };
    let next = jiff::civil::date(year, month, 1)
        .at(8, 0, 0, 0)
        .to_zoned(zone)
        .map_err(|e| e.to_string())?;
    let utc = next.with_time_zone(jiff::tz::TimeZone::UTC);
    Ok(if timezone == "UTC" {
        next.strftime("%Y-%m-%d %H:%M UTC").to_string()
    } else {
        format!(
            "{} ({} UTC)",
            next.strftime("%Y-%m-%d %H:%M %Z"),
            utc.strftime("%Y-%m-%d %H:%M")
        )
    })
}

/// `run`: start an execution; its ARN.
pub async fn start(aws: &Aws, stack: &Stack, now: OffsetDateTime) -> Result<String, CliError> {
    let name = format!(
        "manual-{}",
        format_timestamp(now)
            .replace([':', '-'], "")
            .trim_end_matches('Z')
    );
    Ok(aws
        .sfn
        .start_execution()
        .state_machine_arn(stack.state_machine()?)
        .name(name)
        .input("{}")
        .send()
        .await
        .map_err(sdk("states:StartExecution"))?
        .execution_arn()
        .to_string())
}

/// One look at a run: the states entered since `seen`, the bake's automation step if it is
/// baking, and the status.
pub async fn progress(
    aws: &Aws,
    execution: &str,
    seen: usize,
) -> Result<(Vec<String>, Option<String>, String), CliError> {
    let events = all_events(aws, execution).await?;
    let names: Vec<String> = entered(&events).into_iter().map(|(n, _)| n).collect();
    let step = events
        .iter()
        .rev()
        .filter_map(|e| e.task_succeeded_event_details())
        .filter_map(|d| d.output())
        .filter_map(|o| serde_json::from_str::<Value>(o).ok())
        .find_map(|v| v["currentStep"].as_str().map(str::to_string));
    let status = aws
        .sfn
        .describe_execution()
        .execution_arn(execution)
        .send()
        .await
        .map_err(sdk("states:DescribeExecution"))?
        .status()
        .as_str()
        .to_string();
    Ok((names.into_iter().skip(seen).collect(), step, status))
}

// ---- the approval gate -----------------------------------------------------------------------

/// A gated family waiting for a decision, as RequestApproval stored it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Waiting {
    /// The execution's name.
    pub execution: String,
    pub parameter: String,
    #[serde(flatten)]
    pub request: ApprovalRequest,
}

/// What `approve` / `deny` did for one family.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Answered {
    pub execution: String,
    pub family: String,
    /// "approved" or "denied".
    pub decision: String,
    pub by: String,
    /// What approving publishes (or denying leaves unpublished), per region.
    pub images: Vec<String>,
}

/// The requests waiting under the stack's APPROVALS_PATH (of one execution, if given: the name
/// as a person types it, found under the form RequestApproval stored it in).
pub async fn waiting_approvals(
    aws: &Aws,
    stack: &Stack,
    execution: Option<&str>,
) -> Result<Vec<Waiting>, CliError> {
    let path = match execution {
        Some(name) => ApprovalRequest::execution_path(&stack.approvals_path(), name),
        None => stack.approvals_path(),
    };
    let mut waiting = Vec::new();
    let mut token = None;
    loop {
        let page = match aws
            .ssm
            .get_parameters_by_path()
            .path(&path)
            .recursive(true)
            .set_next_token(token)
            .send()
            .await
        {
            Ok(page) => page,
            // A path SSM cannot hold (a stack name it refuses) holds no request.
            Err(error)
                if error
                    .as_service_error()
                    .is_some_and(golden_ami_core::naming::is_invalid_parameter_name) =>
            {
                break;
            }
            Err(error) => {
                return Err(sdk("ssm:GetParametersByPath (the approval requests)")(
                    error,
                ));
            }
        };
        for parameter in page.parameters() {
            let name = parameter.name().unwrap_or_default().to_string();
            let request: ApprovalRequest =
                serde_json::from_str(parameter.value().unwrap_or_default()).map_err(|e| {
                    CliError::refused(format!(
                        "{name} is not an approval request ({e}): RequestApproval writes them; delete it with aws ssm delete-parameter --name {name}"
                    ))
                })?;
            let execution = request
                .execution_id
                .rsplit(':')
                .next()
                .unwrap_or_default()
                .to_string();
            waiting.push(Waiting {
                execution,
                parameter: name,
                request,
            });
        }
        token = page.next_token().map(str::to_string);
        if token.is_none() {
            break;
        }
    }
    // The real name is in the request: the path's level is only its SSM form.
    if let Some(name) = execution {
        waiting.retain(|w| w.execution == name);
    }
    waiting
        .sort_by(|a, b| (&a.execution, &a.request.family).cmp(&(&b.execution, &b.request.family)));
    Ok(waiting)
}

/// The requests `approve` / `deny` answer: of EXECUTION (default: the one run waiting), and
/// of --family (needed when several families of the run wait).
pub async fn pick_waiting(
    aws: &Aws,
    stack: &Stack,
    execution: Option<&str>,
    family: Option<&str>,
) -> Result<Vec<Waiting>, CliError> {
    let name = execution.map(|e| e.rsplit(':').next().unwrap_or(e));
    let waiting = waiting_approvals(aws, stack, name).await?;
    let listed = |w: &[Waiting]| {
        w.iter()
            .map(|w| format!("{} in {}", w.request.family, w.execution))
            .collect::<Vec<_>>()
            .join(", ")
    };
    if waiting.is_empty() {
        return Err(CliError::refused(match name {
            Some(name) => format!(
                "nothing of execution {name} waits for approval (answered already, expired, or the run ended): `golden-ami status` lists what waits"
            ),
            None => "no family waits for approval".to_string(),
        }));
    }
    let mut executions: Vec<&str> = waiting.iter().map(|w| w.execution.as_str()).collect();
    executions.dedup();
    if executions.len() > 1 {
        return Err(CliError::refused(format!(
            "several runs wait for approval ({}): name the execution",
            listed(&waiting)
        )));
    }
    let chosen: Vec<Waiting> = match family {
        Some(family) => waiting
            .iter()
            .filter(|w| w.request.family == family)
            .cloned()
            .collect(),
        None if waiting.len() == 1 => waiting.clone(),
        None => {
            return Err(CliError::refused(format!(
                "several families wait ({}): give --family",
                listed(&waiting)
            )));
        }
    };
    if chosen.is_empty() {
        return Err(CliError::refused(format!(
            "family {} does not wait for approval; waiting: {}",
            family.unwrap_or_default(),
            listed(&waiting)
        )));
    }
    Ok(chosen)
}

async fn caller(aws: &Aws) -> Result<String, CliError> {
    Ok(aws
        .sts
        .get_caller_identity()
        .send()
        .await
        .map_err(sdk("sts:GetCallerIdentity"))?
        .arn()
        .unwrap_or("unknown")
        .to_string())
}

/// `approve`: the family publishes (SendTaskSuccess with who approved, when and why).
pub async fn approve(
    aws: &Aws,
    waiting: &Waiting,
    reason: Option<String>,
    now: OffsetDateTime,
) -> Result<Answered, CliError> {
    let by = caller(aws).await?;
    let decision = ApprovalDecision {
        approved_by: by.clone(),
        approved_at: format_timestamp(now),
        reason,
    };
    let output = serde_json::to_string(&decision)
        .map_err(|e| CliError::refused(format!("the decision does not serialize: {e}")))?;
    let sent = aws
        .sfn
        .send_task_success()
        .task_token(&waiting.request.task_token)
        .output(output)
        .send()
        .await;
    if let Err(error) = sent {
        let gone = error.as_service_error().map(|e| {
            (
                e.is_task_timed_out(),
                e.is_task_does_not_exist() || e.is_invalid_token(),
            )
        });
        return Err(answer_failed(aws, waiting, gone, sdk("states:SendTaskSuccess")(error)).await);
    }
    withdraw(aws, waiting).await?;
    Ok(answered(waiting, "approved", by))
}

/// `deny`: the family fails with ApprovalDenied; nothing is published, its copies are removed.
pub async fn deny(
    aws: &Aws,
    waiting: &Waiting,
    reason: &str,
    now: OffsetDateTime,
) -> Result<Answered, CliError> {
    let by = caller(aws).await?;
    // The shape of a Lambda error's cause, so the notice shows the message.
    let cause = serde_json::json!({
        "errorType": APPROVAL_DENIED,
        "errorMessage": format!("denied by {by} at {}: {reason}", format_timestamp(now)),
    });
    let sent = aws
        .sfn
        .send_task_failure()
        .task_token(&waiting.request.task_token)
        .error(APPROVAL_DENIED)
        .cause(cause.to_string())
        .send()
        .await;
    if let Err(error) = sent {
        let gone = error.as_service_error().map(|e| {
            (
                e.is_task_timed_out(),
                e.is_task_does_not_exist() || e.is_invalid_token(),
            )
        });
        return Err(answer_failed(aws, waiting, gone, sdk("states:SendTaskFailure")(error)).await);
    }
    withdraw(aws, waiting).await?;
    Ok(answered(waiting, "denied", by))
}

fn answered(waiting: &Waiting, decision: &str, by: String) -> Answered {
    Answered {
        execution: waiting.execution.clone(),
        family: waiting.request.family.clone(),
        decision: decision.to_string(),
        by,
        images: waiting
            .request
            .images
            .iter()
            .map(|i| format!("{} {}", i.region, i.ami_id))
            .collect(),
    }
}

/// A request nobody can answer any more (expired, answered, its run ended) is removed.
async fn answer_failed(
    aws: &Aws,
    waiting: &Waiting,
    gone: Option<(bool, bool)>,
    other: CliError,
) -> CliError {
    let family = &waiting.request.family;
    let message = match gone {
        // Step Functions answers TaskTimedOut for an expired token, and for one whose task is
        // already closed.
        Some((true, _)) => format!(
            "the approval of {family} can no longer be answered (TaskTimedOut): its deadline {} passed, so the family failed and nothing was published, or it was answered already; `golden-ami status` shows where it stands",
            waiting.request.deadline
        ),
        Some((_, true)) => format!(
            "the approval of {family} in {} was already answered or its run ended: `golden-ami status` shows where it stands",
            waiting.execution
        ),
        _ => return other,
    };
    match withdraw(aws, waiting).await {
        Ok(()) => CliError::failed(message),
        Err(error) => CliError::failed(format!("{message} ({error})")),
    }
}

async fn withdraw(aws: &Aws, waiting: &Waiting) -> Result<(), CliError> {
    delete_if_present(
        aws,
        &waiting.parameter,
        "ssm:DeleteParameter (the approval request)",
    )
    .await
    .map(|_| ())
}

//! PublishPointer: move one region's pointer to the verified golden image - the one change
//! consumers see.
//!
//! It runs only after every region's copy was verified and the boot test passed (the state
//! machine's order, and this step checks both results itself). It refuses to overwrite a
//! pointer that moved during the run (a manual pin or rollback), and a retry after a lost
//! response recognises its own write. A family's first image in a region creates the pointer
//! there (Overwrite=false, so a pointer someone created meanwhile is never replaced) and adds it
//! to the region's AWS RAM pointer share, so the organization can read it.

use aws_sdk_ram::types::{ResourceOwner, ResourceShareStatus};
use aws_sdk_ssm::types::{ParameterTier, ParameterType};
use golden_ami_core::types::RegionTarget;
use golden_ami_core::{
    Deps, PublishResult, RegionClients, StepError, StepInput, classify_sdk_error, read_pointer,
};

pub async fn handler(deps: &Deps, input: StepInput) -> Result<PublishResult, StepError> {
    let new_ami_id = input.state.tested_golden_image()?.to_string();
    let target = input.state.require_target()?;
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
    let published = |version: i64| PublishResult {
        parameter_name: parameter.clone(),
        region: target.region.clone(),
        version,
        previous_ami_id: target.ami_id.clone(),
        new_ami_id: new_ami_id.clone(),
    };
    let now = match read_pointer(clients.ssm(), parameter).await {
        Ok(pointer) => Some((pointer.value, pointer.version)),
        Err(StepError::PointerNotFound { .. }) => None,
        Err(error) => return Err(error),
    };
    match decide(target, &new_ami_id, now.as_ref()) {
        Decision::AlreadyPublished(version) => {
            tracing::info!(%parameter, version, region = %target.region, "pointer already holds the new image (retried step)");
            // A retry may come after the create but before the share.
            if target.ami_id.is_none() {
                share_pointer(deps, &clients, target).await?;
            }
            return Ok(published(version));
        }
        Decision::Refuse { found, value } => {
            return Err(StepError::PointerChangedConcurrently {
                parameter: format!("{parameter} in {}", target.region),
                expected: target.parameter_version,
                found,
                found_value: value,
            });
        }
        Decision::Create => {
            // The share must exist before the pointer does: a pointer nobody can read is no
            // publication.
            let share = pointer_share(deps, &clients, &target.region).await?;
            put(clients.ssm(), parameter, &new_ami_id, &description, false)
                .await
                .map_err(|error| match error {
                    // Created by someone else between the read and the put.
                    PutError::AlreadyExists => StepError::PointerChangedConcurrently {
                        parameter: format!("{parameter} in {}", target.region),
                        expected: 0,
                        found: 1,
                        found_value: "(created during this run)".into(),
                    },
                    PutError::Other(error) => error,
                })?;
            associate(&clients, &share, target).await?;
        }
        Decision::Publish => {
            put(clients.ssm(), parameter, &new_ami_id, &description, true)
                .await
                .map_err(PutError::into_step_error)?;
        }
    }
    // Read back: an aws:ec2:image value is validated by SSM, and a race with a manual write in
    // the moment between the check and the put must not go unnoticed.
    let stored = read_pointer(clients.ssm(), parameter).await?;
    if stored.value != new_ami_id {
        return Err(StepError::PointerChangedConcurrently {
            parameter: format!("{parameter} in {}", target.region),
            expected: target.parameter_version + 1,
            found: stored.version,
            found_value: stored.value,
        });
    }
    tracing::info!(%parameter, region = %target.region, version = stored.version, %new_ami_id, "pointer published");
    Ok(published(stored.version))
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
    let read_version = target.parameter_version;
    match (now, &target.ami_id) {
        (None, None) => Decision::Create,
        (None, Some(_)) => Decision::Refuse {
            found: 0,
            value: "(deleted during this run)".into(),
        },
        (Some((value, version)), read_value) => {
            if *version == read_version && read_value.as_deref() == Some(value.as_str()) {
                Decision::Publish
            } else if value == new_ami_id && *version == read_version + 1 {
                Decision::AlreadyPublished(*version)
            } else {
                Decision::Refuse {
                    found: *version,
                    value: value.clone(),
                }
            }
        }
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

async fn share_pointer(
    deps: &Deps,
    clients: &RegionClients,
    target: &RegionTarget,
) -> Result<(), StepError> {
    let share = pointer_share(deps, clients, &target.region).await?;
    associate(clients, &share, target).await
}

/// Add the pointer to the share (associating it again is a no-op for RAM).
async fn associate(
    clients: &RegionClients,
    share_arn: &str,
    target: &RegionTarget,
) -> Result<(), StepError> {
    let arn = parameter_arn(share_arn, &target.region, &target.parameter_name)?;
    clients
        .ram()
        .associate_resource_share()
        .resource_share_arn(share_arn)
        .resource_arns(&arn)
        .send()
        .await
        .map_err(|error| classify_sdk_error("ram:AssociateResourceShare", error))?;
    tracing::info!(parameter = %arn, share = share_arn, "pointer added to the organization's share");
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

    use aws_sdk_ssm::Client as Ssm;
    use aws_sdk_ssm::operation::get_parameter::GetParameterOutput;
    use aws_sdk_ssm::operation::put_parameter::PutParameterOutput;
    use aws_sdk_ssm::types::Parameter;
    use golden_ami_core::testing::{self, MockClients, Rule, mock};

    use super::*;

    const EVENT: &str = include_str!("../../../events/publish-pointer/ok.json");
    const UNVERIFIED: &str = include_str!("../../../events/publish-pointer/unverified.json");
    const UNTESTED: &str = include_str!("../../../events/publish-pointer/untested.json");
    const OLD: &str = "ami-0123456789abcdef0";
    const NEW: &str = "ami-0ccccccccccccccc0";

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

    /// GetParameter answers `before` until PutParameter ran, then `after`.
    fn pointer(
        before: (&'static str, i64),
        after: (&'static str, i64),
        put_calls: Arc<AtomicUsize>,
    ) -> Rule {
        mock!(Ssm::get_parameter)
            .match_requests(|request| request.name() == Some(testing::POINTER))
            .then_output(move || {
                if put_calls.load(Ordering::SeqCst) == 0 {
                    parameter(before.0, before.1)
                } else {
                    parameter(after.0, after.1)
                }
            })
    }

    fn put(calls: Arc<AtomicUsize>) -> Rule {
        mock!(Ssm::put_parameter)
            .match_requests(|request| {
                request.name() == Some(testing::POINTER)
                    && request.value() == Some(NEW)
                    && request.data_type() == Some("aws:ec2:image")
                    && request.overwrite() == Some(true)
                    && request.r#type() == Some(&ParameterType::String)
            })
            .then_output(move || {
                calls.fetch_add(1, Ordering::SeqCst);
                PutParameterOutput::builder().version(8).build()
            })
    }

    #[tokio::test]
    async fn publishes_the_verified_copy_as_an_image_parameter() {
        let calls = Arc::new(AtomicUsize::new(0));
        let get = pointer((OLD, 7), (NEW, 8), calls.clone());
        let put = put(calls.clone());
        let deps = MockClients {
            ssm: vec![&get, &put],
            ..Default::default()
        }
        .deps();
        let result = handler(&deps, testing::event(EVENT)).await.unwrap();
        assert_eq!(
            result,
            PublishResult {
                parameter_name: testing::POINTER.into(),
                region: testing::REGION.into(),
                version: 8,
                previous_ami_id: Some(OLD.into()),
                new_ami_id: NEW.into(),
            }
        );
        assert_eq!(put.num_calls(), 1);
        assert_eq!(get.num_calls(), 2);
    }

    #[tokio::test]
    async fn a_pointer_moved_during_the_run_is_not_overwritten() {
        let calls = Arc::new(AtomicUsize::new(0));
        let get = pointer(("ami-0dddddddddddddddd", 8), ("unused", 0), calls.clone());
        let put = put(calls);
        let deps = MockClients {
            ssm: vec![&get, &put],
            ..Default::default()
        }
        .deps();
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
        let get = pointer((NEW, 8), ("unused", 0), calls.clone());
        let put = put(calls);
        let deps = MockClients {
            ssm: vec![&get, &put],
            ..Default::default()
        }
        .deps();
        let result = handler(&deps, testing::event(EVENT)).await.unwrap();
        assert_eq!(result.version, 8);
        assert_eq!(put.num_calls(), 0);
    }

    #[tokio::test]
    async fn an_unverified_image_is_never_published() {
        let calls = Arc::new(AtomicUsize::new(0));
        let get = pointer((OLD, 7), (NEW, 8), calls.clone());
        let put = put(calls);
        let deps = MockClients {
            ssm: vec![&get, &put],
            ..Default::default()
        }
        .deps();
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
        let get = pointer((OLD, 7), (NEW, 8), calls.clone());
        let put = put(calls);
        let deps = MockClients {
            ssm: vec![&get, &put],
            ..Default::default()
        }
        .deps();
        let error = handler(&deps, testing::event(UNTESTED)).await.unwrap_err();
        assert_eq!(error.error_type(), "InvalidInput");
        assert!(error.to_string().contains("nobody has booted"), "{error}");
        assert_eq!((get.num_calls(), put.num_calls()), (0, 0));
    }

    #[tokio::test]
    async fn throttled_put_is_retryable() {
        let calls = Arc::new(AtomicUsize::new(0));
        let get = pointer((OLD, 7), (NEW, 8), calls);
        let put = mock!(Ssm::put_parameter).then_http_response(|| testing::http_status(503));
        let deps = MockClients {
            ssm: vec![&get, &put],
            ..Default::default()
        }
        .deps();
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
        let get = pointer((OLD, 7), (REGIONAL, 8), calls.clone());
        let put = mock!(Ssm::put_parameter)
            .match_requests(|request| request.value() == Some(REGIONAL))
            .then_output(move || {
                calls.fetch_add(1, Ordering::SeqCst);
                PutParameterOutput::builder().version(8).build()
            });
        let deps = MockClients {
            ssm: vec![&get, &put],
            ..Default::default()
        }
        .deps();
        let result = handler(&deps, second_region_event(REGIONAL)).await.unwrap();
        assert_eq!(
            (result.region.as_str(), result.new_ami_id.as_str()),
            ("us-east-1", REGIONAL)
        );
        assert_eq!(put.num_calls(), 1);
    }

    #[tokio::test]
    async fn in_the_home_region_only_the_booted_image_is_published() {
        let mut input = second_region_event("ami-0eeeeeeeeeeeeeee1");
        if let Some(target) = input.state.target.as_mut() {
            target.region = testing::REGION.into();
        }
        let calls = Arc::new(AtomicUsize::new(0));
        let get = pointer((OLD, 7), (NEW, 8), calls.clone());
        let put = put(calls);
        let deps = MockClients {
            ssm: vec![&get, &put],
            ..Default::default()
        }
        .deps();
        let error = handler(&deps, input).await.unwrap_err();
        assert_eq!(error.error_type(), "InvalidInput");
        assert!(
            error.to_string().contains("the boot test passed for"),
            "{error}"
        );
        assert_eq!((get.num_calls(), put.num_calls()), (0, 0));
    }

    const SHARE_ARN: &str =
        "arn:aws:ram:eu-west-1:111122223333:resource-share/0c6a1f6e-1111-4222-8333-444455556666";

    /// The event of a region where the family has no pointer yet.
    fn first_image_event() -> StepInput {
        let mut input: StepInput = testing::event(EVENT);
        if let Some(target) = input.state.target.as_mut() {
            target.ami_id = None;
            target.parameter_version = 0;
        }
        input
    }

    fn shares(status: ResourceShareStatus) -> Rule {
        use aws_sdk_ram::Client as Ram;
        use aws_sdk_ram::operation::get_resource_shares::GetResourceSharesOutput;
        use aws_sdk_ram::types::ResourceShare;
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

    fn associate_rule() -> Rule {
        use aws_sdk_ram::Client as Ram;
        use aws_sdk_ram::operation::associate_resource_share::AssociateResourceShareOutput;
        mock!(Ram::associate_resource_share)
            .match_requests(|request| {
                request.resource_share_arn() == Some(SHARE_ARN)
                    && request.resource_arns()
                        == ["arn:aws:ssm:eu-west-1:111122223333:parameter/golden-ami/current"]
            })
            .then_output(|| AssociateResourceShareOutput::builder().build())
    }

    /// GetParameter: absent until PutParameter ran, then `after`.
    fn absent_then(after: (&'static str, i64), put_calls: Arc<AtomicUsize>) -> Rule {
        use aws_sdk_ssm::operation::get_parameter::GetParameterError;
        use aws_sdk_ssm::types::error::ParameterNotFound;
        mock!(Ssm::get_parameter)
            .match_requests(|request| request.name() == Some(testing::POINTER))
            .then_compute_response(move |_| {
                if put_calls.load(Ordering::SeqCst) == 0 {
                    testing::MockResponse::Error(GetParameterError::ParameterNotFound(
                        ParameterNotFound::builder().build(),
                    ))
                } else {
                    testing::MockResponse::Output(parameter(after.0, after.1))
                }
            })
    }

    #[tokio::test]
    async fn a_first_image_creates_the_pointer_and_shares_it_with_the_organization() {
        let calls = Arc::new(AtomicUsize::new(0));
        let get = absent_then((NEW, 1), calls.clone());
        let counted = calls.clone();
        let create = mock!(Ssm::put_parameter)
            .match_requests(|request| {
                request.value() == Some(NEW)
                    && request.overwrite() == Some(false)
                    && request.tier() == Some(&ParameterTier::Advanced)
                    && request.data_type() == Some("aws:ec2:image")
            })
            .then_output(move || {
                counted.fetch_add(1, Ordering::SeqCst);
                PutParameterOutput::builder().version(1).build()
            });
        let (list, associate) = (shares(ResourceShareStatus::Active), associate_rule());
        let deps = MockClients {
            ssm: vec![&get, &create],
            ram: vec![&list, &associate],
            ..Default::default()
        }
        .deps();
        let result = handler(&deps, first_image_event()).await.unwrap();
        assert_eq!(result.previous_ami_id, None);
        assert_eq!((result.version, result.new_ami_id.as_str()), (1, NEW));
        assert_eq!((create.num_calls(), associate.num_calls()), (1, 1));
    }

    #[tokio::test]
    async fn without_the_regions_share_no_pointer_is_created() {
        let calls = Arc::new(AtomicUsize::new(0));
        let get = absent_then((NEW, 1), calls.clone());
        let create = put(calls);
        let list = shares(ResourceShareStatus::Deleted);
        let deps = MockClients {
            ssm: vec![&get, &create],
            ram: vec![&list],
            ..Default::default()
        }
        .deps();
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
        let get = pointer(("ami-0dddddddddddddddd", 1), ("unused", 0), calls.clone());
        let create = put(calls);
        let deps = MockClients {
            ssm: vec![&get, &create],
            ..Default::default()
        }
        .deps();
        let error = handler(&deps, first_image_event()).await.unwrap_err();
        assert_eq!(error.error_type(), "PointerChangedConcurrently");
        assert_eq!(create.num_calls(), 0);
    }

    #[tokio::test]
    async fn a_retry_after_the_create_shares_it_without_writing_again() {
        let calls = Arc::new(AtomicUsize::new(0));
        let get = pointer((NEW, 1), ("unused", 0), calls.clone());
        let create = put(calls);
        let (list, associate) = (shares(ResourceShareStatus::Active), associate_rule());
        let deps = MockClients {
            ssm: vec![&get, &create],
            ram: vec![&list, &associate],
            ..Default::default()
        }
        .deps();
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
}

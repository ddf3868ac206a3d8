//! ShareImage: grant launch permission on the golden image to the organization (and the
//! configured OUs and accounts).
//!
//! It looks before it grants: the launch permission already on the image is read first and
//! only what is missing is added, so a re-run does nothing twice and says what was there.

use aws_sdk_ec2::error::ProvideErrorMetadata;
use aws_sdk_ec2::types::{ImageAttributeName, LaunchPermission, LaunchPermissionModifications};
use golden_ami_core::{
    Deps, LaunchPrincipals, ShareResult, StepError, StepInput, classify_sdk_error, error_code,
};

pub async fn handler(deps: &Deps, input: StepInput) -> Result<ShareResult, StepError> {
    let state = &input.state;
    let target = state.require_target()?;
    let golden_ami_id = state.require_copy()?.golden_ami_id.as_str();
    check_golden_image(
        golden_ami_id,
        target.ami_id.as_deref(),
        state.intermediate_ami_id(),
    )?;
    let region = deps.clients.region(&target.region);

    let share = &deps.config.share;
    let looked_up = if share.share_with_organization && share.organization_arn.is_none() {
        Some(describe_organization(deps).await?)
    } else {
        None
    };
    let principals = share.principals(looked_up);

    let existing = region
        .ec2()
        .describe_image_attribute()
        .image_id(golden_ami_id)
        .attribute(ImageAttributeName::LaunchPermission)
        .send()
        .await
        .map_err(|error| {
            match error_code(&error)
                .and_then(|code| share_error(code, error.message(), golden_ami_id))
            {
                Some(mapped) => mapped,
                None => classify_sdk_error("ec2:DescribeImageAttribute", error),
            }
        })?;
    let (missing, already_shared) = missing_principals(&principals, existing.launch_permissions());

    if missing.is_empty() {
        tracing::info!(%golden_ami_id, ?already_shared, "launch permission already granted; nothing to add");
    } else {
        region
            .ec2()
            .modify_image_attribute()
            .image_id(golden_ami_id)
            .launch_permission(additions(&missing))
            .send()
            .await
            .map_err(|error| {
                match error_code(&error)
                    .and_then(|code| share_error(code, error.message(), golden_ami_id))
                {
                    Some(mapped) => mapped,
                    None => classify_sdk_error("ec2:ModifyImageAttribute", error),
                }
            })?;
        tracing::info!(%golden_ami_id, added = ?missing.describe(), "launch permission granted");
    }
    Ok(ShareResult {
        golden_ami_id: golden_ami_id.to_string(),
        principals,
        already_shared,
    })
}

/// The organization's ARN, for a configuration that shares with the organization without naming it.
async fn describe_organization(deps: &Deps) -> Result<String, StepError> {
    let output = deps
        .clients
        .organizations()
        .describe_organization()
        .send()
        .await
        .map_err(|error| match error.as_service_error() {
            Some(service) if service.is_aws_organizations_not_in_use_exception() => {
                StepError::ShareFailed(
                    "this account is not in an organization, so the image cannot be shared with one: set SHARE_WITH_ORGANIZATION=false and SHARE_ACCOUNT_IDS (or SHARE_OU_ARNS)".into(),
                )
            }
            Some(service) if service.is_access_denied_exception() => StepError::ShareFailed(
                format!(
                    "organizations:DescribeOrganization was denied ({}): allow it to the ShareImage function's role, or set SHARE_ORGANIZATION_ARN so no lookup is needed",
                    service.message().unwrap_or("access denied")
                ),
            ),
            _ => classify_sdk_error("organizations:DescribeOrganization", error),
        })?;
    output
        .organization()
        .and_then(|organization| organization.arn())
        .map(str::to_string)
        .ok_or_else(|| StepError::AwsError {
            operation: "organizations:DescribeOrganization".into(),
            code: "EmptyResponse".into(),
            message: "no organization ARN in the response".into(),
        })
}

/// The golden image must be this run's new copy: sharing the published image or the
/// intermediate one means the state is broken.
pub fn check_golden_image(
    golden_ami_id: &str,
    current_ami_id: Option<&str>,
    intermediate_id: Option<&str>,
) -> Result<(), StepError> {
    if Some(golden_ami_id) == current_ami_id {
        return Err(StepError::invalid_input(format!(
            "state.copy.goldenAmiId {golden_ami_id} is the image the pointer already holds (state.target.amiId): the state is inconsistent, not sharing"
        )));
    }
    if Some(golden_ami_id) == intermediate_id {
        return Err(StepError::invalid_input(format!(
            "state.copy.goldenAmiId {golden_ami_id} is the intermediate image (state.bakeStatus.bakedAmiId), which is under the account key: not sharing"
        )));
    }
    Ok(())
}

/// The principals still to add, and (as a person reads them) those already there.
pub fn missing_principals(
    desired: &LaunchPrincipals,
    existing: &[LaunchPermission],
) -> (LaunchPrincipals, Vec<String>) {
    let (missing, present) = desired.partition_by(existing);
    (missing, present.describe())
}

/// The ModifyImageAttribute payload that adds `principals`.
pub fn additions(principals: &LaunchPrincipals) -> LaunchPermissionModifications {
    let organizations = principals
        .organization_arns
        .iter()
        .map(|arn| LaunchPermission::builder().organization_arn(arn).build());
    let units = principals.organizational_unit_arns.iter().map(|arn| {
        LaunchPermission::builder()
            .organizational_unit_arn(arn)
            .build()
    });
    let accounts = principals
        .account_ids
        .iter()
        .map(|id| LaunchPermission::builder().user_id(id).build());
    LaunchPermissionModifications::builder()
        .set_add(Some(organizations.chain(units).chain(accounts).collect()))
        .build()
}

/// The EC2 error codes of sharing that this step understands; `None` for the rest.
pub fn share_error(code: &str, message: Option<&str>, golden_ami_id: &str) -> Option<StepError> {
    let detail = format!("{code}: {}", message.unwrap_or("no message"));
    if code.starts_with("InvalidAMIID.") {
        return Some(StepError::ShareFailed(format!(
            "the golden image {golden_ami_id} is gone ({detail})"
        )));
    }
    match code {
        "InvalidParameterValue" | "InvalidParameter" | "InvalidParameterCombination" => {
            Some(StepError::ShareFailed(format!(
                "EC2 refused the launch permission on {golden_ami_id} ({detail}): check SHARE_ORGANIZATION_ARN, SHARE_OU_ARNS and SHARE_ACCOUNT_IDS"
            )))
        }
        "OperationNotPermitted" | "UnauthorizedOperation" => Some(StepError::ShareFailed(format!(
            "sharing {golden_ami_id} is not permitted ({detail}): sharing with an organization or OU needs ec2:ModifyImageAttribute and organizations:DescribeOrganization / DescribeOrganizationalUnit for the ShareImage function's role"
        ))),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use aws_sdk_ec2::Client as Ec2;
    use aws_sdk_ec2::operation::describe_image_attribute::DescribeImageAttributeError;
    use aws_sdk_ec2::operation::modify_image_attribute::ModifyImageAttributeOutput;
    use aws_sdk_organizations::Client as Organizations;
    use aws_sdk_organizations::operation::describe_organization::{
        DescribeOrganizationError, DescribeOrganizationOutput,
    };
    use aws_sdk_organizations::types::Organization;
    use aws_sdk_organizations::types::error::AwsOrganizationsNotInUseException;
    use golden_ami_core::ShareConfig;
    use golden_ami_core::testing::{self, MockClients, Rule, mock};

    use super::*;

    const EVENT: &str = include_str!("../../../events/share-image/ok.json");
    const GOLDEN: &str = "ami-0c0ffee0123456789";
    const OU: &str = "arn:aws:organizations::999988887777:ou/o-a1b2c3d4e5/ou-ab12-cd34ef56";
    const ACCOUNT: &str = "444455556666";

    fn organization() -> Rule {
        mock!(Organizations::describe_organization).then_output(|| {
            DescribeOrganizationOutput::builder()
                .organization(
                    Organization::builder()
                        .id("o-a1b2c3d4e5")
                        .arn(testing::ORGANIZATION_ARN)
                        .build(),
                )
                .build()
        })
    }

    fn modify_any() -> Rule {
        mock!(Ec2::modify_image_attribute)
            .then_output(|| ModifyImageAttributeOutput::builder().build())
    }

    #[tokio::test]
    async fn the_first_share_adds_the_looked_up_organization() {
        let lookup = organization();
        let describe = testing::launch_permissions(GOLDEN, vec![]);
        let modify = mock!(Ec2::modify_image_attribute)
            .match_requests(|request| {
                request.image_id() == Some(GOLDEN)
                    && request.launch_permission().is_some_and(|change| {
                        change.add() == [testing::organization_launch_permission()]
                    })
            })
            .then_output(|| ModifyImageAttributeOutput::builder().build());
        let deps = MockClients {
            organizations: vec![&lookup],
            ec2: vec![&describe, &modify],
            ..Default::default()
        }
        .deps();
        let result = handler(&deps, testing::event(EVENT)).await.unwrap();
        assert_eq!(
            result,
            ShareResult {
                golden_ami_id: GOLDEN.into(),
                principals: LaunchPrincipals {
                    organization_arns: vec![testing::ORGANIZATION_ARN.into()],
                    ..Default::default()
                },
                already_shared: vec![],
            }
        );
        assert_eq!(
            (lookup.num_calls(), describe.num_calls(), modify.num_calls()),
            (1, 1, 1)
        );
    }

    #[tokio::test]
    async fn a_configured_organization_is_not_looked_up_and_only_missing_principals_are_added() {
        let lookup = organization();
        let describe = testing::launch_permissions(
            GOLDEN,
            vec![
                testing::organization_launch_permission(),
                LaunchPermission::builder().user_id("777788889999").build(),
            ],
        );
        let modify = mock!(Ec2::modify_image_attribute)
            .match_requests(|request| {
                request.launch_permission().is_some_and(|change| {
                    change.add()
                        == [
                            LaunchPermission::builder()
                                .organizational_unit_arn(OU)
                                .build(),
                            LaunchPermission::builder().user_id(ACCOUNT).build(),
                        ]
                        && change.remove().is_empty()
                })
            })
            .then_output(|| ModifyImageAttributeOutput::builder().build());
        let mut deps = MockClients {
            organizations: vec![&lookup],
            ec2: vec![&describe, &modify],
            ..Default::default()
        }
        .deps();
        deps.config.share.organization_arn = Some(testing::ORGANIZATION_ARN.into());
        deps.config.share.organizational_unit_arns = vec![OU.into()];
        deps.config.share.account_ids = vec![ACCOUNT.into()];
        let result = handler(&deps, testing::event(EVENT)).await.unwrap();
        assert_eq!(result.already_shared, [testing::ORGANIZATION_ARN]);
        assert_eq!(
            result.principals.describe(),
            [testing::ORGANIZATION_ARN, OU, ACCOUNT]
        );
        assert_eq!(
            (lookup.num_calls(), describe.num_calls(), modify.num_calls()),
            (0, 1, 1)
        );
    }

    #[tokio::test]
    async fn a_rerun_with_everything_shared_sends_nothing() {
        let lookup = organization();
        let describe =
            testing::launch_permissions(GOLDEN, vec![testing::organization_launch_permission()]);
        let modify = modify_any();
        let deps = MockClients {
            organizations: vec![&lookup],
            ec2: vec![&describe, &modify],
            ..Default::default()
        }
        .deps();
        let result = handler(&deps, testing::event(EVENT)).await.unwrap();
        assert_eq!(result.already_shared, [testing::ORGANIZATION_ARN]);
        assert_eq!(modify.num_calls(), 0);
    }

    #[tokio::test]
    async fn an_account_outside_an_organization_cannot_share_with_it() {
        let lookup = mock!(Organizations::describe_organization).then_error(|| {
            DescribeOrganizationError::AwsOrganizationsNotInUseException(
                AwsOrganizationsNotInUseException::builder().build(),
            )
        });
        let describe = testing::launch_permissions(GOLDEN, vec![]);
        let modify = modify_any();
        let deps = MockClients {
            organizations: vec![&lookup],
            ec2: vec![&describe, &modify],
            ..Default::default()
        }
        .deps();
        let error = handler(&deps, testing::event(EVENT)).await.unwrap_err();
        assert_eq!(error.error_type(), "ShareFailed");
        assert!(error.to_string().contains("SHARE_ACCOUNT_IDS"), "{error}");
        assert_eq!((describe.num_calls(), modify.num_calls()), (0, 0));
    }

    #[tokio::test]
    async fn a_denied_lookup_says_what_to_do() {
        let lookup = mock!(Organizations::describe_organization).then_error(|| {
            DescribeOrganizationError::AccessDeniedException(
                aws_sdk_organizations::types::error::AccessDeniedException::builder()
                    .message("not authorized to perform organizations:DescribeOrganization")
                    .build(),
            )
        });
        let deps = MockClients {
            organizations: vec![&lookup],
            ..Default::default()
        }
        .deps();
        let error = handler(&deps, testing::event(EVENT)).await.unwrap_err();
        assert_eq!(error.error_type(), "ShareFailed");
        assert!(
            error.to_string().contains("SHARE_ORGANIZATION_ARN"),
            "{error}"
        );
    }

    #[tokio::test]
    async fn throttling_is_retryable() {
        let lookup = organization();
        let describe = mock!(Ec2::describe_image_attribute).then_error(|| {
            DescribeImageAttributeError::generic(testing::service_error(
                "RequestLimitExceeded",
                "Request limit exceeded.",
            ))
        });
        let modify = modify_any();
        let deps = MockClients {
            organizations: vec![&lookup],
            ec2: vec![&describe, &modify],
            ..Default::default()
        }
        .deps();
        let error = handler(&deps, testing::event(EVENT)).await.unwrap_err();
        assert_eq!(error.error_type(), "Throttled");
        assert_eq!(modify.num_calls(), 0);
    }

    #[tokio::test]
    async fn a_vanished_image_is_share_failed() {
        let lookup = organization();
        let describe = testing::launch_permissions(GOLDEN, vec![]);
        let modify = mock!(Ec2::modify_image_attribute).then_error(|| {
            aws_sdk_ec2::operation::modify_image_attribute::ModifyImageAttributeError::generic(
                testing::service_error(
                    "InvalidAMIID.NotFound",
                    "The image id '[ami-0c0ffee0123456789]' does not exist",
                ),
            )
        });
        let deps = MockClients {
            organizations: vec![&lookup],
            ec2: vec![&describe, &modify],
            ..Default::default()
        }
        .deps();
        let error = handler(&deps, testing::event(EVENT)).await.unwrap_err();
        assert_eq!(error.error_type(), "ShareFailed");
        assert!(error.to_string().contains(GOLDEN), "{error}");
    }

    #[tokio::test]
    async fn the_published_image_is_never_shared_again() {
        let mut input: StepInput = testing::event(EVENT);
        if let Some(copy) = input.state.copy.as_mut() {
            copy.golden_ami_id = "ami-0123456789abcdef0".into();
        }
        let lookup = organization();
        let describe = testing::launch_permissions(GOLDEN, vec![]);
        let deps = MockClients {
            organizations: vec![&lookup],
            ec2: vec![&describe],
            ..Default::default()
        }
        .deps();
        let error = handler(&deps, input).await.unwrap_err();
        assert_eq!(error.error_type(), "InvalidInput");
        assert_eq!((lookup.num_calls(), describe.num_calls()), (0, 0));
    }

    #[test]
    fn sharing_with_the_organization_off_leaves_it_out() {
        let share = ShareConfig {
            organization_arn: Some(testing::ORGANIZATION_ARN.into()),
            organizational_unit_arns: vec![OU.into()],
            account_ids: vec![],
            share_with_organization: false,
        };
        let principals = share.principals(None);
        assert!(principals.organization_arns.is_empty());
        assert_eq!(principals.organizational_unit_arns, [OU]);
    }

    #[test]
    fn the_intermediate_image_is_refused() {
        let error =
            check_golden_image(GOLDEN, Some("ami-0123456789abcdef0"), Some(GOLDEN)).unwrap_err();
        assert!(error.to_string().contains("intermediate"), "{error}");
        assert!(check_golden_image(GOLDEN, Some("ami-0123456789abcdef0"), None).is_ok());
    }

    #[test]
    fn an_unknown_code_is_left_to_the_classifier() {
        assert!(share_error("RequestLimitExceeded", None, GOLDEN).is_none());
        assert_eq!(
            share_error("InvalidParameterValue", Some("bad ARN"), GOLDEN)
                .map(|error| error.error_type()),
            Some("ShareFailed")
        );
    }
}

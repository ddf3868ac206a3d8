//! ReadCurrentAmi: where one family's pointers stand at the start of the run.
//!
//! Reads the family's pointer in every target region. The home region's pointer holds the
//! source of the bake: it must exist (or the family must name a baseImage for its first run)
//! and hold an available image of the family's architecture. A pointer missing in another
//! region is a region the family has not been published in yet: PublishPointer creates it. The
//! result is the items of the family's region Maps, each with the version read, which
//! PublishPointer later refuses to overwrite if it moved.

use aws_sdk_ec2::types::{Image, ImageState};
use golden_ami_core::naming::is_ami_id;
use golden_ami_core::types::RegionTarget;
use golden_ami_core::{
    CurrentImage, Deps, FamilyTarget, PointerValue, StepError, StepInput, classify_sdk_error,
    read_pointer,
};

pub async fn handler(deps: &Deps, input: StepInput) -> Result<CurrentImage, StepError> {
    let family = input.state.require_family()?;
    if family.regions.first().map(|r| r.region.as_str()) != Some(family.home_region.as_str()) {
        return Err(StepError::invalid_input(format!(
            "family {} does not target its home region {} first: PlanRun puts it first",
            family.name, family.home_region
        )));
    }
    let parameter = &family.pointer;
    let mut regions = Vec::with_capacity(family.regions.len());
    for region in &family.regions {
        let clients = deps.clients.region(&region.region);
        let (ami_id, version) = match read_pointer(clients.ssm(), parameter).await {
            Ok(PointerValue { value, version }) => {
                if !is_ami_id(&value) {
                    return Err(StepError::InvalidInput(format!(
                        "parameter {parameter} in {} holds {value:?}, which is not an AMI id: put the family's current golden AMI id (ami-...) in it",
                        region.region
                    )));
                }
                (Some(value), version)
            }
            Err(StepError::PointerNotFound { .. }) => (None, 0),
            Err(other) => return Err(other),
        };
        regions.push(RegionTarget {
            region: region.region.clone(),
            kms_key_arn: region.kms_key_arn.clone(),
            parameter_name: parameter.clone(),
            parameter_version: version,
            ami_id,
        });
    }
    let home = &regions[0];
    let (source, base_image) = match &home.ami_id {
        Some(ami_id) => (ami_id.clone(), None),
        None => match &family.base_image {
            Some(base) => (
                resolve_base_image(deps, base, family).await?,
                Some(base.clone()),
            ),
            None => {
                return Err(StepError::PointerNotFound {
                    parameter: format!(
                        "{parameter} in {} (the home region; the family has no baseImage to start from: put its current golden AMI id in the pointer, or give the family a baseImage)",
                        home.region
                    ),
                });
            }
        },
    };
    let where_ = match &base_image {
        Some(base) => format!("the baseImage {base} of family {}", family.name),
        None => home.parameter_name.clone(),
    };
    let image = describe_image(deps, &source)
        .await
        .map_err(|error| match error {
            StepError::AwsError { code, message, .. } if code.starts_with("InvalidAMIID.") => {
                source_not_found(&source, &where_, format!("{code}: {message}"))
            }
            other => other,
        })?;
    let image = check_source_image(image.as_ref(), &source, &where_, family)?;
    Ok(CurrentImage {
        parameter_name: home.parameter_name.clone(),
        parameter_version: home.parameter_version,
        ami_id: source.clone(),
        base_image,
        ami_name: image.name().map(str::to_string),
        ebs_devices: ebs_devices(image),
        regions,
    })
}

/// The image's EBS devices, its root device first (a direct bake encrypts each of them).
pub fn ebs_devices(image: &Image) -> Vec<String> {
    let root = image.root_device_name();
    let mut devices: Vec<String> = image
        .block_device_mappings()
        .iter()
        .filter(|mapping| mapping.ebs().is_some())
        .filter_map(|mapping| mapping.device_name().map(str::to_string))
        .collect();
    devices.sort_by_key(|device| Some(device.as_str()) != root);
    devices.dedup();
    devices
}

/// The image a baseImage names: an AMI id as is, or the value of a (public) parameter.
async fn resolve_base_image(
    deps: &Deps,
    base: &str,
    family: &FamilyTarget,
) -> Result<String, StepError> {
    if is_ami_id(base) {
        return Ok(base.to_string());
    }
    let value = read_pointer(deps.clients.ssm(), base)
        .await
        .map_err(|error| match error {
            StepError::PointerNotFound { .. } => StepError::ConfigError(format!(
                "family {}: baseImage {base} is not a parameter in {}: name an AMI id or a public parameter such as /aws/service/ami-amazon-linux-latest/al2023-ami-kernel-default-x86_64",
                family.name, family.home_region
            )),
            other => other,
        })?
        .value;
    if !is_ami_id(&value) {
        return Err(StepError::ConfigError(format!(
            "family {}: baseImage {base} holds {value:?}, which is not an AMI id",
            family.name
        )));
    }
    Ok(value)
}

async fn describe_image(deps: &Deps, ami_id: &str) -> Result<Option<Image>, StepError> {
    let output = deps
        .clients
        .ec2()
        .describe_images()
        .image_ids(ami_id)
        .send()
        .await
        .map_err(|error| classify_sdk_error("ec2:DescribeImages", error))?;
    Ok(output.images().first().cloned())
}

/// `where_`: what named the image (the home pointer, or the family's baseImage).
fn source_not_found(ami_id: &str, where_: &str, reason: String) -> StepError {
    StepError::SourceImageNotFound {
        image_id: ami_id.to_string(),
        parameter: where_.to_string(),
        reason,
    }
}

/// The image the home pointer holds must exist, be available, and be of the family's
/// architecture, to be baked from.
pub fn check_source_image<'a>(
    image: Option<&'a Image>,
    ami_id: &str,
    parameter: &str,
    family: &FamilyTarget,
) -> Result<&'a Image, StepError> {
    let image = image.ok_or_else(|| {
        source_not_found(
            ami_id,
            parameter,
            "it does not exist or is not visible to this account (deregistered?): set the parameter back to a valid golden AMI".into(),
        )
    })?;
    match image.state() {
        Some(ImageState::Available) => {}
        state => {
            return Err(source_not_found(
                ami_id,
                parameter,
                format!(
                    "it is {}, not available",
                    state.map_or("in an unknown state", |s| s.as_str())
                ),
            ));
        }
    }
    if let Some(architecture) = image.architecture()
        && architecture.as_str() != family.architecture.as_str()
    {
        return Err(source_not_found(
            ami_id,
            parameter,
            format!(
                "it is an {} image but family {} is {}: point the family's pointer at one of its own images",
                architecture.as_str(),
                family.name,
                family.architecture.as_str()
            ),
        ));
    }
    Ok(image)
}

#[cfg(test)]
mod tests {
    use aws_sdk_ec2::Client as Ec2;
    use aws_sdk_ec2::operation::describe_images::{DescribeImagesError, DescribeImagesOutput};
    use aws_sdk_ec2::types::ArchitectureValues;
    use aws_sdk_ssm::Client as Ssm;
    use aws_sdk_ssm::operation::get_parameter::{GetParameterError, GetParameterOutput};
    use aws_sdk_ssm::types::Parameter;
    use aws_sdk_ssm::types::error::ParameterNotFound;
    use golden_ami_core::testing::{self, MockClients, Rule, mock};
    use golden_ami_core::{FamilyTarget, RegionSpec};

    use super::*;

    const EVENT: &str = include_str!("../../../events/read-current-ami/ok.json");
    const AMI: &str = "ami-0123456789abcdef0";

    fn pointer(value: &str, version: i64) -> Rule {
        let value = value.to_string();
        mock!(Ssm::get_parameter)
            .match_requests(|request| request.name() == Some(testing::POINTER))
            .then_output(move || {
                GetParameterOutput::builder()
                    .parameter(
                        Parameter::builder()
                            .name(testing::POINTER)
                            .value(value.clone())
                            .version(version)
                            .data_type("aws:ec2:image")
                            .build(),
                    )
                    .build()
            })
    }

    fn image(state: ImageState) -> Rule {
        image_of(state, ArchitectureValues::X8664)
    }

    fn image_of(state: ImageState, architecture: ArchitectureValues) -> Rule {
        mock!(Ec2::describe_images)
            .match_requests(|request| request.image_ids() == [AMI])
            .then_output(move || {
                DescribeImagesOutput::builder()
                    .images(
                        Image::builder()
                            .image_id(AMI)
                            .name("golden-ami-2026-11-01-1a2b3c4d")
                            .state(state.clone())
                            .architecture(architecture.clone())
                            .build(),
                    )
                    .build()
            })
    }

    #[tokio::test]
    async fn reads_the_pointer_and_checks_the_image() {
        let get = pointer(AMI, 7);
        let describe = image(ImageState::Available);
        let deps = MockClients {
            ssm: vec![&get],
            ec2: vec![&describe],
            ..Default::default()
        }
        .deps();
        let current = handler(&deps, testing::event(EVENT)).await.unwrap();
        assert_eq!(current.ami_id, AMI);
        assert_eq!(current.parameter_version, 7);
        assert_eq!(current.parameter_name, testing::POINTER);
        assert_eq!(
            current.ami_name.as_deref(),
            Some("golden-ami-2026-11-01-1a2b3c4d")
        );
        assert_eq!(current.regions.len(), 1);
        assert_eq!(current.regions[0].region, testing::REGION);
        assert_eq!(current.regions[0].kms_key_arn, testing::GOLDEN_KEY_ARN);
        assert_eq!(current.regions[0].parameter_version, 7);
        assert_eq!((get.num_calls(), describe.num_calls()), (1, 1));
    }

    #[tokio::test]
    async fn a_missing_parameter_is_pointer_not_found() {
        let get = mock!(Ssm::get_parameter).then_error(|| {
            GetParameterError::ParameterNotFound(ParameterNotFound::builder().build())
        });
        let deps = MockClients {
            ssm: vec![&get],
            ..Default::default()
        }
        .deps();
        let error = handler(&deps, testing::event(EVENT)).await.unwrap_err();
        assert_eq!(error.error_type(), "PointerNotFound");
        let message = error.to_string();
        assert!(message.contains(testing::POINTER), "{message}");
        assert!(message.contains("give the family a baseImage"), "{message}");
    }

    #[tokio::test]
    async fn a_value_that_is_not_an_ami_id_is_invalid_input() {
        let get = pointer("latest", 3);
        let deps = MockClients {
            ssm: vec![&get],
            ..Default::default()
        }
        .deps();
        let error = handler(&deps, testing::event(EVENT)).await.unwrap_err();
        assert_eq!(error.error_type(), "InvalidInput");
        assert!(error.to_string().contains("\"latest\""), "{error}");
        assert!(error.to_string().contains(testing::POINTER), "{error}");
    }

    #[tokio::test]
    async fn an_unknown_image_is_source_image_not_found() {
        let get = pointer(AMI, 7);
        let describe = mock!(Ec2::describe_images).then_error(|| {
            DescribeImagesError::generic(testing::service_error(
                "InvalidAMIID.NotFound",
                "The image id '[ami-0123456789abcdef0]' does not exist",
            ))
        });
        let deps = MockClients {
            ssm: vec![&get],
            ec2: vec![&describe],
            ..Default::default()
        }
        .deps();
        let error = handler(&deps, testing::event(EVENT)).await.unwrap_err();
        assert_eq!(error.error_type(), "SourceImageNotFound");
        let message = error.to_string();
        assert!(
            message.contains(AMI) && message.contains(testing::POINTER),
            "{message}"
        );
    }

    #[tokio::test]
    async fn a_deregistered_or_pending_image_is_source_image_not_found() {
        for state in [ImageState::Deregistered, ImageState::Pending] {
            let get = pointer(AMI, 7);
            let describe = image(state.clone());
            let deps = MockClients {
                ssm: vec![&get],
                ec2: vec![&describe],
                ..Default::default()
            }
            .deps();
            let error = handler(&deps, testing::event(EVENT)).await.unwrap_err();
            assert_eq!(error.error_type(), "SourceImageNotFound");
            assert!(error.to_string().contains(state.as_str()), "{error}");
        }
    }

    #[tokio::test]
    async fn throttling_is_retryable() {
        let get = mock!(Ssm::get_parameter).then_http_response(|| testing::http_status(503));
        let deps = MockClients {
            ssm: vec![&get],
            ..Default::default()
        }
        .deps();
        let error = handler(&deps, testing::event(EVENT)).await.unwrap_err();
        assert_eq!(error.error_type(), "Throttled");
    }

    #[test]
    fn the_source_s_ebs_devices_are_listed_root_first_without_instance_store() {
        use aws_sdk_ec2::types::{BlockDeviceMapping, EbsBlockDevice};
        let ebs = |device: &str| {
            BlockDeviceMapping::builder()
                .device_name(device)
                .ebs(EbsBlockDevice::builder().volume_size(8).build())
                .build()
        };
        let image = Image::builder()
            .root_device_name("/dev/xvda")
            .block_device_mappings(ebs("/dev/sdf"))
            .block_device_mappings(
                BlockDeviceMapping::builder()
                    .device_name("/dev/sdb")
                    .virtual_name("ephemeral0")
                    .build(),
            )
            .block_device_mappings(ebs("/dev/xvda"))
            .build();
        assert_eq!(ebs_devices(&image), ["/dev/xvda", "/dev/sdf"]);
        assert!(ebs_devices(&Image::builder().build()).is_empty());
    }

    #[test]
    fn no_image_means_not_visible() {
        let error =
            check_source_image(None, AMI, testing::POINTER, &testing::family()).unwrap_err();
        assert!(
            error
                .to_string()
                .contains("does not exist or is not visible")
        );
    }

    fn two_region_event() -> StepInput {
        let mut input: StepInput = testing::event(EVENT);
        let mut family: FamilyTarget = testing::family();
        family.regions.push(RegionSpec {
            region: "us-east-1".into(),
            kms_key_arn:
                "arn:aws:kms:us-east-1:111122223333:key/mrk-1234abcd12ab34cd56ef1234567890ab".into(),
        });
        input.state.family = Some(family);
        input
    }

    #[tokio::test]
    async fn reads_the_pointer_in_every_target_region_home_first() {
        let get = pointer(AMI, 7);
        let describe = image(ImageState::Available);
        let deps = MockClients {
            ssm: vec![&get],
            ec2: vec![&describe],
            ..Default::default()
        }
        .deps();
        let current = handler(&deps, two_region_event()).await.unwrap();
        let regions: Vec<_> = current.regions.iter().map(|r| r.region.as_str()).collect();
        assert_eq!(regions, ["eu-west-1", "us-east-1"]);
        assert!(current.regions[1].kms_key_arn.contains("us-east-1"));
        // One pointer read per region; the source image is only described in the home region.
        assert_eq!((get.num_calls(), describe.num_calls()), (2, 1));
    }

    #[tokio::test]
    async fn a_region_without_the_pointer_yet_is_one_to_create() {
        let get = mock!(Ssm::get_parameter)
            .sequence()
            .output(|| {
                GetParameterOutput::builder()
                    .parameter(
                        Parameter::builder()
                            .name(testing::POINTER)
                            .value(AMI)
                            .version(7)
                            .build(),
                    )
                    .build()
            })
            .error(|| GetParameterError::ParameterNotFound(ParameterNotFound::builder().build()))
            .build();
        let describe = image(ImageState::Available);
        let deps = MockClients {
            ssm: vec![&get],
            ec2: vec![&describe],
            ..Default::default()
        }
        .deps();
        let current = handler(&deps, two_region_event()).await.unwrap();
        assert_eq!(current.regions[1].region, "us-east-1");
        assert_eq!(current.regions[1].ami_id, None);
        assert_eq!(current.regions[1].parameter_version, 0);
        assert_eq!(current.ami_id, AMI);
    }

    #[tokio::test]
    async fn a_first_run_bakes_from_the_familys_base_image() {
        const BASE: &str = "/aws/service/ami-amazon-linux-latest/al2023-ami-kernel-default-x86_64";
        let missing = mock!(Ssm::get_parameter)
            .match_requests(|request| request.name() == Some(testing::POINTER))
            .then_error(|| {
                GetParameterError::ParameterNotFound(ParameterNotFound::builder().build())
            });
        let base = mock!(Ssm::get_parameter)
            .match_requests(|request| request.name() == Some(BASE))
            .then_output(|| {
                GetParameterOutput::builder()
                    .parameter(
                        Parameter::builder()
                            .name(BASE)
                            .value(AMI)
                            .version(42)
                            .build(),
                    )
                    .build()
            });
        let describe = image(ImageState::Available);
        let deps = MockClients {
            ssm: vec![&missing, &base],
            ec2: vec![&describe],
            ..Default::default()
        }
        .deps();
        let mut input: StepInput = testing::event(EVENT);
        if let Some(family) = input.state.family.as_mut() {
            family.base_image = Some(BASE.into());
        }
        let current = handler(&deps, input).await.unwrap();
        assert_eq!(current.ami_id, AMI);
        assert_eq!(current.base_image.as_deref(), Some(BASE));
        assert_eq!(current.parameter_version, 0);
        assert_eq!(current.regions[0].ami_id, None);
    }

    #[tokio::test]
    async fn a_base_image_that_does_not_resolve_is_a_config_error() {
        let missing = mock!(Ssm::get_parameter).then_error(|| {
            GetParameterError::ParameterNotFound(ParameterNotFound::builder().build())
        });
        let deps = MockClients {
            ssm: vec![&missing],
            ..Default::default()
        }
        .deps();
        let mut input: StepInput = testing::event(EVENT);
        if let Some(family) = input.state.family.as_mut() {
            family.base_image = Some("/aws/service/nothing-here".into());
        }
        let error = handler(&deps, input).await.unwrap_err();
        assert_eq!(error.error_type(), "ConfigError");
        assert!(
            error
                .to_string()
                .contains("baseImage /aws/service/nothing-here"),
            "{error}"
        );
    }

    #[tokio::test]
    async fn a_source_image_of_another_architecture_is_refused() {
        let get = pointer(AMI, 7);
        let describe = image_of(ImageState::Available, ArchitectureValues::Arm64);
        let deps = MockClients {
            ssm: vec![&get],
            ec2: vec![&describe],
            ..Default::default()
        }
        .deps();
        let error = handler(&deps, testing::event(EVENT)).await.unwrap_err();
        assert_eq!(error.error_type(), "SourceImageNotFound");
        let message = error.to_string();
        assert!(
            message.contains("arm64") && message.contains("x86_64") && message.contains("default"),
            "{message}"
        );
    }

    #[tokio::test]
    async fn an_event_without_a_family_is_invalid_input() {
        let mut input: StepInput = testing::event(EVENT);
        input.state.family = None;
        let deps = MockClients::default().deps();
        let error = handler(&deps, input).await.unwrap_err();
        assert_eq!(error.error_type(), "InvalidInput");
        assert!(error.to_string().contains("family"), "{error}");
    }
}

//! One image by id, read the way the steps that must tell "gone" from a failure read it.

use aws_sdk_ec2::types::Image;

use crate::error::{StepError, classify_sdk_error, error_code};

/// DescribeImages of `image_id`: None if EC2 does not know it (InvalidAMIID.*), any other error
/// classified. `include_disabled`: also a disabled image, which DescribeImages leaves out by
/// default (https://docs.aws.amazon.com/AWSEC2/latest/APIReference/API_DescribeImages.html,
/// IncludeDisabled).
pub async fn describe_image(
    ec2: &aws_sdk_ec2::Client,
    image_id: &str,
    include_disabled: bool,
) -> Result<Option<Image>, StepError> {
    ec2.describe_images()
        .image_ids(image_id)
        .set_include_disabled(include_disabled.then_some(true))
        .send()
        .await
        .map(|output| output.images().first().cloned())
        .or_else(|error| match error_code(&error) {
            Some(code) if code.starts_with("InvalidAMIID.") => Ok(None),
            _ => Err(classify_sdk_error("ec2:DescribeImages", error)),
        })
}

//! The SDK clients of one command: the stack's region, and SSM / EC2 in any target region.

use aws_config::{BehaviorVersion, Region, SdkConfig};

#[derive(Debug, Clone)]
pub struct Aws {
    pub region: String,
    pub cloudformation: aws_sdk_cloudformation::Client,
    pub sfn: aws_sdk_sfn::Client,
    pub ssm: aws_sdk_ssm::Client,
    pub ec2: aws_sdk_ec2::Client,
    /// `pin` resolves a snapshot's key that EC2 names by alias or id (as VerifyImage does).
    pub kms: aws_sdk_kms::Client,
    pub sts: aws_sdk_sts::Client,
    /// How long a pointer write may take to show (SSM validates aws:ec2:image values
    /// asynchronously): `rollback` and `pin` wait this long before they give up.
    pub pointer_wait: std::time::Duration,
    /// None: every region is served by the clients above (tests).
    shared: Option<SdkConfig>,
}

impl Aws {
    /// Clients from the default chain; `endpoint_url` (e.g. the local stack) for every service.
    pub async fn from_env(region: Option<String>, endpoint_url: Option<String>) -> Self {
        let mut loader = aws_config::defaults(BehaviorVersion::latest());
        // The workspace builds the SDK without its default HTTPS client: the CLI's trusts the
        // platform's roots (a person's machine may sit behind a TLS-inspecting proxy). A store
        // that cannot be built leaves none, and the first call says so.
        if let Ok(client) =
            golden_ami_core::deps::https_client(golden_ami_core::deps::Roots::Platform)
        {
            loader = loader.http_client(client);
        }
        if let Some(region) = region {
            loader = loader.region(Region::new(region));
        }
        if let Some(url) = endpoint_url {
            loader = loader.endpoint_url(url);
        }
        let shared = loader.load().await;
        let mut aws = Self::fixed(
            aws_sdk_cloudformation::Client::new(&shared),
            aws_sdk_sfn::Client::new(&shared),
            aws_sdk_ssm::Client::new(&shared),
            aws_sdk_ec2::Client::new(&shared),
            aws_sdk_kms::Client::new(&shared),
            aws_sdk_sts::Client::new(&shared),
        );
        aws.region = shared.region().map(|r| r.to_string()).unwrap_or_default();
        aws.shared = Some(shared);
        aws
    }

    /// The same clients for every region (tests with aws-smithy-mocks).
    pub fn fixed(
        cloudformation: aws_sdk_cloudformation::Client,
        sfn: aws_sdk_sfn::Client,
        ssm: aws_sdk_ssm::Client,
        ec2: aws_sdk_ec2::Client,
        kms: aws_sdk_kms::Client,
        sts: aws_sdk_sts::Client,
    ) -> Self {
        Self {
            region: "eu-west-1".to_string(),
            cloudformation,
            sfn,
            ssm,
            ec2,
            kms,
            sts,
            pointer_wait: crate::POINTER_WAIT,
            shared: None,
        }
    }

    fn config_in(&self, region: &str) -> Option<SdkConfig> {
        self.shared
            .as_ref()
            .filter(|_| region != self.region)
            .map(|shared| {
                shared
                    .to_builder()
                    .region(Region::new(region.to_string()))
                    .build()
            })
    }

    pub fn ssm_in(&self, region: &str) -> aws_sdk_ssm::Client {
        self.config_in(region)
            .map(|config| aws_sdk_ssm::Client::new(&config))
            .unwrap_or_else(|| self.ssm.clone())
    }

    pub fn ec2_in(&self, region: &str) -> aws_sdk_ec2::Client {
        self.config_in(region)
            .map(|config| aws_sdk_ec2::Client::new(&config))
            .unwrap_or_else(|| self.ec2.clone())
    }

    pub fn kms_in(&self, region: &str) -> aws_sdk_kms::Client {
        self.config_in(region)
            .map(|config| aws_sdk_kms::Client::new(&config))
            .unwrap_or_else(|| self.kms.clone())
    }
}

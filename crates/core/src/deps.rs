//! The configuration and AWS clients a step needs, built once per cold start.

use aws_config::BehaviorVersion;
use lambda_runtime::Diagnostic;
use time::OffsetDateTime;

use crate::config::Config;
use crate::error::StepError;

/// The AWS clients of the pipeline. Building a client does no I/O, so every step holds all of
/// them; each function's IAM policy decides what it may actually call.
#[derive(Debug, Clone)]
pub struct Clients {
    pub ec2: aws_sdk_ec2::Client,
    pub ssm: aws_sdk_ssm::Client,
    pub kms: aws_sdk_kms::Client,
    pub sns: aws_sdk_sns::Client,
    pub organizations: aws_sdk_organizations::Client,
}

impl Clients {
    /// Clients from the default chain (Lambda's role; AWS_ENDPOINT_URL when run locally).
    pub async fn from_env() -> Self {
        let shared = aws_config::load_defaults(BehaviorVersion::latest()).await;
        Self {
            ec2: aws_sdk_ec2::Client::new(&shared),
            ssm: aws_sdk_ssm::Client::new(&shared),
            kms: aws_sdk_kms::Client::new(&shared),
            sns: aws_sdk_sns::Client::new(&shared),
            organizations: aws_sdk_organizations::Client::new(&shared),
        }
    }
}

/// Everything a handler depends on.
#[derive(Debug, Clone)]
pub struct Deps {
    pub config: Config,
    pub clients: Clients,
    /// The time source; tests fix it so deadlines are deterministic.
    pub clock: fn() -> OffsetDateTime,
}

impl Deps {
    pub fn new(config: Config, clients: Clients) -> Self {
        Self {
            config,
            clients,
            clock: OffsetDateTime::now_utc,
        }
    }

    /// Configuration from the environment and clients from the default chain.
    /// A configuration error is logged here, so a failed cold start names the variable.
    pub async fn from_env() -> Result<Self, StepError> {
        let config = Config::from_env().inspect_err(|error| {
            tracing::error!(error_type = error.error_type(), %error, "cannot start");
        })?;
        Ok(Self::new(config, Clients::from_env().await))
    }

    pub fn now(&self) -> OffsetDateTime {
        (self.clock)()
    }
}

/// Initialise logging the way Lambda's advanced logging controls ask (JSON when
/// AWS_LAMBDA_LOG_FORMAT=JSON, level from AWS_LAMBDA_LOG_LEVEL or RUST_LOG).
pub fn init_tracing() {
    lambda_runtime::tracing::init_default_subscriber();
}

/// The boundary of every step: log the error once, then hand Lambda its stable error name.
pub fn report(error: StepError) -> Diagnostic {
    tracing::error!(error_type = error.error_type(), %error, "step failed");
    Diagnostic::from(error)
}

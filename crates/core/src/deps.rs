//! The configuration and AWS clients a step needs, built once per cold start.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use aws_config::{BehaviorVersion, Region, SdkConfig};
use lambda_runtime::Diagnostic;
use time::OffsetDateTime;

use crate::config::Config;
use crate::error::StepError;

/// The AWS clients of the pipeline, in the home region. Building a client does no I/O, so
/// every step holds all of them; each function's IAM policy decides what it may actually call.
#[derive(Debug, Clone)]
pub struct Clients {
    pub ec2: aws_sdk_ec2::Client,
    pub ssm: aws_sdk_ssm::Client,
    pub kms: aws_sdk_kms::Client,
    pub sns: aws_sdk_sns::Client,
    pub organizations: aws_sdk_organizations::Client,
    regional: Regional,
}

/// The clients a step needs in one target region.
#[derive(Debug, Clone)]
pub struct RegionClients {
    pub ec2: aws_sdk_ec2::Client,
    pub ssm: aws_sdk_ssm::Client,
    pub kms: aws_sdk_kms::Client,
    /// AWS RAM: a pointer the pipeline creates is added to the region's pointer share.
    pub ram: aws_sdk_ram::Client,
}

/// Where region clients come from: built from the shared configuration on first use and kept
/// for the life of the process, or (tests) the home clients whatever the region.
#[derive(Debug, Clone)]
enum Regional {
    Built {
        shared: Box<SdkConfig>,
        cache: Arc<Mutex<HashMap<String, RegionClients>>>,
    },
    Fixed(RegionClients),
}

impl Clients {
    /// Clients from the default chain (Lambda's role; AWS_ENDPOINT_URL when run locally).
    pub async fn from_env() -> Self {
        let shared = aws_config::load_defaults(BehaviorVersion::latest()).await;
        let mut clients = Self::fixed(
            aws_sdk_ec2::Client::new(&shared),
            aws_sdk_ssm::Client::new(&shared),
            aws_sdk_kms::Client::new(&shared),
            aws_sdk_sns::Client::new(&shared),
            aws_sdk_organizations::Client::new(&shared),
            aws_sdk_ram::Client::new(&shared),
        );
        clients.regional = Regional::Built {
            shared: Box::new(shared),
            cache: Arc::default(),
        };
        clients
    }

    /// Clients whose region clients are these same clients (one region; tests).
    pub fn fixed(
        ec2: aws_sdk_ec2::Client,
        ssm: aws_sdk_ssm::Client,
        kms: aws_sdk_kms::Client,
        sns: aws_sdk_sns::Client,
        organizations: aws_sdk_organizations::Client,
        ram: aws_sdk_ram::Client,
    ) -> Self {
        let regional = Regional::Fixed(RegionClients {
            ec2: ec2.clone(),
            ssm: ssm.clone(),
            kms: kms.clone(),
            ram,
        });
        Self {
            ec2,
            ssm,
            kms,
            sns,
            organizations,
            regional,
        }
    }

    /// The clients of a target region (the home region's are these same clients' kind).
    pub fn region(&self, region: &str) -> RegionClients {
        match &self.regional {
            Regional::Fixed(clients) => clients.clone(),
            Regional::Built { shared, cache } => {
                let mut cache = cache
                    .lock()
                    .unwrap_or_else(|poisoned| poisoned.into_inner());
                cache
                    .entry(region.to_string())
                    .or_insert_with(|| {
                        let config = shared
                            .to_builder()
                            .region(Region::new(region.to_string()))
                            .build();
                        RegionClients {
                            ec2: aws_sdk_ec2::Client::new(&config),
                            ssm: aws_sdk_ssm::Client::new(&config),
                            kms: aws_sdk_kms::Client::new(&config),
                            ram: aws_sdk_ram::Client::new(&config),
                        }
                    })
                    .clone()
            }
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

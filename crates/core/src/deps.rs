//! The configuration and AWS clients a step needs: the configuration once per cold start, each
//! client the first time it is used.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, OnceLock};

use aws_config::{AppName, BehaviorVersion, Region, SdkConfig};
use lambda_runtime::Diagnostic;
use time::OffsetDateTime;

use crate::config::Config;
use crate::error::StepError;

/// One AWS client, built from the shared configuration the first time a handler asks for it.
/// A function pays (at cold start, and in its package: code no handler reaches is left out by
/// the linker) only for the clients it uses; tests give it a mocked client up front.
#[derive(Debug, Clone)]
struct Lazy<T>(OnceLock<T>);

impl<T> Default for Lazy<T> {
    fn default() -> Self {
        Self(OnceLock::new())
    }
}

impl<T> Lazy<T> {
    fn ready(client: T) -> Self {
        Self(OnceLock::from(client))
    }

    fn get(&self, config: &SdkConfig, build: fn(&SdkConfig) -> T) -> &T {
        self.0.get_or_init(|| build(config))
    }
}

/// The AWS clients of the pipeline, in the home region, each built on first use.
#[derive(Debug, Clone)]
pub struct Clients {
    /// EC2, SSM and KMS at home: the home region's entry of the region clients.
    home: Arc<RegionClients>,
    sns: Lazy<aws_sdk_sns::Client>,
    organizations: Lazy<aws_sdk_organizations::Client>,
    regional: Regional,
}

/// The clients a step needs in one target region, each built on first use.
#[derive(Debug, Clone)]
pub struct RegionClients {
    config: Arc<SdkConfig>,
    ec2: Lazy<aws_sdk_ec2::Client>,
    ssm: Lazy<aws_sdk_ssm::Client>,
    kms: Lazy<aws_sdk_kms::Client>,
    /// AWS RAM: a pointer the pipeline creates is added to the region's pointer share.
    ram: Lazy<aws_sdk_ram::Client>,
}

impl RegionClients {
    /// Clients of the region `config` names, none built yet.
    fn new(config: Arc<SdkConfig>) -> Self {
        Self {
            config,
            ec2: Lazy::default(),
            ssm: Lazy::default(),
            kms: Lazy::default(),
            ram: Lazy::default(),
        }
    }

    pub fn ec2(&self) -> &aws_sdk_ec2::Client {
        self.ec2.get(&self.config, aws_sdk_ec2::Client::new)
    }

    pub fn ssm(&self) -> &aws_sdk_ssm::Client {
        self.ssm.get(&self.config, aws_sdk_ssm::Client::new)
    }

    pub fn kms(&self) -> &aws_sdk_kms::Client {
        self.kms.get(&self.config, aws_sdk_kms::Client::new)
    }

    pub fn ram(&self) -> &aws_sdk_ram::Client {
        self.ram.get(&self.config, aws_sdk_ram::Client::new)
    }
}

/// Where region clients come from: built from the shared configuration on first use and kept
/// for the life of the process (the home region's are the home clients), or (tests) the home
/// clients whatever the region.
#[derive(Debug, Clone)]
enum Regional {
    Built(Arc<Mutex<HashMap<String, Arc<RegionClients>>>>),
    Fixed,
}

impl Clients {
    /// Clients from the default chain (Lambda's role; AWS_ENDPOINT_URL when run locally), over
    /// an HTTPS client that trusts the Amazon Trust Services roots only (see `https_client`).
    /// Every call carries the function's name as the SDK's app name (User-Agent `app/<name>`):
    /// Lambda sets AWS_LAMBDA_FUNCTION_NAME, and so does `cargo lambda watch` locally, where the
    /// emulator tells the callers apart by it to check each call against that function's policy.
    pub async fn from_env() -> Result<Self, StepError> {
        let mut loader =
            aws_config::defaults(BehaviorVersion::latest()).http_client(https_client(Roots::Aws)?);
        if let Some(name) = app_name(std::env::var("AWS_LAMBDA_FUNCTION_NAME").ok())? {
            loader = loader.app_name(name);
        }
        let shared = loader.load().await;
        let home_region = shared.region().map(|region| region.to_string());
        let home = Arc::new(RegionClients::new(Arc::new(shared)));
        let cache: HashMap<String, Arc<RegionClients>> = home_region
            .map(|region| (region, home.clone()))
            .into_iter()
            .collect();
        Ok(Self {
            home,
            sns: Lazy::default(),
            organizations: Lazy::default(),
            regional: Regional::Built(Arc::new(Mutex::new(cache))),
        })
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
        Self {
            home: Arc::new(RegionClients {
                // Every client is given: the configuration is never used to build one.
                config: Arc::new(SdkConfig::builder().build()),
                ec2: Lazy::ready(ec2),
                ssm: Lazy::ready(ssm),
                kms: Lazy::ready(kms),
                ram: Lazy::ready(ram),
            }),
            sns: Lazy::ready(sns),
            organizations: Lazy::ready(organizations),
            regional: Regional::Fixed,
        }
    }

    pub fn ec2(&self) -> &aws_sdk_ec2::Client {
        self.home.ec2()
    }

    pub fn ssm(&self) -> &aws_sdk_ssm::Client {
        self.home.ssm()
    }

    pub fn kms(&self) -> &aws_sdk_kms::Client {
        self.home.kms()
    }

    pub fn sns(&self) -> &aws_sdk_sns::Client {
        self.sns.get(&self.home.config, aws_sdk_sns::Client::new)
    }

    pub fn organizations(&self) -> &aws_sdk_organizations::Client {
        self.organizations
            .get(&self.home.config, aws_sdk_organizations::Client::new)
    }

    /// The clients of a target region (the home region's are the home clients).
    pub fn region(&self, region: &str) -> Arc<RegionClients> {
        match &self.regional {
            Regional::Fixed => self.home.clone(),
            Regional::Built(cache) => {
                let mut cache = cache
                    .lock()
                    .unwrap_or_else(|poisoned| poisoned.into_inner());
                cache
                    .entry(region.to_string())
                    .or_insert_with(|| {
                        Arc::new(RegionClients::new(Arc::new(
                            self.home
                                .config
                                .to_builder()
                                .region(Region::new(region.to_string()))
                                .build(),
                        )))
                    })
                    .clone()
            }
        }
    }
}

/// The SDK app name of a function (its AWS_LAMBDA_FUNCTION_NAME), none outside Lambda. A Lambda
/// function name (letters, digits, `-`, `_`) is always a valid app name; anything else is a
/// configuration error named at start.
pub fn app_name(function_name: Option<String>) -> Result<Option<AppName>, StepError> {
    match function_name.filter(|name| !name.is_empty()) {
        None => Ok(None),
        Some(name) => AppName::new(name.clone()).map(Some).map_err(|_| {
            StepError::ConfigError(format!(
                "AWS_LAMBDA_FUNCTION_NAME {name:?} is no valid SDK app name"
            ))
        }),
    }
}

/// The roots every AWS service endpoint's certificate chains to: Amazon Root CA 1-4 and the
/// Starfield Services Root CA G2 that cross-signs them (the Amazon Trust Services repository).
pub const AWS_ROOT_CERTIFICATES: &str = include_str!("../certs/amazon-trust-services.pem");

/// Which roots an HTTPS client trusts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Roots {
    /// The roots AWS endpoints chain to (the steps: they call nothing else).
    Aws,
    /// The platform's store (the CLI, on a person's machine, maybe behind a TLS proxy).
    Platform,
}

/// The HTTPS client of the steps and the CLI: rustls on ring (the workspace Cargo.toml says why
/// not aws-lc). The steps trust only the roots AWS endpoints use: loading and parsing the
/// platform's whole store (some 150 certificates) was the largest part of a cold start; five
/// certificates cost a fraction of it, and no other CA can vouch for an AWS endpoint.
pub fn https_client(
    roots: Roots,
) -> Result<aws_smithy_runtime_api::client::http::SharedHttpClient, StepError> {
    use aws_smithy_http_client::tls::{self, TlsContext, TrustStore};
    let trust_store = match roots {
        Roots::Aws => TrustStore::empty().with_pem_certificate(AWS_ROOT_CERTIFICATES),
        Roots::Platform => TrustStore::default(),
    };
    let context = TlsContext::builder()
        .with_trust_store(trust_store)
        .build()
        .map_err(|error| StepError::ConfigError(format!("the TLS trust store: {error}")))?;
    Ok(aws_smithy_http_client::Builder::new()
        .tls_provider(tls::Provider::Rustls(
            tls::rustls_provider::CryptoMode::Ring,
        ))
        .tls_context(context)
        .build_https())
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
        let clients = Clients::from_env().await.inspect_err(|error| {
            tracing::error!(error_type = error.error_type(), %error, "cannot start");
        })?;
        Ok(Self::new(config, clients))
    }

    pub fn now(&self) -> OffsetDateTime {
        (self.clock)()
    }
}

/// Initialise logging the way Lambda's advanced logging controls ask (JSON when
/// AWS_LAMBDA_LOG_FORMAT=JSON, level from AWS_LAMBDA_LOG_LEVEL or RUST_LOG), as lambda_runtime's
/// default subscriber does, but filtered by `Targets` ("info", "golden_ami_core=debug,warn")
/// rather than by an EnvFilter, whose regex engine is most of a step's logging code.
pub fn init_tracing() {
    use tracing_subscriber::layer::SubscriberExt;
    use tracing_subscriber::util::SubscriberInitExt;
    use tracing_subscriber::{Layer, fmt, registry};
    let filter = log_filter(
        std::env::var("AWS_LAMBDA_LOG_LEVEL")
            .or_else(|_| std::env::var("RUST_LOG"))
            .ok()
            .as_deref(),
    );
    let layer = fmt::layer()
        .with_target(false)
        .without_time()
        .with_ansi(false)
        .with_writer(std::io::stdout);
    let json = std::env::var("AWS_LAMBDA_LOG_FORMAT").is_ok_and(|f| f.eq_ignore_ascii_case("json"));
    // A second initialisation (tests) keeps the first subscriber.
    let _ = if json {
        registry().with(layer.json().with_filter(filter)).try_init()
    } else {
        registry().with(layer.with_filter(filter)).try_init()
    };
}

/// The log filter for a level or a list of `target=level` directives; INFO when unset or
/// unreadable.
pub fn log_filter(value: Option<&str>) -> tracing_subscriber::filter::Targets {
    use tracing_subscriber::filter::{LevelFilter, Targets};
    value
        .and_then(|value| value.trim().to_ascii_lowercase().parse::<Targets>().ok())
        .unwrap_or_else(|| Targets::new().with_default(LevelFilter::INFO))
}

/// The boundary of every step: log the error once, then hand Lambda its stable error name.
pub fn report(error: StepError) -> Diagnostic {
    tracing::error!(error_type = error.error_type(), %error, "step failed");
    Diagnostic::from(error)
}

#[cfg(test)]
mod tests {
    use tracing::Level;
    use tracing_subscriber::filter::LevelFilter;

    use super::log_filter;

    #[test]
    fn a_function_name_is_the_sdk_app_name_and_none_outside_lambda() {
        let name = super::app_name(Some("plan-run".into())).unwrap().unwrap();
        assert_eq!(name.to_string(), "plan-run");
        let deployed = super::app_name(Some("golden-ami-PlanRunFunction-Ab_12".into())).unwrap();
        assert_eq!(
            deployed.unwrap().to_string(),
            "golden-ami-PlanRunFunction-Ab_12"
        );
        assert!(super::app_name(None).unwrap().is_none());
        assert!(super::app_name(Some(String::new())).unwrap().is_none());
        assert!(super::app_name(Some("no spaces".into())).is_err());
    }

    #[test]
    fn the_trust_store_holds_the_five_amazon_trust_services_roots() {
        use rustls_pki_types::CertificateDer;
        use rustls_pki_types::pem::PemObject;
        let roots: Vec<_> =
            CertificateDer::pem_slice_iter(super::AWS_ROOT_CERTIFICATES.as_bytes()).collect();
        assert_eq!(roots.len(), 5);
        assert!(roots.iter().all(Result::is_ok));
        assert!(super::https_client(super::Roots::Aws).is_ok());
        assert!(super::https_client(super::Roots::Platform).is_ok());
    }

    #[test]
    fn the_log_level_reads_lambda_s_level_and_rust_log_directives() {
        assert_eq!(log_filter(None).default_level(), Some(LevelFilter::INFO));
        assert_eq!(
            log_filter(Some("DEBUG")).default_level(),
            Some(LevelFilter::DEBUG)
        );
        assert_eq!(
            log_filter(Some("warn")).default_level(),
            Some(LevelFilter::WARN)
        );
        let directives = log_filter(Some("golden_ami_core=debug,error"));
        assert!(directives.would_enable("golden_ami_core::pacing", &Level::DEBUG));
        assert!(!directives.would_enable("aws_smithy_runtime", &Level::WARN));
        assert_eq!(
            log_filter(Some("=loud=")).default_level(),
            Some(LevelFilter::INFO)
        );
    }
}

//! The shared core of the golden AMI pipeline's steps: the state machine's JSON contract, the
//! typed step errors, configuration, AWS clients, and naming and tagging helpers.

pub mod automation;
pub mod budget;
pub mod config;
pub mod deps;
pub mod error;
pub mod golden;
pub mod image;
pub mod lock;
pub mod naming;
pub mod pacing;
pub mod pointer;
pub mod report;
pub mod runtime;
pub mod targets;
pub mod types;

#[cfg(feature = "testing")]
pub mod testing;

pub use automation::{get_automation, stop_automation};
pub use config::{Config, RetentionPolicy, ShareConfig};
pub use deps::{Clients, Deps, RegionClients, init_tracing, report};
pub use error::{StepError, classify_sdk_error, error_code};
pub use pointer::{
    PointerHistory, PointerValue, WriteOutcome, WriteSeen, await_pointer_write, classify_write,
    read_pointer, read_pointer_history,
};
pub use report::{CheckReport, UpdateSummary};
pub use runtime::{EventShape, parse_event};
pub use targets::{Encryption, FamilyTarget, RegionSpec, Targets};
pub use types::*;

//! The `main` of every step function: tracing, configuration, clients, the Lambda loop.
//!
//! Two boundaries are handled here, once for every function:
//! - The event. `lambda_runtime` would answer a payload that does not fit the input type with the
//!   error type `&lambda_runtime::deserializer::DeserializeError`, a Rust type name that no ASL
//!   can match. Every function instead takes the payload as JSON and turns a bad one into
//!   `InvalidInput`, naming the field that is missing or wrong and the shape it expects.
//! - The configuration. A function whose environment is incomplete cannot serve any event. It
//!   reports `ConfigError` (naming the variable) to the Runtime API's `/runtime/init/error`
//!   before it exits, so the invocation that started it fails with that name instead of a
//!   generic runtime exit error.

use std::future::Future;

use lambda_runtime::{Diagnostic, LambdaEvent, service_fn};
use lambda_runtime_api_client::body::Body;
use lambda_runtime_api_client::{PooledClient, build_request};
use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::deps::{Deps, init_tracing, report};
use crate::error::StepError;

/// The shape of an input type as a person reads it: what an InvalidInput message says to send.
pub trait EventShape {
    const SHAPE: &'static str;
}

/// The Runtime API path for errors that happen before the first event.
const INIT_ERROR_PATH: &str = "/2018-06-01/runtime/init/error";

/// Run a step: `handler` serves every event of this process with the same dependencies.
pub async fn run<I, O, F, Fut>(handler: F) -> Result<(), lambda_runtime::Error>
where
    I: DeserializeOwned + EventShape,
    O: Serialize,
    F: Fn(&'static Deps, I) -> Fut,
    Fut: Future<Output = Result<O, StepError>>,
{
    init_tracing();
    let deps: &'static Deps = match Deps::from_env().await {
        // Built once and kept for the life of the process, like the clients it holds.
        Ok(deps) => Box::leak(Box::new(deps)),
        Err(error) => {
            report_init_error(&error).await;
            return Err(Box::new(error));
        }
    };
    let handler = &handler;
    lambda_runtime::run(service_fn(
        move |event: LambdaEvent<serde_json::Value>| async move {
            let input = parse_event::<I>(event.payload).map_err(report)?;
            handler(deps, input).await.map_err(report)
        },
    ))
    .await
}

/// The payload as the step's input type, or InvalidInput naming what is wrong and the shape
/// expected.
pub fn parse_event<T: DeserializeOwned + EventShape>(
    payload: serde_json::Value,
) -> Result<T, StepError> {
    let kind = match &payload {
        serde_json::Value::Object(_) => None,
        serde_json::Value::Null => Some("null"),
        serde_json::Value::Array(_) => Some("a JSON array"),
        serde_json::Value::String(_) => Some("a JSON string"),
        serde_json::Value::Number(_) => Some("a JSON number"),
        serde_json::Value::Bool(_) => Some("a JSON boolean"),
    };
    if let Some(kind) = kind {
        return Err(StepError::InvalidInput(format!(
            "the event is {kind}, not an object; send {}",
            T::SHAPE
        )));
    }
    serde_path_to_error::deserialize(payload).map_err(|error| {
        let path = error.path().to_string();
        let place = if path == "." {
            "the event".to_string()
        } else {
            path
        };
        StepError::InvalidInput(format!("{place}: {}; send {}", error.inner(), T::SHAPE))
    })
}

/// Tell the Runtime API why this process cannot serve events (best effort: the process exits
/// either way, and the error is already in the log).
async fn report_init_error(error: &StepError) {
    let Ok(address) = std::env::var("AWS_LAMBDA_RUNTIME_API") else {
        // Not under a Lambda runtime (e.g. started by hand): the log line is all there is.
        return;
    };
    let result = async {
        let endpoint = address.try_into()?;
        let client = PooledClient::builder().with_endpoint(endpoint).build();
        let body = serde_json::to_vec(&Diagnostic::from(error.clone()))?;
        let request = build_request()
            .method("POST")
            .uri(INIT_ERROR_PATH)
            .header(
                "lambda-runtime-function-error-type",
                format!("Runtime.{}", error.error_type()),
            )
            .body(Body::from(std::borrow::Cow::<[u8]>::Owned(body)))?;
        let response = client.call(request).await?;
        if !response.status().is_success() {
            return Err(format!("the Runtime API answered {}", response.status()).into());
        }
        Ok::<(), lambda_runtime::Error>(())
    }
    .await;
    if let Err(failure) = result {
        tracing::error!(%failure, "could not report the configuration error to {INIT_ERROR_PATH}");
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::types::{CleanupInput, NotifyInput, StepInput};

    const GARBAGE: [&str; 5] = ["{}", r#"{"foo":1}"#, "[]", r#""""#, "null"];

    fn error_of<T: DeserializeOwned + EventShape + std::fmt::Debug>(body: &str) -> StepError {
        let value: serde_json::Value = serde_json::from_str(body).unwrap();
        parse_event::<T>(value).unwrap_err()
    }

    #[test]
    fn garbage_is_invalid_input_naming_the_problem_and_the_shape() {
        for body in GARBAGE {
            for (error, shape) in [
                (error_of::<StepInput>(body), StepInput::SHAPE),
                (error_of::<NotifyInput>(body), NotifyInput::SHAPE),
                (error_of::<CleanupInput>(body), CleanupInput::SHAPE),
            ] {
                assert_eq!(error.error_type(), "InvalidInput", "{body}: {error}");
                let message = error.to_string();
                assert!(message.ends_with(shape), "{body}: {message}");
                let names_problem = match body {
                    "[]" => message.contains("a JSON array"),
                    r#""""# => message.contains("a JSON string"),
                    "null" => message.contains("is null"),
                    _ => message.contains("missing field `context`"),
                };
                assert!(names_problem, "{body}: {message}");
            }
        }
    }

    #[test]
    fn a_step_event_sent_to_notify_or_cleanup_names_their_own_field() {
        let step = r#"{"context": {"executionId": "arn:aws:states:eu-west-1:111122223333:execution:p:r", "startedAt": "2026-12-01T08:00:00Z"}, "state": {}}"#;
        let notify = error_of::<NotifyInput>(step).to_string();
        assert!(notify.contains("missing field `event`"), "{notify}");
        let cleanup = error_of::<CleanupInput>(step).to_string();
        assert!(cleanup.contains("missing field `mode`"), "{cleanup}");
    }

    #[test]
    fn a_wrong_nested_field_is_named_by_its_path() {
        let body = r#"{"context": {"executionId": "x", "startedAt": "2026-12-01T08:00:00Z"}, "state": {"bake": {"automationExecutionId": 7}}}"#;
        let message = error_of::<StepInput>(body).to_string();
        assert!(
            message.starts_with("invalid input: state.bake.automationExecutionId: invalid type"),
            "{message}"
        );
    }

    #[test]
    fn a_well_formed_event_parses() {
        let body: serde_json::Value = serde_json::from_str(
            r#"{"context": {"executionId": "x", "startedAt": "2026-12-01T08:00:00Z"}, "event": "STARTED"}"#,
        )
        .unwrap();
        let input = parse_event::<NotifyInput>(body).unwrap();
        assert_eq!(input.event.as_str(), "STARTED");
    }
}

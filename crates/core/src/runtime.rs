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
        let serde_words = error.inner().to_string();
        let words = json_words(&serde_words).unwrap_or(serde_words);
        StepError::InvalidInput(format!("{place}: {words}; send {}", T::SHAPE))
    })
}

/// serde's words for a value of the wrong type name Rust types ("invalid type: string \"x\",
/// expected struct FamilyTarget", "expected u64", "expected a sequence"); the person who reads
/// them writes JSON. Say which JSON the field takes and which it got, or None for a message
/// that is not about a type (a missing field, an unknown variant: serde's words are plain).
fn json_words(message: &str) -> Option<String> {
    // serde takes an array for a struct, field by field: an empty or short one is "invalid
    // length N, expected struct X with M elements". Nobody sends a struct as an array.
    if let Some(rest) = message.strip_prefix("invalid length ") {
        let name = rest.split_once(", expected struct ")?.1.split(' ').next()?;
        return Some(format!(
            "expected {}, found an array",
            expected_words(&format!("struct {name}"))?
        ));
    }
    let rest = message
        .strip_prefix("invalid type: ")
        .or_else(|| message.strip_prefix("invalid value: "))?;
    // The expectation is a type name; the found value may be a string holding anything.
    let (found, expected) = rest.rsplit_once(", expected ")?;
    Some(format!(
        "expected {}, found {}",
        expected_words(expected)?,
        found_words(found)
    ))
}

/// The JSON a Rust expectation takes.
fn expected_words(expected: &str) -> Option<String> {
    let words = match expected {
        "a sequence" => "an array",
        "a map" => "an object",
        "a string" | "a borrowed string" | "a character" => "a string",
        // A unit-variant enum from anything but a string (serde_json's Value deserializer).
        "string or map" => "a string (one of the names in the shape below)",
        "a boolean" => "true or false",
        "u8" | "u16" | "u32" | "u64" | "u128" | "usize" => "a whole number, 0 or more",
        "i8" | "i16" | "i32" | "i64" | "i128" | "isize" => "a whole number",
        "f32" | "f64" => "a number",
        other if other.starts_with("a tuple") || other.starts_with("tuple struct ") => "an array",
        other => {
            let name = other.strip_prefix("struct ")?;
            return Some(match object_words(name) {
                Some(what) => format!("an object ({what})"),
                None => "an object".to_string(),
            });
        }
    };
    Some(words.to_string())
}

/// What an input's objects are, in the words of the state machine and its documents.
fn object_words(rust_name: &str) -> Option<&'static str> {
    Some(match rust_name {
        "ExecutionContext" => "the execution context: executionId and startedAt",
        "PipelineState" => "the state of the run, a family or a region",
        "FamilyTarget" => "a family of the targets document",
        "RegionTarget" => "a region of the family, with its pointer as the run read it",
        "Plan" => "PlanRun's result",
        "Pin" => "a pin: family, amiId, region, pinnedBy, pinnedAt",
        "LockHolder" => "the run lock's holder: executionId and expires",
        "LockRelease" => "ReleaseLock's result",
        "CurrentImage" => "ReadCurrentAmi's result",
        "BakeStarted" => "StartBake's result",
        "BakeStatus" => "CheckBake's result",
        "CopyStarted" => "CopyImage's result",
        "CopyStatus" => "CheckCopy's result",
        "ShareResult" => "ShareImage's result",
        "VerifyResult" => "VerifyImage's result",
        "TestStarted" => "StartTest's result",
        "TestStatus" => "CheckTest's result",
        "PublishResult" => "PublishPointer's result",
        "ApprovalDecision" => "AwaitApproval's result: approvedBy and approvedAt",
        "CleanupResult" => "Cleanup's result",
        "RetainResult" => "Retain's result",
        "Failure" => "the failure path's record: the state that failed and its error",
        "CaughtError" => "a Catch's Error and Cause",
        "UpdateSummary" => "the bake's update report",
        "Detail" => "the event's detail: the execution's status change",
        _ => return None,
    })
}

/// The JSON serde found, from its `Unexpected` words.
fn found_words(found: &str) -> String {
    if found.starts_with("string ") {
        return "a string".to_string();
    }
    for number in ["integer ", "floating point "] {
        if let Some(value) = found.strip_prefix(number) {
            return format!("the number {}", value.trim_matches('`'));
        }
    }
    match found {
        "boolean `true`" => "true".to_string(),
        "boolean `false`" => "false".to_string(),
        "sequence" => "an array".to_string(),
        "map" => "an object".to_string(),
        "null" | "unit value" => "null".to_string(),
        other => other.to_string(),
    }
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
            message.starts_with(
                "invalid input: state.bake.automationExecutionId: expected a string, found the number 7; send "
            ),
            "{message}"
        );
    }

    const CONTEXT: &str = r#""context": {"executionId": "x", "startedAt": "2026-12-01T08:00:00Z"}"#;

    /// The message for `state` = `state_json` (after the path), for StepInput.
    fn nested(state_json: &str) -> String {
        let body = format!(r#"{{{CONTEXT}, "state": {state_json}}}"#);
        let message = error_of::<StepInput>(&body).to_string();
        let words = message
            .strip_prefix("invalid input: ")
            .and_then(|m| m.split_once("; send "))
            .map(|(words, _)| words.to_string());
        words.unwrap_or(message)
    }

    #[test]
    fn a_nested_wrong_type_says_the_path_and_the_json_expected_not_rust_types() {
        for (state, words) in [
            (
                r#"{"family": "al2023"}"#,
                "state.family: expected an object (a family of the targets document), found a string",
            ),
            (
                r#"{"regions": {"region": "eu-west-1"}}"#,
                "state.regions: expected an array, found an object",
            ),
            (
                r#"{"plan": {"families": [], "maxConcurrency": "two", "targetsVersion": 1}}"#,
                "state.plan.maxConcurrency: expected a whole number, 0 or more, found a string",
            ),
            (
                r#"{"plan": {"families": [], "maxConcurrency": -1, "targetsVersion": 1}}"#,
                "state.plan.maxConcurrency: expected a whole number, 0 or more, found the number -1",
            ),
            (
                r#"{"plan": {"families": [], "maxConcurrency": 1.5, "targetsVersion": 1}}"#,
                "state.plan.maxConcurrency: expected a whole number, 0 or more, found the number 1.5",
            ),
            (
                r#"{"verified": "yes"}"#,
                "state.verified: expected true or false, found a string",
            ),
            (
                r#"{"families": [{"outcome": 3}]}"#,
                "state.families[0].outcome: expected a string (one of the names in the shape below), found the number 3",
            ),
            (
                r#"{"regions": [{"target": []}]}"#,
                "state.regions[0].target: expected an object (a region of the family, with its pointer as the run read it), found an array",
            ),
            (
                r#"{"error": {"Error": true}}"#,
                "state.error.Error: expected a string, found true",
            ),
            (
                r#"{"approval": "yes"}"#,
                "state.approval: expected an object (AwaitApproval's result: approvedBy and approvedAt), found a string",
            ),
            (
                r#""x""#,
                "state: expected an object (the state of the run, a family or a region), found a string",
            ),
        ] {
            let message = nested(state);
            assert_eq!(message, words, "{state}");
            for rust in ["struct", "sequence", "u32", "invalid type", "boolean"] {
                assert!(!message.contains(rust), "{state}: {message}");
            }
        }
    }

    #[test]
    fn every_object_of_the_state_is_described_in_its_own_words() {
        // A field renamed or added without words would fall back to a bare "an object".
        for key in [
            "plan",
            "family",
            "target",
            "current",
            "bake",
            "bakeStatus",
            "copy",
            "copyStatus",
            "share",
            "verify",
            "test",
            "testStatus",
            "publish",
            "approval",
            "cleanup",
            "retention",
            "failure",
            "error",
            "cleanupError",
            "lock",
        ] {
            let message = nested(&format!(r#"{{"{key}": 1}}"#));
            assert!(
                message.starts_with(&format!("state.{key}: expected an object (")),
                "{message}"
            );
        }
        let context = error_of::<NotifyInput>(r#"{"context": [], "event": "STARTED"}"#).to_string();
        assert!(
            context.contains("context: expected an object (the execution context: executionId and startedAt), found an array"),
            "{context}"
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

//! PublishPointer: move the pointer to the verified golden image - the one change consumers see.
//!
//! It runs only after VerifyImage and the boot test passed (the state machine's order, and this
//! step checks both results itself). It refuses to overwrite a pointer that moved during the run (a
//! manual pin or rollback), and a retry after a lost response recognises its own write.

use aws_sdk_ssm::types::ParameterType;
use golden_ami_core::{
    Deps, PublishResult, StepError, StepInput, classify_sdk_error, read_pointer,
};

pub async fn handler(deps: &Deps, input: StepInput) -> Result<PublishResult, StepError> {
    let new_ami_id = input.state.tested_golden_image()?.to_string();
    let current = input.state.require_current()?;
    let parameter = &deps.config.pointer_parameter_name;
    let (value, version) = read(deps, parameter).await?;
    match decide(
        current.parameter_version,
        &current.ami_id,
        &new_ami_id,
        &value,
        version,
    ) {
        Decision::AlreadyPublished => {
            tracing::info!(%parameter, version, "pointer already holds the new image (retried step)");
            return Ok(PublishResult {
                parameter_name: parameter.clone(),
                version,
                previous_ami_id: current.ami_id.clone(),
                new_ami_id,
            });
        }
        Decision::Refuse => {
            return Err(StepError::PointerChangedConcurrently {
                parameter: parameter.clone(),
                expected: current.parameter_version,
                found: version,
                found_value: value,
            });
        }
        Decision::Publish => {}
    }
    let output = deps
        .clients
        .ssm
        .put_parameter()
        .name(parameter)
        .value(&new_ami_id)
        .r#type(ParameterType::String)
        .data_type("aws:ec2:image")
        .overwrite(true)
        .description(format!(
            "Golden AMI, patched from {} by {}",
            current.ami_id, input.context.execution_id
        ))
        .send()
        .await
        .map_err(|error| classify_sdk_error("ssm:PutParameter", error))?;
    // Read back: an aws:ec2:image value is validated by SSM, and a race with a manual write in
    // the moment between the check and the put must not go unnoticed.
    let (stored, stored_version) = read(deps, parameter).await?;
    if stored != new_ami_id {
        return Err(StepError::PointerChangedConcurrently {
            parameter: parameter.clone(),
            expected: output.version(),
            found: stored_version,
            found_value: stored,
        });
    }
    tracing::info!(%parameter, version = output.version(), %new_ami_id, "pointer published");
    Ok(PublishResult {
        parameter_name: parameter.clone(),
        version: output.version(),
        previous_ami_id: current.ami_id.clone(),
        new_ami_id,
    })
}

/// What to do given the pointer as read at the start and as it is now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decision {
    Publish,
    /// A retry after our own PutParameter went through.
    AlreadyPublished,
    /// Someone else moved the pointer during the run.
    Refuse,
}

pub fn decide(
    read_version: i64,
    read_value: &str,
    new_ami_id: &str,
    now_value: &str,
    now_version: i64,
) -> Decision {
    if now_version == read_version && now_value == read_value {
        Decision::Publish
    } else if now_value == new_ami_id && now_version == read_version + 1 {
        Decision::AlreadyPublished
    } else {
        Decision::Refuse
    }
}

async fn read(deps: &Deps, parameter: &str) -> Result<(String, i64), StepError> {
    let pointer = read_pointer(&deps.clients.ssm, parameter).await?;
    Ok((pointer.value, pointer.version))
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicUsize, Ordering};

    use aws_sdk_ssm::Client as Ssm;
    use aws_sdk_ssm::operation::get_parameter::GetParameterOutput;
    use aws_sdk_ssm::operation::put_parameter::PutParameterOutput;
    use aws_sdk_ssm::types::Parameter;
    use golden_ami_core::testing::{self, MockClients, Rule, mock};

    use super::*;

    const EVENT: &str = include_str!("../../../events/publish-pointer/ok.json");
    const UNVERIFIED: &str = include_str!("../../../events/publish-pointer/unverified.json");
    const UNTESTED: &str = include_str!("../../../events/publish-pointer/untested.json");
    const OLD: &str = "ami-0123456789abcdef0";
    const NEW: &str = "ami-0ccccccccccccccc0";

    fn parameter(value: &str, version: i64) -> GetParameterOutput {
        GetParameterOutput::builder()
            .parameter(
                Parameter::builder()
                    .name(testing::POINTER)
                    .value(value)
                    .version(version)
                    .build(),
            )
            .build()
    }

    /// GetParameter answers `before` until PutParameter ran, then `after`.
    fn pointer(
        before: (&'static str, i64),
        after: (&'static str, i64),
        put_calls: Arc<AtomicUsize>,
    ) -> Rule {
        mock!(Ssm::get_parameter)
            .match_requests(|request| request.name() == Some(testing::POINTER))
            .then_output(move || {
                if put_calls.load(Ordering::SeqCst) == 0 {
                    parameter(before.0, before.1)
                } else {
                    parameter(after.0, after.1)
                }
            })
    }

    fn put(calls: Arc<AtomicUsize>) -> Rule {
        mock!(Ssm::put_parameter)
            .match_requests(|request| {
                request.name() == Some(testing::POINTER)
                    && request.value() == Some(NEW)
                    && request.data_type() == Some("aws:ec2:image")
                    && request.overwrite() == Some(true)
                    && request.r#type() == Some(&ParameterType::String)
            })
            .then_output(move || {
                calls.fetch_add(1, Ordering::SeqCst);
                PutParameterOutput::builder().version(8).build()
            })
    }

    #[tokio::test]
    async fn publishes_the_verified_copy_as_an_image_parameter() {
        let calls = Arc::new(AtomicUsize::new(0));
        let get = pointer((OLD, 7), (NEW, 8), calls.clone());
        let put = put(calls.clone());
        let deps = MockClients {
            ssm: vec![&get, &put],
            ..Default::default()
        }
        .deps();
        let result = handler(&deps, testing::event(EVENT)).await.unwrap();
        assert_eq!(
            result,
            PublishResult {
                parameter_name: testing::POINTER.into(),
                version: 8,
                previous_ami_id: OLD.into(),
                new_ami_id: NEW.into(),
            }
        );
        assert_eq!(put.num_calls(), 1);
        assert_eq!(get.num_calls(), 2);
    }

    #[tokio::test]
    async fn a_pointer_moved_during_the_run_is_not_overwritten() {
        let calls = Arc::new(AtomicUsize::new(0));
        let get = pointer(("ami-0dddddddddddddddd", 8), ("unused", 0), calls.clone());
        let put = put(calls);
        let deps = MockClients {
            ssm: vec![&get, &put],
            ..Default::default()
        }
        .deps();
        let error = handler(&deps, testing::event(EVENT)).await.unwrap_err();
        assert_eq!(error.error_type(), "PointerChangedConcurrently");
        assert!(
            error
                .to_string()
                .contains("version 8 = ami-0dddddddddddddddd"),
            "{error}"
        );
        assert_eq!(put.num_calls(), 0);
    }

    #[tokio::test]
    async fn a_retry_after_its_own_write_does_not_write_again() {
        let calls = Arc::new(AtomicUsize::new(0));
        let get = pointer((NEW, 8), ("unused", 0), calls.clone());
        let put = put(calls);
        let deps = MockClients {
            ssm: vec![&get, &put],
            ..Default::default()
        }
        .deps();
        let result = handler(&deps, testing::event(EVENT)).await.unwrap();
        assert_eq!(result.version, 8);
        assert_eq!(put.num_calls(), 0);
    }

    #[tokio::test]
    async fn an_unverified_image_is_never_published() {
        let calls = Arc::new(AtomicUsize::new(0));
        let get = pointer((OLD, 7), (NEW, 8), calls.clone());
        let put = put(calls);
        let deps = MockClients {
            ssm: vec![&get, &put],
            ..Default::default()
        }
        .deps();
        let error = handler(&deps, testing::event(UNVERIFIED))
            .await
            .unwrap_err();
        assert_eq!(error.error_type(), "InvalidInput");
        assert!(error.to_string().contains("never tested nor published"));
        assert_eq!((get.num_calls(), put.num_calls()), (0, 0));
    }

    #[tokio::test]
    async fn an_image_without_a_passed_boot_test_is_never_published() {
        let calls = Arc::new(AtomicUsize::new(0));
        let get = pointer((OLD, 7), (NEW, 8), calls.clone());
        let put = put(calls);
        let deps = MockClients {
            ssm: vec![&get, &put],
            ..Default::default()
        }
        .deps();
        let error = handler(&deps, testing::event(UNTESTED)).await.unwrap_err();
        assert_eq!(error.error_type(), "InvalidInput");
        assert!(error.to_string().contains("nobody has booted"), "{error}");
        assert_eq!((get.num_calls(), put.num_calls()), (0, 0));
    }

    #[tokio::test]
    async fn throttled_put_is_retryable() {
        let calls = Arc::new(AtomicUsize::new(0));
        let get = pointer((OLD, 7), (NEW, 8), calls);
        let put = mock!(Ssm::put_parameter).then_http_response(|| testing::http_status(503));
        let deps = MockClients {
            ssm: vec![&get, &put],
            ..Default::default()
        }
        .deps();
        let error = handler(&deps, testing::event(EVENT)).await.unwrap_err();
        assert_eq!(error.error_type(), "Throttled");
    }

    #[test]
    fn decisions() {
        assert_eq!(decide(7, OLD, NEW, OLD, 7), Decision::Publish);
        assert_eq!(decide(7, OLD, NEW, NEW, 8), Decision::AlreadyPublished);
        assert_eq!(decide(7, OLD, NEW, OLD, 8), Decision::Refuse);
        assert_eq!(decide(7, OLD, NEW, NEW, 9), Decision::Refuse);
        assert_eq!(
            decide(7, OLD, NEW, "ami-0eeeeeeeeeeeeeeee", 7),
            Decision::Refuse
        );
    }
}

//! Removing the run lock without ever removing a lock that is not the one we judged.
//!
//! SSM has no conditional delete: DeleteParameter removes whatever the name holds at that
//! moment. Reading the lock, judging it (stale, or ours) and then deleting it leaves a window in
//! which another run may have replaced it: two runs that both found the same stale lock both
//! deleted "it", the second delete (an SDK retry after a throttle is enough) removed the lock the
//! first had just created, and both runs worked.
//!
//! The protocol: a lock value is removed only by whoever first creates its removal marker, a
//! parameter `<lock>-removal/<uuid of the value>-<generation>` created with Overwrite=false
//! (SSM's one atomic operation), holding the remover's execution ARN. The marker's holder reads
//! the lock again; if it still holds the value it judged (same value, same version), it deletes
//! it. Nothing else writes the lock parameter: runs create it with Overwrite=false, and every
//! delete goes through here. So between that read and the delete the value cannot change (only
//! the marker's holder may remove it, and nothing overwrites it), and a lock value never comes
//! back once removed (it names one execution and its expiry; that execution's PlanRun does not
//! run again). No window is left:
//! - two runs breaking one stale lock: one creates the marker and deletes it; the other finds the
//!   marker taken and looks at the lock again (the winner's, or none);
//! - a late remover that judged a value already gone creates a fresh marker, reads the lock,
//!   finds another value, and removes only its own marker;
//! - the delete itself is sent without the SDK's retries: a retried DeleteParameter whose first
//!   attempt did remove the lock would remove the next run's. After an error the lock is read
//!   again and deleted again only if it still holds the value (only we can remove it);
//! - a remover that died holding a marker (an invocation ended between the marker and the
//!   delete) would keep the lock forever: a marker older than [`MARKER_ABANDONED_AFTER`] (longer
//!   than any Lambda invocation can run, so its creator is gone) is passed over, and the next
//!   generation's marker is created, again with Overwrite=false. The same execution retried
//!   within that time takes up its own marker.

use std::time::Duration;

use aws_sdk_ssm::types::ParameterType;
use aws_smithy_types::retry::RetryConfig;
use time::OffsetDateTime;
use uuid::Uuid;

use crate::{Deps, StepError, classify_sdk_error};

/// Longer than Lambda's longest invocation (15 minutes): a marker this old has no living creator.
pub const MARKER_ABANDONED_AFTER: Duration = Duration::from_secs(20 * 60);

/// How many abandoned markers of one lock value are passed over before giving up.
const GENERATIONS: u32 = 4;

/// How many times a failed delete of the lock is tried again (each after reading it).
const DELETE_ATTEMPTS: u32 = 4;

const MARKER_NAMESPACE: Uuid = Uuid::from_u128(0x1c3e_77a2_4b0d_4f6e_8d2a_5e61_0b9f_c4d3);

/// The lock as one read saw it: its exact value and SSM version.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SeenLock {
    pub value: String,
    pub version: i64,
}

/// The removal marker of a lock value, one name per generation. Letters, digits, `-` and `/`
/// only, whatever the value holds.
pub fn marker_name(lock_name: &str, value: &str, generation: u32) -> String {
    let id = Uuid::new_v5(&MARKER_NAMESPACE, value.as_bytes()).simple();
    format!("{lock_name}-removal/{id}-{generation}")
}

/// What an existing marker means for a remover.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Marker {
    /// This remover created it (an earlier attempt of the same execution): go on.
    Ours,
    /// Its creator cannot still be running: try the next generation.
    Abandoned,
    /// Another remover holds it: leave the lock to it.
    Taken,
}

pub fn judge_marker(
    holder: &str,
    modified: Option<OffsetDateTime>,
    remover: &str,
    now: OffsetDateTime,
) -> Marker {
    let abandoned = modified.is_some_and(|at| now - at > MARKER_ABANDONED_AFTER);
    match (abandoned, holder == remover) {
        (true, _) => Marker::Abandoned,
        (false, true) => Marker::Ours,
        (false, false) => Marker::Taken,
    }
}

/// The lock parameter's value and version, or None if there is no lock.
pub async fn read(deps: &Deps) -> Result<Option<SeenLock>, StepError> {
    // Boxed: callers (the reaper) await this deep inside their own futures.
    Box::pin(read_parameter(deps, &deps.config.lock_parameter_name))
        .await
        .map(|found| found.map(|(seen, _)| seen))
}

async fn read_parameter(
    deps: &Deps,
    name: &str,
) -> Result<Option<(SeenLock, Option<OffsetDateTime>)>, StepError> {
    match deps.clients.ssm().get_parameter().name(name).send().await {
        Ok(output) => Ok(output.parameter().map(|parameter| {
            let modified = parameter
                .last_modified_date()
                .and_then(|at| OffsetDateTime::from_unix_timestamp(at.secs()).ok());
            (
                SeenLock {
                    value: parameter.value().unwrap_or_default().to_string(),
                    version: parameter.version(),
                },
                modified,
            )
        })),
        Err(error)
            if error
                .as_service_error()
                .is_some_and(|service| service.is_parameter_not_found()) =>
        {
            Ok(None)
        }
        Err(error) => Err(classify_sdk_error("ssm:GetParameter", error)),
    }
}

/// Remove the lock if it still holds `seen`, on behalf of the execution `remover`. True if this
/// call (or an earlier attempt of the same remover) removed it; false if it holds something
/// else now, or another remover is removing it: read it again to see who holds it.
pub async fn remove(deps: &Deps, seen: &SeenLock, remover: &str) -> Result<bool, StepError> {
    let lock_name = &deps.config.lock_parameter_name;
    for generation in 0..GENERATIONS {
        let marker = marker_name(lock_name, &seen.value, generation);
        if !create_marker(deps, &marker, remover).await? {
            let Some((holder, modified)) = read_parameter(deps, &marker).await? else {
                // Its holder finished (or found the value gone) and removed it.
                return Ok(false);
            };
            match judge_marker(&holder.value, modified, remover, deps.now()) {
                Marker::Ours => {}
                Marker::Abandoned => continue,
                Marker::Taken => return Ok(false),
            }
        }
        let removed = delete_if_still(deps, seen).await?;
        if let Err(error) = delete(deps, &marker, "ssm:DeleteParameter").await {
            // Harmless if left: the value it names is gone for good, or was never removed.
            tracing::warn!(%error, marker, "could not remove the lock's removal marker");
        }
        return Ok(removed);
    }
    Ok(false)
}

async fn create_marker(deps: &Deps, marker: &str, remover: &str) -> Result<bool, StepError> {
    create_if_absent(
        deps,
        marker,
        remover,
        "golden-ami-pipeline: who removes a run lock value (only its creator may)",
    )
    .await
}

/// PutParameter with Overwrite=false: true if this call created the parameter, false if it
/// existed already (the run lock and its removal markers are taken this way).
pub async fn create_if_absent(
    deps: &Deps,
    name: &str,
    value: &str,
    description: &str,
) -> Result<bool, StepError> {
    match deps
        .clients
        .ssm()
        .put_parameter()
        .name(name)
        .value(value)
        .r#type(ParameterType::String)
        .overwrite(false)
        .description(description)
        .send()
        .await
    {
        Ok(_) => Ok(true),
        Err(error)
            if error
                .as_service_error()
                .is_some_and(|service| service.is_parameter_already_exists()) =>
        {
            Ok(false)
        }
        Err(error) => Err(classify_sdk_error("ssm:PutParameter", error)),
    }
}

/// Holding the marker: delete the lock while it still holds `seen`. True if it was removed.
async fn delete_if_still(deps: &Deps, seen: &SeenLock) -> Result<bool, StepError> {
    let mut last_error = None;
    for _ in 0..DELETE_ATTEMPTS {
        if read(deps).await?.as_ref() != Some(seen) {
            // Gone (an earlier attempt of ours went through) or never ours to remove.
            return Ok(last_error.is_some());
        }
        match delete(
            deps,
            &deps.config.lock_parameter_name,
            "ssm:DeleteParameter",
        )
        .await
        {
            Ok(()) => return Ok(true),
            // A throttle, a 5xx or a lost response: the delete may have gone through, so read
            // again before another attempt.
            Err(error) if error.is_retryable() => {
                tracing::warn!(%error, "could not delete the run lock; reading it again");
                last_error = Some(error);
            }
            // Refused (access denied, ...): trying again changes nothing.
            Err(error) => return Err(error),
        }
    }
    Err(last_error.unwrap_or_else(|| StepError::Throttled {
        operation: "ssm:DeleteParameter".into(),
        message: "the run lock could not be removed".into(),
    }))
}

/// DeleteParameter without the SDK's retries: the caller decides, after reading, whether a
/// failed attempt is tried again. A missing parameter is no error.
async fn delete(deps: &Deps, name: &str, operation: &str) -> Result<(), StepError> {
    match deps
        .clients
        .ssm()
        .delete_parameter()
        .name(name)
        .customize()
        .config_override(
            aws_sdk_ssm::config::Builder::default().retry_config(RetryConfig::disabled()),
        )
        .send()
        .await
    {
        Ok(_) => Ok(()),
        Err(error)
            if error
                .as_service_error()
                .is_some_and(|service| service.is_parameter_not_found()) =>
        {
            Ok(())
        }
        Err(error) => Err(classify_sdk_error(operation, error)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(seconds: i64) -> OffsetDateTime {
        OffsetDateTime::from_unix_timestamp(1_800_000_000 + seconds)
            .unwrap_or(OffsetDateTime::UNIX_EPOCH)
    }

    #[test]
    fn a_marker_is_ours_taken_or_abandoned() {
        let now = at(0);
        assert_eq!(judge_marker("me", Some(at(-60)), "me", now), Marker::Ours);
        assert_eq!(
            judge_marker("other", Some(at(-60)), "me", now),
            Marker::Taken
        );
        // No date (SSM always gives one): never taken for abandoned.
        assert_eq!(judge_marker("other", None, "me", now), Marker::Taken);
        assert_eq!(
            judge_marker("other", Some(at(-20 * 60 - 1)), "me", now),
            Marker::Abandoned
        );
        // Our own, but so old that another remover may have passed it over: not ours any more.
        assert_eq!(
            judge_marker("me", Some(at(-20 * 60 - 1)), "me", now),
            Marker::Abandoned
        );
        assert_eq!(
            judge_marker("other", Some(at(-20 * 60)), "me", now),
            Marker::Taken
        );
    }

    #[test]
    fn a_marker_names_one_value_and_one_generation_in_ssm_s_alphabet() {
        let a = marker_name(
            "/golden-ami-pipeline/run-lock",
            r#"{"executionId": "x:y"}"#,
            0,
        );
        let b = marker_name(
            "/golden-ami-pipeline/run-lock",
            r#"{"executionId": "x:z"}"#,
            0,
        );
        assert!(
            a.starts_with("/golden-ami-pipeline/run-lock-removal/") && a.ends_with("-0"),
            "{a}"
        );
        assert_ne!(a, b);
        assert_ne!(
            a,
            marker_name(
                "/golden-ami-pipeline/run-lock",
                r#"{"executionId": "x:y"}"#,
                1
            )
        );
        assert!(
            a.chars()
                .all(|c| c.is_ascii_alphanumeric() || "-/".contains(c)),
            "{a}"
        );
    }
}

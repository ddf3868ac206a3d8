//! Polling by expectation: how long the bake, the copy and the boot test took in the family's
//! last runs sizes the waits of this run's polling loops.
//!
//! A loop without history polls at the stack's interval from the start (BakePollSeconds,
//! CopyPollSeconds, TestPollSeconds): a 40-minute bake at 120 s is 20 polls (60 transitions) and
//! notices the end 60 s late on average. With history, the first wait is most of the median
//! duration (FIRST_WAIT_PERCENT), then the loop polls at a short interval (the median /
//! POLLS_PER_MEDIAN, at least MIN_POLL_SECONDS, at most the stack's interval): the same bake is 7
//! polls and noticed 30 s late on average. The first wait never passes the deadline, so a slow
//! run still reaches its typed timeout.
//!
//! The history is one parameter per family, DURATIONS_PATH/<family>, written by Cleanup after
//! the family published (the last HISTORY runs of each loop, in seconds). Reading or writing it
//! never fails a run: without it a loop polls as it always did.

use std::time::Duration;

use serde::{Deserialize, Serialize};

/// How many past runs each loop remembers.
pub const HISTORY: usize = 5;
/// The first wait is this share of the median duration.
pub const FIRST_WAIT_PERCENT: u64 = 85;
/// After the first wait, about this many polls fit in one median duration.
pub const POLLS_PER_MEDIAN: u64 = 40;
/// The shortest poll interval after the first wait.
pub const MIN_POLL_SECONDS: u64 = 15;

/// What the family's last runs took, in seconds, oldest first.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Durations {
    #[serde(default)]
    pub bake: Vec<u64>,
    /// The slowest region's copy of each run.
    #[serde(default)]
    pub copy: Vec<u64>,
    #[serde(default)]
    pub test: Vec<u64>,
}

impl Durations {
    /// Add one run's measurements, keeping the last HISTORY of each.
    pub fn record(&mut self, bake: Option<u64>, copy: Option<u64>, test: Option<u64>) {
        for (list, value) in [
            (&mut self.bake, bake),
            (&mut self.copy, copy),
            (&mut self.test, test),
        ] {
            if let Some(value) = value {
                list.push(value);
                let extra = list.len().saturating_sub(HISTORY);
                list.drain(..extra);
            }
        }
    }
}

/// How a polling loop waits: first, then between two polls.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Pace {
    pub first_wait_seconds: u64,
    pub poll_seconds: u64,
}

/// The median of the measured durations (the lower middle one of an even count).
pub fn median(history: &[u64]) -> Option<u64> {
    let mut sorted = history.to_vec();
    sorted.sort_unstable();
    sorted.get(sorted.len().checked_sub(1)? / 2).copied()
}

/// The loop's waits from its history, the stack's interval and the time left to its deadline.
pub fn pace(history: &[u64], configured_poll: u64, until_deadline: Duration) -> Pace {
    let Some(median) = median(history).filter(|m| *m > 0) else {
        return Pace {
            first_wait_seconds: configured_poll,
            poll_seconds: configured_poll,
        };
    };
    let poll = (median / POLLS_PER_MEDIAN)
        .max(MIN_POLL_SECONDS)
        .min(configured_poll);
    let first = (median * FIRST_WAIT_PERCENT / 100)
        .max(poll)
        .min(until_deadline.as_secs().max(1));
    Pace {
        first_wait_seconds: first,
        poll_seconds: poll,
    }
}

/// The family's history parameter: DURATIONS_PATH/<family>.
pub fn parameter_name(durations_path: &str, family: &str) -> String {
    format!("{durations_path}/{family}")
}

/// The history of `family` at the stack's DURATIONS_PATH (see `read`).
pub async fn family_history(deps: &crate::Deps, family: &str) -> Durations {
    read(
        deps.clients.ssm(),
        &parameter_name(&deps.config.durations_path, family),
    )
    .await
}

/// The family's history, or none: a missing, unreadable or malformed parameter only means the
/// loops poll at the stack's intervals (it is logged).
pub async fn read(ssm: &aws_sdk_ssm::Client, name: &str) -> Durations {
    match ssm.get_parameter().name(name).send().await {
        Ok(output) => {
            let text = output
                .parameter()
                .and_then(|p| p.value())
                .unwrap_or_default();
            serde_json::from_str(text).unwrap_or_else(|error| {
                tracing::warn!(%name, %error, "the durations parameter is not a history: ignored");
                Durations::default()
            })
        }
        Err(error) => {
            if !error
                .as_service_error()
                .is_some_and(|e| e.is_parameter_not_found())
            {
                tracing::warn!(%name, error = crate::error_code(&error).unwrap_or("unknown"), "the durations parameter cannot be read: polling at the stack's intervals");
            }
            Durations::default()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const DEADLINE: Duration = Duration::from_secs(2 * 3600);

    #[test]
    fn without_history_a_loop_polls_at_the_stack_s_interval() {
        assert_eq!(
            pace(&[], 120, DEADLINE),
            Pace {
                first_wait_seconds: 120,
                poll_seconds: 120
            }
        );
        assert_eq!(pace(&[0], 60, DEADLINE).poll_seconds, 60);
    }

    #[test]
    fn a_40_minute_bake_and_a_15_minute_copy_wait_most_of_it_then_poll_short() {
        // bench/scale.py models the same figures.
        assert_eq!(
            pace(&[2300, 2400, 2500], 120, DEADLINE),
            Pace {
                first_wait_seconds: 2040,
                poll_seconds: 60
            }
        );
        assert_eq!(
            pace(&[900], 60, DEADLINE),
            Pace {
                first_wait_seconds: 765,
                poll_seconds: 22
            }
        );
    }

    #[test]
    fn the_first_wait_never_passes_the_deadline_and_polls_stay_in_bounds() {
        let late = pace(&[7200], 120, Duration::from_secs(600));
        assert_eq!(late.first_wait_seconds, 600);
        // A short history: at least MIN_POLL_SECONDS, never more than the stack's interval.
        assert_eq!(pace(&[60], 120, DEADLINE).poll_seconds, MIN_POLL_SECONDS);
        assert_eq!(pace(&[60], 120, DEADLINE).first_wait_seconds, 51);
        assert_eq!(pace(&[60], 10, DEADLINE).poll_seconds, 10);
        assert_eq!(pace(&[10_000], 120, DEADLINE).poll_seconds, 120);
    }

    #[test]
    fn the_median_resists_one_slow_run_and_history_keeps_the_last_five() {
        assert_eq!(median(&[2400, 2400, 9000]), Some(2400));
        assert_eq!(median(&[100, 200, 300, 400]), Some(200));
        assert_eq!(median(&[]), None);
        let mut durations = Durations::default();
        for run in 1..=7 {
            durations.record(Some(run), None, Some(run * 10));
        }
        assert_eq!(durations.bake, [3, 4, 5, 6, 7]);
        assert!(durations.copy.is_empty());
        assert_eq!(durations.test, [30, 40, 50, 60, 70]);
    }
}

//! What one run may hold on AWS: Step Functions ends an execution whose history reaches 25,000
//! events, or whose state (a state's input or output) passes 256 KiB, without any Catch, so
//! PlanRun refuses a targets document whose families x regions would reach either.
//!
//! The limits, as AWS documents them:
//! - <https://docs.aws.amazon.com/step-functions/latest/dg/service-quotas.html> ("Quotas related
//!   to state machine executions"): maximum execution history size, 25,000 events ("If the
//!   execution history reaches this quota, the execution will fail"); ("Quotas related to task
//!   executions"): maximum input or output size for a task, state, or execution, 256 KiB
//!   (262,144 bytes) of data as a UTF-8 encoded string.
//! - <https://docs.aws.amazon.com/step-functions/latest/dg/concepts-error-handling.html>:
//!   `States.DataLimitExceeded` (a state's output or its input after Parameters larger than the
//!   payload quota) is a terminal error that `States.ALL` does not catch. Either way the run ends
//!   outside its failure path: only the reaper cleans up after it.
//! - <https://docs.aws.amazon.com/step-functions/latest/apireference/API_HistoryEvent.html>: the
//!   history event types counted below.
//!
//! Events per state entered, the way the history writes them on the success path:
//! - a Task calling a function by its ARN (`Resource` = the function): TaskStateEntered,
//!   LambdaFunctionScheduled, LambdaFunctionStarted, LambdaFunctionSucceeded, TaskStateExited: 5;
//! - the callback Task (`lambda:invoke.waitForTaskToken`): TaskStateEntered, TaskScheduled,
//!   TaskStarted, TaskSubmitted, TaskSucceeded, TaskStateExited: 6;
//! - a Pass, Choice, Wait or Succeed state: its Entered and Exited: 2;
//! - a Map state: MapStateEntered, MapStateStarted, MapStateSucceeded, MapStateExited: 4, and
//!   MapIterationStarted and MapIterationSucceeded for each item: 2 (an inline Map's iterations
//!   write into the run's own history);
//! - the execution: ExecutionStarted, ExecutionSucceeded: 2.
//!
//! A polling loop is one Wait, one Check Task and one Choice per poll: 9 events. The worst case
//! polls every loop at the shortest interval the stack can poll at (polling by expectation,
//! `pacing.rs`, goes down to MIN_POLL_SECONDS, never above the stack's interval) until its
//! timeout, plus the poll past it. Not counted: retries of Throttled and Lambda service errors
//! (each adds a failed and a new scheduled, started attempt) and the failure path, which replaces
//! the states after a failure with fewer.
//!
//! The largest state is the run's after the family Map: the plan (every family with its
//! regions) and every family's result, which NotifyRun receives whole. A failed family keeps its
//! whole state (its regions' copies, shares and verifications included, for the notice and the
//! sweep); a published one only what the notice needs. The sizes per family and per region are
//! upper bounds measured on the local stack (bench/scale.py prints them) with room for the
//! longest values AWS returns.

use std::time::Duration;

use crate::config::Config;
use crate::error::StepError;
use crate::pacing::MIN_POLL_SECONDS;
use crate::targets::FamilyTarget;

/// Maximum execution history size (service quotas).
pub const HISTORY_EVENTS_LIMIT: u64 = 25_000;
/// Maximum input or output size of a state, in bytes (service quotas: 256 KiB).
pub const STATE_BYTES_LIMIT: u64 = 262_144;

pub const TASK_EVENTS: u64 = 5;
pub const CALLBACK_TASK_EVENTS: u64 = 6;
pub const PASS_EVENTS: u64 = 2;
pub const CHOICE_EVENTS: u64 = 2;
pub const WAIT_EVENTS: u64 = 2;
pub const SUCCEED_EVENTS: u64 = 2;
pub const MAP_EVENTS: u64 = 4;
pub const MAP_ITERATION_EVENTS: u64 = 2;
pub const EXECUTION_EVENTS: u64 = 2;

/// The states one level of the definition enters once on its success path, its polling loops
/// left out (tests/tests/budget.rs reads them from the definition).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Level {
    pub tasks: u64,
    pub passes: u64,
    pub choices: u64,
    pub maps: u64,
    pub succeeds: u64,
    /// Polling loops (Wait, Check, Done?) on the level's success path.
    pub loops: u64,
}

impl Level {
    pub const fn states(&self) -> u64 {
        self.tasks + self.passes + self.choices + self.maps + self.succeeds
    }

    pub const fn events(&self) -> u64 {
        self.tasks * TASK_EVENTS
            + self.passes * PASS_EVENTS
            + self.choices * CHOICE_EVENTS
            + self.maps * MAP_EVENTS
            + self.succeeds * SUCCEED_EVENTS
    }
}

/// The run: PlanRun, AnotherRunHoldsTheLock?, NotifyStart, ForEachFamily, ReleaseLock,
/// NotifyRun, RunFailed?, Succeeded.
pub const RUN: Level = Level {
    tasks: 4,
    passes: 0,
    choices: 2,
    maps: 1,
    succeeds: 1,
    loops: 0,
};

/// A family (an ungated one: NoApprovalNeeded): ReadCurrentAmi, StartBake, the bake loop,
/// CopyToRegions (+ Checked, Succeeded?), StartTest, the test loop, ApprovalRequired?,
/// NoApprovalNeeded, PublishPointers (+ Checked, Succeeded?), Cleanup, Retain, FamilyPublished.
pub const FAMILY: Level = Level {
    tasks: 5,
    passes: 4,
    choices: 3,
    maps: 2,
    succeeds: 0,
    loops: 2,
};

/// A region of a family, over both region Maps: CopyImage, the copy loop, ShareImage,
/// VerifyImage, RegionVerified; PublishPointer, PointerPublished.
pub const REGION: Level = Level {
    tasks: 4,
    passes: 2,
    choices: 0,
    maps: 0,
    succeeds: 0,
    loops: 1,
};

/// Each region is an iteration of CopyToRegions and of PublishPointers.
pub const REGION_MAPS: u64 = 2;

/// A gated family enters AwaitApproval (a callback Task) where an ungated one enters
/// NoApprovalNeeded (a Pass).
pub const GATE_EXTRA_EVENTS: u64 = CALLBACK_TASK_EVENTS - PASS_EVENTS;

/// One poll: the Wait, the Check Task, the Done? Choice.
pub const POLL_STATES: u64 = 3;
pub const POLL_EVENTS: u64 = WAIT_EVENTS + TASK_EVENTS + CHOICE_EVENTS;

/// How many times each loop checks (at least 1: the first check after the first wait).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Polls {
    pub bake: u64,
    pub copy: u64,
    pub test: u64,
}

/// What a family contributes to the model.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FamilyShape {
    pub regions: u64,
    pub gated: bool,
}

impl From<&FamilyTarget> for FamilyShape {
    fn from(family: &FamilyTarget) -> Self {
        Self {
            regions: family.regions.len() as u64,
            gated: family.approval.is_some(),
        }
    }
}

/// History events of a successful run of these families (the model).
pub fn history_events(families: &[FamilyShape], polls: Polls) -> u64 {
    let family_events =
        FAMILY.events() + MAP_ITERATION_EVENTS + POLL_EVENTS * (polls.bake + polls.test);
    let region_events =
        REGION.events() + REGION_MAPS * MAP_ITERATION_EVENTS + POLL_EVENTS * polls.copy;
    EXECUTION_EVENTS
        + RUN.events()
        + families
            .iter()
            .map(|family| {
                family_events
                    + if family.gated { GATE_EXTRA_EVENTS } else { 0 }
                    + family.regions * region_events
            })
            .sum::<u64>()
}

/// State transitions (states entered) of the same run: what the local runner counts.
pub fn transitions(families: &[FamilyShape], polls: Polls) -> u64 {
    let family_states = FAMILY.states() + POLL_STATES * (polls.bake + polls.test);
    let region_states = REGION.states() + POLL_STATES * polls.copy;
    RUN.states()
        + families
            .iter()
            .map(|family| family_states + family.regions * region_states)
            .sum::<u64>()
}

/// The run's state without families (context, plan fields, lock, notice), in bytes.
pub const RUN_BYTES: u64 = 2_048;
/// A family's part of the largest state besides its regions: its plan entry and its result.
/// Measured on the local 2 x 2 run (bench/scale.py): 302 bytes of plan, 2,856 of a published
/// result, 522 more that a failed family keeps (its bake and boot test); room for the bake's
/// update summary (up to 1,800 bytes), a failure's cause twice (the caught error and the
/// failure) and a longer retention report.
pub const FAMILY_BYTES: u64 = 12_288;
/// A region's part of a family: measured 116 bytes of plan, 920 of its pointer's result, 1,516
/// more that a failed family keeps (its copy, share and verification); room for its pointer as
/// read, its retention report and a region failure's cause.
pub const REGION_BYTES: u64 = 4_096;

/// The largest state's size of a run of these families (the model), in bytes.
pub fn state_bytes(families: &[FamilyShape]) -> u64 {
    RUN_BYTES
        + families
            .iter()
            .map(|family| FAMILY_BYTES + family.regions * REGION_BYTES)
            .sum::<u64>()
}

/// One polling loop of the stack: its timeout and the shortest interval it polls at.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Loop {
    pub timeout: Duration,
    pub shortest_interval_seconds: u64,
}

impl Loop {
    /// Polling by expectation may poll at MIN_POLL_SECONDS, never above the stack's interval.
    pub fn new(timeout: Duration, configured_poll_seconds: u64) -> Self {
        Self {
            timeout,
            shortest_interval_seconds: configured_poll_seconds.min(MIN_POLL_SECONDS),
        }
    }

    /// The checks of a loop polled at its shortest interval until its timeout, and the one
    /// past it that fails it. None for a loop that does not wait (0 s: the template's minimum
    /// is 10 s, so only the local stack polls so): time does not bound it.
    pub fn worst_case_polls(&self) -> Option<u64> {
        let interval = self.shortest_interval_seconds;
        (interval > 0).then(|| self.timeout.as_secs().div_ceil(interval) + 1)
    }
}

/// The stack's three loops.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Loops {
    pub bake: Loop,
    pub copy: Loop,
    pub test: Loop,
}

impl Loops {
    pub fn of(config: &Config) -> Self {
        Self {
            bake: Loop::new(config.bake_timeout, config.bake_poll_seconds),
            copy: Loop::new(config.copy_timeout, config.copy_poll_seconds),
            test: Loop::new(config.test_timeout, config.test_poll_seconds),
        }
    }

    pub fn worst_case_polls(&self) -> Option<Polls> {
        Some(Polls {
            bake: self.bake.worst_case_polls()?,
            copy: self.copy.worst_case_polls()?,
            test: self.test.worst_case_polls()?,
        })
    }

    fn describe(&self) -> String {
        [
            ("bake", &self.bake),
            ("copy", &self.copy),
            ("boot test", &self.test),
        ]
        .iter()
        .map(|(name, l)| {
            format!(
                "{name} {} min every {} s",
                l.timeout.as_secs() / 60,
                l.shortest_interval_seconds
            )
        })
        .collect::<Vec<_>>()
        .join(", ")
    }
}

/// What the model says of a run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Budget {
    /// None when a loop does not wait (see `Loop::worst_case_polls`).
    pub history_events: Option<u64>,
    pub state_bytes: u64,
}

impl Budget {
    pub fn of(families: &[FamilyShape], polls: Option<Polls>) -> Self {
        Self {
            history_events: polls.map(|polls| history_events(families, polls)),
            state_bytes: state_bytes(families),
        }
    }

    pub fn fits(&self) -> bool {
        self.history_events
            .is_none_or(|events| events <= HISTORY_EVENTS_LIMIT)
            && self.state_bytes <= STATE_BYTES_LIMIT
    }
}

fn uniform(families: u64, regions: u64, gated: bool) -> Vec<FamilyShape> {
    (0..families)
        .map(|_| FamilyShape { regions, gated })
        .collect()
}

/// The most families of `regions` regions each that fit (0 if not even one).
pub fn most_families(regions: u64, gated: bool, polls: Option<Polls>) -> u64 {
    // Both figures grow with every family: the first that does not fit ends the search.
    (1..=10_000)
        .take_while(|&f| Budget::of(&uniform(f, regions, gated), polls).fits())
        .last()
        .unwrap_or(0)
}

/// The most regions each of `families` families may have and fit (0 if not even one).
pub fn most_regions(families: u64, gated: bool, polls: Option<Polls>) -> u64 {
    (1..=1_000)
        .take_while(|&r| Budget::of(&uniform(families, r, gated), polls).fits())
        .last()
        .unwrap_or(0)
}

/// 31400 -> "31,400".
pub fn thousands(n: u64) -> String {
    let digits = n.to_string();
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

/// A ConfigError naming the figures and the largest matrix that fits, if these families would
/// reach a limit on AWS; else what the model says.
pub fn check(families: &[FamilyShape], loops: &Loops) -> Result<Budget, StepError> {
    let polls = loops.worst_case_polls();
    let budget = Budget::of(families, polls);
    if budget.fits() {
        return Ok(budget);
    }
    let count = families.len() as u64;
    let widest = families.iter().map(|f| f.regions).max().unwrap_or(0);
    let gated = families.iter().any(|f| f.gated);
    let matrix = if families.iter().all(|f| f.regions == widest) {
        format!("{count} families x {widest} regions")
    } else {
        format!(
            "{count} families in {} family regions (up to {widest} each)",
            families.iter().map(|f| f.regions).sum::<u64>()
        )
    };
    let mut figures = Vec::new();
    if let Some(events) = budget.history_events {
        figures.push(format!(
            "write about {} history events (limit {})",
            thousands(events),
            thousands(HISTORY_EVENTS_LIMIT)
        ));
    }
    figures.push(format!(
        "hold about {} bytes in the run's largest state (limit {})",
        thousands(budget.state_bytes),
        thousands(STATE_BYTES_LIMIT)
    ));
    let (f_fit, r_fit) = (
        most_families(widest, gated, polls),
        most_regions(count, gated, polls),
    );
    let mut fits = Vec::new();
    if f_fit > 0 {
        fits.push(format!("{f_fit} x {widest}"));
    }
    if r_fit > 0 {
        fits.push(format!("{count} x {r_fit}"));
    }
    let largest = if fits.is_empty() {
        let alone = most_regions(1, gated, polls);
        format!("even one family fits in at most {alone} regions")
    } else {
        format!(
            "the largest that fits with these timeouts is {}",
            fits.join(" or ")
        )
    };
    Err(StepError::ConfigError(format!(
        "{matrix} would {} when every bake, copy and boot test polls at its shortest interval until its timeout ({}): Step Functions ends such a run without its failure path. {largest}; shorten BakeTimeoutMinutes, CopyTimeoutMinutes or TestTimeoutMinutes, or split the families over stacks",
        figures.join(" and "),
        loops.describe()
    )))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn matrix(families: u64, regions: u64) -> Vec<FamilyShape> {
        uniform(families, regions, false)
    }

    /// The template's defaults: bake 120 min at 120 s, copy 90 min at 60 s, boot test 45 min
    /// at 60 s; polled at 15 s at worst.
    fn defaults() -> Loops {
        let minutes = |m: u64| Duration::from_secs(m * 60);
        Loops {
            bake: Loop::new(minutes(120), 120),
            copy: Loop::new(minutes(90), 60),
            test: Loop::new(minutes(45), 60),
        }
    }

    #[test]
    fn a_loop_polls_at_its_shortest_interval_until_its_timeout_and_once_past_it() {
        let loops = defaults();
        assert_eq!(loops.bake.shortest_interval_seconds, MIN_POLL_SECONDS);
        assert_eq!(
            loops.worst_case_polls(),
            Some(Polls {
                bake: 481,
                copy: 361,
                test: 181
            })
        );
        // A stack interval below MIN_POLL_SECONDS is the shortest; one that does not wait has
        // no bound from time.
        assert_eq!(
            Loop::new(Duration::from_secs(600), 10).worst_case_polls(),
            Some(61)
        );
        assert_eq!(
            Loop::new(Duration::from_secs(600), 0).worst_case_polls(),
            None
        );
    }

    #[test]
    fn a_known_small_matrix_counts_its_states_and_events() {
        // The local stack's 1 x 1 run (bench/REPORT.md): 11 bake, 1 copy, 4 test polls, 76
        // transitions.
        let local = Polls {
            bake: 11,
            copy: 1,
            test: 4,
        };
        assert_eq!(transitions(&matrix(1, 1), local), 76);
        assert_eq!(transitions(&matrix(2, 2), local), 8 + 2 * 59 + 4 * 9);
        // Per run 32 events (the execution's 2, 4 Tasks, 2 Choices, the Map's 4, Succeeded's 2),
        // per family 49 (its states and Map iteration), per region 28, per poll 9.
        let none = Polls {
            bake: 0,
            copy: 0,
            test: 0,
        };
        assert_eq!(history_events(&[], none), 32);
        assert_eq!(history_events(&matrix(1, 0), none), 32 + 49);
        assert_eq!(history_events(&matrix(1, 1), none), 32 + 49 + 28);
        assert_eq!(history_events(&matrix(1, 1), local), 109 + 9 * 16);
        let gated = [FamilyShape {
            regions: 1,
            gated: true,
        }];
        assert_eq!(history_events(&gated, none), 109 + 4);
        // The template's defaults at worst: 32 + 6,007 F + 3,277 F R.
        let worst = defaults().worst_case_polls();
        assert_eq!(Budget::of(&matrix(1, 1), worst).history_events, Some(9_316));
        assert_eq!(
            state_bytes(&matrix(1, 1)),
            RUN_BYTES + FAMILY_BYTES + REGION_BYTES
        );
    }

    #[test]
    fn just_under_and_just_over_the_history_limit() {
        let worst = defaults().worst_case_polls();
        let under = Budget::of(&matrix(1, 5), worst);
        assert_eq!(under.history_events, Some(22_424));
        assert!(under.fits());
        // 2 x 2 is 154 events over.
        let over = Budget::of(&matrix(2, 2), worst);
        assert_eq!(over.history_events, Some(25_154));
        assert!(!over.fits());
        let at = |events| Budget {
            history_events: Some(events),
            state_bytes: 0,
        };
        assert!(at(HISTORY_EVENTS_LIMIT).fits());
        assert!(!at(HISTORY_EVENTS_LIMIT + 1).fits());
    }

    #[test]
    fn just_under_and_just_over_the_state_size_limit() {
        // Without a history bound only the state's size limits the matrix.
        let under = Budget::of(&matrix(15, 1), None);
        assert_eq!(under.history_events, None);
        assert!(under.fits(), "{under:?}");
        assert!(under.state_bytes > STATE_BYTES_LIMIT - FAMILY_BYTES - REGION_BYTES);
        assert!(!Budget::of(&matrix(16, 1), None).fits());
        let at = |bytes| Budget {
            history_events: Some(0),
            state_bytes: bytes,
        };
        assert!(at(STATE_BYTES_LIMIT).fits());
        assert!(!at(STATE_BYTES_LIMIT + 1).fits());
    }

    #[test]
    fn the_largest_matrix_that_fits_the_defaults() {
        let worst = defaults().worst_case_polls();
        assert_eq!(most_regions(1, false, worst), 5);
        assert_eq!(most_families(1, false, worst), 2);
        assert_eq!(most_families(2, false, worst), 1);
        assert_eq!(most_regions(3, false, worst), 0);
        assert_eq!(most_families(1, false, None), 15);
    }

    #[test]
    fn a_refusal_names_the_figures_and_the_largest_matrix_that_fits() {
        let error = check(&matrix(2, 2), &defaults()).unwrap_err();
        assert_eq!(error.error_type(), "ConfigError");
        let message = error.to_string();
        for expected in [
            "2 families x 2 regions would write about 25,154 history events (limit 25,000)",
            "hold about 43,008 bytes in the run's largest state (limit 262,144)",
            "(bake 120 min every 15 s, copy 90 min every 15 s, boot test 45 min every 15 s)",
            "the largest that fits with these timeouts is 1 x 2 or 2 x 1",
            "shorten BakeTimeoutMinutes",
        ] {
            assert!(message.contains(expected), "{expected:?} not in {message}");
        }
        // No region fits 3 families: only the other way round.
        let message = check(&matrix(3, 5), &defaults()).unwrap_err().to_string();
        assert!(
            message.contains("the largest that fits with these timeouts is 1 x 5;"),
            "{message}"
        );
        let message = check(&matrix(3, 7), &defaults()).unwrap_err().to_string();
        assert!(
            message.contains("even one family fits in at most 5 regions"),
            "{message}"
        );
        // Uneven families are named by their family regions.
        let uneven = [
            FamilyShape {
                regions: 5,
                gated: false,
            },
            FamilyShape {
                regions: 1,
                gated: false,
            },
        ];
        let message = check(&uneven, &defaults()).unwrap_err().to_string();
        assert!(
            message.contains("2 families in 6 family regions (up to 5 each)"),
            "{message}"
        );
        assert_eq!(
            check(&matrix(1, 5), &defaults()).map(|b| b.fits()).ok(),
            Some(true)
        );
    }

    #[test]
    fn numbers_are_written_with_thousands_separators() {
        assert_eq!(thousands(0), "0");
        assert_eq!(thousands(999), "999");
        assert_eq!(thousands(25_000), "25,000");
        assert_eq!(thousands(1_262_144), "1,262,144");
    }
}

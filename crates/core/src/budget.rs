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
//! A polling loop is one Wait, one Check Task and one Choice per poll: 9 events. PlanRun judges a
//! matrix by an ordinary month, the one bench/scale.py models (a 40-minute bake, a 15-minute copy,
//! a 10-minute boot test, each shortened to the stack's timeout if that is shorter), every loop
//! polled at the stack's interval: the most a family without a history polls (polling by
//! expectation, `pacing.rs`, then waits most of the usual duration before its first poll). A
//! month whose loops all run to their deadlines can still pass the limit: that run ends outside
//! its failure path and the reaper cleans up after it. Not counted: retries of Throttled and
//! Lambda service errors (each adds a failed and a new scheduled, started attempt) and the
//! failure path, which replaces the states after a failure with fewer.
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
/// NoApprovalNeeded, CheckPointers, PublishPointers (+ Checked, Succeeded?), Cleanup, Retain,
/// FamilyPublished.
pub const FAMILY: Level = Level {
    tasks: 6,
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

/// How long each loop's work takes in the ordinary month PlanRun judges by (bench/scale.py's
/// AWS_LOOPS).
pub const MONTH_BAKE: Duration = Duration::from_secs(40 * 60);
pub const MONTH_COPY: Duration = Duration::from_secs(15 * 60);
pub const MONTH_TEST: Duration = Duration::from_secs(10 * 60);

/// One polling loop of the stack in the ordinary month: how long its work takes (at most its
/// timeout) and the stack's interval.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Loop {
    pub duration: Duration,
    pub interval_seconds: u64,
}

impl Loop {
    pub fn new(month: Duration, timeout: Duration, configured_poll_seconds: u64) -> Self {
        Self {
            duration: month.min(timeout),
            interval_seconds: configured_poll_seconds,
        }
    }

    /// The checks of a loop polled at the stack's interval while its work takes `duration`, and
    /// the one that finds it done. None for a loop that does not wait (0 s: the template's
    /// minimum is 10 s, so only the local stack polls so): time does not bound it.
    pub fn month_polls(&self) -> Option<u64> {
        let interval = self.interval_seconds;
        (interval > 0).then(|| self.duration.as_secs().div_ceil(interval) + 1)
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
            bake: Loop::new(MONTH_BAKE, config.bake_timeout, config.bake_poll_seconds),
            copy: Loop::new(MONTH_COPY, config.copy_timeout, config.copy_poll_seconds),
            test: Loop::new(MONTH_TEST, config.test_timeout, config.test_poll_seconds),
        }
    }

    pub fn month_polls(&self) -> Option<Polls> {
        Some(Polls {
            bake: self.bake.month_polls()?,
            copy: self.copy.month_polls()?,
            test: self.test.month_polls()?,
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
                "{name} {} min polled every {} s",
                l.duration.as_secs() / 60,
                l.interval_seconds
            )
        })
        .collect::<Vec<_>>()
        .join(", ")
    }
}

/// What the model says of a run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Budget {
    /// None when a loop does not wait (see `Loop::month_polls`).
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
    let polls = loops.month_polls();
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
            "the largest that fits with these intervals is {}",
            fits.join(" or ")
        )
    };
    Err(StepError::ConfigError(format!(
        "{matrix} would {} in an ordinary month ({}): Step Functions ends such a run without its failure path. {largest}; poll less often (BakePollSeconds, CopyPollSeconds, TestPollSeconds), or split the families over stacks",
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
    /// at 60 s; in the ordinary month a 40-minute bake, a 15-minute copy, a 10-minute test.
    fn defaults() -> Loops {
        let minutes = |m: u64| Duration::from_secs(m * 60);
        Loops {
            bake: Loop::new(MONTH_BAKE, minutes(120), 120),
            copy: Loop::new(MONTH_COPY, minutes(90), 60),
            test: Loop::new(MONTH_TEST, minutes(45), 60),
        }
    }

    /// Every loop polled every 10 s (the template's smallest interval).
    fn eager() -> Loops {
        let minutes = |m: u64| Duration::from_secs(m * 60);
        Loops {
            bake: Loop::new(MONTH_BAKE, minutes(120), 10),
            copy: Loop::new(MONTH_COPY, minutes(90), 10),
            test: Loop::new(MONTH_TEST, minutes(45), 10),
        }
    }

    /// Every loop polled every 15 s until the template's default deadlines, and once past them.
    const TO_THE_DEADLINES: Polls = Polls {
        bake: 481,
        copy: 361,
        test: 181,
    };

    #[test]
    fn a_loop_polls_at_the_stack_s_interval_while_its_work_takes_its_usual_time() {
        assert_eq!(
            defaults().month_polls(),
            Some(Polls {
                bake: 21,
                copy: 16,
                test: 11
            })
        );
        // A timeout shorter than the usual time is the time; a loop that does not wait has no
        // bound from time.
        let minutes = |m: u64| Duration::from_secs(m * 60);
        assert_eq!(
            Loop::new(MONTH_BAKE, minutes(20), 120).month_polls(),
            Some(11)
        );
        assert_eq!(Loop::new(MONTH_BAKE, minutes(120), 0).month_polls(), None);
    }

    #[test]
    fn a_known_small_matrix_counts_its_states_and_events() {
        // The local stack's 1 x 1 run (bench/REPORT.md): 11 bake, 1 copy, 4 test polls, 77
        // transitions.
        let local = Polls {
            bake: 11,
            copy: 1,
            test: 4,
        };
        assert_eq!(transitions(&matrix(1, 1), local), 77);
        assert_eq!(transitions(&matrix(2, 2), local), 8 + 2 * 60 + 4 * 9);
        // Per run 32 events (the execution's 2, 4 Tasks, 2 Choices, the Map's 4, Succeeded's 2),
        // per family 54 (its states and Map iteration), per region 28, per poll 9.
        let none = Polls {
            bake: 0,
            copy: 0,
            test: 0,
        };
        assert_eq!(history_events(&[], none), 32);
        assert_eq!(history_events(&matrix(1, 0), none), 32 + 54);
        assert_eq!(history_events(&matrix(1, 1), none), 32 + 54 + 28);
        assert_eq!(history_events(&matrix(1, 1), local), 114 + 9 * 16);
        let gated = [FamilyShape {
            regions: 1,
            gated: true,
        }];
        assert_eq!(history_events(&gated, none), 114 + 4);
        // The ordinary month at the template's defaults: 32 + 342 F + 172 F R.
        let month = defaults().month_polls();
        assert_eq!(Budget::of(&matrix(1, 1), month).history_events, Some(546));
        // Every loop to its deadline: 32 + 6,012 F + 3,277 F R.
        assert_eq!(
            Budget::of(&matrix(1, 1), Some(TO_THE_DEADLINES)).history_events,
            Some(9_321)
        );
        assert_eq!(
            state_bytes(&matrix(1, 1)),
            RUN_BYTES + FAMILY_BYTES + REGION_BYTES
        );
    }

    #[test]
    fn just_under_and_just_over_the_history_limit() {
        let worst = Some(TO_THE_DEADLINES);
        let under = Budget::of(&matrix(1, 5), worst);
        assert_eq!(under.history_events, Some(22_429));
        assert!(under.fits());
        // 2 x 2 is 164 events over.
        let over = Budget::of(&matrix(2, 2), worst);
        assert_eq!(over.history_events, Some(25_164));
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
        let month = defaults().month_polls();
        // The state's size binds first: 2,048 + 12,288 F + 4,096 F R bytes.
        assert_eq!(most_regions(1, false, month), 60);
        assert_eq!(most_families(1, false, month), 15);
        assert_eq!(most_families(2, false, month), 12);
        assert_eq!(most_regions(3, false, month), 18);
        assert_eq!(most_families(1, false, None), 15);
        // Polled every 10 s, the history binds: 32 + 2,767 F + 847 F R events.
        assert_eq!(most_families(3, false, eager().month_polls()), 4);
        assert_eq!(most_regions(5, false, eager().month_polls()), 2);
    }

    #[test]
    fn a_refusal_names_the_figures_and_the_largest_matrix_that_fits() {
        let error = check(&matrix(7, 7), &defaults()).unwrap_err();
        assert_eq!(error.error_type(), "ConfigError");
        let message = error.to_string();
        for expected in [
            "7 families x 7 regions would write about 10,854 history events (limit 25,000)",
            "hold about 288,768 bytes in the run's largest state (limit 262,144)",
            "(bake 40 min polled every 120 s, copy 15 min polled every 60 s, boot test 10 min polled every 60 s)",
            "the largest that fits with these intervals is 6 x 7 or 7 x 6",
            "poll less often",
        ] {
            assert!(message.contains(expected), "{expected:?} not in {message}");
        }
        let message = check(&matrix(5, 3), &eager()).unwrap_err().to_string();
        assert!(
            message.contains("5 families x 3 regions would write about 26,597 history events")
                && message
                    .contains("the largest that fits with these intervals is 4 x 3 or 5 x 2;"),
            "{message}"
        );
        let message = check(&matrix(20, 70), &defaults()).unwrap_err().to_string();
        assert!(
            message.contains("even one family fits in at most 60 regions"),
            "{message}"
        );
        // Uneven families are named by their family regions.
        let uneven = [
            FamilyShape {
                regions: 50,
                gated: false,
            },
            FamilyShape {
                regions: 20,
                gated: false,
            },
        ];
        let message = check(&uneven, &defaults()).unwrap_err().to_string();
        assert!(
            message.contains("2 families in 70 family regions (up to 50 each)"),
            "{message}"
        );
        assert_eq!(
            check(&matrix(6, 6), &defaults()).map(|b| b.fits()).ok(),
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

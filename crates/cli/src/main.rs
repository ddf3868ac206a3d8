use std::process::ExitCode;
use std::time::Duration;

use clap::{Parser, Subcommand};
use golden_ami_cli::{self as cli, Aws, CliError};
use indicatif::{ProgressBar, ProgressStyle};
use serde::Serialize;
use time::OffsetDateTime;

/// Operate the golden AMI pipeline: what the golden image is now, how the runs went, why one
/// failed, and put last month's image back.
#[derive(Parser)]
#[command(name = "golden-ami", version)]
struct Args {
    /// The pipeline's CloudFormation stack (its outputs name everything else).
    #[arg(
        long,
        global = true,
        env = "GOLDEN_AMI_STACK",
        default_value = "golden-ami-pipeline"
    )]
    stack: String,
    /// The stack's region (default: the configured region, AWS_REGION or the profile's).
    #[arg(long, global = true)]
    stack_region: Option<String>,
    /// Send every AWS call here (e.g. the local stack's moto, http://127.0.0.1:5000).
    #[arg(long, global = true, env = "AWS_ENDPOINT_URL")]
    endpoint_url: Option<String>,
    /// The targets parameter, instead of the stack's TargetsParameterName output (then the
    /// stack is not read: give --state-machine-arn for the runs).
    #[arg(long, global = true)]
    targets_parameter: Option<String>,
    /// The state machine, instead of the stack's StateMachineArn output.
    #[arg(long, global = true)]
    state_machine_arn: Option<String>,
    /// The stack's golden key (its GoldenKeyArn output), when the stack is not read: `pin`
    /// checks the image's snapshots against it (or its replica in the image's region).
    #[arg(long, global = true)]
    golden_key_arn: Option<String>,
    /// Who the stack shares its golden images with, when the stack is not read: organization
    /// ARNs, OU ARNs and account ids, comma-separated. `pin` checks the launch permission.
    #[arg(long, global = true)]
    shared_with: Option<String>,
    /// One JSON document instead of text.
    #[arg(long, global = true)]
    json: bool,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Each family's pointer per region (value, version, age), pins, the last runs, a run in
    /// progress and the next scheduled run.
    Status,
    /// The last runs: start, duration, outcome, old -> new image per family and region.
    History {
        #[arg(short = 'n', default_value_t = 10)]
        n: i32,
    },
    /// Why a run failed (default: the last failed run): the state, error and cause, the failed
    /// automation step, and where the pointers stand.
    Why { execution: Option<String> },
    /// Start a run now; with --follow, show it state by state and exit 0 only if it succeeded.
    Run {
        #[arg(long)]
        follow: bool,
        /// Seconds between two looks at the run.
        #[arg(long, default_value_t = 5)]
        poll: u64,
    },
    /// Put back the pointer's previous image (in every region of the family, or --region).
    Rollback {
        #[arg(long)]
        family: Option<String>,
        #[arg(long)]
        region: Option<String>,
    },
    /// Point the family at AMI in a region and keep runs away from the family until `unpin`.
    Pin {
        ami: String,
        #[arg(long)]
        family: Option<String>,
        /// The region of AMI (default: the stack's).
        #[arg(long)]
        region: Option<String>,
        #[arg(long)]
        reason: Option<String>,
    },
    /// Let runs patch the family again (its pointer keeps its value until the next run).
    Unpin {
        #[arg(long)]
        family: Option<String>,
    },
    /// Approve a gated family's new image: its pointers move (default: the one run waiting).
    Approve {
        execution: Option<String>,
        /// Needed when several families of the run wait.
        #[arg(long)]
        family: Option<String>,
        /// Recorded with the decision and quoted in the SUCCEEDED notice (e.g. a change ticket).
        #[arg(long)]
        reason: Option<String>,
    },
    /// Deny a gated family's new image: nothing is published and its copies are removed.
    Deny {
        execution: Option<String>,
        #[arg(long)]
        family: Option<String>,
        /// Why, for the FAILED notice.
        #[arg(long)]
        reason: String,
    },
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> ExitCode {
    let args = Args::parse();
    match run(args).await {
        Ok(code) => code,
        Err(error) => {
            eprintln!("golden-ami: {error}");
            ExitCode::from(u8::try_from(error.code).unwrap_or(1))
        }
    }
}

fn print<T: Serialize>(
    json: bool,
    value: &T,
    text: impl FnOnce() -> String,
) -> Result<(), CliError> {
    if json {
        let out = serde_json::to_string_pretty(value)
            .map_err(|e| CliError::refused(format!("the answer does not serialize: {e}")))?;
        println!("{out}");
    } else {
        print!("{}", text());
    }
    Ok(())
}

async fn run(args: Args) -> Result<ExitCode, CliError> {
    let aws = Aws::from_env(args.stack_region.clone(), args.endpoint_url.clone()).await;
    if aws.region.is_empty() {
        return Err(CliError::refused(
            "no region: pass --stack-region or set AWS_REGION / a profile's region",
        ));
    }
    let mut stack = cli::find_stack(
        &aws,
        &args.stack,
        args.targets_parameter.clone(),
        args.state_machine_arn.clone(),
    )
    .await?;
    if let Some(key) = args.golden_key_arn {
        stack.golden_key_arn = Some(key);
    }
    if let Some(principals) = args.shared_with.as_deref() {
        stack.shared_with = Some(cli::parse_shared_with(principals)?);
    }
    let families = cli::families(&aws, &stack).await?;
    // Whole seconds: the times it records (pins, decisions) are read by people.
    let now = OffsetDateTime::now_utc().truncate_to_second();
    let json = args.json;
    match args.command {
        Command::Status => {
            let status = cli::status(&aws, &stack, &families, now).await?;
            print(json, &status, || render_status(&status))?;
        }
        Command::History { n } => {
            let runs = cli::history(&aws, &stack, n.clamp(1, 1000)).await?;
            print(json, &runs, || runs.iter().map(render_run).collect())?;
        }
        Command::Why { execution } => {
            let why = cli::why(&aws, &stack, execution, &families, now).await?;
            print(json, &why, || render_why(&why))?;
        }
        Command::Run { follow, poll } => {
            let execution = cli::start(&aws, &stack, now).await?;
            if !follow {
                print(json, &execution, || format!("started {execution}\n"))?;
                return Ok(ExitCode::SUCCESS);
            }
            let status = follow_run(&aws, &execution, poll, json).await?;
            print(json, &(execution.clone(), status.clone()), || {
                format!("{execution}: {status}\n")
            })?;
            if status != "SUCCEEDED" {
                return Err(CliError::failed(format!(
                    "the run ended {status}: `golden-ami why {execution}` says why"
                )));
            }
        }
        Command::Rollback { family, region } => {
            let family = cli::pick(&families, family.as_deref())?;
            let regions = cli::regions_of(family, region.as_deref())?;
            let moved = cli::rollback(&aws, family, &regions).await?;
            print(json, &moved, || {
                moved
                    .iter()
                    .map(render_moved)
                    .chain(std::iter::once(format!(
                        "A run started before this will not overwrite it (PointerChangedConcurrently); the next scheduled run bakes from it. To keep it: golden-ami pin {} --family {}\n",
                        moved.first().map(|m| m.to.as_str()).unwrap_or("AMI"),
                        family.name
                    )))
                    .collect()
            })?;
        }
        Command::Pin {
            ami,
            family,
            region,
            reason,
        } => {
            let family = cli::pick(&families, family.as_deref())?;
            let region = region.unwrap_or_else(|| stack.region.clone());
            cli::regions_of(family, Some(&region))?;
            let (pin, moved) = cli::pin(&aws, &stack, family, &region, &ami, reason, now).await?;
            print(json, &(&pin, &moved), || {
                let moved = match &moved {
                    Some(m) => render_moved(m),
                    None => format!(
                        "{} in {}: the pointer already holds {}\n",
                        pin.family, pin.region, pin.ami_id
                    ),
                };
                format!(
                    "{moved}{} is pinned to {} by {}: runs skip it (SKIPPED notice) until `golden-ami unpin --family {}`\n",
                    pin.family, pin.ami_id, pin.pinned_by, pin.family
                )
            })?;
        }
        Command::Approve {
            execution,
            family,
            reason,
        } => {
            let chosen =
                cli::pick_waiting(&aws, &stack, execution.as_deref(), family.as_deref()).await?;
            let mut answered = Vec::new();
            for waiting in &chosen {
                answered.push(cli::approve(&aws, waiting, reason.clone(), now).await?);
            }
            print(json, &answered, || render_answered(&answered))?;
        }
        Command::Deny {
            execution,
            family,
            reason,
        } => {
            if reason.trim().is_empty() {
                return Err(CliError::refused(
                    "--reason is empty: say why, the FAILED notice quotes it",
                ));
            }
            let chosen =
                cli::pick_waiting(&aws, &stack, execution.as_deref(), family.as_deref()).await?;
            let mut answered = Vec::new();
            for waiting in &chosen {
                answered.push(cli::deny(&aws, waiting, &reason, now).await?);
            }
            print(json, &answered, || render_answered(&answered))?;
        }
        Command::Unpin { family } => {
            let family = cli::pick(&families, family.as_deref())?;
            let removed = cli::unpin(&aws, &stack, family).await?;
            print(json, &removed, || {
                if removed {
                    format!(
                        "{} is no longer pinned: the next run patches it\n",
                        family.name
                    )
                } else {
                    format!("{} was not pinned\n", family.name)
                }
            })?;
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// Show each state as it is entered (and the bake's automation step) until the run ends.
async fn follow_run(
    aws: &Aws,
    execution: &str,
    poll: u64,
    quiet: bool,
) -> Result<String, CliError> {
    let bar = if quiet {
        ProgressBar::hidden()
    } else {
        ProgressBar::new_spinner()
    };
    bar.set_style(
        ProgressStyle::with_template("{spinner} {elapsed_precise} {msg}")
            .unwrap_or_else(|_| ProgressStyle::default_spinner()),
    );
    bar.enable_steady_tick(Duration::from_millis(200));
    let mut seen = 0;
    loop {
        let (new, step, status) = cli::progress(aws, execution, seen).await?;
        seen += new.len();
        for state in &new {
            bar.println(format!("  {state}"));
        }
        let current = new.last().cloned().unwrap_or_default();
        bar.set_message(match step {
            Some(step) if current.contains("Bake") => format!("{current} (automation step {step})"),
            _ if current == "AwaitApproval" => format!(
                "{current} (a gated family waits: golden-ami approve {} --family FAMILY, or deny)",
                execution.rsplit(':').next().unwrap_or(execution)
            ),
            _ => current,
        });
        if status != "RUNNING" {
            bar.finish_and_clear();
            return Ok(status);
        }
        tokio::time::sleep(Duration::from_secs(poll)).await;
    }
}

/// What `approve` / `deny` did, a line per family.
fn render_answered(answered: &[cli::Answered]) -> String {
    answered
        .iter()
        .map(|a| {
            let then = if a.decision == "approved" {
                "the run publishes"
            } else {
                "nothing is published and the run removes"
            };
            format!(
                "{} in {}: {} by {}; {then} {}\n",
                a.family,
                a.execution,
                a.decision,
                a.by,
                a.images.join(", ")
            )
        })
        .collect()
}

fn render_moved(m: &cli::Moved) -> String {
    format!(
        "{} in {}: {} {} -> {} (version {})\n",
        m.family,
        m.region,
        m.parameter,
        m.from.as_deref().unwrap_or("(none)"),
        m.to,
        m.version
    )
}

fn render_status(status: &cli::Status) -> String {
    let mut out = format!("stack {} in {}\n", status.stack.name, status.stack.region);
    for p in &status.pointers {
        let pin = status.pins.iter().find(|pin| pin.family == p.family);
        out.push_str(&match &p.value {
            Some(value) => format!(
                "  {:<16} {:<10} {} v{} ({} days old){}\n",
                p.family,
                p.region,
                value,
                p.version.unwrap_or_default(),
                p.age_days.unwrap_or_default(),
                pin.map(|pin| format!(
                    "  PINNED to {} in {} by {} since {}",
                    pin.ami_id, pin.region, pin.pinned_by, pin.pinned_at
                ))
                .unwrap_or_default()
            ),
            None => format!(
                "  {:<16} {:<10} no pointer {} yet (the next run creates it)\n",
                p.family, p.region, p.parameter
            ),
        });
    }
    match (&status.runs, &status.runs_unavailable) {
        (Some(runs), _) if runs.is_empty() => out.push_str("runs: none yet\n"),
        (Some(runs), _) => {
            out.push_str("last runs:\n");
            out.extend(runs.iter().map(render_run));
        }
        (None, Some(why)) => out.push_str(&format!("runs: not available ({why})\n")),
        (None, None) => {}
    }
    if let Some((name, state)) = &status.running {
        out.push_str(&format!("in progress: {name}, now in {state}\n"));
    }
    for w in &status.approvals {
        out.push_str(&format!(
            "waiting for approval: {} in {} until {} ({}): golden-ami approve {} --family {}\n",
            w.request.family,
            w.execution,
            w.request.deadline,
            w.request
                .images
                .iter()
                .map(|i| format!("{} {}", i.region, i.ami_id))
                .collect::<Vec<_>>()
                .join(", "),
            w.execution,
            w.request.family
        ));
    }
    if let Some(next) = &status.next_run {
        out.push_str(&format!("next run: {next}\n"));
    }
    out
}

fn render_run(run: &cli::Run) -> String {
    let mut out = format!(
        "  {} {} started {}{}\n",
        run.name,
        run.status,
        run.started,
        run.duration_seconds
            .map(|s| format!(", took {}m{:02}s", s / 60, s % 60))
            .unwrap_or_default()
    );
    for family in &run.families {
        out.push_str(&format!("    {}: {}", family.family, family.outcome));
        if !family.moved.is_empty() {
            out.push_str(&format!(" ({})", family.moved.join("; ")));
        }
        out.push('\n');
    }
    out
}

fn render_why(why: &cli::Why) -> String {
    let mut out = format!("{} ended {}\n", why.execution, why.status);
    for f in &why.failures {
        out.push_str(&format!(
            "  {}{}{}: {}\n    {}\n",
            f.family
                .as_ref()
                .map(|n| format!("{n}: "))
                .unwrap_or_default(),
            f.state,
            f.region
                .as_ref()
                .map(|r| format!(" in {r}"))
                .unwrap_or_default(),
            f.error,
            f.cause
        ));
    }
    if let Some(automation) = &why.automation {
        out.push_str(&format!("  {automation}\n"));
    }
    out.push_str("pointers now:\n");
    for p in &why.pointers {
        out.push_str(&format!(
            "  {:<16} {:<10} {} (v{})\n",
            p.family,
            p.region,
            p.value.as_deref().unwrap_or("(no pointer)"),
            p.version.unwrap_or_default()
        ));
    }
    out
}

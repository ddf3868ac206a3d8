//! Retain: after a family published, keep its golden images in each region tidy and safe.
//!
//! In every region where this run moved the family's pointer:
//! - the current image (the pointer's value) and the rollback target (the pointer's previous
//!   value) get deregistration protection; images that are neither lose it;
//! - superseded images get a deprecation time (DEPRECATE_AFTER_DAYS from now), so new launches
//!   stop finding them by default; an image the pointer holds again has its deprecation cancelled;
//! - images beyond the newest `keep`, older than `min_age_days` and not launched within
//!   `unused_days` are deregistered and their snapshots deleted.
//!
//! Never touched: the pointer's current or previous value, any value of its newest `keep`
//! versions, and any image without the pipeline's tags (Type=golden-ami and the family's tag:
//! only those are listed). The decisions are [`decide`], a pure function; the handler reads the
//! facts, applies the decisions (not in a dry run) and reports each failure without failing:
//! the image is published either way.

use aws_sdk_ec2::primitives::DateTime;
use aws_sdk_ec2::types::{Filter, Image, ImageAttributeName};
use golden_ami_core::naming::{
    TAG_FAMILY, TAG_TYPE, TYPE_GOLDEN, format_timestamp, parse_timestamp,
};
use golden_ami_core::{
    Deprecation, Deps, KeptImage, PointerHistory, RegionRetention, RemovedImage, RetainResult,
    RetentionPolicy, StepError, StepInput, classify_sdk_error, error_code, read_pointer_history,
};
use time::{Duration, OffsetDateTime};

pub async fn handler(deps: &Deps, input: StepInput) -> Result<RetainResult, StepError> {
    let family = input.state.require_family()?;
    let policy = deps.config.retention;
    let regions: Vec<&str> = input
        .state
        .pointers
        .iter()
        .filter_map(|pointer| pointer.publish.as_ref())
        .map(|publish| publish.region.as_str())
        .collect();
    if regions.is_empty() {
        return Err(StepError::InvalidInput(
            "state.pointers holds no publish result: Retain runs after the family published (state.pointers[].publish)".into(),
        ));
    }
    let now = deps.now();
    let mut result = RetainResult {
        dry_run: policy.dry_run,
        ..RetainResult::default()
    };
    for region in regions {
        let clients = deps.clients.region(region);
        let mut retention = RegionRetention {
            region: region.to_string(),
            ..RegionRetention::default()
        };
        match read_facts(&clients, &family.pointer, &family.name).await {
            Ok((pointer, images)) => {
                let plan = decide(now, &policy, &pointer, &images);
                apply(
                    clients.ec2(),
                    &plan,
                    &images,
                    policy.dry_run,
                    &mut retention,
                )
                .await;
            }
            Err(error) => retention.failed.push(format!(
                "could not read the family's images and pointer: {error}"
            )),
        }
        result.regions.push(retention);
    }
    Ok(result)
}

/// Whether an image can be deregistered right now.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Protection {
    Off,
    On,
    /// Protection was removed with a cooldown: deregistration fails until then.
    Cooldown(String),
}

impl Protection {
    /// EC2's DeregistrationProtection: "disabled", "enabled", "enabled-with-cooldown",
    /// "disabled-until <time>".
    pub fn parse(value: Option<&str>) -> Self {
        match value.unwrap_or("disabled") {
            "disabled" => Self::Off,
            v if v.starts_with("enabled") => Self::On,
            v => Self::Cooldown(v.trim_start_matches("disabled-until").trim().to_string()),
        }
    }
}

/// One golden image of the family, as Retain sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GoldenImage {
    pub id: String,
    pub created: OffsetDateTime,
    pub deprecation: Option<OffsetDateTime>,
    pub protection: Protection,
    pub last_launched: Option<OffsetDateTime>,
    pub snapshot_ids: Vec<String>,
}

/// What Retain will do in one region.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Plan {
    pub protect: Vec<String>,
    pub undeprecate: Vec<String>,
    pub deprecate: Vec<(String, OffsetDateTime)>,
    pub unprotect: Vec<String>,
    pub remove: Vec<String>,
    pub kept: Vec<KeptImage>,
}

/// The retention rules. `images` are the family's golden images in one region (any order).
pub fn decide(
    now: OffsetDateTime,
    policy: &RetentionPolicy,
    pointer: &PointerHistory,
    images: &[GoldenImage],
) -> Plan {
    let mut newest_first: Vec<&GoldenImage> = images.iter().collect();
    newest_first.sort_by(|a, b| b.created.cmp(&a.created).then(a.id.cmp(&b.id)));
    let current = pointer.current();
    let previous = pointer.previous();
    // EC2 keeps whole minutes and refuses a time in the past: "at once" is a minute or two ahead.
    let deprecate_at =
        now + Duration::days(policy.deprecate_after_days.into()).max(Duration::minutes(2));
    let deprecate_at = deprecate_at
        .replace_nanosecond(0)
        .and_then(|t| t.replace_second(0))
        .unwrap_or(deprecate_at);
    let mut plan = Plan::default();
    for (rank, image) in newest_first.iter().enumerate() {
        let id = image.id.as_str();
        let is_current = current == Some(id);
        let is_rollback = previous == Some(id);
        let keep_reason = if is_current {
            Some("the pointer's current image".to_string())
        } else if is_rollback {
            Some("the rollback target (the pointer's previous value)".to_string())
        } else if pointer.held_within(id, policy.keep) {
            Some(format!(
                "held by the pointer within its newest {} versions",
                policy.keep
            ))
        } else if rank < policy.keep {
            Some(format!("among the newest {} golden images", policy.keep))
        } else if now - image.created < Duration::days(policy.min_age_days.into()) {
            Some(format!(
                "younger than {} days (created {})",
                policy.min_age_days,
                format_timestamp(image.created)
            ))
        } else if let Some(launched) = image
            .last_launched
            .filter(|t| now - *t < Duration::days(policy.unused_days.into()))
        {
            Some(format!(
                "launched within {} days (last {})",
                policy.unused_days,
                format_timestamp(launched)
            ))
        } else if let Protection::Cooldown(until) = &image.protection {
            Some(format!("deregistration protection ends {until}"))
        } else {
            None
        };
        let wants_protection = is_current || is_rollback;
        match (&image.protection, wants_protection) {
            (Protection::Off | Protection::Cooldown(_), true) => plan.protect.push(id.to_string()),
            (Protection::On, false) => plan.unprotect.push(id.to_string()),
            _ => {}
        }
        let Some(reason) = keep_reason else {
            plan.remove.push(id.to_string());
            continue;
        };
        if is_current {
            if image.deprecation.is_some() {
                plan.undeprecate.push(id.to_string());
            }
        } else if image.deprecation.is_none() {
            plan.deprecate.push((id.to_string(), deprecate_at));
        }
        if !is_current {
            plan.kept.push(KeptImage {
                image_id: id.to_string(),
                reason,
            });
        }
    }
    plan
}

async fn read_facts(
    clients: &golden_ami_core::RegionClients,
    pointer: &str,
    family: &str,
) -> Result<(PointerHistory, Vec<GoldenImage>), StepError> {
    let history = read_pointer_history(clients.ssm(), pointer)
        .await
        .map_err(|error| classify_sdk_error("ssm:GetParameterHistory", error))?;
    let listed = clients
        .ec2()
        .describe_images()
        .owners("self")
        .filters(
            Filter::builder()
                .name(format!("tag:{TAG_TYPE}"))
                .values(TYPE_GOLDEN)
                .build(),
        )
        .filters(
            Filter::builder()
                .name(format!("tag:{TAG_FAMILY}"))
                .values(family)
                .build(),
        )
        .send()
        .await
        .map_err(|error| classify_sdk_error("ec2:DescribeImages", error))?;
    let mut images = Vec::new();
    for image in listed.images() {
        images.push(golden_image(clients.ec2(), image).await?);
    }
    Ok((history, images))
}

async fn golden_image(ec2: &aws_sdk_ec2::Client, image: &Image) -> Result<GoldenImage, StepError> {
    let id = image.image_id().unwrap_or_default().to_string();
    let launched = ec2
        .describe_image_attribute()
        .image_id(&id)
        .attribute(ImageAttributeName::LastLaunchedTime)
        .send()
        .await
        .map_err(|error| classify_sdk_error("ec2:DescribeImageAttribute", error))?;
    let time =
        |field: &str, value: Option<&str>| value.map(|v| parse_timestamp(field, v)).transpose();
    Ok(GoldenImage {
        created: time("CreationDate", image.creation_date())?.ok_or_else(|| {
            StepError::InvalidInput(format!("DescribeImages gave {id} no CreationDate"))
        })?,
        deprecation: time("DeprecationTime", image.deprecation_time())?,
        protection: Protection::parse(image.deregistration_protection()),
        last_launched: time(
            "LastLaunchedTime",
            launched.last_launched_time().and_then(|v| v.value()),
        )?,
        snapshot_ids: image
            .block_device_mappings()
            .iter()
            .filter_map(|m| {
                m.ebs()
                    .and_then(|ebs| ebs.snapshot_id())
                    .map(str::to_string)
            })
            .collect(),
        id,
    })
}

/// One change to an image.
enum Change<'a> {
    Protect(&'a str),
    Undeprecate(&'a str),
    Deprecate(&'a str, OffsetDateTime),
    Unprotect(&'a str),
    Remove(&'a str, &'a [String]),
}

impl Change<'_> {
    fn describe(&self) -> String {
        match self {
            Self::Protect(id) => format!("protect {id}"),
            Self::Undeprecate(id) => format!("cancel the deprecation of {id}"),
            Self::Deprecate(id, _) => format!("deprecate {id}"),
            Self::Unprotect(id) => format!("remove the protection of {id}"),
            Self::Remove(id, _) => format!("remove {id}"),
        }
    }

    async fn make(&self, ec2: &aws_sdk_ec2::Client) -> Result<(), StepError> {
        match *self {
            Self::Protect(id) => ec2
                .enable_image_deregistration_protection()
                .image_id(id)
                .with_cooldown(false)
                .send()
                .await
                .map(drop)
                .map_err(|e| classify_sdk_error("ec2:EnableImageDeregistrationProtection", e)),
            Self::Undeprecate(id) => ec2
                .disable_image_deprecation()
                .image_id(id)
                .send()
                .await
                .map(drop)
                .map_err(|e| classify_sdk_error("ec2:DisableImageDeprecation", e)),
            Self::Deprecate(id, at) => ec2
                .enable_image_deprecation()
                .image_id(id)
                .deprecate_at(DateTime::from_secs(at.unix_timestamp()))
                .send()
                .await
                .map(drop)
                .map_err(|e| classify_sdk_error("ec2:EnableImageDeprecation", e)),
            Self::Unprotect(id) => ec2
                .disable_image_deregistration_protection()
                .image_id(id)
                .send()
                .await
                .map(drop)
                .map_err(|e| classify_sdk_error("ec2:DisableImageDeregistrationProtection", e)),
            Self::Remove(id, snapshots) => remove(ec2, id, snapshots).await,
        }
    }
}

/// Carry out `plan` (or, in a dry run, only report it): safety first (protect, undeprecate),
/// then deprecate and unprotect, then remove. A failure is reported and the rest goes on.
async fn apply(
    ec2: &aws_sdk_ec2::Client,
    plan: &Plan,
    images: &[GoldenImage],
    dry_run: bool,
    out: &mut RegionRetention,
) {
    out.kept = plan.kept.clone();
    let snapshots_of = |id: &str| {
        images
            .iter()
            .find(|image| image.id == id)
            .map(|image| image.snapshot_ids.as_slice())
            .unwrap_or_default()
    };
    let changes = plan
        .protect
        .iter()
        .map(|id| Change::Protect(id))
        .chain(plan.undeprecate.iter().map(|id| Change::Undeprecate(id)))
        .chain(
            plan.deprecate
                .iter()
                .map(|(id, at)| Change::Deprecate(id, *at)),
        )
        .chain(plan.unprotect.iter().map(|id| Change::Unprotect(id)))
        .chain(
            plan.remove
                .iter()
                .map(|id| Change::Remove(id, snapshots_of(id))),
        );
    for change in changes {
        if !dry_run && let Err(error) = change.make(ec2).await {
            out.failed
                .push(format!("could not {}: {error}", change.describe()));
            continue;
        }
        match change {
            Change::Protect(id) => out.protected.push(id.to_string()),
            Change::Undeprecate(id) => out.undeprecated.push(id.to_string()),
            Change::Deprecate(id, at) => out.deprecated.push(Deprecation {
                image_id: id.to_string(),
                deprecate_at: format_timestamp(at),
            }),
            Change::Unprotect(id) => out.unprotected.push(id.to_string()),
            Change::Remove(id, snapshots) => out.removed.push(RemovedImage {
                image_id: id.to_string(),
                snapshot_ids: snapshots.to_vec(),
            }),
        }
    }
}

async fn remove(
    ec2: &aws_sdk_ec2::Client,
    id: &str,
    snapshots: &[String],
) -> Result<(), StepError> {
    match ec2.deregister_image().image_id(id).send().await {
        Ok(_) => {}
        Err(error) if error_code(&error).is_some_and(|code| code.starts_with("InvalidAMIID.")) => {}
        Err(error) => return Err(classify_sdk_error("ec2:DeregisterImage", error)),
    }
    for snapshot in snapshots {
        match ec2.delete_snapshot().snapshot_id(snapshot).send().await {
            Ok(_) => {}
            Err(error) if error_code(&error) == Some("InvalidSnapshot.NotFound") => {}
            Err(error) => {
                return Err(StepError::CleanupRefused(format!(
                    "deregistered, but its snapshot {snapshot} was not deleted: {}",
                    classify_sdk_error("ec2:DeleteSnapshot", error)
                )));
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use time::macros::datetime;

    use super::*;

    const NOW: OffsetDateTime = datetime!(2026-12-01 08:05:00 UTC);

    /// Monthly images ami-01 (oldest) .. ami-NN, created on the 1st of each month back from
    /// December 2026, never launched, unprotected, not deprecated.
    fn monthly(n: usize) -> Vec<GoldenImage> {
        (0..n)
            .map(|i| GoldenImage {
                id: format!("ami-{:02}", n - i),
                created: NOW - Duration::days(30 * i as i64),
                deprecation: None,
                protection: Protection::Off,
                last_launched: None,
                snapshot_ids: vec![format!("snap-{:02}", n - i)],
            })
            .collect()
    }

    fn pointer(values: &[&str]) -> PointerHistory {
        PointerHistory {
            values: values.iter().map(|v| v.to_string()).collect(),
        }
    }

    fn policy(keep: usize) -> RetentionPolicy {
        RetentionPolicy {
            keep,
            ..RetentionPolicy::default()
        }
    }

    fn kept(plan: &Plan) -> Vec<&str> {
        plan.kept.iter().map(|k| k.image_id.as_str()).collect()
    }

    fn reason<'a>(plan: &'a Plan, id: &str) -> &'a str {
        &plan.kept.iter().find(|k| k.image_id == id).unwrap().reason
    }

    #[test]
    fn old_unused_images_beyond_keep_are_removed() {
        // 8 monthly images; the pointer went 06 -> 07 -> 08. 05 is 90 days old: old enough.
        let plan = decide(
            NOW,
            &policy(3),
            &pointer(&["ami-08", "ami-07", "ami-06"]),
            &monthly(8),
        );
        assert_eq!(
            plan.remove,
            ["ami-05", "ami-04", "ami-03", "ami-02", "ami-01"]
        );
        assert_eq!(kept(&plan), ["ami-07", "ami-06"]);
        assert!(reason(&plan, "ami-07").starts_with("the rollback target"));
        assert!(reason(&plan, "ami-06").starts_with("held by the pointer within its newest 3"));
    }

    #[test]
    fn images_younger_than_min_age_stay() {
        let plan = decide(NOW, &policy(1), &pointer(&["ami-04"]), &monthly(4));
        assert_eq!(plan.remove, ["ami-01"]); // 90 days old
        assert!(reason(&plan, "ami-03").starts_with("younger than 90 days (created 2026-11-01"));
        assert!(reason(&plan, "ami-02").starts_with("younger than 90 days"));
    }

    #[test]
    fn the_current_image_and_the_rollback_target_are_protected_and_only_they() {
        let mut images = monthly(4);
        images[2].protection = Protection::On; // ami-02: the rollback target of last month
        let plan = decide(
            NOW,
            &policy(3),
            &pointer(&["ami-04", "ami-03", "ami-02"]),
            &images,
        );
        assert_eq!(plan.protect, ["ami-04", "ami-03"]);
        assert_eq!(plan.unprotect, ["ami-02"]);
    }

    #[test]
    fn superseded_images_are_deprecated_once_and_the_current_one_never() {
        let mut images = monthly(3);
        images[2].deprecation = Some(NOW - Duration::days(3)); // ami-01: deprecated before
        let plan = decide(NOW, &policy(3), &pointer(&["ami-03", "ami-02"]), &images);
        let at = NOW + Duration::days(30);
        assert_eq!(plan.deprecate, [("ami-02".to_string(), at)]);
        assert!(plan.undeprecate.is_empty());
    }

    #[test]
    fn a_rolled_back_pointer_cancels_the_deprecation_of_what_it_holds() {
        let mut images = monthly(3);
        images[1].deprecation = Some(NOW + Duration::days(10)); // ami-02, current again
        let plan = decide(
            NOW,
            &policy(3),
            &pointer(&["ami-02", "ami-03", "ami-02"]),
            &images,
        );
        assert_eq!(plan.undeprecate, ["ami-02"]);
        assert!(plan.deprecate.iter().any(|(id, _)| id == "ami-03"));
        assert_eq!(plan.protect, ["ami-03", "ami-02"]);
    }

    #[test]
    fn deprecate_after_zero_days_is_a_minute_ahead_never_in_the_past() {
        let policy = RetentionPolicy {
            deprecate_after_days: 0,
            ..RetentionPolicy::default()
        };
        let plan = decide(NOW, &policy, &pointer(&["ami-02"]), &monthly(2));
        assert_eq!(
            plan.deprecate,
            [("ami-01".to_string(), NOW + Duration::minutes(2))]
        );
    }

    #[test]
    fn keep_one_still_keeps_the_rollback_target() {
        let plan = decide(
            NOW,
            &policy(1),
            &pointer(&["ami-06", "ami-05"]),
            &monthly(6),
        );
        assert!(!plan.remove.contains(&"ami-05".to_string()));
        assert!(reason(&plan, "ami-05").starts_with("the rollback target"));
        // ami-04 is 60 days old: too young. 03, 02, 01 go.
        assert_eq!(plan.remove, ["ami-03", "ami-02", "ami-01"]);
    }

    #[test]
    fn the_newest_keep_images_stay_even_when_old_and_unused() {
        let old = RetentionPolicy {
            min_age_days: 0,
            ..policy(3)
        };
        let plan = decide(NOW, &old, &pointer(&["ami-05"]), &monthly(5));
        assert_eq!(plan.remove, ["ami-02", "ami-01"]);
        assert!(reason(&plan, "ami-04").starts_with("among the newest 3"));
        assert!(reason(&plan, "ami-03").starts_with("among the newest 3"));
    }

    #[test]
    fn any_value_the_pointer_held_within_keep_versions_stays() {
        let old = RetentionPolicy {
            min_age_days: 0,
            ..policy(4)
        };
        // A pin to an old image, then back: ami-01 is in the newest 4 versions.
        let plan = decide(
            NOW,
            &old,
            &pointer(&["ami-06", "ami-05", "ami-01", "ami-05"]),
            &monthly(6),
        );
        assert_eq!(plan.remove, ["ami-02"]);
        assert!(reason(&plan, "ami-01").starts_with("held by the pointer"));
    }

    #[test]
    fn a_recently_launched_image_stays() {
        let mut images = monthly(6);
        images[4].last_launched = Some(NOW - Duration::days(3)); // ami-02
        images[5].last_launched = Some(NOW - Duration::days(45)); // ami-01: not recently
        let plan = decide(NOW, &policy(3), &pointer(&["ami-06"]), &images);
        assert!(reason(&plan, "ami-02").starts_with("launched within 30 days"));
        assert_eq!(plan.remove, ["ami-03", "ami-01"]);
    }

    #[test]
    fn a_protected_image_to_remove_loses_its_protection_first_and_a_cooldown_keeps_it() {
        let mut images = monthly(6);
        images[5].protection = Protection::On; // ami-01
        images[4].protection = Protection::Cooldown("2026-12-02T08:00:00Z".into()); // ami-02
        let plan = decide(NOW, &policy(3), &pointer(&["ami-06"]), &images);
        assert_eq!(plan.unprotect, ["ami-01"]);
        assert_eq!(plan.remove, ["ami-03", "ami-01"]);
        assert!(reason(&plan, "ami-02").contains("protection ends 2026-12-02T08:00:00Z"));
    }

    #[test]
    fn images_not_listed_are_never_touched() {
        // The pointer holds a foreign image (not tagged, so not listed): nothing is done to it.
        let plan = decide(
            NOW,
            &policy(3),
            &pointer(&["ami-0foreign", "ami-02"]),
            &monthly(2),
        );
        let every: Vec<&String> = plan
            .protect
            .iter()
            .chain(&plan.unprotect)
            .chain(&plan.remove)
            .chain(plan.deprecate.iter().map(|(id, _)| id))
            .collect();
        assert!(every.iter().all(|id| id.as_str() != "ami-0foreign"));
        assert_eq!(plan.protect, ["ami-02"]); // the rollback target is ours
    }

    #[test]
    fn protection_values_of_ec2_are_read() {
        assert_eq!(Protection::parse(None), Protection::Off);
        assert_eq!(Protection::parse(Some("disabled")), Protection::Off);
        assert_eq!(Protection::parse(Some("enabled")), Protection::On);
        assert_eq!(
            Protection::parse(Some("enabled-with-cooldown")),
            Protection::On
        );
        assert_eq!(
            Protection::parse(Some("disabled-until 2026-12-02T08:00:00Z")),
            Protection::Cooldown("2026-12-02T08:00:00Z".into())
        );
    }

    mod handler {
        use aws_sdk_ec2::Client as Ec2;
        use aws_sdk_ec2::operation::delete_snapshot::DeleteSnapshotOutput;
        use aws_sdk_ec2::operation::deregister_image::{
            DeregisterImageError, DeregisterImageOutput,
        };
        use aws_sdk_ec2::operation::describe_image_attribute::DescribeImageAttributeOutput;
        use aws_sdk_ec2::operation::describe_images::DescribeImagesOutput;
        use aws_sdk_ec2::operation::disable_image_deregistration_protection::DisableImageDeregistrationProtectionOutput;
        use aws_sdk_ec2::operation::enable_image_deprecation::EnableImageDeprecationOutput;
        use aws_sdk_ec2::operation::enable_image_deregistration_protection::EnableImageDeregistrationProtectionOutput;
        use aws_sdk_ec2::types::{AttributeValue, BlockDeviceMapping, EbsBlockDevice};
        use aws_sdk_ssm::Client as Ssm;
        use aws_sdk_ssm::operation::get_parameter_history::GetParameterHistoryOutput;
        use aws_sdk_ssm::types::ParameterHistory;
        use golden_ami_core::testing::{self, MockClients, Rule, mock};

        use super::super::*;

        const EVENT: &str = include_str!("../../../events/retain/published.json");
        const NEW: &str = "ami-0ccccccccccccccc0";
        const OLD: &str = "ami-0123456789abcdef0";
        const OLDEST: &str = "ami-0aaaaaaaaaaaaaaa0";

        fn history() -> Rule {
            mock!(Ssm::get_parameter_history)
                .match_requests(|r| r.name() == Some(testing::POINTER))
                .then_output(|| {
                    let version = |v: i64, ami: &str| {
                        ParameterHistory::builder().version(v).value(ami).build()
                    };
                    GetParameterHistoryOutput::builder()
                        .parameters(version(7, OLD))
                        .parameters(version(8, NEW))
                        .build()
                })
        }

        fn images() -> Rule {
            mock!(Ec2::describe_images).then_output(|| {
                let image = |id: &str, created: &str| {
                    Image::builder()
                        .image_id(id)
                        .creation_date(created)
                        .block_device_mappings(
                            BlockDeviceMapping::builder()
                                .ebs(
                                    EbsBlockDevice::builder()
                                        .snapshot_id(format!("snap-{id}"))
                                        .build(),
                                )
                                .build(),
                        )
                        .build()
                };
                DescribeImagesOutput::builder()
                    .images(image(NEW, "2026-12-01T08:40:00.000Z"))
                    .images(image(OLD, "2026-11-01T08:40:00.000Z"))
                    .images(image(OLDEST, "2026-01-01T08:40:00.000Z"))
                    .build()
            })
        }

        fn never_launched() -> Rule {
            mock!(Ec2::describe_image_attribute)
                .then_output(|| DescribeImageAttributeOutput::builder().build())
        }

        fn launched_recently() -> Rule {
            mock!(Ec2::describe_image_attribute).then_output(|| {
                DescribeImageAttributeOutput::builder()
                    .last_launched_time(
                        AttributeValue::builder()
                            .value("2026-11-30T10:00:00Z")
                            .build(),
                    )
                    .build()
            })
        }

        struct Changes {
            protect: Rule,
            deprecate: Rule,
            unprotect: Rule,
            deregister: Rule,
            delete: Rule,
        }

        fn changes(deregister: Rule) -> Changes {
            Changes {
                protect: mock!(Ec2::enable_image_deregistration_protection)
                    .then_output(|| EnableImageDeregistrationProtectionOutput::builder().build()),
                deprecate: mock!(Ec2::enable_image_deprecation).then_output(|| {
                    EnableImageDeprecationOutput::builder()
                        .r#return(true)
                        .build()
                }),
                unprotect: mock!(Ec2::disable_image_deregistration_protection)
                    .then_output(|| DisableImageDeregistrationProtectionOutput::builder().build()),
                deregister,
                delete: mock!(Ec2::delete_snapshot)
                    .then_output(|| DeleteSnapshotOutput::builder().build()),
            }
        }

        async fn run(dry_run: bool, attribute: &Rule, changes: &Changes) -> RetainResult {
            let (history, images) = (history(), images());
            let mut deps = MockClients {
                ssm: vec![&history],
                ec2: vec![
                    &images,
                    attribute,
                    &changes.protect,
                    &changes.deprecate,
                    &changes.unprotect,
                    &changes.deregister,
                    &changes.delete,
                ],
                ..Default::default()
            }
            .deps();
            deps.config.retention = RetentionPolicy {
                keep: 2,
                dry_run,
                ..RetentionPolicy::default()
            };
            handler(&deps, testing::event(EVENT)).await.unwrap()
        }

        fn deregister_ok() -> Rule {
            mock!(Ec2::deregister_image)
                .match_requests(|r| r.image_id() == Some(OLDEST))
                .then_output(|| DeregisterImageOutput::builder().build())
        }

        #[tokio::test]
        async fn protects_deprecates_and_removes_in_each_published_region() {
            let (attribute, changes) = (never_launched(), changes(deregister_ok()));
            let result = run(false, &attribute, &changes).await;
            let region = &result.regions[0];
            assert_eq!(
                (result.dry_run, region.region.as_str()),
                (false, testing::REGION)
            );
            assert_eq!(region.protected, [NEW, OLD]);
            assert_eq!(region.deprecated[0].image_id, OLD);
            assert_eq!(region.deprecated[0].deprecate_at, "2026-12-31T08:05:00Z");
            assert_eq!(region.removed[0].image_id, OLDEST);
            assert_eq!(region.removed[0].snapshot_ids, [format!("snap-{OLDEST}")]);
            assert!(region.failed.is_empty(), "{:?}", region.failed);
            assert_eq!(
                (changes.protect.num_calls(), changes.deprecate.num_calls()),
                (2, 1)
            );
            assert_eq!(
                (changes.deregister.num_calls(), changes.delete.num_calls()),
                (1, 1)
            );
        }

        #[tokio::test]
        async fn a_dry_run_changes_nothing_and_says_what_it_would_do() {
            let (attribute, changes) = (never_launched(), changes(deregister_ok()));
            let result = run(true, &attribute, &changes).await;
            assert!(result.dry_run);
            assert_eq!(result.regions[0].removed[0].image_id, OLDEST);
            assert_eq!(result.regions[0].protected, [NEW, OLD]);
            let calls = [
                &changes.protect,
                &changes.deprecate,
                &changes.unprotect,
                &changes.deregister,
                &changes.delete,
            ]
            .iter()
            .map(|rule| rule.num_calls())
            .sum::<usize>();
            assert_eq!(calls, 0);
        }

        #[tokio::test]
        async fn a_recent_launch_keeps_the_oldest_image() {
            let (attribute, changes) = (launched_recently(), changes(deregister_ok()));
            let result = run(false, &attribute, &changes).await;
            assert!(result.regions[0].removed.is_empty());
            assert!(result.regions[0].kept.iter().any(|k| k.image_id == OLDEST
                && k.reason == "launched within 30 days (last 2026-11-30T10:00:00Z)"));
        }

        #[tokio::test]
        async fn a_failed_removal_is_reported_and_the_rest_is_done() {
            let refused = mock!(Ec2::deregister_image).then_error(|| {
                DeregisterImageError::generic(testing::service_error(
                    "InvalidParameterValue",
                    "The AMI has deregistration protection enabled",
                ))
            });
            let (attribute, changes) = (never_launched(), changes(refused));
            let result = run(false, &attribute, &changes).await;
            let region = &result.regions[0];
            assert!(region.removed.is_empty());
            assert_eq!(region.failed.len(), 1);
            assert!(
                region.failed[0].starts_with(&format!("could not remove {OLDEST}")),
                "{:?}",
                region.failed
            );
            assert!(region.failed[0].contains("deregistration protection"));
            assert_eq!(region.protected, [NEW, OLD]);
            assert_eq!(changes.delete.num_calls(), 0);
        }

        #[tokio::test]
        async fn without_a_publish_result_the_input_is_refused() {
            let deps = MockClients::default().deps();
            let mut input: StepInput = testing::event(EVENT);
            input.state.pointers.clear();
            let error = handler(&deps, input).await.unwrap_err();
            assert!(
                matches!(error, StepError::InvalidInput(ref m) if m.contains("state.pointers"))
            );
        }
    }
}

//! One family's part of the end notice: how it ended, per region what moved or where its
//! pointer stands, what changed, the boot test, cleanup and retention.

use golden_ami_core::types::{Outcome, PublishResult, RegionTarget, RestoredPointer};
use golden_ami_core::{PipelineState, TestStatus};

use crate::{PointerNow, Pointers, minutes};

/// Where a family failed: the state, and the region for a region's failure.
pub(crate) fn failed_where(
    result: &PipelineState,
    failure: &golden_ami_core::types::Failure,
) -> String {
    match region_failures(result).first() {
        Some(inner) if failure.error.error == "RegionFailed" => match &inner.region {
            Some(region) => format!("{} in {region}", inner.state),
            None => inner.state.clone(),
        },
        _ => match &failure.region {
            Some(region) => format!("{} in {region}", failure.state),
            None => failure.state.clone(),
        },
    }
}

/// The error name, the region's own for a region's failure.
pub(crate) fn failed_error(
    result: &PipelineState,
    failure: &golden_ami_core::types::Failure,
) -> String {
    match region_failures(result).first() {
        Some(inner) if failure.error.error == "RegionFailed" => inner.error.error.clone(),
        _ => failure.error.error.clone(),
    }
}

/// The failures of the family's regions (copy or publication), in region order.
pub(crate) fn region_failures(result: &PipelineState) -> Vec<&golden_ami_core::types::Failure> {
    result
        .regions
        .iter()
        .chain(&result.pointers)
        .filter_map(|r| r.failure.as_ref())
        .collect()
}

/// The region's pointer as this run read it.
pub(crate) fn started<'a>(result: &'a PipelineState, region: &str) -> Option<&'a RegionTarget> {
    result
        .current
        .as_ref()?
        .regions
        .iter()
        .find(|t| t.region == region)
}

/// What this run published in the region.
pub(crate) fn published<'a>(result: &'a PipelineState, region: &str) -> Option<&'a PublishResult> {
    result
        .pointers
        .iter()
        .filter_map(|p| p.publish.as_ref())
        .find(|p| p.region == region)
}

/// What RestorePointers did to the region's pointer, if this run had moved it.
pub(crate) fn restored<'a>(result: &'a PipelineState, region: &str) -> Option<&'a RestoredPointer> {
    result
        .restore
        .as_ref()?
        .pointers
        .iter()
        .find(|p| p.region == region)
}

/// A pointer this run moved and then put back (another region's did not move), as read now:
/// None when it holds something else than the put-back, which pointer_status then describes.
pub fn restored_status(
    pointer: &str,
    restored: &RestoredPointer,
    now: &PointerNow,
) -> Option<String> {
    let pointer = format!("{pointer} in {}", restored.region);
    let moved = format!("{} (version {})", restored.moved_to, restored.moved_version);
    match (now, &restored.restored_to, restored.restored_version) {
        (PointerNow::Read { value, version, .. }, Some(to), Some(at))
            if value == to && *version == at =>
        {
            Some(format!(
                "The pointer {pointer} was put back by this run to {value} (version {version}) after it had moved it to {moved}: a family's pointers move in all of its regions or in none, and another region's did not move."
            ))
        }
        _ => restored.left_because.as_ref().map(|why| {
            format!(
                "The pointer {pointer} was moved by this run to {moved} and NOT put back ({why}): check it (`golden-ami status`) and roll it back by hand if it must not hold that image."
            )
        }),
    }
}

/// One family's part of the end notice.
pub(crate) fn family_lines(result: &PipelineState, pointers: &Pointers) -> Vec<String> {
    let Some(family) = &result.family else {
        return vec![
            "A family without its name in the results (the state is inconsistent).".into(),
        ];
    };
    let mut lines = Vec::new();
    match result.outcome {
        Some(Outcome::Published) => {
            lines.push(format!("Family {}: published.", family.name));
            for region in &result.pointers {
                let Some(publish) = &region.publish else {
                    continue;
                };
                lines.push(match &publish.previous_ami_id {
                    Some(previous) => format!(
                        "- {}: {previous} -> {}; the pointer {} is at version {} and holds {} (consumers get it on their next deploy).",
                        publish.region,
                        publish.new_ami_id,
                        publish.parameter_name,
                        publish.version,
                        publish.new_ami_id
                    ),
                    None => format!(
                        "- {}: {}, the family's first image there; this run created the pointer {} (version {}) and shared it with the organization.",
                        publish.region, publish.new_ami_id, publish.parameter_name, publish.version
                    ),
                });
                if let Some(copy) = &region.copy {
                    let direct = family.encryption == golden_ami_core::Encryption::Direct
                        && publish.region == family.home_region;
                    lines.push(if direct {
                        format!(
                            "  Baked under {} as {} (direct encryption: no intermediate image, no copy).",
                            copy.kms_key_arn, copy.golden_ami_name
                        )
                    } else {
                        format!(
                            "  Encrypted under {} as {}.",
                            copy.kms_key_arn, copy.golden_ami_name
                        )
                    });
                }
                if let Some(share) = &region.share {
                    lines.push(format!(
                        "  Launch permission: {}.",
                        share.principals.describe().join(", ")
                    ));
                }
            }
            lines.extend(change_lines(result));
            if let Some(test) = &result.test_status {
                lines.push(test_line(test));
            }
            if let Some(approval) = &result.approval {
                lines.push(format!(
                    "Approved by {} at {}{}.",
                    approval.approved_by,
                    approval.approved_at,
                    approval
                        .reason
                        .as_ref()
                        .map(|r| format!(" ({r})"))
                        .unwrap_or_default()
                ));
            }
            if let Some(cleanup) = &result.cleanup {
                lines.push(cleanup_line(cleanup));
            }
            if let Some(retention) = &result.retention {
                lines.extend(retention_lines(retention));
            }
            for publish in result.pointers.iter().filter_map(|p| p.publish.as_ref()) {
                if let Some(previous) = &publish.previous_ami_id {
                    lines.push(format!(
                        "To roll back in {}: aws ssm put-parameter --region {} --name {} --type String --data-type aws:ec2:image --overwrite --value {previous}",
                        publish.region, publish.region, publish.parameter_name,
                    ));
                }
            }
        }
        Some(Outcome::UpToDate) => {
            let headline = result
                .bake_status
                .as_ref()
                .and_then(|s| s.updates.as_ref())
                .map_or_else(|| "no pending update".to_string(), |u| u.headline());
            let image = result
                .current
                .as_ref()
                .map_or("(unknown)", |c| c.ami_id.as_str());
            lines.push(format!(
                "Family {}: {image} is up to date: {headline}. The bake stopped without creating an image and terminated its instance; every pointer of the family is unchanged.",
                family.name
            ));
            lines.push(
                "To bake anyway (e.g. after a baseline change), set the stack parameter RebuildWhenUpToDate=true."
                    .to_string(),
            );
        }
        _ => {
            let failure = result.failure.as_ref();
            match failure {
                Some(failure) => {
                    lines.push(format!(
                        "Family {} FAILED at {} with {}.",
                        family.name,
                        failed_where(result, failure),
                        failed_error(result, failure)
                    ));
                    let inner = region_failures(result);
                    if failure.error.error == "RegionFailed" && !inner.is_empty() {
                        for region_failure in inner {
                            lines.push(format!(
                                "- {} in {}: {} ({})",
                                region_failure.state,
                                region_failure.region.as_deref().unwrap_or("?"),
                                region_failure.error.readable_cause(),
                                region_failure.error.error
                            ));
                        }
                    } else if failure.state == "AwaitApproval"
                        && failure.error.error == "States.Timeout"
                    {
                        lines.push(format!(
                            "Cause: nobody approved or denied it within its {} deadline; nothing was published.",
                            family
                                .approval
                                .map(|gate| minutes(gate.timeout_seconds))
                                .unwrap_or_else(|| "approval".into())
                        ));
                    } else {
                        lines.push(format!("Cause: {}", failure.error.readable_cause()));
                    }
                }
                None => lines.push(format!(
                    "Family {} FAILED (no failure recorded).",
                    family.name
                )),
            }
            for region in &family.regions {
                let now = pointers
                    .get(&(family.name.clone(), region.region.clone()))
                    .unwrap_or(&PointerNow::NotRead);
                let status = pointer_status(
                    &family.pointer,
                    &region.region,
                    started(result, &region.region),
                    published(result, &region.region),
                    now,
                );
                lines.push(
                    restored(result, &region.region).map_or(status.clone(), |restored| {
                        restored_status(&family.pointer, restored, now).unwrap_or(status)
                    }),
                );
            }
            match (&result.cleanup, &result.cleanup_error) {
                (_, Some(cleanup_error)) => lines.push(format!(
                    "Cleanup FAILED ({}: {}); remove by hand what is left: {}.",
                    cleanup_error.error,
                    cleanup_error.readable_cause(),
                    leftovers(result)
                )),
                (Some(cleanup), None) => lines.push(cleanup_line(cleanup)),
                (None, None) => lines.push("Cleanup did not run.".to_string()),
            }
        }
    }
    lines
}

/// Where a region's pointer stands, as read when the message is written: untouched since the
/// run read it, moved by this run, or moved by someone else during the run.
pub fn pointer_status(
    pointer: &str,
    region: &str,
    started: Option<&RegionTarget>,
    published: Option<&PublishResult>,
    now: &PointerNow,
) -> String {
    let started_from = started.and_then(|t| {
        t.ami_id
            .as_ref()
            .map(|ami| format!("{ami} (version {})", t.parameter_version))
    });
    let started_new = started.is_some_and(|t| t.ami_id.is_none());
    let pointer = format!("{pointer} in {region}");
    match now {
        PointerNow::Read { value, version, .. }
            if published.is_some_and(|p| &p.new_ami_id == value && p.version == *version) =>
        {
            format!(
                "The pointer {pointer} ALREADY holds the new image {value} (version {version}), published by this run: the failure came after publishing, so consumers get the new image."
            )
        }
        PointerNow::Read { value, version, .. }
            if started.is_some_and(|t| {
                t.ami_id.as_deref() == Some(value.as_str()) && t.parameter_version == *version
            }) =>
        {
            format!(
                "The pointer {pointer} still holds {value} (version {version}), untouched since this run read it: consumers are not affected."
            )
        }
        PointerNow::Read {
            value,
            version,
            changed_by,
            changed_at,
        } => match (&started_from, published) {
            (None, None) => format!(
                "The pointer {pointer} holds {value} (version {version}); this run did not change it."
            ),
            (started, published) => {
                let who = changed_by
                    .as_deref()
                    .unwrap_or("someone (the history names nobody)");
                let when = changed_at
                    .as_deref()
                    .map(|at| format!(" at {at}"))
                    .unwrap_or_default();
                let ours = match published {
                    Some(p) => format!(
                        "this run had published {} (version {}) before that change, which now stands",
                        p.new_ami_id, p.version
                    ),
                    None => "this run published nothing, so that change (a pin?) is respected"
                        .to_string(),
                };
                format!(
                    "The pointer {pointer} was changed during this run by {who}{when}: it now holds {value} (version {version}), not the {} this run started from; {ours}.",
                    started.as_deref().unwrap_or("value")
                )
            }
        },
        PointerNow::Missing if started_new => format!(
            "The pointer {pointer} does not exist yet (the family's first run there creates it when it publishes); consumers there have no image to resolve."
        ),
        PointerNow::Missing => format!(
            "The pointer {pointer} does not exist now; this run did not delete it (it started from {}).",
            started_from.as_deref().unwrap_or("no value")
        ),
        PointerNow::Unreadable(reason) => match published {
            Some(p) => format!(
                "The pointer {pointer} could not be read now ({reason}); this run published {} (version {}) to it.",
                p.new_ami_id, p.version
            ),
            None => format!(
                "The pointer {pointer} could not be read now ({reason}); this run did not change it (it started from {}).",
                started_from.as_deref().unwrap_or("no value")
            ),
        },
        PointerNow::NotRead => match (published, &started_from) {
            (Some(p), _) => format!(
                "The pointer {pointer} was set by this run to {} (version {}).",
                p.new_ami_id, p.version
            ),
            (None, Some(started)) => {
                format!("This run did not change the pointer {pointer}; it started from {started}.")
            }
            (None, None) => format!("This run did not change the pointer {pointer}."),
        },
    }
}

/// What the update changed, from the bake's report.
pub(crate) fn change_lines(state: &PipelineState) -> Vec<String> {
    let Some(updates) = state
        .bake_status
        .as_ref()
        .and_then(|status| status.updates.as_ref())
    else {
        return vec!["What changed: the bake reported no change summary.".to_string()];
    };
    let mut lines = vec![format!("What changed: {}.", updates.headline())];
    if !updates.advisory_ids.is_empty() {
        lines.push(format!("Advisories: {}.", updates.advisory_list()));
    }
    if let Some(report) = &updates.report {
        lines.push(format!("Full update report: {report}"));
    }
    lines
}

/// The boot test's result.
pub(crate) fn test_line(test: &TestStatus) -> String {
    format!(
        "Boot test: {} baseline controls passed ({} skipped) on instance {} launched from {}; check output: {}",
        test.controls_passed,
        test.controls_skipped,
        test.instance_id.as_deref().unwrap_or("(unknown)"),
        test.golden_ami_id.as_deref().unwrap_or("(unknown)"),
        test.report.as_deref().unwrap_or("(not recorded)")
    )
}

pub(crate) fn cleanup_line(cleanup: &golden_ami_core::CleanupResult) -> String {
    let mut parts = Vec::new();
    if !cleanup.stopped_automations.is_empty() {
        parts.push(format!(
            "stopped automation {} (its instance is terminated)",
            cleanup.stopped_automations.join(", ")
        ));
    }
    if !cleanup.terminated_instances.is_empty() {
        parts.push(format!(
            "terminated instances {}",
            cleanup.terminated_instances.join(", ")
        ));
    }
    if !cleanup.tagged_untagged.is_empty() {
        parts.push(format!(
            "tagged {} (left untagged by a create that failed half way) to remove it",
            cleanup.tagged_untagged.join(", ")
        ));
    }
    if !cleanup.deregistered_images.is_empty() {
        parts.push(format!(
            "deregistered {}",
            cleanup.deregistered_images.join(", ")
        ));
    }
    if !cleanup.deleted_snapshots.is_empty() {
        parts.push(format!(
            "deleted snapshots {}",
            cleanup.deleted_snapshots.join(", ")
        ));
    }
    if !cleanup.withdrawn_approvals.is_empty() {
        // The people asked to approve should stop looking: the run it was for is over.
        parts.push(format!(
            "withdrew the approval {} {} (the run that asked is over: there is nothing left to approve or deny)",
            if cleanup.withdrawn_approvals.len() == 1 {
                "request"
            } else {
                "requests"
            },
            cleanup.withdrawn_approvals.join(", ")
        ));
    }
    if !cleanup.kept.is_empty() {
        parts.push(format!("kept {}", cleanup.kept.join("; ")));
    }
    if parts.is_empty() {
        "Cleanup: nothing to remove.".to_string()
    } else {
        format!("Cleanup: {}.", parts.join("; "))
    }
}

/// A pinned family: what it holds, since when and why, and how to let runs patch it again.
pub(crate) fn pin_line(pin: &golden_ami_core::Pin) -> String {
    format!(
        "Family {}: pinned to {} in {} by {} since {}{}; this run leaves it alone (golden-ami unpin --family {} lets the next run patch it).",
        pin.family,
        pin.ami_id,
        pin.region,
        pin.pinned_by,
        pin.pinned_at,
        pin.reason
            .as_ref()
            .map(|r| format!(" ({r})"))
            .unwrap_or_default(),
        pin.family
    )
}

/// What Retain did to the family's older images per region (or, in a dry run, would do), and
/// what it could not do: the image is published either way.
pub(crate) fn retention_lines(retention: &golden_ami_core::RetainResult) -> Vec<String> {
    if let Some(error) = &retention.error {
        return vec![format!(
            "Retention could not run ({}: {}); the image is published, and older images are as they were.",
            error.error,
            error.readable_cause()
        )];
    }
    let (title, verb) = if retention.dry_run {
        ("Retention (dry run, nothing changed)", "would ")
    } else {
        ("Retention", "")
    };
    let mut lines = Vec::new();
    for region in &retention.regions {
        let deprecated = region
            .deprecated
            .iter()
            .map(|d| format!("{} (from {})", d.image_id, d.deprecate_at))
            .collect();
        let removed = region
            .removed
            .iter()
            .map(|r| format!("{} and {} snapshot(s)", r.image_id, r.snapshot_ids.len()))
            .collect();
        let mut parts: Vec<String> = [
            ("protect", region.protected.clone()),
            ("cancel the deprecation of", region.undeprecated.clone()),
            ("deprecate", deprecated),
            ("remove the protection of", region.unprotected.clone()),
            ("remove", removed),
        ]
        .into_iter()
        .filter(|(_, images)| !images.is_empty())
        .map(|(action, images)| format!("{verb}{action} {}", images.join(", ")))
        .collect();
        if parts.is_empty() {
            parts.push("nothing to change".into());
        }
        lines.push(format!(
            "{title} in {}: {}.",
            region.region,
            parts.join("; ")
        ));
        for kept in &region.kept {
            lines.push(format!("  kept {}: {}", kept.image_id, kept.reason));
        }
        for failed in &region.failed {
            lines.push(format!(
                "  Retention could not {}; the image is published all the same.",
                failed.trim_start_matches("could not ")
            ));
        }
    }
    lines
}

/// What a family's run may have left behind when its cleanup failed.
pub(crate) fn leftovers(state: &PipelineState) -> String {
    let mut items = Vec::new();
    if let Some(bake) = &state.bake {
        items.push(format!(
            "automation {} and image named {}",
            bake.automation_execution_id, bake.target_ami_name
        ));
    }
    if let Some(id) = state.intermediate_ami_id() {
        items.push(format!("intermediate image {id}"));
    } else if let Some(id) = state.baked_ami_id() {
        // A direct bake's image is the home region's golden image: listed with the regions
        // below once CopyImage took it (and never if it was published).
        let in_regions = state.regions.iter().any(|region| {
            region
                .copy
                .as_ref()
                .is_some_and(|copy| copy.golden_ami_id == id)
        });
        if !in_regions {
            items.push(format!(
                "baked image {id} (the home region's golden image of a direct bake)"
            ));
        }
    }
    if let Some(test) = &state.test {
        items.push(format!(
            "boot test automation {} and its instance",
            test.automation_execution_id
        ));
    }
    for region in &state.regions {
        if let (Some(copy), Some(target)) = (&region.copy, &region.target)
            && published(state, &target.region).is_none()
        {
            items.push(format!(
                "unpublished copy {} ({}) in {}",
                copy.golden_ami_id, copy.golden_ami_name, target.region
            ));
        }
    }
    if items.is_empty() {
        "nothing was created before the failure".to_string()
    } else {
        items.join(", ")
    }
}

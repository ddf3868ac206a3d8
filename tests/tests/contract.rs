//! The real files hold every rule, and every rule fails on a copy broken on purpose.

use pipeline_contract_tests::*;
use serde_json::json;

fn template() -> serde_yaml_ng::Value {
    yaml("infra/template.yaml")
}

fn assert_holds(violations: Vec<String>) {
    assert!(
        violations.is_empty(),
        "rule broken:\n{}",
        violations.join("\n")
    );
}

fn assert_broken(violations: Vec<String>, expected: &str) {
    assert!(
        violations.iter().any(|v| v.contains(expected)),
        "expected a violation mentioning {expected:?}, got {violations:?}"
    );
}

#[test]
fn every_task_runs_a_workspace_function_and_every_function_is_used() {
    let binaries = workspace_binaries();
    assert_eq!(binaries.len(), 17, "{binaries:?}");
    assert_holds(check_functions(&definition(), &template(), &binaries));

    // The reaper runs on the executions' status changes, not in a Task.
    let mut no_rule = template();
    no_rule["Resources"]["ReaperFunction"]["Properties"]["Events"] = serde_yaml_ng::Value::Null;
    assert_broken(
        check_functions(&definition(), &no_rule, &binaries),
        "ReaperFunction is used by no Task and no rule on the executions",
    );
    let mut no_reaper = binaries.clone();
    no_reaper.remove("reaper");
    assert_broken(
        check_functions(&definition(), &template(), &no_reaper),
        "Binary \"reaper\" is not a binary",
    );

    let mut broken = definition();
    state_mut(&mut broken, "CopyImage")["Resource"] = json!("${CopyTheImageFunctionArn}");
    assert_broken(
        check_functions(&broken, &template(), &binaries),
        "CopyTheImageFunctionArn",
    );

    let mut unused = definition();
    let share = state_mut(&mut unused, "ShareImage").clone();
    let verify = state_mut(&mut unused, "VerifyImage")["Resource"].clone();
    state_mut(&mut unused, "ShareImage")["Resource"] = verify;
    assert_broken(
        check_functions(&unused, &template(), &binaries),
        "ShareImageFunction is used by no Task and no rule",
    );
    *state_mut(&mut unused, "ShareImage") = share;

    let mut fewer = binaries.clone();
    fewer.remove("cleanup");
    assert_broken(
        check_functions(&definition(), &template(), &fewer),
        "\"cleanup\" is not a binary",
    );
}

#[test]
fn every_task_retries_transient_errors_and_catches_everything() {
    assert_holds(check_retry_and_catch(&definition()));

    let mut broken = definition();
    state_mut(&mut broken, "CheckCopy")["Retry"][0]["ErrorEquals"] =
        json!(["Lambda.ServiceException"]);
    assert_broken(
        check_retry_and_catch(&broken),
        "CheckCopy does not retry Throttled",
    );

    let mut broken = definition();
    state_mut(&mut broken, "PublishPointer")
        .as_object_mut()
        .unwrap()
        .remove("Catch");
    assert_broken(
        check_retry_and_catch(&broken),
        "PublishPointer has no Catch",
    );

    let mut broken = definition();
    state_mut(&mut broken, "StartBake")["Catch"][0]["ResultPath"] = json!("$");
    assert_broken(check_retry_and_catch(&broken), "would overwrite the state");
}

#[test]
fn every_error_name_in_the_definition_is_raised_by_a_step() {
    assert_holds(check_error_names(&definition()));
    let mut broken = definition();
    state_mut(&mut broken, "CheckBake")["Retry"][0]["ErrorEquals"]
        .as_array_mut()
        .unwrap()
        .push(json!("BakeThrottled"));
    assert_broken(check_error_names(&broken), "BakeThrottled");
}

#[test]
fn the_pointer_moves_only_after_verification_and_a_passed_boot_test() {
    assert_holds(check_gates_before_publish(&definition(), PUBLISH_GATES));
    let gates = |broken: &serde_json::Value| check_gates_before_publish(broken, PUBLISH_GATES);

    // A region recorded as verified without VerifyImage, or through its Catch.
    let mut broken = definition();
    state_mut(&mut broken, "ShareImage")["Next"] = json!("RegionVerified");
    assert_broken(gates(&broken), "without passing VerifyImage");
    let mut broken = definition();
    state_mut(&mut broken, "VerifyImageFailed")["Next"] = json!("RegionVerified");
    assert_broken(gates(&broken), "without passing VerifyImage");

    // Skipping the boot test, or leaving it through its Catch, publishes an untested image.
    let mut broken = definition();
    state_mut(&mut broken, "CopyToRegionsSucceeded?")["Default"] = json!("PublishPointers");
    assert_broken(gates(&broken), "without passing CheckTest");
    let mut broken = definition();
    state_mut(&mut broken, "CheckTestFailed")["Next"] = json!("PublishPointers");
    assert_broken(gates(&broken), "without passing CheckTest");
    let mut broken = definition();
    state_mut(&mut broken, "StartTest")["Next"] = json!("PublishPointers");
    assert_broken(gates(&broken), "without passing CheckTest");
}

#[test]
fn retention_runs_only_after_a_publish_and_cannot_fail_the_family() {
    assert_holds(check_retention(&definition()));
    let mut broken = definition();
    state_mut(&mut broken, "RetainFailed")["Next"] = json!("FamilyCleanupAfterFailure");
    assert_broken(
        check_retention(&broken),
        "a retention failure would fail a published family",
    );
    let mut broken = definition();
    state_mut(&mut broken, "CheckTestFailed")["Next"] = json!("Retain");
    assert_broken(check_retention(&broken), "CheckTestFailed leads to Retain");
    let mut broken = definition();
    state_mut(&mut broken, "PublishPointersChecked")["Next"] = json!("Retain");
    assert_broken(
        check_retention(&broken),
        "PublishPointersChecked leads to Retain",
    );
}

#[test]
fn a_region_that_failed_stops_its_family_before_the_boot_test_and_the_pointers() {
    assert_holds(check_map_results_are_checked(&definition()));

    let mut broken = definition();
    state_mut(&mut broken, "CopyToRegionsChecked")["Parameters"]["anyFailed.$"] =
        json!("States.ArrayContains($.regions[*].verified, true)");
    assert_broken(
        check_map_results_are_checked(&broken),
        "CopyToRegions is not followed by a Pass computing anyFailed.$",
    );

    let mut broken = definition();
    state_mut(&mut broken, "PublishPointersSucceeded?")["Choices"][0]["Next"] = json!("Cleanup");
    assert_broken(
        check_map_results_are_checked(&broken),
        "PublishPointers: PublishPointersSucceeded? does not leave the success path",
    );
}

#[test]
fn every_failure_route_sends_exactly_one_failed_notification() {
    assert_holds(check_one_failed_notification(&definition()));
    let check = |broken: &serde_json::Value| check_one_failed_notification(broken);

    // The failure path's cleanup skipping the notification.
    let mut broken = definition();
    state_mut(&mut broken, "CleanupAfterFailure")["Catch"][0]["Next"] = json!("PipelineFailed");
    assert_broken(check(&broken), "sends 0 FAILED notifications");

    // A notification failure notifying again.
    let mut broken = definition();
    state_mut(&mut broken, "NotifyFailure")["Catch"][0]["Next"] = json!("CleanupAfterFailure");
    assert_broken(check(&broken), "FAILED notifications");

    // A catch that ends the run quietly.
    let mut broken = definition();
    state_mut(&mut broken, "PlanRun")["Catch"][0]["Next"] = json!("Succeeded");
    assert_broken(check(&broken), "sends 0 FAILED notifications");

    // A family's failure recorded as a region's success.
    let mut broken = definition();
    state_mut(&mut broken, "CopyImageFailed")["Next"] = json!("RegionVerified");
    assert_broken(check(&broken), "which records verified: true");

    // A family notifying on its own: the run's end notice would be a second one.
    let mut broken = definition();
    let notify = state_mut(&mut broken, "NotifyFailure").clone();
    let processor = &mut state_mut(&mut broken, "ForEachFamily")["ItemProcessor"]["States"];
    processor["NotifyFamilyFailure"] = notify;
    processor["NotifyFamilyFailure"]["Next"] = json!("FamilyFailed");
    state_mut(&mut broken, "FamilyCleanupAfterFailure")["Next"] = json!("NotifyFamilyFailure");
    assert_broken(check(&broken), "inside its Map");

    // A finished run whose families failed, ending as a success.
    let mut broken = definition();
    state_mut(&mut broken, "NotifyRun")["Next"] = json!("Succeeded");
    assert_broken(check(&broken), "does not end in the Fail state");
}

#[test]
fn every_step_of_both_documents_terminates_the_instance_on_failure_and_cancel() {
    for file in ["infra/bake-document.yaml", "infra/test-document.yaml"] {
        let document = yaml(file);
        assert_holds(check_automation_document(&document));
        let mut broken = document.clone();
        broken["mainSteps"][2]["onFailure"] = "Abort".into();
        let name = document["mainSteps"][2]["name"]
            .as_str()
            .unwrap()
            .to_string();
        assert_broken(
            check_automation_document(&broken),
            &format!("step {name}: onFailure"),
        );
        let mut broken = document.clone();
        broken["mainSteps"][1]["onCancel"] = "Continue".into();
        assert_broken(check_automation_document(&broken), "onCancel");
    }
}

#[test]
fn no_policy_allows_every_action_and_every_wildcard_resource_says_why() {
    for file in [
        "infra/template.yaml",
        "infra/region.yaml",
        "infra/consumer-access.yaml",
    ] {
        assert_holds(check_policies(&read(file)));
    }
    let template = read("infra/template.yaml");
    let broken = template.replacen("Action: ssm:GetParameter\n", "Action: '*'\n", 1);
    assert_ne!(broken, template);
    assert_broken(check_policies(&broken), "allows Action \"*\"");
    let broken = template.replacen(
        "Resource: '*' # neither action supports resource-level permissions",
        "Resource: '*'",
        1,
    );
    assert_broken(check_policies(&broken), "without a comment");
    let broken = template.replacen(
        "Action: ssm:DescribeAutomationExecutions\n",
        "Action: ec2:*\n",
        1,
    );
    assert_broken(check_policies(&broken), "allows Action \"ec2:*\"");
}

#[test]
fn the_template_embeds_every_document_exactly() {
    for (resource, file, kind) in EMBEDDED_DOCUMENTS {
        let source = read(file);
        assert_holds(check_embedded_document(
            &template(),
            resource,
            *kind,
            &source,
        ));
        let changed = source.replacen('\n', "\n# changed\n", 1);
        let changed = if *kind == DocumentKind::Automation {
            source.replacen("timeoutSeconds: 900", "timeoutSeconds: 60", 1)
        } else {
            changed
        };
        assert_ne!(changed, source, "{file}");
        assert_broken(
            check_embedded_document(&template(), resource, *kind, &changed),
            "differs from its source file",
        );
    }
}

#[test]
fn images_and_snapshots_are_only_removed_when_the_pipeline_tagged_them() {
    assert_holds(check_tag_conditioned_deletes(&template()));
    let text = read("infra/template.yaml");
    // The first tag condition in the template is DeregisterPipelineImages'.
    let broken = text.replacen(
        "                aws:ResourceTag/Type: [golden-ami, golden-ami-intermediate]\n",
        "",
        1,
    );
    assert_ne!(broken, text);
    assert_broken(
        check_tag_conditioned_deletes(&serde_yaml_ng::from_str(&broken).unwrap()),
        "DeregisterPipelineImages allows ec2:DeregisterImage without",
    );
}

#[test]
fn kms_statements_do_what_they_say() {
    assert_holds(check_kms_statements(&template()));
    assert_holds(check_kms_statements(&yaml("infra/region.yaml")));
    let text = read("infra/template.yaml");
    let parse = |t: &str| serde_yaml_ng::from_str::<serde_yaml_ng::Value>(t).unwrap();

    let caller = text.replacen(
        "                  kms:ViaService: !Sub ec2.${AWS::Region}.amazonaws.com\n",
        "                  kms:ViaService: !Sub ec2.${AWS::Region}.amazonaws.com\n                  kms:CallerAccount: !Ref AWS::AccountId\n",
        1,
    );
    assert_broken(check_kms_statements(&parse(&caller)), "kms:CallerAccount");

    let every_key = text.replacen(
        "              Resource: !Sub arn:${AWS::Partition}:kms:${AWS::Region}:${AWS::AccountId}:key/*\n",
        "              Resource: '*' # any key\n",
        1,
    );
    assert_ne!(every_key, text);
    assert_broken(check_kms_statements(&parse(&every_key)), "on every key");

    let plaintext = text.replacen(
        "              - kms:GenerateDataKeyWithoutPlaintext\n            Resource: '*' # in a key policy, '*' means this key\n            Condition:\n              StringEquals:\n                aws:PrincipalOrgID",
        "              - kms:GenerateDataKey*\n            Resource: '*' # in a key policy, '*' means this key\n            Condition:\n              StringEquals:\n                aws:PrincipalOrgID",
        1,
    );
    assert_ne!(plaintext, text);
    assert_broken(
        check_kms_statements(&parse(&plaintext)),
        "mint plaintext data keys",
    );
}

#[test]
fn the_largest_deadlines_end_before_the_state_machine_times_out() {
    assert_holds(check_deadlines(&template(), &definition()));
    let mut broken = template();
    broken["Parameters"]["CopyTimeoutMinutes"]["MaxValue"] = 180.into();
    assert_broken(
        check_deadlines(&broken, &definition()),
        "past the state machine's TimeoutSeconds",
    );
    let mut shorter = definition();
    shorter["TimeoutSeconds"] = json!(28800);
    assert_broken(
        check_deadlines(&template(), &shorter),
        "lower the MaxValues",
    );
    let mut longer_approval = template();
    longer_approval["Parameters"]["ApprovalTimeoutMinutes"]["MaxValue"] = 10080.into();
    assert_broken(
        check_deadlines(&longer_approval, &definition()),
        "the targets document allows 4320",
    );
}

#[test]
fn the_run_lock_lasts_as_long_as_the_state_machine_can_run() {
    assert_holds(check_lock_lifetime(&template(), &definition()));
    let mut shorter = template();
    shorter["Globals"]["Function"]["Environment"]["Variables"]["STATE_MACHINE_TIMEOUT_SECONDS"] =
        "32400".into();
    assert_broken(
        check_lock_lifetime(&shorter, &definition()),
        "STATE_MACHINE_TIMEOUT_SECONDS is Some(32400)",
    );
    let mut longer = definition();
    longer["TimeoutSeconds"] = json!(360000);
    let violations = check_lock_lifetime(&template(), &longer);
    assert_broken(violations.clone(), "the run lock must outlive any run");
    assert_broken(
        violations,
        "golden_ami_core::config::STATE_MACHINE_TIMEOUT_SECONDS",
    );
}

#[test]
fn approval_waits_on_a_token_with_a_deadline_after_the_boot_test_and_a_denial_publishes_nothing() {
    assert_holds(check_approval_gate(&definition()));

    let mut no_deadline = definition();
    state_mut(&mut no_deadline, "AwaitApproval")
        .as_object_mut()
        .expect("a state")
        .remove("TimeoutSecondsPath");
    assert_broken(check_approval_gate(&no_deadline), "has no deadline");

    let mut wrong_path = definition();
    state_mut(&mut wrong_path, "AwaitApproval")["TimeoutSecondsPath"] =
        json!("$.family.approval.timeoutMinutes");
    assert_broken(
        check_approval_gate(&wrong_path),
        "does not find the family's approval.timeoutSeconds",
    );

    let mut no_token = definition();
    state_mut(&mut no_token, "AwaitApproval")["Parameters"]["Payload"]["taskToken.$"] =
        json!("$.token");
    assert_broken(check_approval_gate(&no_token), "nobody can answer it");

    let mut denial_publishes = definition();
    state_mut(&mut denial_publishes, "AwaitApproval")["Catch"][0]["Next"] =
        json!("PublishPointers");
    assert_broken(
        check_approval_gate(&denial_publishes),
        "a denial would publish",
    );

    let mut before_the_test = definition();
    state_mut(&mut before_the_test, "CopyToRegionsSucceeded?")["Default"] =
        json!("ApprovalRequired?");
    assert_broken(
        check_approval_gate(&before_the_test),
        "reachable without passing CheckTest",
    );

    let mut always = definition();
    state_mut(&mut always, "TestDone?")["Choices"][0]["Next"] = json!("AwaitApproval");
    assert_broken(
        check_approval_gate(&always),
        "TestDone? leads to AwaitApproval",
    );
}

#[test]
fn every_checkov_skip_says_why() {
    for file in [
        "infra/template.yaml",
        "infra/region.yaml",
        "infra/consumer-access.yaml",
    ] {
        assert_holds(check_checkov_skips(&yaml(file)));
    }
    let mut unexplained = template();
    unexplained["Resources"]["GoldenKey"]["Metadata"]["checkov"]["skip"][0]["comment"] =
        serde_yaml_ng::Value::from("fine");
    assert_broken(
        check_checkov_skips(&unexplained),
        "GoldenKey: the skip of CKV_AWS_33 does not say why",
    );
}

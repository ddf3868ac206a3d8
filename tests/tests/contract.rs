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
    assert_eq!(binaries.len(), 10, "{binaries:?}");
    assert_holds(check_functions(&definition(), &template(), &binaries));

    let mut broken = definition();
    broken["States"]["CopyImage"]["Resource"] = json!("${CopyTheImageFunctionArn}");
    assert_broken(
        check_functions(&broken, &template(), &binaries),
        "CopyTheImageFunctionArn",
    );

    let mut unused = definition();
    let share = unused["States"]["ShareImage"].clone();
    unused["States"]["ShareImage"]["Resource"] =
        unused["States"]["VerifyImage"]["Resource"].clone();
    assert_broken(
        check_functions(&unused, &template(), &binaries),
        "ShareImageFunction is used by no Task",
    );
    unused["States"]["ShareImage"] = share;

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
    broken["States"]["CheckCopy"]["Retry"][0]["ErrorEquals"] = json!(["Lambda.ServiceException"]);
    assert_broken(
        check_retry_and_catch(&broken),
        "CheckCopy does not retry Throttled",
    );

    let mut broken = definition();
    broken["States"]["PublishPointer"]
        .as_object_mut()
        .unwrap()
        .remove("Catch");
    assert_broken(
        check_retry_and_catch(&broken),
        "PublishPointer has no Catch",
    );

    let mut broken = definition();
    broken["States"]["StartBake"]["Catch"][0]["ResultPath"] = json!("$");
    assert_broken(check_retry_and_catch(&broken), "would overwrite the state");
}

#[test]
fn every_error_name_in_the_definition_is_raised_by_a_step() {
    assert_holds(check_error_names(&definition()));
    let mut broken = definition();
    broken["States"]["CheckBake"]["Retry"][0]["ErrorEquals"]
        .as_array_mut()
        .unwrap()
        .push(json!("BakeThrottled"));
    assert_broken(check_error_names(&broken), "BakeThrottled");
}

#[test]
fn the_pointer_moves_only_after_verification() {
    assert_holds(check_verify_before_publish(&definition()));
    let mut broken = definition();
    broken["States"]["ShareImage"]["Next"] = json!("PublishPointer");
    assert_broken(
        check_verify_before_publish(&broken),
        "without passing VerifyImage",
    );

    let mut broken = definition();
    broken["States"]["VerifyImage"]["Catch"][0]["Next"] = json!("PublishPointer");
    assert_broken(
        check_verify_before_publish(&broken),
        "without passing VerifyImage",
    );
}

#[test]
fn every_failure_route_sends_exactly_one_failed_notification() {
    assert_holds(check_one_failed_notification(&definition()));

    // The failure path's cleanup skipping the notification.
    let mut broken = definition();
    broken["States"]["CleanupAfterFailure"]["Catch"][0]["Next"] = json!("PipelineFailed");
    assert_broken(
        check_one_failed_notification(&broken),
        "sends 0 FAILED notifications",
    );

    // A notification failure notifying again.
    let mut broken = definition();
    broken["States"]["NotifyFailure"]["Catch"][0]["Next"] = json!("CleanupAfterFailure");
    assert_broken(
        check_one_failed_notification(&broken),
        "FAILED notifications",
    );

    // A catch that ends the run quietly.
    let mut broken = definition();
    broken["States"]["CopyImage"]["Catch"][0]["Next"] = json!("Succeeded");
    assert_broken(
        check_one_failed_notification(&broken),
        "sends 0 FAILED notifications",
    );
}

#[test]
fn every_bake_step_terminates_the_instance_on_failure_and_cancel() {
    let document = yaml("infra/bake-document.yaml");
    assert_holds(check_bake_document(&document));

    let mut broken = document.clone();
    broken["mainSteps"][2]["onFailure"] = "Abort".into();
    assert_broken(check_bake_document(&broken), "step updateOs: onFailure");

    let mut broken = document.clone();
    broken["mainSteps"][4]["onCancel"] = "Continue".into();
    assert_broken(check_bake_document(&broken), "step createImage: onCancel");
}

#[test]
fn no_policy_allows_every_action_and_every_wildcard_resource_says_why() {
    for file in ["infra/template.yaml", "infra/consumer-access.yaml"] {
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
    let broken = template.replacen("- ssm:DescribeAutomationExecutions\n", "- ec2:*\n", 1);
    assert_broken(check_policies(&broken), "allows Action \"ec2:*\"");
}

#[test]
fn the_template_embeds_the_bake_document_exactly() {
    let document = yaml("infra/bake-document.yaml");
    assert_holds(check_embedded_document(&template(), &document));
    let mut changed = document.clone();
    changed["mainSteps"][2]["timeoutSeconds"] = 60.into();
    assert_broken(check_embedded_document(&template(), &changed), "differs");
}

use golden_ami_core::{Deps, StepInput, init_tracing, report};
use lambda_runtime::{Error, LambdaEvent, service_fn};

#[tokio::main]
async fn main() -> Result<(), Error> {
    init_tracing();
    let deps = Deps::from_env().await?;
    lambda_runtime::run(service_fn(|event: LambdaEvent<StepInput>| async {
        verify_image::handler(&deps, event.payload)
            .await
            .map_err(report)
    }))
    .await
}

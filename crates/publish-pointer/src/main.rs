#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    golden_ami_core::runtime::run(publish_pointer::run).await
}

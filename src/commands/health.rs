//! `health`: ask a running server whether it serves, for container and
//! supervisor health checks.

use std::time::Duration;

use crate::config::HealthConfig;

/// Exit 0 if the server's allocation service is SERVING, 1 otherwise.
pub async fn health(config: HealthConfig) -> anyhow::Result<()> {
    use tonic_health::pb::health_check_response::ServingStatus;
    use tonic_health::pb::health_client::HealthClient;
    use tonic_health::pb::HealthCheckRequest;
    let check = async {
        let channel =
            tonic::transport::Endpoint::from_shared(format!("http://{}", config.address))?
                .connect()
                .await?;
        let mut client = HealthClient::new(channel);
        let response = client
            .check(HealthCheckRequest {
                service: "allocation.v1.AllocationService".into(),
            })
            .await?;
        anyhow::Ok(response.into_inner().status())
    };
    match tokio::time::timeout(Duration::from_secs(config.timeout_seconds), check).await {
        Ok(Ok(ServingStatus::Serving)) => {
            println!("SERVING");
            Ok(())
        }
        Ok(Ok(status)) => {
            println!("{}", status.as_str_name());
            std::process::exit(1)
        }
        Ok(Err(error)) => {
            println!("cannot reach {}: {error:#}", config.address);
            std::process::exit(1)
        }
        Err(_) => {
            println!(
                "no answer from {} within {} s",
                config.address, config.timeout_seconds
            );
            std::process::exit(1)
        }
    }
}

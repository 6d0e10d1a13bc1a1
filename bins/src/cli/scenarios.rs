//! `ffrtmp scenarios`: the scenario names the master accepts.

use ffrtmp_http::ApiClient;

use crate::cli::print_json;

/// Prints the scenarios the master accepts (JSON).
pub async fn run(api: &ApiClient) -> anyhow::Result<()> {
    let v = api.scenarios().await?;
    print_json(&v)?;
    Ok(())
}

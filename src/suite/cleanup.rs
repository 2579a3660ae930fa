//! `ckscheck cleanup`: removes stores that a crashed or interrupted run left behind.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use crate::model::Fixtures;
use crate::runner::KmsClient;
use crate::runner::config;
use crate::runner::journal::{Entry, Journal};
use crate::runner::session::{Endpoint, RetryPolicy, remove_journaled};

/// Removes every store the journal says may still exist, waiting up to `transition_timeout`
/// for a store to leave CONNECTING or DISCONNECTING; exit code 0 when none is left.
pub async fn cleanup(
    journal_path: &Path,
    region: Option<&str>,
    transition_timeout: Duration,
) -> Result<u8, String> {
    let read = Journal::leftovers(journal_path)
        .map_err(|e| format!("cannot read the journal {}: {e}", journal_path.display()))?;
    for warning in &read.warnings {
        eprintln!("ckscheck: warning: {warning}");
    }
    let leftovers = read.stores;
    if leftovers.is_empty() {
        println!("nothing to clean up in {}", journal_path.display());
        return Ok(0);
    }
    let journal = Journal::open(journal_path).map_err(|e| e.to_string())?;
    let env = |k: &str| std::env::var(k).ok();
    // Entries name their store's region; only older journals need one given.
    let region = match config::region(region, &env).await {
        Some(region) => region,
        None if leftovers.iter().all(|l| l.region.is_some()) => String::new(),
        None => {
            return Err("no region: give --region, or set AWS_REGION or AWS_DEFAULT_REGION".into());
        }
    };
    let credential = config::credentials().await?;
    let mut left = 0;
    for leftover in leftovers {
        let (url, name, id) = (leftover.endpoint, leftover.name, leftover.id);
        // The store's own region when the journal names it, else the one given.
        let store_region = leftover.region.clone().unwrap_or_else(|| region.clone());
        let client = KmsClient::new(
            &url,
            &store_region,
            credential.clone(),
            Duration::from_secs(10),
        )?;
        let endpoint = Endpoint {
            client,
            url: url.clone(),
            rate: Endpoint::rate_limiter(5),
            retry: RetryPolicy::default(),
            journal: None,
            fixtures: Arc::new(Fixtures::default()),
            transition_timeout,
        };
        let result = remove_journaled(&endpoint, &name, id).await;
        match result {
            Ok(found) => {
                match found {
                    Some(id) => println!("removed {name} ({id}) at {url}"),
                    None => println!("{name} at {url} is not there (never created, or gone)"),
                }
                journal
                    .record(&Entry::Gone {
                        endpoint: url,
                        region: leftover.region,
                        name,
                    })
                    .map_err(|e| e.to_string())?;
            }
            Err(why) => {
                left += 1;
                println!("could not remove {name} at {url}: {why}");
            }
        }
    }
    Ok(if left == 0 { 0 } else { 1 })
}

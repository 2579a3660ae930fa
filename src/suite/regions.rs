//! Regions trials run in. KMS keeps each region apart: its own stores, quota and listings. Against an
//! endpoint shown to do the same, trials run at once, each in a region of its own, so no trial
//! sees another's stores appear in a listing, share its quota or take its backend. Where that
//! is not shown, trials take turns in the run's own region.

use std::sync::{Condvar, Mutex};

use super::{Suite, Target};
use crate::generate::backends::{self, create_body};
use crate::generate::{GenContext, NAME_REF, Step};
use crate::model::ModelConfig;
use crate::runner::KmsClient;
use crate::runner::session::Session;

/// Regions tried for trials run at once, after the run's own, in this order.
pub const REGION_CHOICES: [&str; 12] = [
    "us-east-1",
    "us-east-2",
    "us-west-1",
    "us-west-2",
    "eu-west-1",
    "eu-west-2",
    "eu-central-1",
    "ap-southeast-1",
    "ap-southeast-2",
    "ap-northeast-1",
    "ca-central-1",
    "sa-east-1",
];

/// One region a trial runs in, with the quota left there.
#[derive(Debug, Clone)]
pub struct Region {
    /// The region requests are signed for.
    pub region: String,
    /// What predictions use (this region's quota).
    pub model: ModelConfig,
    /// What generators may draw on (this region's quota).
    pub gen_context: GenContext,
}

impl Region {
    /// `region` with `quota` stores of room.
    pub fn new(
        region: &str,
        model: &ModelConfig,
        gen_context: &GenContext,
        quota: usize,
    ) -> Region {
        Region {
            region: region.to_string(),
            model: ModelConfig {
                quota,
                region: region.to_string(),
                ..model.clone()
            },
            gen_context: GenContext {
                quota,
                ..gen_context.clone()
            },
        }
    }
}

/// The regions of a run: a trial holds one from its start to its end.
pub struct Regions {
    /// The run's own region (always one of them).
    pub home: Region,
    /// When false, every trial gets the home region at once (each embedded trial has an
    /// emulator of its own, so nothing is shared).
    exclusive: bool,
    free: Mutex<Vec<Region>>,
    freed: Condvar,
}

impl Regions {
    /// One region every trial may share at once (the embedded emulator: each trial has its own).
    pub fn shared(home: Region) -> Regions {
        Regions {
            home,
            exclusive: false,
            free: Mutex::new(Vec::new()),
            freed: Condvar::new(),
        }
    }

    /// Regions held by one trial at a time: the home region and `extra`.
    pub fn exclusive(home: Region, extra: Vec<Region>) -> Regions {
        let mut free = vec![home.clone()];
        free.extend(extra);
        free.reverse();
        Regions {
            home,
            exclusive: true,
            free: Mutex::new(free),
            freed: Condvar::new(),
        }
    }

    /// Adds `extra` to the regions trials can hold (a shared pool stays as it is).
    pub fn add(&self, extra: Vec<Region>) {
        if !self.exclusive {
            return;
        }
        let mut free = self.free.lock().unwrap_or_else(|p| p.into_inner());
        for region in extra {
            free.insert(0, region);
            self.freed.notify_one();
        }
    }

    /// How many trials can run at once (None: no limit from the regions).
    pub fn count(&self) -> Option<usize> {
        self.exclusive
            .then(|| self.free.lock().unwrap_or_else(|p| p.into_inner()).len())
    }

    /// A region for one trial, waiting for one to be free.
    pub fn take(&self) -> Held<'_> {
        if !self.exclusive {
            return Held {
                pool: self,
                lane: Some(self.home.clone()),
            };
        }
        let mut free = self.free.lock().unwrap_or_else(|p| p.into_inner());
        loop {
            if let Some(lane) = free.pop() {
                return Held {
                    pool: self,
                    lane: Some(lane),
                };
            }
            free = self.freed.wait(free).unwrap_or_else(|p| p.into_inner());
        }
    }
}

/// A region held by a trial; given back when dropped.
pub struct Held<'a> {
    pool: &'a Regions,
    lane: Option<Region>,
}

impl std::ops::Deref for Held<'_> {
    type Target = Region;
    fn deref(&self) -> &Region {
        self.lane.as_ref().expect("held until dropped")
    }
}

impl Drop for Held<'_> {
    fn drop(&mut self) {
        if let (true, Some(lane)) = (self.pool.exclusive, self.lane.take()) {
            let mut free = self.pool.free.lock().unwrap_or_else(|p| p.into_inner());
            free.push(lane);
            self.pool.freed.notify_one();
        }
    }
}

impl Suite {
    /// Up to `count` regions besides the home one where trials can run apart, each probed
    /// (see [`Suite::probe_region`]), and the line that tells the terminal which, or why none.
    pub(super) fn more_regions(&self, count: usize, quota: usize) -> (Vec<Region>, String) {
        let home = &self.regions.home;
        let mut out = Vec::new();
        let mut stopped = None;
        for region in REGION_CHOICES.iter().filter(|r| **r != home.region) {
            if out.len() == count {
                break;
            }
            match self.probe_region(region, quota) {
                Ok(room) => out.push(Region::new(region, &home.model, &home.gen_context, room)),
                Err(why) => {
                    stopped = Some(format!("{region}: {why}"));
                    break;
                }
            }
        }
        if out.is_empty() {
            let why = stopped.unwrap_or_else(|| "no other region to try".into());
            return (
                out,
                format!("trials run one at a time in {}: {why}", home.region),
            );
        }
        let names: Vec<&str> = out.iter().map(|r| r.region.as_str()).collect();
        let mut line = format!(
            "{} trials at once, each in a region of its own: {}, {} (the endpoint keeps regions apart)",
            out.len() + 1,
            home.region,
            names.join(", ")
        );
        if let Some(why) = stopped {
            line.push_str(&format!("; no more regions: {why}"));
        }
        (out, line)
    }

    /// Whether trials can run in `region` of the remote endpoint apart from the home region, and
    /// with how much quota: a store created there (journaled, removed at once) must be
    /// unknown in the home region. Err says why not.
    pub(super) fn probe_region(&self, region: &str, quota: usize) -> Result<usize, String> {
        let Target::Remote { url } = &self.target else {
            return Err("the embedded emulator has no regions to probe".into());
        };
        let foreign =
            self.runtime
                .block_on(super::run::foreign_stores(url, region, &self.credential))?;
        let room = quota.saturating_sub(foreign);
        if room == 0 {
            return Err(format!(
                "{region} has no room: {foreign} store(s) there already"
            ));
        }
        let Some(backend) = backends::creatable(&self.fixtures).into_iter().next() else {
            return Err("no fixture backend can back a store".into());
        };
        let there = self.endpoint_in(region)?;
        let home = self.endpoint_in(&self.regions.home.region)?;
        let create = Step::Call {
            operation: "CreateCustomKeyStore".into(),
            body: create_body(&self.fixtures, backend, &format!("{NAME_REF}region"), true),
            expect: None,
        };
        let sequence = self
            .sequences
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let prefix = self.prefix.clone();
        self.runtime.block_on(async move {
            let mut session = Session::new(there, &prefix, sequence);
            session.run(&[create]).await;
            let made = session.history().exchanges.last().cloned();
            let verdict = match made {
                Some(e) if e.status() == Some(200) => {
                    let name = e.request["CustomKeyStoreName"].as_str().unwrap_or_default();
                    match listed_names(&home.client).await {
                        Ok(names) if names.iter().any(|n| n == name) => Err(format!(
                            "a store created in {region} is listed in {}: the endpoint does not keep regions apart",
                            self.regions.home.region
                        )),
                        Ok(_) => Ok(room),
                        Err(why) => Err(format!(
                            "the listing in {} could not be read: {why}",
                            self.regions.home.region
                        )),
                    }
                }
                Some(e) => Err(format!(
                    "a valid create in {region} was answered {}",
                    e.status()
                        .map_or_else(|| "with no answer".into(), |s| s.to_string())
                )),
                None => Err("the run is interrupted".into()),
            };
            for (id, why) in session.cleanup().await {
                eprintln!("ckscheck: could not remove store {id}: {why} (it is in the journal)");
            }
            verdict
        })
    }
}

/// Every store name a full, unfiltered listing shows (Err: the listing is not whole).
async fn listed_names(client: &KmsClient) -> Result<Vec<String>, String> {
    let listing = super::run::list_all(client, 100).await?;
    if let Some(why) = listing.cut {
        return Err(why);
    }
    Ok(listing
        .stores
        .iter()
        .filter_map(|s| s["CustomKeyStoreName"].as_str().map(str::to_string))
        .collect())
}

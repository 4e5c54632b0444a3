//! `gatefold rollback`: each chosen gateway back to the version applied
//! before its last apply (its manifest's `previous`).

use crate::apply::{End, GatewayEnd, Summary};
use crate::file::Fleet;
use crate::manifest::{Action, Manifest};
use crate::parallel::each;
use crate::plan::PARALLEL;
use crate::provider::{self, Error, Settings};

/// Rolls back `gateways` (every gateway when empty), in parallel.
pub fn rollback(
    fleet: &Fleet,
    only: Option<&str>,
    revision: Option<String>,
    settings: &Settings,
) -> Summary {
    let chosen: Vec<(usize, String)> = fleet
        .waves
        .iter()
        .enumerate()
        .flat_map(|(w, wave)| wave.iter().map(move |g| (w + 1, g.clone())))
        .filter(|(_, g)| only.is_none_or(|o| o == g))
        .collect();
    let gateways = each(chosen, PARALLEL, |(wave, name)| {
        let end = match one(fleet, &name, revision.clone(), settings) {
            Ok(()) => End::RolledBack,
            Err(e) => End::Failed(e.to_string()),
        };
        GatewayEnd {
            gateway: name,
            wave,
            end,
            failure: None,
        }
    });
    Summary {
        command: "rollback",
        ok: gateways.iter().all(|g| g.end == End::RolledBack),
        gateways,
    }
}

fn one(
    fleet: &Fleet,
    name: &str,
    revision: Option<String>,
    settings: &Settings,
) -> Result<(), Error> {
    let client = provider::for_gateway(&fleet.gateways[name], settings)?;
    let running = client.running()?;
    let Some(m) = running.manifest_from(client.as_ref())? else {
        return Err(Error::Failed(
            "gatefold never applied here: nothing to roll back to".into(),
        ));
    };
    let Some(previous) = m.previous.clone() else {
        return Err(Error::Failed(
            "its last apply records no earlier version (rolled back already?)".into(),
        ));
    };
    if running.hash != m.hash {
        return Err(Error::Failed(format!(
            "it has drifted (runs {}, gatefold applied {}): see `gatefold drift`, then apply",
            running.hash, m.hash
        )));
    }
    let record = Manifest::new(&previous, None, revision, Action::Rollback);
    client.revert(&running.hash, &previous, &record)?;
    client.verify(&previous)
}

//! `crm serve`: the HTTP API over the database (crm-server), with the demo tenant on request.

use crm_core::access::Actor;
use crm_core::clock::{RandomIds, SystemClock};
use crm_core::demo::{self, DemoSize};
use crm_core::service::Service;
use crm_server::{Config, ServeArgs};
use std::path::Path;
use std::process::ExitCode;
use std::sync::Arc;

pub fn run(database: &Path, blob_dir: Option<&Path>, blob_url: Option<&str>, args: &ServeArgs) -> ExitCode {
    crm_server::init_logging(args.log_json);
    let runtime = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(r) => r,
        Err(e) => {
            eprintln!("crm serve: cannot start the runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(serve(database, blob_dir, blob_url, args)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("crm serve: {e}");
            ExitCode::FAILURE
        }
    }
}

async fn serve(
    database: &Path,
    blob_dir: Option<&Path>,
    blob_url: Option<&str>,
    args: &ServeArgs,
) -> Result<(), Box<dyn std::error::Error>> {
    let cfg = Config::from_args(args)?;
    // A SQLite file or a `postgres://` URL; PostgreSQL runs on this runtime.
    // SQLite readers for as many reads as the server runs at once: none is opened per request.
    let store = Arc::new(crm_store::connect(database).await?.with_readers(cfg.max_in_flight));
    // A directory, or an S3-compatible bucket (`--blob-url`; the store runs its own runtime).
    let blobs = crm_store::blob::open_configured(database, blob_dir, blob_url)?;
    let svc = Service::new(store.clone(), Arc::new(SystemClock), Arc::new(RandomIds)).with_blob_store(blobs);
    if args.demo && svc.tenants().await?.is_empty() {
        let size = DemoSize {
            contacts: 1500,
            leads: 3000,
            activities_per_lead: 3,
        };
        let bar = crate::progress::Bar::start("demo");
        let d = demo::load_with(store.clone(), Arc::new(RandomIds), svc.now(), size, &bar.progress()).await?;
        drop(bar);
        // One password for the demo users, printed once: it is a demo, not a deployment.
        let password = std::env::var("CRM_DEMO_PASSWORD")
            .ok()
            .filter(|p| crm_core::validate::check_password(p).is_ok())
            .unwrap_or_else(|| format!("demo-{}", &crm_server::auth::tokens::random_secret()[..16]));
        // One hash for every demo user (argon2 is slow on purpose); the core checks the policy.
        let phc = crm_server::auth::password::hash_now(&password);
        let same = |_: &str| -> crm_core::Result<String> { Ok(phc.clone()) };
        for (_, id, _) in &d.users {
            svc.set_password(&Actor::system(d.tenant), *id, &password, &same)
                .await?;
        }
        eprintln!(
            "loaded the demo tenant (organization {}) into {}",
            d.tenant,
            store.location()
        );
        eprintln!("demo users (password: {password}):");
        for (role, _, email) in &d.users {
            eprintln!("  {role:<10} {email}");
        }
        eprintln!("dashboard: http://{}/?organization={}", cfg.listen, d.tenant);
    }
    eprintln!(
        "listening on http://{} (the dashboard at /, the API reference at /docs)",
        cfg.listen
    );
    crm_server::serve(svc, cfg).await?;
    Ok(())
}

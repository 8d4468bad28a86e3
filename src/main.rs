//! The `holoptic` command: serve, migrate, openapi, bootstrap.

use std::process::ExitCode;

use clap::{Parser, Subcommand, ValueEnum};
use holoptic::bootstrap::{bootstrap, BootstrapInput};
use holoptic::config::Config;
use holoptic::domain::network::{JoinPolicy, Visibility};
use holoptic::Application;

#[derive(Parser)]
#[command(
    name = "holoptic",
    version,
    about = "Accounting for open value networks"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Migrate the database and serve the API.
    Serve(Box<Config>),
    /// Run pending migrations and exit.
    Migrate {
        /// Database to migrate.
        #[arg(long, env = "DATABASE_URL", default_value = "sqlite://holoptic.db")]
        database_url: String,
    },
    /// Print the OpenAPI document (commit it as openapi/openapi.json).
    Openapi,
    /// Check the token ledger's invariants of one network (or all); exits non-zero on a problem.
    LedgerCheck {
        /// Database to check.
        #[arg(long, env = "DATABASE_URL", default_value = "sqlite://holoptic.db")]
        database_url: String,
        /// Network id or slug (default: every network).
        #[arg(long)]
        network: Option<String>,
    },
    /// Replay a network's journal (or every network's): the hash chain, every distribution and
    /// every token balance. Exits non-zero on a problem, naming the first bad entry.
    Verify {
        /// Database to verify.
        #[arg(long, env = "DATABASE_URL", default_value = "sqlite://holoptic.db")]
        database_url: String,
        /// Network id or slug (default: every network).
        #[arg(long)]
        network: Option<String>,
    },
    /// Create the first network and its first steward; prints the steward's API key once.
    Bootstrap {
        /// Database to use (migrated first).
        #[arg(long, env = "DATABASE_URL", default_value = "sqlite://holoptic.db")]
        database_url: String,
        /// Network name.
        #[arg(long)]
        name: String,
        /// Network slug (3-64 of a-z, 0-9, '-').
        #[arg(long)]
        slug: String,
        /// The steward's display name.
        #[arg(long)]
        steward: String,
        /// Who may join.
        #[arg(long, value_enum, default_value_t = JoinArg::Open)]
        join_policy: JoinArg,
        /// Who may read.
        #[arg(long, value_enum, default_value_t = VisibilityArg::Public)]
        visibility: VisibilityArg,
        /// A currency as CODE:SCALE, e.g. EUR:2 (repeatable).
        #[arg(long = "currency")]
        currencies: Vec<String>,
    },
}

#[derive(Clone, Copy, ValueEnum)]
enum JoinArg {
    Open,
    Invite,
}

#[derive(Clone, Copy, ValueEnum)]
enum VisibilityArg {
    Public,
    Members,
}

fn init_tracing(json: bool) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    if json {
        builder.json().init();
    } else {
        builder.init();
    }
}

fn parse_currency(raw: &str) -> Result<(String, i64), String> {
    let (code, scale) = raw
        .split_once(':')
        .ok_or_else(|| format!("--currency {raw}: expected CODE:SCALE"))?;
    let scale = scale
        .parse::<i64>()
        .map_err(|_| format!("--currency {raw}: scale must be a whole number"))?;
    Ok((code.to_owned(), scale))
}

async fn run(cli: Cli) -> Result<(), String> {
    match cli.command {
        Command::Serve(config) => {
            init_tracing(config.log_format == "json");
            tracing::info!(config = ?config, "starting");
            let app = Application::build(*config)?;
            tracing::info!(port = app.port(), "listening");
            app.run_until_stopped().await.map_err(|e| e.to_string())
        }
        Command::Migrate { database_url } => {
            init_tracing(false);
            let db = holoptic::app::open_db(&Config::for_database(&database_url))?;
            let applied = holoptic::app::migrate(&db)?;
            println!(
                "applied {} migration(s): {}",
                applied.len(),
                applied.join(", ")
            );
            Ok(())
        }
        Command::Openapi => {
            let json = holoptic::openapi()
                .to_pretty_json()
                .map_err(|e| e.to_string())?;
            println!("{json}");
            Ok(())
        }
        Command::LedgerCheck {
            database_url,
            network,
        } => {
            let db = holoptic::app::open_db(&Config::for_database(&database_url))?;
            let report = tokio::task::spawn_blocking(move || ledger_check(&db, network.as_deref()))
                .await
                .map_err(|e| e.to_string())??;
            println!("{report}");
            Ok(())
        }
        Command::Verify {
            database_url,
            network,
        } => {
            let db = holoptic::app::open_db(&Config::for_database(&database_url))?;
            let report = tokio::task::spawn_blocking(move || verify(&db, network.as_deref()))
                .await
                .map_err(|e| e.to_string())??;
            println!("{report}");
            Ok(())
        }
        Command::Bootstrap {
            database_url,
            name,
            slug,
            steward,
            join_policy,
            visibility,
            currencies,
        } => {
            init_tracing(false);
            let db = holoptic::app::open_db(&Config::for_database(&database_url))?;
            holoptic::app::migrate(&db)?;
            let currencies = currencies
                .iter()
                .map(|c| parse_currency(c))
                .collect::<Result<Vec<_>, _>>()?;
            let input = BootstrapInput {
                name,
                slug,
                steward,
                join_policy: match join_policy {
                    JoinArg::Open => JoinPolicy::Open,
                    JoinArg::Invite => JoinPolicy::Invite,
                },
                visibility: match visibility {
                    VisibilityArg::Public => Visibility::Public,
                    VisibilityArg::Members => Visibility::Members,
                },
                currencies,
            };
            let out = tokio::task::spawn_blocking(move || bootstrap(&db, input))
                .await
                .map_err(|e| e.to_string())??;
            println!(
                "{}",
                serde_json::to_string_pretty(&out).map_err(|e| e.to_string())?
            );
            Ok(())
        }
    }
}

fn ledger_check(db: &holoptic::db::Db, network: Option<&str>) -> Result<String, String> {
    let mut conn = db.get().map_err(|e| e.to_string())?;
    let networks = holoptic::db::networks::all(&mut conn).map_err(|e| e.to_string())?;
    let mut lines = Vec::new();
    let mut bad = 0usize;
    for (id, slug) in networks
        .into_iter()
        .filter(|(id, slug)| network.is_none_or(|n| n == id || n == slug))
    {
        let problems = holoptic::tokens::check(&mut conn, &id).map_err(|e| e.to_string())?;
        if problems.is_empty() {
            lines.push(format!("{slug}: ok"));
        } else {
            bad += problems.len();
            lines.extend(problems.into_iter().map(|p| format!("{slug}: {p}")));
        }
    }
    if lines.is_empty() {
        return Err("no such network".into());
    }
    if bad > 0 {
        return Err(format!("{}\n{bad} problem(s)", lines.join("\n")));
    }
    Ok(lines.join("\n"))
}

fn verify(db: &holoptic::db::Db, network: Option<&str>) -> Result<String, String> {
    let mut conn = db.get().map_err(|e| e.to_string())?;
    let networks = holoptic::db::networks::all(&mut conn).map_err(|e| e.to_string())?;
    let mut lines = Vec::new();
    let mut failed = false;
    for (id, slug) in networks
        .into_iter()
        .filter(|(id, slug)| network.is_none_or(|n| n == id || n == slug))
    {
        let v = holoptic::journal::verify(&mut conn, &id).map_err(|e| e.to_string())?;
        lines.push(format!(
            "{slug}: {} entries, head {} {}",
            v.entries,
            v.head_seq,
            v.head_hash.as_deref().unwrap_or("-")
        ));
        if let Some(b) = &v.first_bad_entry {
            lines.push(format!(
                "{slug}: first bad entry: seq {} ({}): {}",
                b.seq, b.entry_id, b.problem
            ));
        }
        lines.extend(
            v.distribution_problems
                .iter()
                .chain(&v.ledger_problems)
                .map(|p| format!("{slug}: {p}")),
        );
        failed |= !v.ok;
    }
    if lines.is_empty() {
        return Err("no such network".into());
    }
    if failed {
        return Err(lines.join("\n"));
    }
    Ok(lines.join("\n"))
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let runtime = actix_web::rt::System::new();
    match runtime.block_on(run(cli)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}

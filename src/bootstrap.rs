//! `holoptic bootstrap`: the first network and its first steward, for a fresh install.

use serde::Serialize;

use crate::api::agents::{new_agent, parse_display_name};
use crate::db::rows::{now, CurrencyRow, MembershipRow, NetworkRow};
use crate::db::{self, write_tx, Db};
use crate::domain::ids::NetworkId;
use crate::domain::network::{parse_currencies, JoinPolicy, Role, Slug, Visibility};
use crate::error::ApiError;

/// What to create.
#[derive(Debug, Clone)]
pub struct BootstrapInput {
    /// Network name.
    pub name: String,
    /// Network slug.
    pub slug: String,
    /// The steward's display name.
    pub steward: String,
    /// Join policy.
    pub join_policy: JoinPolicy,
    /// Visibility.
    pub visibility: Visibility,
    /// `CODE:scale` pairs.
    pub currencies: Vec<(String, i64)>,
}

/// What was created; the API key is shown only here.
#[derive(Debug, Serialize)]
pub struct BootstrapOutput {
    /// The network.
    pub network_id: String,
    /// Its slug.
    pub slug: String,
    /// The steward's agent id.
    pub agent_id: String,
    /// The steward's API key (shown once).
    pub api_key: String,
}

/// Creates the network, the steward agent and its key, in one transaction.
pub fn bootstrap(db: &Db, input: BootstrapInput) -> Result<BootstrapOutput, String> {
    let err = |e: crate::domain::FieldError| format!("{}: {}", e.field, e.detail);
    let slug = Slug::parse("slug", &input.slug).map_err(err)?;
    let steward_name = parse_display_name("steward", &input.steward).map_err(err)?;
    crate::domain::bounded_text("name", input.name.trim(), 1, 100).map_err(err)?;
    let currencies = parse_currencies("currency", &input.currencies).map_err(err)?;
    let (agent, key_row, api_key) = new_agent(steward_name, None);
    let id = NetworkId::generate().to_string();
    let at = now();
    let network = NetworkRow {
        id: id.clone(),
        slug: slug.as_str().to_owned(),
        name: input.name.trim().to_owned(),
        description: String::new(),
        join_policy: input.join_policy.as_str().into(),
        visibility: input.visibility.as_str().into(),
        approvals_required: 1,
        rejections_required: 1,
        created_at: at,
        updated_at: at,
    };
    let currency_rows: Vec<CurrencyRow> = currencies
        .into_iter()
        .map(|c| CurrencyRow {
            network_id: id.clone(),
            code: c.code,
            scale: i32::try_from(c.scale).unwrap_or(0),
        })
        .collect();
    let steward = MembershipRow {
        network_id: id.clone(),
        agent_id: agent.id.clone(),
        role: Role::Steward.as_str().into(),
        joined_at: at,
    };
    let mut conn = db.get().map_err(|e| e.to_string())?;
    write_tx(&mut conn, |conn| {
        if db::networks::slug_taken(conn, &network.slug)? {
            return Err(ApiError::Conflict(format!(
                "slug '{}' is taken",
                network.slug
            )));
        }
        db::members::insert_agent(conn, &agent, &key_row)?;
        db::networks::insert(conn, &network, &currency_rows, &steward)?;
        let currencies: Vec<_> = currency_rows.iter().map(|c| serde_json::json!({ "code": c.code, "scale": c.scale })).collect();
        let body = serde_json::json!({
            "id": network.id, "slug": network.slug, "name": network.name, "description": network.description,
            "join_policy": network.join_policy, "visibility": network.visibility,
            "approvals_required": network.approvals_required, "rejections_required": network.rejections_required,
            "currencies": currencies, "steward": steward.agent_id, "bootstrap": true,
        });
        crate::journal::record(conn, &network.id, Some(&steward.agent_id), "network.created", body)?;
        Ok::<_, ApiError>(())
    })
    .map_err(|e| e.to_string())?;
    Ok(BootstrapOutput {
        network_id: id,
        slug: network.slug,
        agent_id: agent.id,
        api_key,
    })
}

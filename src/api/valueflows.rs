//! Valueflows (https://w3id.org/valueflows/ont/vf#) export: contributions as
//! `EconomicEvent`s, distribution lines as `Claim`s, and paid lines as `transfer` events
//! that settle them — JSON-LD any Valueflows tool can read.

use actix_web::{get, web};
use serde_json::{json, Value};

use super::docs::ReadErrors;
use super::{utc, Access, AppState};
use crate::auth::Caller;
use crate::db;
use crate::domain::contribution::Kind;
use crate::error::ApiError;

/// Most contributions in one export (newest first); page with the contributions API beyond.
pub const MAX_EVENTS: i64 = 10_000;

fn action(kind: Kind) -> &'static str {
    match kind {
        Kind::Work => "work",
        Kind::Cash => "transfer",
        Kind::Material => "consume",
        Kind::EquipmentUse | Kind::Space => "use",
        Kind::Citation => "cite",
        Kind::Relationship | Kind::Other => "deliverService",
    }
}

fn unit(u: &str) -> String {
    match u {
        "hours" => "om2:hour".into(),
        "days" => "om2:day".into(),
        "kg" => "om2:kilogram".into(),
        "g" => "om2:gram".into(),
        "t" => "om2:tonne".into(),
        "l" => "om2:litre".into(),
        "ml" => "om2:millilitre".into(),
        "m" => "om2:metre".into(),
        "m2" => "om2:squareMetre".into(),
        "m3" => "om2:cubicMetre".into(),
        "each" => "om2:one".into(),
        other => format!("urn:holoptic:unit:{other}"),
    }
}

/// A network's contributions and payouts as Valueflows JSON-LD.
#[utoipa::path(
    tag = "exports",
    params(("network" = String, Path, description = "Network id or slug")),
    responses((status = 200, description = "JSON-LD", body = Object, content_type = "application/ld+json"), ReadErrors)
)]
#[get("/networks/{network}/valueflows")]
pub async fn export_valueflows(
    state: web::Data<AppState>,
    caller: Caller,
    path: web::Path<String>,
) -> Result<actix_web::HttpResponse, ApiError> {
    let key = path.into_inner();
    let graph = state
        .db
        .run(move |conn| {
            let access = Access::load(conn, &key, caller.0)?;
            let network = access.network.id;
            let me = format!("urn:holoptic:network:{network}");
            let agent = |a: &str| json!({ "@id": format!("urn:holoptic:agent:{a}") });
            let mut graph: Vec<Value> = Vec::new();
            let rows = db::contributions::list(conn, &network, &Default::default(), MAX_EVENTS)?;
            for v in db::contributions::views(conn, rows)? {
                let r = v.row;
                let kind = Kind::from_db(&r.kind).unwrap_or(Kind::Other);
                let quantity = json!({ "om2:hasNumericalValue": r.quantity.0.normalize().to_string(), "om2:hasUnit": unit(&r.unit) });
                let mut e = json!({
                    "@id": format!("urn:holoptic:contribution:{}", r.id),
                    "@type": "vf:EconomicEvent",
                    "vf:action": format!("vf:{}", action(kind)),
                    "vf:provider": agent(&r.agent_id),
                    "vf:receiver": { "@id": me },
                    "vf:hasPointInTime": utc(r.occurred_at),
                    "vf:note": r.description,
                    "holoptic:status": v.status.as_str(),
                });
                let q = if kind == Kind::Work { "vf:effortQuantity" } else { "vf:resourceQuantity" };
                e[q] = quantity;
                if let Some(c) = &r.corrects {
                    e["vf:corrects"] = json!({ "@id": format!("urn:holoptic:contribution:{c}") });
                }
                if let Some(c) = &r.cites {
                    e["vf:resourceInventoriedAs"] = json!({ "@id": format!("urn:holoptic:contribution:{c}") });
                }
                graph.push(e);
            }
            for d in db::distributions::list(conn, &network, None, i64::MAX)? {
                let scale = u32::try_from(d.scale).unwrap_or(0);
                for (l, paid) in db::distributions::lines(conn, &d.id)? {
                    let Some(a) = &l.agent_id else { continue };
                    let claim_id = format!("urn:holoptic:claim:{}:{}", d.id, l.line_no);
                    let amount = json!({
                        "om2:hasNumericalValue": crate::accounting::to_human(l.amount_minor.0, scale),
                        "om2:hasUnit": format!("urn:holoptic:currency:{}", d.currency),
                    });
                    graph.push(json!({
                        "@id": claim_id,
                        "@type": "vf:Claim",
                        "vf:action": "vf:transfer",
                        "vf:provider": { "@id": me },
                        "vf:receiver": agent(a),
                        "vf:resourceQuantity": amount,
                        "vf:created": utc(d.committed_at),
                        "vf:triggeredBy": { "@id": format!("urn:holoptic:distribution:{}", d.id) },
                    }));
                    if let Some(p) = paid {
                        graph.push(json!({
                            "@id": format!("urn:holoptic:payout:{}:{}", d.id, l.line_no),
                            "@type": "vf:EconomicEvent",
                            "vf:action": "vf:transfer",
                            "vf:provider": { "@id": me },
                            "vf:receiver": agent(a),
                            "vf:resourceQuantity": amount,
                            "vf:hasPointInTime": utc(p.paid_at),
                            "vf:settles": { "@id": claim_id },
                            "vf:note": p.reference,
                        }));
                    }
                }
            }
            Ok::<_, ApiError>(graph)
        })
        .await?;
    let doc = json!({
        "@context": {
            "vf": "https://w3id.org/valueflows/ont/vf#",
            "om2": "http://www.ontology-of-units-of-measure.org/resource/om-2/",
            "holoptic": "urn:holoptic:vocab:",
        },
        "@graph": graph,
    });
    Ok(actix_web::HttpResponse::Ok()
        .content_type("application/ld+json")
        .body(doc.to_string()))
}

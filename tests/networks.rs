//! Networks and membership: create, read, list, update, join, invites, roles, visibility.

mod common;

use common::TestApp;
use serde_json::json;

on_both_backends!(
    create_get_list_update,
    members_only_network_is_private,
    only_stewards_change_settings,
    invite_only_join,
    roles_and_last_steward,
    network_bad_input,
    join_bad_input,
);

async fn create_get_list_update(app: TestApp) {
    let steward = app
        .network("fab-lab", json!({ "description": "A lab" }))
        .await;
    let net = app.get("/v1/networks/fab-lab", None).await.ok(200);
    assert_eq!(net["slug"], "fab-lab");
    assert_eq!(net["join_policy"], "open");
    assert_eq!(net["visibility"], "public");
    assert_eq!(net["currencies"], json!([{ "code": "EUR", "scale": 2 }]));
    let by_id = app
        .get(
            &format!("/v1/networks/{}", net["id"].as_str().expect("id")),
            None,
        )
        .await
        .ok(200);
    assert_eq!(by_id["slug"], "fab-lab");

    let me = app.get("/v1/networks/fab-lab/members", None).await.ok(200);
    assert_eq!(me["items"][0]["role"], "steward");
    assert_eq!(me["items"][0]["agent_id"], json!(steward.id));

    let updated = app
        .patch(
            "/v1/networks/fab-lab",
            Some(&steward.token),
            json!({ "name": "Fab Lab", "approvals_required": 2, "add_currencies": [{ "code": "ETH", "scale": 18 }] }),
        )
        .await
        .ok(200);
    assert_eq!(updated["name"], "Fab Lab");
    assert_eq!(updated["approvals_required"], 2);
    assert_eq!(updated["currencies"].as_array().map(Vec::len), Some(2));

    app.post(
        "/v1/networks",
        Some(&steward.token),
        json!({ "name": "Dup", "slug": "fab-lab" }),
    )
    .await
    .assert_problem(409, None);

    // Paging through networks: two pages of one.
    app.network("second-net", json!({})).await;
    let first = app.get("/v1/networks?limit=1", None).await.ok(200);
    assert_eq!(first["items"].as_array().map(Vec::len), Some(1));
    let cursor = first["next_cursor"].as_str().expect("more pages");
    let second = app
        .get(&format!("/v1/networks?limit=1&cursor={cursor}"), None)
        .await
        .ok(200);
    assert_eq!(second["items"].as_array().map(Vec::len), Some(1));
    assert_ne!(first["items"][0]["id"], second["items"][0]["id"]);
    assert!(second["next_cursor"].is_null());
}

async fn members_only_network_is_private(app: TestApp) {
    let steward = app
        .network(
            "secret-lab",
            json!({ "visibility": "members", "join_policy": "invite" }),
        )
        .await;
    let outsider = app.agent("Mallory").await;
    app.get("/v1/networks/secret-lab", None)
        .await
        .assert_problem(401, None);
    app.get("/v1/networks/secret-lab", Some(&outsider.token))
        .await
        .assert_problem(403, None);
    app.get("/v1/networks/secret-lab/members", Some(&outsider.token))
        .await
        .assert_problem(403, None);
    app.get(
        "/v1/networks/secret-lab/contributions",
        Some(&outsider.token),
    )
    .await
    .assert_problem(403, None);
    app.get("/v1/networks/secret-lab", Some(&steward.token))
        .await
        .ok(200);
    // The list shows it to members only.
    let anon = app.get("/v1/networks", None).await.ok(200);
    assert!(anon["items"]
        .as_array()
        .expect("items")
        .iter()
        .all(|n| n["slug"] != "secret-lab"));
    let mine = app.get("/v1/networks", Some(&steward.token)).await.ok(200);
    assert!(mine["items"]
        .as_array()
        .expect("items")
        .iter()
        .any(|n| n["slug"] == "secret-lab"));
}

async fn only_stewards_change_settings(app: TestApp) {
    app.network("coop", json!({})).await;
    let member = app.join("coop", "Grace").await;
    app.patch(
        "/v1/networks/coop",
        Some(&member.token),
        json!({ "name": "Mine now" }),
    )
    .await
    .assert_problem(403, None);
    app.patch("/v1/networks/coop", None, json!({ "name": "Mine now" }))
        .await
        .assert_problem(401, None);
    app.post("/v1/networks/coop/invites", Some(&member.token), json!({}))
        .await
        .assert_problem(403, None);
    let net = app.get("/v1/networks/coop", None).await.ok(200);
    assert_eq!(net["name"], "Network coop");
}

async fn invite_only_join(app: TestApp) {
    let steward = app
        .network("guild", json!({ "join_policy": "invite" }))
        .await;
    app.post(
        "/v1/networks/guild/members",
        None,
        json!({ "display_name": "Eve" }),
    )
    .await
    .assert_problem(403, None);
    let invite = app
        .post(
            "/v1/networks/guild/invites",
            Some(&steward.token),
            json!({ "role": "auditor" }),
        )
        .await
        .ok(201);
    let code = invite["code"].as_str().expect("code");
    let joined = app
        .post(
            "/v1/networks/guild/members",
            None,
            json!({ "display_name": "Ida", "invite_code": code }),
        )
        .await
        .ok(201);
    assert_eq!(joined["role"], "auditor");
    assert!(joined["api_key"]
        .as_str()
        .is_some_and(|k| k.starts_with("hol_")));
    // Single use.
    app.post(
        "/v1/networks/guild/members",
        None,
        json!({ "display_name": "Joe", "invite_code": code }),
    )
    .await
    .assert_problem(403, None);
    // An existing agent joins with its token and a new invite.
    let agent = app.agent("Kim").await;
    let invite = app
        .post(
            "/v1/networks/guild/invites",
            Some(&steward.token),
            json!({}),
        )
        .await
        .ok(201);
    let joined = app
        .post(
            "/v1/networks/guild/members",
            Some(&agent.token),
            json!({ "invite_code": invite["code"] }),
        )
        .await
        .ok(201);
    assert_eq!(joined["role"], "member");
    assert!(joined.get("api_key").is_none());
    app.post("/v1/networks/guild/members", Some(&agent.token), json!({}))
        .await
        .assert_problem(409, None);
    let members = app.get("/v1/networks/guild/members", None).await.ok(200);
    assert_eq!(members["items"].as_array().map(Vec::len), Some(3));
}

async fn roles_and_last_steward(app: TestApp) {
    let steward = app.network("roles", json!({})).await;
    let member = app.join("roles", "Lin").await;
    app.set_role("roles", &steward, &member, "steward").await;
    let got = app
        .get(&format!("/v1/networks/roles/members/{}", member.id), None)
        .await
        .ok(200);
    assert_eq!(got["role"], "steward");
    app.set_role("roles", &member, &steward, "member").await;
    app.patch(
        &format!("/v1/networks/roles/members/{}", member.id),
        Some(&member.token),
        json!({ "role": "member" }),
    )
    .await
    .assert_problem(409, None);
    app.patch(
        &format!("/v1/networks/roles/members/{}", member.id),
        Some(&member.token),
        json!({ "role": "king" }),
    )
    .await
    .assert_problem(422, Some("role"));
    app.get("/v1/networks/roles/members/not-a-uuid", None)
        .await
        .assert_problem(422, Some("agent_id"));
    app.get(
        &format!("/v1/networks/roles/members/{}", uuid::Uuid::now_v7()),
        None,
    )
    .await
    .assert_problem(404, None);

    // Wallet addresses: lowercase is normalised to EIP-55, a bad checksum is refused.
    let me = app
        .patch(
            "/v1/agents/me",
            Some(&member.token),
            json!({ "wallet_address": "0x5aaeb6053f3e94c9b9a09f33669435e7ef1beaed" }),
        )
        .await
        .ok(200);
    assert_eq!(
        me["wallet_address"],
        "0x5aAeb6053F3E94C9b9A09f33669435E7Ef1BeAed"
    );
    app.patch(
        "/v1/agents/me",
        Some(&member.token),
        json!({ "wallet_address": "0x5AAeb6053F3E94C9b9A09f33669435E7Ef1BeAed" }),
    )
    .await
    .assert_problem(422, Some("wallet_address"));
}

async fn network_bad_input(app: TestApp) {
    let agent = app.agent("Nia").await;
    let t = Some(agent.token.as_str());
    let cases = [
        (json!({ "name": "X", "slug": "A B" }), "slug"),
        (json!({ "name": "", "slug": "okay" }), "name"),
        (json!({ "name": "x".repeat(101), "slug": "okay" }), "name"),
        (
            json!({ "name": "X", "slug": "okay", "visibility": "secret" }),
            "visibility",
        ),
        (
            json!({ "name": "X", "slug": "okay", "currencies": [{ "code": "eur", "scale": 2 }] }),
            "currencies[0].code",
        ),
        (
            json!({ "name": "X", "slug": "okay", "currencies": [{ "code": "EUR", "scale": 40 }] }),
            "currencies[0].scale",
        ),
        (
            json!({ "name": "X", "slug": "okay", "approvals_required": 0 }),
            "approvals_required",
        ),
        (
            json!({ "name": "X", "slug": "okay", "colour": "red" }),
            "colour",
        ),
        (json!({ "slug": "okay" }), "name"),
        (json!([1, 2]), "body"),
    ];
    for (body, field) in cases {
        app.post("/v1/networks", t, body)
            .await
            .assert_problem(422, Some(field));
    }
    app.send_raw(
        reqwest::Method::POST,
        "/v1/networks",
        t,
        "application/json",
        b"{not json".to_vec(),
    )
    .await
    .assert_problem(400, None);
    app.send_raw(
        reqwest::Method::POST,
        "/v1/networks",
        t,
        "text/plain",
        b"{}".to_vec(),
    )
    .await
    .assert_problem(415, None);
    app.get("/v1/networks?limit=0", None)
        .await
        .assert_problem(422, Some("limit"));
    app.get("/v1/networks?limit=201", None)
        .await
        .assert_problem(422, Some("limit"));
    app.get("/v1/networks?cursor=zzz", None)
        .await
        .assert_problem(422, Some("cursor"));
    app.get("/v1/networks?bogus=1", None)
        .await
        .assert_problem(422, None);
    app.get("/v1/networks/nope", None)
        .await
        .assert_problem(404, None);
    app.get("/v1/nothing-here", None)
        .await
        .assert_problem(404, None);
    let list = app.get("/v1/networks", None).await.ok(200);
    assert_eq!(
        list["items"].as_array().map(Vec::len),
        Some(0),
        "no bad request wrote a network"
    );
}

async fn join_bad_input(app: TestApp) {
    app.network("open-net", json!({})).await;
    let path = "/v1/networks/open-net/members";
    app.post(path, None, json!({}))
        .await
        .assert_problem(422, Some("display_name"));
    app.post(path, None, json!({ "display_name": "  " }))
        .await
        .assert_problem(422, Some("display_name"));
    app.post(
        path,
        None,
        json!({ "display_name": "A", "wallet_address": "0x12" }),
    )
    .await
    .assert_problem(422, Some("wallet_address"));
    app.post(
        path,
        None,
        json!({ "display_name": "A", "role": "steward" }),
    )
    .await
    .assert_problem(422, Some("role"));
    let members = app.get("/v1/networks/open-net/members", None).await.ok(200);
    assert_eq!(
        members["items"].as_array().map(Vec::len),
        Some(1),
        "only the steward"
    );
}

//! Payout exports. When HOLOPTIC_INTEROP_DIR is set (CI does), the exports are also written
//! there for `.ci/interop/check-exports.mjs` to load with the real npm tools.

mod common;

use common::{work, Member, TestApp};
use num_bigint::BigUint;
use serde_json::{json, Value};

on_both_backends!(
    exports_pay_exactly_and_list_the_unpayable,
    valueflows_json_ld
);

const N: &str = "/v1/networks/lab";

async fn exports_pay_exactly_and_list_the_unpayable(app: TestApp) {
    let steward = app.network("lab", json!({})).await;
    let mut members: Vec<Member> = Vec::new();
    for i in 0..6u64 {
        let m = app.join("lab", &format!("m{i}")).await;
        // Five of six have wallets (lowercase is accepted and checksummed).
        if i < 5 {
            let wallet = format!("0x{:040x}", 0xabc0_0000 + i * 7919);
            app.patch(
                "/v1/agents/me",
                Some(&m.token),
                json!({ "wallet_address": wallet }),
            )
            .await
            .ok(200);
        }
        members.push(m);
    }
    app.adopt(
        "lab",
        &steward,
        json!({ "title": "t", "preset": "sensorica" }),
        &members.iter().take(4).collect::<Vec<_>>(),
    )
    .await;
    for (i, m) in members.iter().enumerate() {
        let c = app
            .post(
                &format!("{N}/contributions"),
                Some(&m.token),
                work(&format!("{}.5", i + 1)),
            )
            .await
            .ok(201);
        let by = &members[(i + 1) % members.len()];
        app.approve("lab", &c, by).await;
    }
    let i = app
        .post(&format!("{N}/income"), Some(&steward.token), json!({ "amount": "1234.57", "currency": "EUR", "source": "s", "received_at": "2026-01-01T00:00:00Z" }))
        .await
        .ok(201);
    let d = app
        .post(
            &format!("{N}/income/{}/distribution", i["id"].as_str().expect("id")),
            Some(&steward.token),
            json!({}),
        )
        .await
        .ok(201);
    let did = d["id"].as_str().expect("id");
    let base = format!("{N}/distributions/{did}/exports");

    let csv = app.get(&format!("{base}/csv"), None).await.ok(200);
    assert_eq!(csv["distribution_id"], did);
    let content = csv["files"][0]["content"].as_str().expect("csv");
    let total: u64 = content
        .lines()
        .skip(1)
        .map(|l| {
            l.split(',')
                .nth(6)
                .expect("amount_minor")
                .parse::<u64>()
                .expect("int")
        })
        .sum();
    assert_eq!(total, 123_457, "plain CSV sums exactly to the distribution");

    let safe = app.get(&format!("{base}/safe-csv?token_address=0xdac17f958d2ee523a2206206994597c13d831ec7&decimals=6"), None).await.ok(200);
    let safe_csv = safe["files"][0]["content"].as_str().expect("safe");
    assert!(safe_csv.starts_with("token_type,token_address,receiver,amount,id\n"));
    assert_eq!(
        safe_csv.lines().count(),
        6,
        "header and five payable members"
    );
    assert!(safe_csv
        .lines()
        .skip(1)
        .all(|l| l.starts_with("erc20,0xdAC17F958D2ee523a2206206994597C13D831ec7,0x")));
    let unpayable: Vec<&Value> = safe["not_payable"].as_array().expect("np").iter().collect();
    assert!(unpayable
        .iter()
        .any(|n| n["agent_id"] == json!(members[5].id) && n["reason"] == "no wallet address"));
    assert!(unpayable.iter().any(|n| n["account"] == "reserve"));
    let native = app.get(&format!("{base}/safe-csv"), None).await.ok(200);
    assert!(native["files"][0]["content"]
        .as_str()
        .expect("csv")
        .lines()
        .skip(1)
        .all(|l| l.starts_with("native,,0x")));

    let merkle = app
        .get(&format!("{base}/merkle?decimals=18"), None)
        .await
        .ok(200);
    let dump = &merkle["merkle"];
    assert_eq!(dump["format"], "standard-v1");
    assert_eq!(
        dump["tree"].as_array().map(Vec::len),
        Some(9),
        "5 leaves → 2n − 1 nodes"
    );
    let root = dump["tree"][0].as_str().expect("root");
    for v in dump["values"].as_array().expect("values") {
        let (addr, amount) = (
            v["value"][0].as_str().expect("a"),
            v["value"][1].as_str().expect("n"),
        );
        let proof: Vec<String> = merkle["proofs"][addr]
            .as_array()
            .expect("proof")
            .iter()
            .map(|p| p.as_str().expect("p").to_owned())
            .collect();
        assert!(holoptic::domain::merkle::verify(
            root,
            addr,
            &amount.parse::<BigUint>().expect("uint"),
            &proof
        ));
    }
    let uni = app
        .get(&format!("{base}/uniswap?decimals=18"), None)
        .await
        .ok(200);
    assert_eq!(
        uni["uniswap"]["claims"].as_object().map(|c| c.len()),
        Some(5)
    );
    assert!(uni["uniswap"]["merkleRoot"]
        .as_str()
        .is_some_and(|r| r.len() == 66));
    // Safe Transaction Builder batches: ERC-20 transfers, then native transfers.
    let usdt = "0xdAC17F958D2ee523a2206206994597C13D831ec7";
    let safe_addr = "0x5aAeb6053F3E94C9b9A09f33669435E7Ef1BeAed";
    let erc20 = app
        .get(&format!("{base}/safe-batch?token_address={usdt}&decimals=6&chain_id=100&safe_address={safe_addr}"), None)
        .await
        .ok(200);
    let b = &erc20["safe_batch"];
    assert_eq!(b["chainId"], "100");
    assert_eq!(b["meta"]["createdFromSafeAddress"], safe_addr);
    assert_eq!(
        b["meta"]["checksum"].as_str(),
        Some(holoptic::domain::safe_batch::checksum(b).as_str())
    );
    let txs = b["transactions"].as_array().expect("txs");
    assert_eq!(txs.len(), 5, "one transfer per payable member");
    assert!(txs.iter().all(|t| t["to"] == usdt
        && t["value"] == "0"
        && t["contractMethod"]["name"] == "transfer"));
    let batch_total: u64 = txs
        .iter()
        .map(|t| {
            t["contractInputsValues"]["value"]
                .as_str()
                .expect("value")
                .parse::<u64>()
                .expect("int")
        })
        .sum();
    let file: Value =
        serde_json::from_str(erc20["files"][0]["content"].as_str().expect("file")).expect("json");
    assert_eq!(&file, b, "the file is the batch");
    let native_batch = app
        .get(&format!("{base}/safe-batch?decimals=18"), None)
        .await
        .ok(200);
    let nb = &native_batch["safe_batch"];
    assert_eq!(nb["chainId"], "1");
    assert!(nb["transactions"]
        .as_array()
        .expect("txs")
        .iter()
        .all(|t| t["to"].as_str().is_some_and(|a| a.starts_with("0x"))
            && t.get("contractMethod").is_none()));
    app.get(&format!("{base}/safe-batch?chain_id=0"), None)
        .await
        .assert_problem(422, Some("chain_id"));
    app.get(&format!("{base}/safe-batch?safe_address=0x12"), None)
        .await
        .assert_problem(422, Some("safe_address"));
    let disperse = app.get(&format!("{base}/disperse"), None).await.ok(200);
    assert_eq!(
        disperse["files"][0]["content"]
            .as_str()
            .expect("txt")
            .lines()
            .count(),
        5
    );
    app.get(&format!("{base}/xml"), None)
        .await
        .assert_problem(422, Some("format"));
    app.get(&format!("{base}/csv?decimals=1"), None)
        .await
        .assert_problem(422, Some("decimals"));

    if let Ok(dir) = std::env::var("HOLOPTIC_INTEROP_DIR") {
        let tag = format!("{:?}", app.backend).to_lowercase();
        let expected: Vec<Value> = safe_csv
            .lines()
            .skip(1)
            .map(|l| {
                let cols: Vec<&str> = l.split(',').collect();
                json!({ "receiver": cols[2], "amount": cols[3] })
            })
            .collect();
        let lines: Vec<&Value> = d["lines"]
            .as_array()
            .expect("lines")
            .iter()
            .filter(|l| l["agent_id"] != json!(members[5].id) && l["account"].is_null())
            .collect();
        let base_units: Vec<String> = lines
            .iter()
            .map(|l| format!("{}0000", l["amount_minor"].as_str().expect("minor")))
            .collect();
        std::fs::write(format!("{dir}/merkle-{tag}.json"), merkle.to_string()).expect("write");
        std::fs::write(
            format!("{dir}/txbuilder-{tag}-erc20.json"),
            json!({ "file": erc20["files"][0]["content"], "token": usdt, "base_units": base_units, "total": batch_total.to_string() }).to_string(),
        )
        .expect("write");
        std::fs::write(
            format!("{dir}/txbuilder-{tag}-native.json"),
            json!({ "file": native_batch["files"][0]["content"], "token": null }).to_string(),
        )
        .expect("write");
        std::fs::write(
            format!("{dir}/uniswap-{tag}.json"),
            uni["uniswap"].to_string(),
        )
        .expect("write");
        std::fs::write(
            format!("{dir}/safe-{tag}.json"),
            json!({ "decimals": 6, "rows": expected, "base_units": base_units }).to_string(),
        )
        .expect("write");
    }
}

async fn valueflows_json_ld(app: TestApp) {
    let steward = app.network("lab", json!({})).await;
    let ada = app.join("lab", "Ada").await;
    app.adopt(
        "lab",
        &steward,
        json!({ "title": "t", "preset": "sourcecred_balanced" }),
        &[&steward, &ada],
    )
    .await;
    let c = app
        .post(&format!("{N}/contributions"), Some(&ada.token), work("3"))
        .await
        .ok(201);
    let cid = c["id"].as_str().expect("id");
    app.post(
        &format!("{N}/contributions/{cid}/validations"),
        Some(&steward.token),
        json!({ "decision": "approve" }),
    )
    .await
    .ok(201);
    let mut fix = json!({ "kind": "material", "quantity": "2", "unit": "kg", "occurred_at": "2026-01-02T00:00:00Z", "description": "it was steel" });
    fix["corrects"] = json!(cid);
    let fixed = app
        .post(&format!("{N}/contributions"), Some(&ada.token), fix)
        .await
        .ok(201);
    let fid = fixed["id"].as_str().expect("id");
    app.post(
        &format!("{N}/contributions/{fid}/validations"),
        Some(&steward.token),
        json!({ "decision": "approve" }),
    )
    .await
    .ok(201);
    let i = app
        .post(&format!("{N}/income"), Some(&steward.token), json!({ "amount": "5", "currency": "EUR", "source": "s", "received_at": "2026-01-01T00:00:00Z" }))
        .await
        .ok(201);
    let d = app
        .post(
            &format!("{N}/income/{}/distribution", i["id"].as_str().expect("id")),
            Some(&steward.token),
            json!({}),
        )
        .await
        .ok(201);
    let did = d["id"].as_str().expect("id");
    app.post(
        &format!("{N}/distributions/{did}/lines/1/payment"),
        Some(&steward.token),
        json!({ "reference": "tx-9" }),
    )
    .await
    .ok(201);
    let res = app.get(&format!("{N}/valueflows"), None).await;
    assert_eq!(res.content_type, "application/ld+json");
    let doc = res.ok(200);
    assert_eq!(doc["@context"]["vf"], "https://w3id.org/valueflows/ont/vf#");
    let graph = doc["@graph"].as_array().expect("graph");
    let work_event = graph
        .iter()
        .find(|e| e["@id"] == format!("urn:holoptic:contribution:{cid}"))
        .expect("work event");
    assert_eq!(work_event["vf:action"], "vf:work");
    assert_eq!(work_event["vf:effortQuantity"]["om2:hasUnit"], "om2:hour");
    assert_eq!(work_event["holoptic:status"], "superseded");
    let correction = graph
        .iter()
        .find(|e| e["vf:corrects"]["@id"] == format!("urn:holoptic:contribution:{cid}"))
        .expect("correction");
    assert_eq!(correction["vf:action"], "vf:consume");
    assert_eq!(
        correction["vf:resourceQuantity"]["om2:hasUnit"],
        "om2:kilogram"
    );
    let claim = graph
        .iter()
        .find(|e| e["@type"] == "vf:Claim")
        .expect("claim");
    let payout = graph
        .iter()
        .find(|e| e["vf:settles"]["@id"] == claim["@id"])
        .expect("payout settles the claim");
    assert_eq!(payout["vf:action"], "vf:transfer");
    assert_eq!(payout["vf:note"], "tx-9");
    assert_eq!(
        payout["vf:receiver"]["@id"],
        format!("urn:holoptic:agent:{}", ada.id)
    );
}

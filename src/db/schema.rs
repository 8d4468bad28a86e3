//! Diesel table definitions, written to match `migrations/sqlite` and `migrations/postgres`
//! (a test checks that both trees create these tables and columns).

diesel::table! {
    networks (id) {
        id -> Text,
        slug -> Text,
        name -> Text,
        description -> Text,
        join_policy -> Text,
        visibility -> Text,
        approvals_required -> Integer,
        rejections_required -> Integer,
        created_at -> Timestamp,
        updated_at -> Timestamp,
    }
}

diesel::table! {
    network_currencies (network_id, code) {
        network_id -> Text,
        code -> Text,
        scale -> Integer,
    }
}

diesel::table! {
    agents (id) {
        id -> Text,
        display_name -> Text,
        wallet_address -> Nullable<Text>,
        created_at -> Timestamp,
    }
}

diesel::table! {
    api_keys (key_hash) {
        key_hash -> Text,
        agent_id -> Text,
        created_at -> Timestamp,
    }
}

diesel::table! {
    memberships (network_id, agent_id) {
        network_id -> Text,
        agent_id -> Text,
        role -> Text,
        joined_at -> Timestamp,
    }
}

diesel::table! {
    invites (code_hash) {
        code_hash -> Text,
        network_id -> Text,
        role -> Text,
        created_by -> Text,
        created_at -> Timestamp,
        expires_at -> Timestamp,
        used_by -> Nullable<Text>,
        used_at -> Nullable<Timestamp>,
    }
}

diesel::table! {
    use diesel::sql_types::*;
    use crate::db::types::Dec;

    contributions (id) {
        id -> Text,
        network_id -> Text,
        agent_id -> Text,
        recorded_by -> Text,
        kind -> Text,
        quantity -> Dec,
        unit -> Text,
        skill -> Nullable<Text>,
        description -> Text,
        evidence_url -> Nullable<Text>,
        cites -> Nullable<Text>,
        corrects -> Nullable<Text>,
        occurred_at -> Timestamp,
        recorded_at -> Timestamp,
    }
}

diesel::table! {
    contribution_tags (contribution_id, tag) {
        contribution_id -> Text,
        tag -> Text,
    }
}

diesel::table! {
    validations (id) {
        id -> Text,
        contribution_id -> Text,
        validator_id -> Text,
        decision -> Text,
        note -> Nullable<Text>,
        created_at -> Timestamp,
    }
}

diesel::table! {
    contribution_outcomes (contribution_id) {
        contribution_id -> Text,
        status -> Text,
        decided_at -> Timestamp,
    }
}

diesel::table! {
    idempotency_keys (scope, idem_key) {
        scope -> Text,
        idem_key -> Text,
        request_hash -> Text,
        state -> Text,
        status_code -> Nullable<Integer>,
        content_type -> Nullable<Text>,
        response_body -> Nullable<Text>,
        created_at -> Timestamp,
    }
}

diesel::joinable!(network_currencies -> networks (network_id));
diesel::joinable!(memberships -> networks (network_id));
diesel::joinable!(memberships -> agents (agent_id));
diesel::joinable!(contribution_tags -> contributions (contribution_id));
diesel::joinable!(contribution_outcomes -> contributions (contribution_id));

diesel::allow_tables_to_appear_in_same_query!(
    networks,
    network_currencies,
    agents,
    api_keys,
    memberships,
    invites,
    contributions,
    contribution_tags,
    validations,
    contribution_outcomes,
    idempotency_keys,
);

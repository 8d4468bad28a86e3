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
        network_id -> Text,
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
        network_id -> Text,
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
        response_zstd -> Nullable<Binary>,
    }
}

diesel::table! {
    equation_versions (network_id, version) {
        network_id -> Text,
        version -> Integer,
        body -> Text,
        content_hash -> Text,
        effective_from -> Timestamp,
        adopted_at -> Timestamp,
        proposal_id -> Text,
    }
}

diesel::table! {
    proposals (id) {
        id -> Text,
        network_id -> Text,
        proposed_by -> Text,
        title -> Text,
        description -> Text,
        preset -> Nullable<Text>,
        body -> Text,
        content_hash -> Text,
        effective_from -> Nullable<Timestamp>,
        quorum_percent -> Text,
        threshold_percent -> Text,
        fast_track_allowed -> Bool,
        eligible_voters -> Integer,
        created_at -> Timestamp,
        voting_ends_at -> Timestamp,
    }
}

diesel::table! {
    votes (proposal_id, voter_id) {
        proposal_id -> Text,
        voter_id -> Text,
        vote -> Text,
        created_at -> Timestamp,
    }
}

diesel::table! {
    proposal_outcomes (proposal_id) {
        proposal_id -> Text,
        status -> Text,
        decided_at -> Timestamp,
        yes_votes -> Integer,
        no_votes -> Integer,
        abstain_votes -> Integer,
        fast_tracked_by -> Nullable<Text>,
        version -> Nullable<Integer>,
    }
}

diesel::table! {
    use diesel::sql_types::*;
    use crate::db::types::Dec;

    income_events (id) {
        id -> Text,
        network_id -> Text,
        amount -> Dec,
        currency -> Text,
        source -> Text,
        received_at -> Timestamp,
        recorded_by -> Text,
        recorded_at -> Timestamp,
    }
}

diesel::table! {
    use diesel::sql_types::*;
    use crate::db::types::Dec;

    distributions (id) {
        id -> Text,
        network_id -> Text,
        income_event_id -> Text,
        equation_version -> Integer,
        equation_hash -> Text,
        cutoff -> Timestamp,
        inputs_digest -> Text,
        amount_minor -> Dec,
        currency -> Text,
        scale -> Integer,
        committed_by -> Text,
        committed_at -> Timestamp,
    }
}

diesel::table! {
    use diesel::sql_types::*;
    use crate::db::types::Dec;

    distribution_lines (id) {
        id -> Text,
        distribution_id -> Text,
        line_no -> Integer,
        bucket -> Text,
        agent_id -> Nullable<Text>,
        account -> Nullable<Text>,
        weight -> Dec,
        exact_share -> Text,
        amount_minor -> Dec,
        leftover -> Bool,
    }
}

diesel::table! {
    use diesel::sql_types::*;
    use crate::db::types::Dec;

    distribution_claims (distribution_id, bucket, contribution_id) {
        distribution_id -> Text,
        bucket -> Text,
        contribution_id -> Text,
        amount_minor -> Dec,
    }
}

diesel::table! {
    line_payments (line_id) {
        line_id -> Text,
        reference -> Text,
        paid_at -> Timestamp,
        marked_by -> Text,
    }
}

diesel::table! {
    tokens (network_id) {
        network_id -> Text,
        symbol -> Text,
        name -> Text,
        decimals -> Integer,
        chain_id -> Nullable<BigInt>,
        address -> Nullable<Text>,
        created_at -> Timestamp,
    }
}

diesel::table! {
    ledger_transactions (id) {
        id -> Text,
        network_id -> Text,
        kind -> Text,
        cause_type -> Text,
        cause_id -> Text,
        reverses -> Nullable<Text>,
        reason -> Text,
        created_by -> Text,
        created_at -> Timestamp,
    }
}

diesel::table! {
    use diesel::sql_types::*;
    use crate::db::types::Dec;

    ledger_entries (id) {
        id -> Text,
        transaction_id -> Text,
        network_id -> Text,
        account -> Text,
        amount_minor -> Dec,
        vest_cliff -> Nullable<Timestamp>,
        vest_end -> Nullable<Timestamp>,
        created_at -> Timestamp,
    }
}

diesel::table! {
    use diesel::sql_types::*;
    use crate::db::types::Dec;

    token_balances (network_id, account) {
        network_id -> Text,
        account -> Text,
        balance_minor -> Dec,
    }
}

diesel::table! {
    use diesel::sql_types::*;
    use crate::db::types::Dec;

    paid_totals (network_id, bucket, agent_id) {
        network_id -> Text,
        bucket -> Text,
        agent_id -> Text,
        amount_minor -> Dec,
    }
}

diesel::table! {
    paid_totals_state (network_id) {
        network_id -> Text,
        distributions -> BigInt,
    }
}

diesel::table! {
    departures (network_id, agent_id) {
        network_id -> Text,
        agent_id -> Text,
        reason -> Text,
        for_cause -> Bool,
        recorded_by -> Text,
        recorded_at -> Timestamp,
    }
}

diesel::table! {
    journal_entries (id) {
        id -> Text,
        network_id -> Text,
        recorded_at -> Timestamp,
        actor -> Nullable<Text>,
        kind -> Text,
        body -> Text,
    }
}

diesel::table! {
    journal_unsealed (network_id, entry_id) {
        entry_id -> Text,
        network_id -> Text,
    }
}

diesel::table! {
    journal_seals (entry_id) {
        entry_id -> Text,
        network_id -> Text,
        seq -> BigInt,
        prev_hash -> Text,
        hash -> Text,
        sealed_at -> Timestamp,
    }
}

diesel::table! {
    checkpoints (network_id, seq) {
        network_id -> Text,
        seq -> BigInt,
        head_hash -> Text,
        signed_at -> Timestamp,
        key_id -> Text,
        signature -> Text,
    }
}

diesel::table! {
    siwe_nonces (nonce) {
        nonce -> Text,
        created_at -> Timestamp,
        expires_at -> Timestamp,
        used_at -> Nullable<Timestamp>,
    }
}

diesel::table! {
    webhooks (id) {
        id -> Text,
        network_id -> Text,
        url -> Text,
        events -> Text,
        secret -> Text,
        created_by -> Text,
        created_at -> Timestamp,
        active -> Bool,
    }
}

diesel::table! {
    webhook_deliveries (id) {
        id -> Text,
        webhook_id -> Text,
        network_id -> Text,
        event -> Text,
        payload -> Text,
        created_at -> Timestamp,
        status -> Text,
        attempts -> Integer,
        next_attempt_at -> Timestamp,
        last_attempt_at -> Nullable<Timestamp>,
        last_status_code -> Nullable<Integer>,
        last_error -> Nullable<Text>,
        delivered_at -> Nullable<Timestamp>,
    }
}

diesel::table! {
    member_aliases (network_id, source, alias) {
        network_id -> Text,
        source -> Text,
        alias -> Text,
        agent_id -> Text,
        description -> Text,
        created_at -> Timestamp,
    }
}

diesel::table! {
    use diesel::sql_types::*;
    use crate::db::types::Dec;

    prior_payouts (id) {
        id -> Text,
        network_id -> Text,
        agent_id -> Text,
        bucket -> Text,
        currency -> Text,
        amount_minor -> Dec,
        source -> Text,
        source_ref -> Text,
        paid_at -> Timestamp,
        recorded_at -> Timestamp,
        recorded_by -> Text,
    }
}

diesel::joinable!(network_currencies -> networks (network_id));
diesel::joinable!(memberships -> networks (network_id));
diesel::joinable!(memberships -> agents (agent_id));
diesel::joinable!(contribution_tags -> contributions (contribution_id));
diesel::joinable!(contribution_outcomes -> contributions (contribution_id));
diesel::joinable!(distribution_lines -> distributions (distribution_id));
diesel::joinable!(ledger_entries -> ledger_transactions (transaction_id));
diesel::joinable!(journal_seals -> journal_entries (entry_id));
diesel::joinable!(line_payments -> distribution_lines (line_id));
diesel::joinable!(webhook_deliveries -> webhooks (webhook_id));

diesel::joinable!(journal_unsealed -> journal_entries (entry_id));

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
    equation_versions,
    proposals,
    votes,
    proposal_outcomes,
    income_events,
    distributions,
    distribution_lines,
    distribution_claims,
    line_payments,
    tokens,
    ledger_transactions,
    ledger_entries,
    token_balances,
    paid_totals,
    paid_totals_state,
    departures,
    journal_entries,
    journal_seals,
    journal_unsealed,
    checkpoints,
    siwe_nonces,
    webhooks,
    webhook_deliveries,
    member_aliases,
    prior_payouts,
);

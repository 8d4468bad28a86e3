//! Proposals to change the value equation: when a vote is decided.

use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::network::text_enum;

/// A member's vote.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Vote {
    /// For.
    Yes,
    /// Against.
    No,
    /// Counts toward quorum only.
    Abstain,
}

text_enum!(Vote { Vote::Yes => "yes", Vote::No => "no", Vote::Abstain => "abstain" });

/// Where a proposal stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum ProposalStatus {
    /// Voting is open and the outcome is not yet certain.
    Open,
    /// Quorum and threshold met: its equation becomes a version.
    Passed,
    /// Quorum met but the threshold not (or it can no longer be).
    Failed,
    /// The voting period ended without quorum.
    Expired,
}

text_enum!(ProposalStatus {
    ProposalStatus::Open => "open",
    ProposalStatus::Passed => "passed",
    ProposalStatus::Failed => "failed",
    ProposalStatus::Expired => "expired",
});

/// Votes cast and who may vote.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Tally {
    /// Yes votes.
    pub yes: i64,
    /// No votes.
    pub no: i64,
    /// Abstentions.
    pub abstain: i64,
    /// Members who may vote (fixed when the proposal is made).
    pub eligible: i64,
}

fn quorum_met(cast: i64, eligible: i64, quorum: Decimal) -> bool {
    Decimal::from(cast) * Decimal::ONE_HUNDRED >= quorum * Decimal::from(eligible)
}

fn passes(yes: i64, no: i64, threshold: Decimal) -> bool {
    yes + no > 0 && Decimal::from(yes) * Decimal::ONE_HUNDRED > threshold * Decimal::from(yes + no)
}

/// Decides a proposal. Before the period ends it is decided early only when no remaining
/// vote could change the result; after, by quorum (else expired) and threshold.
pub fn decide(
    t: Tally,
    quorum_percent: Decimal,
    threshold_percent: Decimal,
    voting_over: bool,
) -> ProposalStatus {
    let cast = t.yes + t.no + t.abstain;
    let remaining = (t.eligible - cast).max(0);
    if voting_over {
        if !quorum_met(cast, t.eligible, quorum_percent) {
            return ProposalStatus::Expired;
        }
        return if passes(t.yes, t.no, threshold_percent) {
            ProposalStatus::Passed
        } else {
            ProposalStatus::Failed
        };
    }
    if quorum_met(cast, t.eligible, quorum_percent)
        && passes(t.yes, t.no + remaining, threshold_percent)
    {
        return ProposalStatus::Passed;
    }
    if !passes(t.yes + remaining, t.no, threshold_percent)
        && quorum_met(cast + remaining, t.eligible, quorum_percent)
    {
        return ProposalStatus::Failed;
    }
    ProposalStatus::Open
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(yes: i64, no: i64, abstain: i64, eligible: i64) -> Tally {
        Tally {
            yes,
            no,
            abstain,
            eligible,
        }
    }

    const FIFTY: Decimal = Decimal::from_parts(50, 0, 0, false, 0);

    #[test]
    fn decisions() {
        use ProposalStatus::*;
        assert_eq!(
            decide(t(1, 0, 0, 1), FIFTY, FIFTY, false),
            Passed,
            "a lone steward decides at once"
        );
        assert_eq!(
            decide(t(2, 0, 0, 4), FIFTY, FIFTY, false),
            Open,
            "two no votes could still tie it"
        );
        assert_eq!(decide(t(3, 0, 0, 4), FIFTY, FIFTY, false), Passed);
        assert_eq!(decide(t(0, 3, 0, 4), FIFTY, FIFTY, false), Failed);
        assert_eq!(decide(t(2, 1, 0, 4), FIFTY, FIFTY, true), Passed);
        assert_eq!(
            decide(t(1, 1, 0, 4), FIFTY, FIFTY, true),
            Failed,
            "a tie is not a majority"
        );
        assert_eq!(
            decide(t(1, 0, 0, 4), FIFTY, FIFTY, true),
            Expired,
            "no quorum"
        );
        assert_eq!(
            decide(t(0, 0, 2, 4), FIFTY, FIFTY, true),
            Failed,
            "quorum by abstention, no yes"
        );
    }
}

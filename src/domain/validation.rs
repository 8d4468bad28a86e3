//! Peer validation: who may validate what, and when a contribution is decided.

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::contribution::Status;
use super::ids::AgentId;
use super::network::{text_enum, Role};

/// A validator's decision.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Decision {
    /// The contribution happened as described and should count.
    Approve,
    /// It should not count.
    Reject,
}

text_enum!(Decision { Decision::Approve => "approve", Decision::Reject => "reject" });

/// Why a validation is refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    /// The validator is the contribution's agent or recorded it.
    OwnContribution,
    /// Bots and auditors never validate.
    RoleCannotValidate(Role),
    /// The contribution is already validated, rejected or superseded.
    AlreadyDecided(Status),
}

/// Checks that `validator` (with `role`) may validate a contribution by `agent`, recorded by
/// `recorder`, now in `status`.
pub fn check_validator(
    validator: AgentId,
    role: Role,
    agent: AgentId,
    recorder: AgentId,
    status: Status,
) -> Result<(), Refusal> {
    if !role.can_validate() {
        return Err(Refusal::RoleCannotValidate(role));
    }
    if validator == agent || validator == recorder {
        return Err(Refusal::OwnContribution);
    }
    if status != Status::Pending {
        return Err(Refusal::AlreadyDecided(status));
    }
    Ok(())
}

/// The status a pending contribution reaches with these counts, if decided. Approval wins
/// when a single validation would reach both thresholds at once (it cannot: each
/// validation adds to one count only, and the check runs after every one).
pub fn outcome(
    approvals: i64,
    rejections: i64,
    approvals_required: i32,
    rejections_required: i32,
) -> Option<Status> {
    if approvals >= i64::from(approvals_required) {
        Some(Status::Validated)
    } else if rejections >= i64::from(rejections_required) {
        Some(Status::Rejected)
    } else {
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn thresholds() {
        assert_eq!(outcome(0, 0, 1, 1), None);
        assert_eq!(outcome(1, 0, 1, 1), Some(Status::Validated));
        assert_eq!(outcome(1, 0, 2, 2), None);
        assert_eq!(outcome(1, 2, 2, 2), Some(Status::Rejected));
    }

    #[test]
    fn who_may_validate() {
        let (a, b, c) = (
            AgentId::generate(),
            AgentId::generate(),
            AgentId::generate(),
        );
        assert!(check_validator(b, Role::Member, a, a, Status::Pending).is_ok());
        assert_eq!(
            check_validator(a, Role::Member, a, a, Status::Pending),
            Err(Refusal::OwnContribution)
        );
        assert_eq!(
            check_validator(c, Role::Steward, a, c, Status::Pending),
            Err(Refusal::OwnContribution)
        );
        assert_eq!(
            check_validator(b, Role::Bot, a, a, Status::Pending),
            Err(Refusal::RoleCannotValidate(Role::Bot))
        );
        assert_eq!(
            check_validator(b, Role::Auditor, a, a, Status::Pending),
            Err(Refusal::RoleCannotValidate(Role::Auditor))
        );
        assert_eq!(
            check_validator(b, Role::Member, a, a, Status::Validated),
            Err(Refusal::AlreadyDecided(Status::Validated))
        );
    }
}

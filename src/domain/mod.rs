//! Pure domain logic: no actix, no diesel. Input is parsed into these types at the edge
//! ("parse, don't validate"); every parse error names the field it is about.

pub mod allocation;
pub mod contribution;
pub mod distribution;
pub mod equation;
pub mod formula;
pub mod governance;
pub mod ids;
pub mod journal;
pub mod ledger;
pub mod merkle;
pub mod network;
pub mod presets;
pub mod safe_batch;
pub mod siwe;
pub mod sourcecred;
pub mod validation;
pub mod wallet;

/// One problem with one input field, e.g. `items[3].quantity`: "must be greater than zero".
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FieldError {
    /// JSON path of the offending field.
    pub field: String,
    /// What is wrong with it, for a human.
    pub detail: String,
}

impl FieldError {
    /// A problem with `field`.
    pub fn new(field: impl Into<String>, detail: impl Into<String>) -> Self {
        Self {
            field: field.into(),
            detail: detail.into(),
        }
    }

    /// The same problem, reported under `prefix` (e.g. a batch item's index).
    pub fn within(self, prefix: &str) -> Self {
        Self {
            field: format!("{prefix}.{}", self.field),
            detail: self.detail,
        }
    }
}

/// Checks a free-text field's length in characters (not bytes).
pub fn bounded_text(field: &str, value: &str, min: usize, max: usize) -> Result<(), FieldError> {
    let len = value.chars().count();
    if len < min {
        return Err(FieldError::new(
            field,
            format!("must have at least {min} characters"),
        ));
    }
    if len > max {
        return Err(FieldError::new(
            field,
            format!("must have at most {max} characters"),
        ));
    }
    if value
        .chars()
        .any(|c| c.is_control() && c != '\n' && c != '\t')
    {
        return Err(FieldError::new(
            field,
            "must not contain control characters",
        ));
    }
    Ok(())
}

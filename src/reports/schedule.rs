//! Scheduled reports (placeholder until written).

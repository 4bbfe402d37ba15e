//! The optimizer's planners, one per pool; the decisions they feed are `decide::scale`.

use super::Optimizer;
use super::load::Basis;
use crate::analytics::planner::PoolPlanner;
use crate::analytics::scaling::ScalingConfig;

impl Optimizer {
    /// The planner of pool `name` fed on `basis`; a new one when the pool changed basis (a
    /// reload), since loads in other units would mislead its forecaster and margins.
    pub(super) fn planner(
        &mut self,
        name: &str,
        basis: Basis,
        config: ScalingConfig,
    ) -> &mut PoolPlanner {
        let entry = self
            .planners
            .entry(name.to_string())
            .or_insert_with(|| (basis.clone(), PoolPlanner::new(config)));
        if entry.0 != basis {
            *entry = (basis, PoolPlanner::new(config));
        }
        &mut entry.1
    }
}

//! What the alert actor answers about its book: every alert (the optimizer), a filtered page
//! (the API), counts (`/metrics`, the system summary) and its evaluation counts. A page and
//! the counts copy only what they answer.

use actix::{Context, Handler, Message, MessageResult};

use super::{Alert, AlertStats, AlertView};
use crate::decide::alerts::{AlertCounts, AlertFilter};

/// Asks for current and recently resolved alerts, newest first.
#[derive(Debug, Message)]
#[rtype(result = "Vec<AlertView>")]
pub struct GetAlerts;

/// Asks for the current and recently resolved alerts of the pools named, newest first.
#[derive(Debug, Message)]
#[rtype(result = "Vec<AlertView>")]
pub struct GetPoolAlerts(pub Vec<String>);

/// Asks for the first `limit` alerts `filter` takes, in id order; answered with them and
/// whether more follow.
#[derive(Debug, Message)]
#[rtype(result = "(Vec<AlertView>, bool)")]
pub struct PageAlerts {
    /// Which alerts.
    pub filter: AlertFilter,
    /// At most this many.
    pub limit: usize,
}

/// Asks how many alerts there are and how many fire at each level.
#[derive(Debug, Message)]
#[rtype(result = "AlertCounts")]
pub struct CountAlerts;

/// Asks how often the alerts have been evaluated, and when last.
#[derive(Debug, Message)]
#[rtype(result = "AlertStats")]
pub struct GetAlertStats;

/// Copies of the alerts `keep` takes, newest first.
fn newest_first(alert: &Alert, keep: impl Fn(&AlertView) -> bool) -> Vec<AlertView> {
    let mut alerts: Vec<AlertView> = (alert.book.entries())
        .filter(|(_, v)| keep(v))
        .map(|(_, v)| v.clone())
        .collect();
    alerts.sort_by_key(|a| std::cmp::Reverse(a.since_ms));
    alerts
}

impl Handler<GetAlerts> for Alert {
    type Result = MessageResult<GetAlerts>;

    fn handle(&mut self, _msg: GetAlerts, _ctx: &mut Context<Self>) -> Self::Result {
        let _span = self.span.clone().entered();
        MessageResult(newest_first(self, |_| true))
    }
}

impl Handler<GetPoolAlerts> for Alert {
    type Result = MessageResult<GetPoolAlerts>;

    fn handle(&mut self, msg: GetPoolAlerts, _ctx: &mut Context<Self>) -> Self::Result {
        let _span = self.span.clone().entered();
        // Only what is asked for is copied: an observe-only pool's thousands of alerts are not.
        MessageResult(newest_first(self, |a| msg.0.contains(&a.pool)))
    }
}

impl Handler<PageAlerts> for Alert {
    type Result = MessageResult<PageAlerts>;

    fn handle(&mut self, msg: PageAlerts, _ctx: &mut Context<Self>) -> Self::Result {
        let _span = self.span.clone().entered();
        MessageResult(self.book.page(&msg.filter, msg.limit))
    }
}

impl Handler<CountAlerts> for Alert {
    type Result = MessageResult<CountAlerts>;

    fn handle(&mut self, _msg: CountAlerts, _ctx: &mut Context<Self>) -> Self::Result {
        let _span = self.span.clone().entered();
        MessageResult(self.book.counts())
    }
}

impl Handler<GetAlertStats> for Alert {
    type Result = MessageResult<GetAlertStats>;

    fn handle(&mut self, _msg: GetAlertStats, _ctx: &mut Context<Self>) -> Self::Result {
        let _span = self.span.clone().entered();
        MessageResult(self.stats)
    }
}

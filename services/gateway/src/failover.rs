//! The attempt loop every generating endpoint shares: the targets of a route in
//! the order [`crate::retry::Attempts`] gives them, each call bounded by its
//! target's timeout, until one answers, an error is not worth another target,
//! or the attempts run out. A failure another target took over is recorded in
//! the exchange; the answer holds its target busy until it is over.

use std::future::Future;
use std::time::Duration;

use crate::app::AppState;
use crate::capture::{Exchange, Reply};
use crate::error::Error;
use crate::routing::{Route, Target};

/// One endpoint's call to one target.
pub trait Call {
    /// `target`'s answer; `first_event` bounds how long a stream may take to
    /// send its first event.
    fn call(
        &self,
        target: &Target,
        x: &mut Exchange,
        first_event: Duration,
    ) -> impl Future<Output = Result<Reply, Error>> + Send;
}

/// Calls `route`'s targets in turn; `model`, the model asked for, names the
/// error when no target was there to call.
pub async fn each_target(
    state: &AppState,
    route: &Route,
    x: &mut Exchange,
    model: &str,
    call: &(impl Call + Sync),
) -> Result<Reply, Error> {
    let span = tracing::Span::current();
    let mut attempts = state.attempts(route, &x.asked)?;
    let mut next = attempts.first();
    while let Some(target) = next {
        span.record("provider", &*target.provider_name);
        let first_event = state.settings().retry.first_event_timeout;
        let busy = target.busy();
        let answered = attempts
            .within(target, call.call(target, x, first_event))
            .await;
        match answered {
            Err(e) => match attempts.next(&e).await {
                Some(t) => {
                    x.failed_over(&e);
                    next = Some(t);
                }
                None => return Err(e),
            },
            answered => {
                attempts.succeeded();
                return answered.map(|reply| reply.holding(busy));
            }
        }
    }
    Err(Error::ModelNotFound(model.to_owned()))
}

//! Which back-ends say they serve (gRPC health, `grpc.health.v1`, the empty service name):
//! each is asked every `every`; calls go first to those that do, round-robin, and to the
//! others only when none of those could take them. A back-end that cannot reach PostgreSQL
//! reports NOT_SERVING within seconds, so front-ends steer away from it instead of waiting on
//! its calls. A back-end that does not answer the question counts as not serving.
use super::Backends;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;
use tokio_util::sync::CancellationToken;
use tonic_health::pb::health_check_response::ServingStatus;
use tonic_health::pb::health_client::HealthClient;
use tonic_health::pb::HealthCheckRequest;

/// How long one health question may take.
const ASK: Duration = Duration::from_secs(1);

impl Backends {
    /// Asks every back-end for its health now and every `every` until `shutdown`.
    pub fn watch_health(self: &Arc<Self>, every: Duration, shutdown: CancellationToken) {
        let this = self.clone();
        tokio::spawn(async move {
            loop {
                this.check_health().await;
                tokio::select! {
                    _ = shutdown.cancelled() => return,
                    _ = tokio::time::sleep(every) => {}
                }
            }
        });
    }

    /// Tells a back-end every `every` that this front-end is alive (`Delivery.Heartbeat`,
    /// recorded in PostgreSQL for the operators' overview), until `shutdown`. A failed report
    /// is only logged: the next one comes soon.
    pub fn report_alive(
        self: &Arc<Self>,
        name: String,
        detail: String,
        every: Duration,
        shutdown: CancellationToken,
    ) {
        let this = self.clone();
        let report = bridgehead_proto::v1::NodeReport {
            name,
            role: "frontend".into(),
            version: env!("CARGO_PKG_VERSION").into(),
            started_unix: std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| d.as_secs() as i64),
            detail,
        };
        tokio::spawn(async move {
            loop {
                let sent = this
                    .idempotent("heartbeat", |ch| {
                        let report = report.clone();
                        async move {
                            bridgehead_proto::v1::delivery_client::DeliveryClient::new(ch)
                                .heartbeat(report)
                                .await
                        }
                    })
                    .await;
                if let Err(e) = sent {
                    tracing::debug!(error = %e, "heartbeat not recorded");
                }
                tokio::select! {
                    _ = shutdown.cancelled() => return,
                    _ = tokio::time::sleep(every) => {}
                }
            }
        });
    }

    async fn check_health(&self) {
        let pool = self.pool();
        let asks = pool.channels.iter().zip(&pool.serving).zip(&pool.targets);
        let asks = asks.map(|((channel, flag), target)| async move {
            let mut client = HealthClient::new(channel.clone());
            let request = HealthCheckRequest {
                service: String::new(),
            };
            let answer = tokio::time::timeout(ASK, client.check(request)).await;
            let up =
                matches!(answer, Ok(Ok(r)) if r.get_ref().status == ServingStatus::Serving as i32);
            if flag.swap(up, Ordering::Relaxed) != up {
                tracing::warn!(backend = ?target, serving = up, "back-end health changed");
            }
        });
        futures::future::join_all(asks).await;
    }
}

/// Which of the first 64 back-ends serve, as bits (any beyond count as serving): one
/// snapshot per call, so a flag that changes meanwhile cannot make a call skip or repeat one.
pub(super) fn snapshot(serving: &[Arc<std::sync::atomic::AtomicBool>]) -> u64 {
    serving
        .iter()
        .take(64)
        .enumerate()
        .fold(u64::MAX, |bits, (i, s)| {
            if s.load(Ordering::Relaxed) {
                bits
            } else {
                bits & !(1 << i)
            }
        })
}

/// The order in which calls try `n` channels: from `start` round-robin, those serving
/// (`bits`, from `snapshot`) first. Allocates nothing: it is on every call's path.
pub(super) fn order(bits: u64, n: usize, start: usize) -> impl Iterator<Item = usize> {
    let up = move |i: usize| i >= 64 || bits & (1 << i) != 0;
    let rotated = move || (0..n).map(move |i| (start + i) % n);
    let first = rotated().filter(move |&i| up(i));
    first.chain(rotated().filter(move |&i| !up(i)))
}

#[cfg(test)]
mod tests {
    use super::{order, snapshot};

    #[test]
    fn serving_back_ends_come_first_round_robin() {
        let list = |bits: u64, n, start| order(bits, n, start).collect::<Vec<_>>();
        assert_eq!(list(0b111, 3, 1), [1, 2, 0]);
        assert_eq!(list(0b101, 3, 1), [2, 0, 1]);
        assert_eq!(list(0b00, 2, 1), [1, 0], "none serving: all, in turn");
        assert!(list(0, 0, 3).is_empty());
        let flags: Vec<_> = [true, false, true]
            .map(|b| std::sync::Arc::new(std::sync::atomic::AtomicBool::new(b)))
            .into();
        assert_eq!(snapshot(&flags) & 0b111, 0b101);
    }
}

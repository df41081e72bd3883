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

/// The order in which calls try `n` channels: from `start` round-robin, those serving first.
pub(super) fn order(serving: &[bool], start: usize) -> Vec<usize> {
    let n = serving.len();
    let rotated = (0..n).map(|i| (start + i) % n);
    let (up, down): (Vec<usize>, Vec<usize>) = rotated.partition(|&i| serving[i]);
    up.into_iter().chain(down).collect()
}

#[cfg(test)]
mod tests {
    use super::order;

    #[test]
    fn serving_back_ends_come_first_round_robin() {
        assert_eq!(order(&[true, true, true], 1), [1, 2, 0]);
        assert_eq!(order(&[true, false, true], 1), [2, 0, 1]);
        assert_eq!(
            order(&[false, false], 1),
            [1, 0],
            "none serving: all, in turn"
        );
        assert!(order(&[], 3).is_empty());
    }
}

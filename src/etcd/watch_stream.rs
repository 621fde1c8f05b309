//! One etcd watch stream per cluster member, shared by every prefix watch of the process that reads
//! through that member: etcd tells the watches on a stream apart by their ids, as Go's clientv3 does,
//! so 1,000 watched prefixes cost etcd one stream, not 1,000. A stream that fails or closes ends
//! every watch on it, and each watch then moves on as it would alone.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicI64, Ordering};
use std::sync::{Arc, Weak};
use std::time::{Duration, Instant};

use etcd_client::{WatchOptions, WatchRequestSender, WatchResponse, WatchResponseStream};
use parking_lot::Mutex;
use tokio::sync::mpsc;
use tokio::task::AbortHandle;

use super::cluster::{self, Cluster};
use super::stats::{Gauge, STATS};

/// What one watch hears from its stream.
pub(super) enum Heard {
    /// A response for this watch: created, events, a progress report of its own, or cancelled.
    Response(WatchResponse),
    /// A progress report for the whole stream (the answer to a progress request): the stream is alive.
    /// It says nothing about this watch's revision (etcd may send it before events of a watch still
    /// catching up), so it only counts as a sign of life.
    Alive,
    /// The stream failed or closed; no more will come.
    Ended(String),
}

/// The streams open now, by cluster (its address) and member. The async lock per slot makes the
/// watches that find no stream open one, not one each.
type Slot = Arc<tokio::sync::Mutex<Weak<Stream>>>;
static STREAMS: Mutex<Option<HashMap<(usize, usize), Slot>>> = Mutex::new(None);

/// An etcd progress report is asked for at most this often per stream, however many watches ask.
const PROGRESS_EVERY: Duration = Duration::from_millis(500);
/// The stream itself asks for a progress report this often, whatever its watches do (one may be
/// busy in a callback run on its task): etcd then has something to send, and a member (grpc-go's
/// keep-alive policy) that receives our one-second HTTP/2 pings with no data of its own sent in
/// between counts them as abuse and closes the connection after the third.
const PROGRESS_UNASKED: Duration = Duration::from_secs(2);

struct Stream {
    /// Where each watch's responses go, by watch id.
    routes: Arc<Routes>,
    /// Requests (create, cancel, progress) go through clones of this one.
    requests: WatchRequestSender,
    next_id: AtomicI64,
    router: AbortHandle,
    _active: Gauge,
}

#[derive(Default)]
struct Routes {
    watches: Mutex<HashMap<i64, mpsc::UnboundedSender<Heard>>>,
    /// Set once the stream failed: no watch joins it any more.
    ended: AtomicBool,
    last_progress_request: Mutex<Option<Instant>>,
}

impl Routes {
    /// Whether a progress request may go out now (none went out very recently); if so, it counts as
    /// sent.
    fn progress_due(&self) -> bool {
        let mut last = self.last_progress_request.lock();
        if last.is_some_and(|t| t.elapsed() < PROGRESS_EVERY) {
            return false;
        }
        *last = Some(Instant::now());
        true
    }
}

impl Drop for Stream {
    fn drop(&mut self) {
        self.router.abort();
    }
}

/// One watch on a shared stream. Dropping it cancels the watch on etcd (the stream stays open for
/// the others, and closes when the last watch on it goes).
pub(super) struct StreamWatch {
    id: i64,
    heard: mpsc::UnboundedReceiver<Heard>,
    stream: Arc<Stream>,
}

/// Starts a watch of `key` with `options` on `member`'s shared stream, opening the stream if there
/// is none; `timeout` bounds connecting and sending. The error is a message for the log.
pub(super) async fn join(
    cluster: &Arc<Cluster>,
    member: usize,
    key: &str,
    options: WatchOptions,
    timeout: Duration,
) -> Result<StreamWatch, String> {
    let slot = {
        let mut streams = STREAMS.lock();
        let streams = streams.get_or_insert_with(HashMap::new);
        // Slots of streams that are gone (and not being opened) are dropped on the way.
        streams.retain(|_, slot| slot.try_lock().map_or(true, |stream| stream.strong_count() > 0));
        Arc::clone(streams.entry((Arc::as_ptr(cluster) as usize, member)).or_default())
    };
    let mut slot =
        tokio::time::timeout(timeout, slot.lock()).await.map_err(|_| format!("no stream opened in {timeout:?}"))?;
    if let Some(stream) = slot.upgrade().filter(|s| !s.routes.ended.load(Ordering::Acquire)) {
        drop(slot);
        return stream.add(key, options, timeout).await;
    }
    let client = cluster.client(member).await.map_err(|e| e.message().to_string())?;
    let id = 1;
    let (to_watch, heard) = mpsc::unbounded_channel();
    let routes = Arc::new(Routes::default());
    routes.watches.lock().insert(id, to_watch);
    let mut watch_client = cluster::watch_client(&client);
    let opened = tokio::time::timeout(timeout, watch_client.watch(key, Some(options.with_watch_id(id))));
    let (requests, responses) = match opened.await {
        Ok(Ok(stream)) => stream.split(),
        Ok(Err(e)) => return Err(e.to_string()),
        Err(_) => return Err(format!("no answer in {timeout:?}")),
    };
    let progress = WatchRequestSender(requests.0.clone());
    let router = tokio::spawn(route(Arc::clone(&routes), responses, progress)).abort_handle();
    let stream = Arc::new(Stream {
        routes,
        requests,
        next_id: AtomicI64::new(id + 1),
        router,
        _active: Gauge::up(&STATS.watch_streams_active),
    });
    *slot = Arc::downgrade(&stream);
    Ok(StreamWatch { id, heard, stream })
}

impl Stream {
    async fn add(self: Arc<Self>, key: &str, options: WatchOptions, timeout: Duration) -> Result<StreamWatch, String> {
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        let (to_watch, heard) = mpsc::unbounded_channel();
        self.routes.watches.lock().insert(id, to_watch);
        // Dropped on any failure below: that removes the route again.
        let watch = StreamWatch { id, heard, stream: Arc::clone(&self) };
        let mut requests = self.sender();
        match tokio::time::timeout(timeout, requests.watch(key, Some(options.with_watch_id(id)))).await {
            Ok(Ok(())) => Ok(watch),
            Ok(Err(e)) => Err(e.to_string()),
            Err(_) => Err(format!("the stream took no request in {timeout:?}")),
        }
    }

    fn sender(&self) -> WatchRequestSender {
        WatchRequestSender(self.requests.0.clone())
    }
}

/// Hands each response to its watch (a stream-wide progress report to all) and asks for a progress
/// report every [`PROGRESS_UNASKED`], then tells every watch why the stream ended.
async fn route(routes: Arc<Routes>, mut responses: WatchResponseStream, mut requests: WatchRequestSender) {
    let mut unasked = tokio::time::interval(PROGRESS_UNASKED);
    unasked.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    unasked.tick().await;
    let why = loop {
        // `message` is cancel safe: a response half read when the tick wins is read on.
        let message = tokio::select! {
            message = responses.message() => message,
            _ = unasked.tick() => {
                if routes.progress_due() && requests.request_progress().await.is_err() {
                    break "the watch stream takes no more requests".to_string();
                }
                continue;
            }
        };
        match message {
            Ok(Some(response)) => {
                let watches = routes.watches.lock();
                // etcd answers a progress request with watch id -1, meant for every watch.
                if response.watch_id() == -1 {
                    for watch in watches.values() {
                        let _ = watch.send(Heard::Alive);
                    }
                } else if let Some(watch) = watches.get(&response.watch_id()) {
                    let _ = watch.send(Heard::Response(response));
                }
            }
            Ok(None) => break "the watch stream ended".to_string(),
            Err(e) => break e.to_string(),
        }
    };
    routes.ended.store(true, Ordering::Release);
    for (_, watch) in routes.watches.lock().drain() {
        let _ = watch.send(Heard::Ended(why.clone()));
    }
}

impl StreamWatch {
    /// The next thing heard; `Ended` once the stream is gone.
    pub(super) async fn next(&mut self) -> Heard {
        self.heard.recv().await.unwrap_or_else(|| Heard::Ended("the watch stream ended".into()))
    }

    /// What was heard already, without waiting.
    pub(super) fn next_now(&mut self) -> Option<Heard> {
        self.heard.try_recv().ok()
    }

    /// Asks etcd for a progress report on the stream (unless one was asked for very recently); its
    /// answer reaches every watch as [`Heard::Alive`]. False when the stream cannot take requests.
    pub(super) async fn request_progress(&mut self) -> bool {
        if !self.stream.routes.progress_due() {
            return true;
        }
        self.stream.sender().request_progress().await.is_ok()
    }
}

impl Drop for StreamWatch {
    fn drop(&mut self) {
        let routed = self.stream.routes.watches.lock().remove(&self.id).is_some();
        if !routed || self.stream.routes.ended.load(Ordering::Acquire) {
            return;
        }
        // Cancel it on etcd, so that the stream's other watches keep it and etcd forgets this one.
        let mut requests = self.stream.sender();
        let id = self.id;
        if let Ok(runtime) = tokio::runtime::Handle::try_current() {
            runtime.spawn(async move {
                let _ = requests.cancel(id).await;
            });
        }
    }
}

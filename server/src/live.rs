//! Live dashboards: one websocket per browser tab (`GET /api/live/ws`) streams each panel's new
//! points as soon as the scrape that produced them is committed.
//!
//! The TSDB head calls a commit hook after every append; here it bumps a `watch` counter, which
//! wakes the connections without ever blocking the writer (a `watch` keeps only the latest
//! value, so a slow viewer simply skips to the newest data: its queue is one deep). A
//! connection subscribes to a dashboard with the page's query string; the panels are planned
//! once (variables resolved, `$__interval` chosen) by the same code as the page, and on every
//! wake-up only the steps from the last one sent to now are evaluated. Evaluations are shared:
//! viewers asking the same query over the same steps wait on one [`EvalCache`] entry, so two
//! hundred viewers of a dashboard cost one evaluation per panel per commit.
//!
//! Protocol (JSON text frames). Client: `{"type":"subscribe","uid":"…","search":"?from=…","since":<ms>}`.
//! Server: `{"type":"subscribed","panels":N}`, then `{"type":"points","now":<ms>,"panels":[{"id":1,
//! "series":[{"name":"…","points":[[t,v],…]}],"error":null}]}` with points at or after the last
//! step previously sent (the last step may be re-sent with a newer value), and
//! `{"type":"error","message":"…"}` for a subscription that cannot be served.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use app::dashboard::load::{plan_dashboard, resolve_range, series_name, PanelPlan};
use app::dashboard::url::Query;
use app::model::{Backend, DataSource, QuerySeries};
use app::time::now_ms;
use axum::extract::ws::{Message, WebSocket, WebSocketUpgrade};
use axum::extract::State;
use axum::response::Response;
use serde::{Deserialize, Serialize};
use tokio::sync::{watch, OnceCell};

use crate::web::{UiBackend, WebState};
use crate::Services;

/// Shared by all connections: the commit signal and the evaluation cache.
pub struct Live {
    commits: watch::Sender<u64>,
    cache: EvalCache,
}

impl Default for Live {
    fn default() -> Self {
        Live { commits: watch::channel(0).0, cache: EvalCache::default() }
    }
}

impl Live {
    /// The hook the TSDB head calls after each commit.
    pub fn commit_hook(self: &Arc<Self>) -> Box<dyn Fn() + Send + Sync> {
        let live = self.clone();
        Box::new(move || live.commits.send_modify(|n| *n = n.wrapping_add(1)))
    }

    pub fn viewers(&self) -> usize {
        self.commits.receiver_count()
    }
}

type EvalResult = Arc<Result<Vec<QuerySeries>, String>>;

/// Range evaluations keyed by (expression, start, end, step), kept a few seconds so that every
/// viewer woken by the same commit shares one evaluation.
type EvalKey = (String, i64, i64, i64);
/// When an entry was made, and the evaluation every waiter shares.
type EvalEntry = (Instant, Arc<OnceCell<EvalResult>>);

#[derive(Default)]
pub struct EvalCache {
    entries: parking_lot::Mutex<HashMap<EvalKey, EvalEntry>>,
}

const CACHE_TTL: Duration = Duration::from_secs(5);

impl EvalCache {
    /// The cell for a key, evicting expired entries; the caller initialises it once.
    fn cell(&self, key: EvalKey, generation: u64) -> Arc<OnceCell<EvalResult>> {
        let mut entries = self.entries.lock();
        let now = Instant::now();
        entries.retain(|_, (at, _)| now.duration_since(*at) < CACHE_TTL);
        // The generation (commit counter) is part of the freshness: a later commit must not be
        // answered from an evaluation made before it.
        let (key_expr, s, e, st) = key;
        let full = (format!("{generation}\u{0}{key_expr}"), s, e, st);
        entries.entry(full).or_insert_with(|| (now, Arc::new(OnceCell::new()))).1.clone()
    }
}

#[derive(Deserialize)]
#[serde(tag = "type", rename_all = "lowercase")]
enum ClientMessage {
    Subscribe {
        uid: String,
        #[serde(default)]
        search: String,
        /// The end of the range the page already shows, ms.
        since: Option<i64>,
    },
}

#[derive(Serialize)]
struct SeriesUpdate {
    name: String,
    points: Vec<(i64, f64)>,
}

#[derive(Serialize)]
struct PanelUpdate {
    id: i64,
    series: Vec<SeriesUpdate>,
    error: Option<String>,
}

struct Subscription {
    plans: Vec<PanelPlan>,
    /// Per panel: the first step still to (re)send.
    next: Vec<i64>,
}

pub async fn ws_handler(
    ws: WebSocketUpgrade,
    State(services): State<Arc<Services>>,
    grant: Option<axum::Extension<app::model::EmbedGrant>>,
) -> Response {
    let grant = grant.map(|g| g.0);
    ws.on_upgrade(move |socket| serve(socket, services, grant))
}

fn frame(value: &impl Serialize) -> Message {
    Message::Text(serde_json::to_string(value).unwrap_or_else(|_| "{}".into()).into())
}

fn error_frame(message: &str) -> Message {
    frame(&serde_json::json!({ "type": "error", "message": message }))
}

async fn serve(mut socket: WebSocket, services: Arc<Services>, grant: Option<app::model::EmbedGrant>) {
    let live = services.live.clone();
    let mut commits = live.commits.subscribe();
    let mut sub: Option<Subscription> = None;
    loop {
        tokio::select! {
            msg = socket.recv() => {
                let text = match msg {
                    Some(Ok(Message::Text(t))) => t,
                    Some(Ok(Message::Close(_))) | None | Some(Err(_)) => break,
                    Some(Ok(_)) => continue,
                };
                match serde_json::from_str::<ClientMessage>(&text) {
                    Ok(ClientMessage::Subscribe { uid, search, since }) => {
                        match subscribe(&services, uid, search, since, grant.as_ref()).await {
                            Ok(s) => {
                                let n = s.plans.len();
                                sub = Some(s);
                                commits.borrow_and_update();
                                if socket.send(frame(&serde_json::json!({"type": "subscribed", "panels": n}))).await.is_err() {
                                    break;
                                }
                            }
                            Err(e) => {
                                if socket.send(error_frame(&e)).await.is_err() {
                                    break;
                                }
                            }
                        }
                    }
                    Err(e) => {
                        if socket.send(error_frame(&format!("bad message: {e}"))).await.is_err() {
                            break;
                        }
                    }
                }
            }
            changed = commits.changed(), if sub.is_some() => {
                if changed.is_err() {
                    break;
                }
                let generation = *commits.borrow_and_update();
                let Some(s) = sub.as_mut() else { continue };
                let panels = advance(&services, s, generation).await;
                if !panels.is_empty() {
                    let msg = serde_json::json!({"type": "points", "now": now_ms(), "panels": panels});
                    if socket.send(frame(&msg)).await.is_err() {
                        break;
                    }
                }
            }
        }
    }
}

async fn subscribe(
    services: &Arc<Services>,
    uid: String,
    search: String,
    since: Option<i64>,
    grant: Option<&app::model::EmbedGrant>,
) -> Result<Subscription, String> {
    let backend = UiBackend(services.clone());
    let (dashboard, _) = backend.dashboard(&uid).ok_or_else(|| format!("Dashboard {uid:?} not found"))?;
    let mut q = Query::parse(&search);
    // Through an embed link: its dashboard only, its panel only, its variables fixed.
    if let Some(g) = grant {
        g.apply(&uid, &mut q)?;
    }
    let only_panel = grant.and_then(|g| g.panel_id);
    let now = now_ms();
    let range = resolve_range(&dashboard, q.get("from"), q.get("to"), now);
    let vars = q.variables();
    // Variable queries and planning read the TSDB: blocking work.
    let plans = tokio::task::spawn_blocking(move || {
        let source: &dyn DataSource = &backend;
        plan_dashboard(source, &dashboard, range, &vars)
    })
    .await
    .map_err(|e| format!("planning failed: {e}"))?;
    let plans: Vec<PanelPlan> =
        plans.into_iter().filter(|p| only_panel.is_none_or(|id| id == p.id)).collect();
    let since = since.unwrap_or(range.1);
    // Resend from the step the page showed last: it may have been evaluated before all of its
    // samples arrived.
    let next = plans.iter().map(|p| since.div_euclid(p.step_ms.max(1)) * p.step_ms.max(1)).collect();
    Ok(Subscription { plans, next })
}

/// Evaluates every panel's steps from its next one up to now, sharing evaluations through the
/// cache, and moves the subscription forward.
async fn advance(services: &Arc<Services>, sub: &mut Subscription, generation: u64) -> Vec<PanelUpdate> {
    let now = now_ms();
    let mut out = Vec::new();
    for (plan, next) in sub.plans.iter().zip(sub.next.iter_mut()) {
        let step = plan.step_ms.max(1);
        let end = (now + step - 1).div_euclid(step) * step;
        if plan.queries.iter().all(|q| q.instant) || end < *next {
            continue;
        }
        let start = (*next).max(end - 100 * step);
        let mut update = PanelUpdate { id: plan.id, series: Vec::new(), error: None };
        for q in plan.queries.iter().filter(|q| !q.instant) {
            let result = evaluate(services, &q.expr, start, end, step, generation).await;
            match result.as_ref() {
                Ok(series) => {
                    for (labels, points) in series {
                        let points: Vec<(i64, f64)> =
                            points.iter().copied().filter(|(_, v)| v.is_finite()).collect();
                        if !points.is_empty() {
                            update.series.push(SeriesUpdate { name: series_name(&q.legend, labels), points });
                        }
                    }
                }
                Err(e) => update.error = Some(format!("{}: {e}", q.ref_id)),
            }
        }
        // The newest step stays open: its value can still change with the next scrape.
        *next = end;
        if !update.series.is_empty() || update.error.is_some() {
            out.push(update);
        }
    }
    out
}

async fn evaluate(
    services: &Arc<Services>,
    expr: &str,
    start: i64,
    end: i64,
    step: i64,
    generation: u64,
) -> EvalResult {
    let cell = services.live.cache.cell((expr.to_string(), start, end, step), generation);
    cell.get_or_init(|| async {
        let backend = UiBackend(services.clone());
        let expr = expr.to_string();
        let answer = tokio::task::spawn_blocking(move || backend.range_query(&expr, start, end, step))
            .await
            .unwrap_or_else(|e| Err(format!("evaluation failed: {e}")));
        Arc::new(answer)
    })
    .await
    .clone()
}

pub fn router() -> axum::Router<WebState> {
    axum::Router::new().route("/api/live/ws", axum::routing::get(ws_handler))
}

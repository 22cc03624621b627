//! Vigil's embedded time-series database. It knows nothing of HTTP, scraping or PromQL.
//!
//! A series is a sorted label set ([`labels::Labels`]); a sample is `(i64 ms, f64)` stored
//! bit-exactly. Samples live in compressed chunks ([`chunk`]); the inverted index
//! ([`index`]) maps label pairs to series and evaluates Prometheus matchers. Every series and
//! sample the head accepts is first appended to the write-ahead log ([`wal`]), which is replayed
//! on start.

pub mod block;
pub mod chunk;
pub mod compact;
pub mod db;
pub mod head;
pub mod index;
pub mod labels;
pub mod wal;

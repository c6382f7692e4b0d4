//! Adapters: the MySQL log (append under the chain's head lock, streaming verification) and the
//! consumer that turns every event on the exchange into one record.

pub mod consumer;
pub mod mysql;

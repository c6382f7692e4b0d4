//! Adapters: the MySQL log (append under the chain's head lock, streaming verification, queries),
//! the consumer that turns every event on the exchange into one record, and the project service.

pub mod consumer;
pub mod mysql;
pub mod project;

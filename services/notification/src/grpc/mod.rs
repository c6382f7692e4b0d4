//! The tonic servers of the notification service: they translate protobuf to use-case calls and
//! use-case errors to `tonic::Status`, nothing more.

mod notification;
mod webhook;

pub use notification::NotificationGrpc;
pub use webhook::WebhookGrpc;

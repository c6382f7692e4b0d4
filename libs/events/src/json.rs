//! An event's payload as JSON, for whoever shows or sends events outside protobuf (the audit log,
//! webhooks): the envelope is read with the descriptors of Ordo's protos, and the payload's message
//! is written with the protobuf field names (`snake_case`, as the API names everything), fields at
//! their default value left out.

use ordo_proto::events::v1::Envelope;
use prost::Message as _;
use prost_reflect::{DescriptorPool, DynamicMessage, MessageDescriptor, OneofDescriptor, SerializeOptions};

/// The envelope's message and its oneof of payloads, by their proto names.
const ENVELOPE: &str = "ordo.events.v1.Envelope";
const PAYLOAD: &str = "payload";

/// Why a payload could not be read as JSON.
#[derive(Debug, thiserror::Error)]
pub enum PayloadJsonError {
    /// Ordo's descriptor set does not decode or lacks the envelope's payload (a build fault).
    #[error("descriptors: {0}")]
    Descriptors(String),

    /// The envelope does not decode against the descriptors.
    #[error("envelope does not decode: {0}")]
    Decode(#[from] prost::DecodeError),

    /// The payload's message could not be written as JSON.
    #[error("payload to JSON: {0}")]
    Json(#[from] serde_json::Error),
}

/// Reads envelopes' payloads as JSON with the proto field names.
#[derive(Clone, Debug)]
pub struct PayloadJson {
    envelope: MessageDescriptor,
    payload: OneofDescriptor,
}

impl PayloadJson {
    /// A reader with the descriptors of Ordo's protos.
    ///
    /// # Errors
    ///
    /// [`PayloadJsonError::Descriptors`] when the descriptor set built into `ordo-proto` does not
    /// decode or has no `Envelope` with a `payload` oneof.
    pub fn new() -> Result<Self, PayloadJsonError> {
        let pool = DescriptorPool::decode(ordo_proto::FILE_DESCRIPTOR_SET)
            .map_err(|e| PayloadJsonError::Descriptors(e.to_string()))?;
        let envelope = pool
            .get_message_by_name(ENVELOPE)
            .ok_or_else(|| PayloadJsonError::Descriptors(format!("the descriptor set has no {ENVELOPE}")))?;
        let payload = envelope
            .oneofs()
            .find(|oneof| oneof.name() == PAYLOAD)
            .ok_or_else(|| PayloadJsonError::Descriptors(format!("{ENVELOPE} has no oneof {PAYLOAD}")))?;
        Ok(Self { envelope, payload })
    }

    /// The payload's oneof field name (e.g. `task_created`) and its message as JSON; `None` when the
    /// envelope carries none this build knows.
    ///
    /// # Errors
    ///
    /// [`PayloadJsonError::Decode`] when the envelope does not decode against the descriptors, and
    /// [`PayloadJsonError::Json`] when its payload cannot be written as JSON.
    pub fn payload(&self, envelope: &Envelope) -> Result<Option<(String, serde_json::Value)>, PayloadJsonError> {
        let message = DynamicMessage::decode(self.envelope.clone(), envelope.encode_to_vec().as_slice())?;
        let Some(field) = self.payload.fields().find(|field| message.has_field(field)) else {
            return Ok(None);
        };
        let json = match message.get_field(&field).as_message() {
            Some(payload) => payload.serialize_with_options(
                serde_json::value::Serializer,
                &SerializeOptions::new().use_proto_field_name(true),
            )?,
            // Every payload is a message; a scalar one would have no fields to show.
            None => serde_json::Value::Null,
        };
        Ok(Some((field.name().to_owned(), json)))
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use ordo_proto::events::v1::envelope::Payload;
    use ordo_proto::events::v1::{TaskCreated, TaskSnapshot};
    use serde_json::json;

    use super::*;

    fn task_created() -> Envelope {
        let task = TaskSnapshot {
            task_id: "t-1".to_owned(),
            project_id: "p-1".to_owned(),
            key: "K-1".to_owned(),
            title: "Write it once".to_owned(),
            status: "todo".to_owned(),
            assignee_ids: vec!["u-2".to_owned()],
            version: 1,
            ..TaskSnapshot::default()
        };
        Envelope {
            event_id: "e-1".to_owned(),
            r#type: "task.created".to_owned(),
            payload: Some(Payload::TaskCreated(TaskCreated {
                task: Some(task),
                labels: vec!["docs".to_owned()],
                ..TaskCreated::default()
            })),
            ..Envelope::default()
        }
    }

    #[test]
    fn a_payload_is_its_field_name_and_its_message_with_proto_field_names_defaults_left_out() {
        let json = PayloadJson::new().unwrap();

        let (field, value) = json.payload(&task_created()).unwrap().unwrap();

        assert_eq!(field, "task_created");
        assert_eq!(
            value,
            json!({
                "task": {
                    "task_id": "t-1",
                    "project_id": "p-1",
                    "key": "K-1",
                    "title": "Write it once",
                    "status": "todo",
                    "assignee_ids": ["u-2"],
                    "version": "1",
                },
                "labels": ["docs"],
            })
        );
    }

    #[test]
    fn an_envelope_without_a_payload_has_none() {
        let json = PayloadJson::new().unwrap();
        let envelope = Envelope { payload: None, ..task_created() };

        assert!(json.payload(&envelope).unwrap().is_none());
    }
}

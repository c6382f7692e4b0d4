//! Translates the project service's domain events into `ordo.events.v1.Envelope`s.

use ordo_events::EnvelopeBuilder;
use ordo_proto::events::v1::{self as pb, envelope::Payload};
use uuid::Uuid;

use crate::app::ClientInfo;
use crate::domain::{Description, MemberRemoval, Project, ProjectEvent};

/// The producer name carried in every envelope.
const PRODUCER: &str = "project";

/// Builds the envelope of `event`, caused by `actor` from `client`, in the current trace.
pub(crate) fn envelope(event: &ProjectEvent, actor: Option<Uuid>, client: &ClientInfo) -> pb::Envelope {
    let (entity_type, entity_id) = event.entity();
    let mut builder = EnvelopeBuilder::new(PRODUCER, event.event_type())
        .client(client.ip.clone(), client.user_agent.clone())
        .entity(entity_type, entity_id.to_string())
        .project(event.project().id.to_string())
        .payload(payload(event));
    if let Some(actor) = actor {
        builder = builder.actor(actor.to_string());
    }
    builder.build()
}

fn description(project: &Project) -> String {
    project.description.as_ref().map(Description::as_str).unwrap_or_default().to_owned()
}

fn payload(event: &ProjectEvent) -> Payload {
    match event {
        ProjectEvent::Created { project } => Payload::ProjectCreated(pb::ProjectCreated {
            project_id: project.id.to_string(),
            key: project.key.as_str().to_owned(),
            name: project.name.as_str().to_owned(),
            description: description(project),
            created_by: project.created_by.to_string(),
        }),
        ProjectEvent::Updated { project, changed } => Payload::ProjectUpdated(pb::ProjectUpdated {
            project_id: project.id.to_string(),
            key: project.key.as_str().to_owned(),
            name: project.name.as_str().to_owned(),
            description: description(project),
            changed_fields: changed.iter().map(|field| (*field).to_owned()).collect(),
            version: project.version,
        }),
        ProjectEvent::Archived { project } => Payload::ProjectArchived(pb::ProjectArchived {
            project_id: project.id.to_string(),
            key: project.key.as_str().to_owned(),
            name: project.name.as_str().to_owned(),
        }),
        ProjectEvent::Unarchived { project } => Payload::ProjectUnarchived(pb::ProjectUnarchived {
            project_id: project.id.to_string(),
            key: project.key.as_str().to_owned(),
            name: project.name.as_str().to_owned(),
        }),
        ProjectEvent::Deleted { project, member_ids } => Payload::ProjectDeleted(pb::ProjectDeleted {
            project_id: project.id.to_string(),
            key: project.key.as_str().to_owned(),
            name: project.name.as_str().to_owned(),
            member_ids: member_ids.iter().map(Uuid::to_string).collect(),
        }),
        ProjectEvent::MemberAdded { project, membership } => Payload::ProjectMemberAdded(pb::ProjectMemberAdded {
            project_id: project.id.to_string(),
            user_id: membership.user_id.to_string(),
            role: membership.role.as_str().to_owned(),
            project_key: project.key.as_str().to_owned(),
            project_name: project.name.as_str().to_owned(),
        }),
        ProjectEvent::MemberRoleChanged { project, user_id, old_role, new_role } => {
            Payload::ProjectMemberRoleChanged(pb::ProjectMemberRoleChanged {
                project_id: project.id.to_string(),
                user_id: user_id.to_string(),
                old_role: old_role.as_str().to_owned(),
                new_role: new_role.as_str().to_owned(),
                project_key: project.key.as_str().to_owned(),
                project_name: project.name.as_str().to_owned(),
            })
        }
        ProjectEvent::MemberRemoved { project, user_id, role, how } => {
            Payload::ProjectMemberRemoved(pb::ProjectMemberRemoved {
                project_id: project.id.to_string(),
                user_id: user_id.to_string(),
                role: role.as_str().to_owned(),
                left: *how == MemberRemoval::Left,
                project_key: project.key.as_str().to_owned(),
                project_name: project.name.as_str().to_owned(),
            })
        }
    }
}

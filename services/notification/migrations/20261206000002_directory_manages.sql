-- Who manages each project (owners and admins), from the events that set roles: they hear when
-- the service turns one of the project's webhooks off.
ALTER TABLE directory_member ADD COLUMN manages BOOLEAN NOT NULL DEFAULT FALSE;

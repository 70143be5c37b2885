-- Who sent a request, as a label: `playground` for the admin UI's Playground,
-- empty for every other client.
ALTER TABLE request_logs ADD COLUMN source TEXT NOT NULL DEFAULT '';
CREATE INDEX request_logs_key ON request_logs (client_key_id, received_at DESC);

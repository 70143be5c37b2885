-- Who sent a request, as a label: `playground` for the admin UI's Playground,
-- empty for every other client.
ALTER TABLE request_logs ADD COLUMN source VARCHAR(255) NOT NULL DEFAULT '';

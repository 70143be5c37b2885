-- How a mapping picks the target that serves first: fallback (in order),
-- weighted, least_latency or least_busy.
ALTER TABLE model_mappings ADD COLUMN strategy VARCHAR(255) NOT NULL DEFAULT 'fallback';

-- The types of the built-in tools (web_search, namespace, ...) the provider
-- could not run, left out of the upstream request, as a JSON array in request
-- order; empty when none was. (Added to the partitioned table, so to every
-- partition.)
ALTER TABLE request_logs ADD COLUMN omitted_tools text NOT NULL DEFAULT '';

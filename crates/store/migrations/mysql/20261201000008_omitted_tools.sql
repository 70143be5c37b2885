-- The types of the built-in tools (web_search, namespace, ...) the provider
-- could not run, left out of the upstream request, as a JSON array in request
-- order; empty when none was. (MySQL takes a TEXT column's default only as an
-- expression, in parentheses.)
ALTER TABLE request_logs ADD COLUMN omitted_tools TEXT NOT NULL DEFAULT ('');

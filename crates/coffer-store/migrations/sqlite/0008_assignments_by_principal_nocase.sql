-- Principal ids are compared case-insensitively (ASCII), as the in-memory state does: an index that serves
-- `principal_id = ? COLLATE NOCASE`, so publishing one assignee's assignments reads only theirs.
CREATE INDEX role_assignments_by_principal_nocase ON role_assignments (principal_id COLLATE NOCASE);

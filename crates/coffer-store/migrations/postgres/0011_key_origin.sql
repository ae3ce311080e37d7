-- How each key version came to be: 'generated' (inside this instance or another holding the same security domain),
-- 'imported' (plaintext import), 'byok' (a .byok blob). NULL for versions written before this column existed.
-- PostgreSQL translation of ../sqlite/0011_key_origin.sql (rules and SQLite-isms: 0001_initial.sql); nothing here
-- beyond those. (There is no 0010 in either directory.)
ALTER TABLE key_versions ADD COLUMN origin TEXT COLLATE "C";

-- How each key version came to be: 'generated' (inside this instance or another holding the same security domain),
-- 'imported' (plaintext import), 'byok' (a .byok blob). NULL for versions written before this column existed.
ALTER TABLE key_versions ADD COLUMN origin TEXT;

-- The Argon2id hash (PHC string) of the password a room's newcomers need; NULL for none. Never the
-- password itself.
ALTER TABLE rooms ADD COLUMN password_hash TEXT;

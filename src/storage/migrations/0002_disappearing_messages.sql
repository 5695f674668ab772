-- Rooms may make their messages disappear after a while; NULL keeps them (until retention).
ALTER TABLE rooms ADD COLUMN expire_after_ms BIGINT;

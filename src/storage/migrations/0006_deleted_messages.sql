-- When a message was deleted (Unix milliseconds); NULL while it stands. A deleted message's row is
-- its tombstone: the text and sender's name are blanked, and the seq stays taken so that a replay
-- reading storage tells a deletion from a gap.
ALTER TABLE messages ADD COLUMN deleted_at BIGINT;

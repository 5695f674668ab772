-- The highest seq a room has given, raised in the transaction that stores the messages it numbers
-- (shared mode, where several instances number one room's messages). It never goes down, so
-- messages that expired or were deleted never free their seqs for reuse.
ALTER TABLE rooms ADD COLUMN last_seq BIGINT NOT NULL DEFAULT 0;
UPDATE rooms SET last_seq = COALESCE((SELECT MAX(seq) FROM messages WHERE messages.room = rooms.code), 0);

-- The seq a room had reached when a process last closed it cleanly (unloaded it as idle, or stopped),
-- written after all its messages; NULL while a process has the room open to number its messages
-- alone. A room found NULL when it is loaded was open in a process that died, whose last messages
-- (delivered, not yet stored) may have used seqs storage never saw: numbering skips past them. A
-- room created or open before this column existed counts as closed at its newest message.
ALTER TABLE rooms ADD COLUMN closed_seq BIGINT;
UPDATE rooms SET closed_seq = COALESCE((SELECT MAX(seq) FROM messages WHERE messages.room = rooms.code), 0);

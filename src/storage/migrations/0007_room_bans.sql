-- People banned from a room, until unbanned: by account (`account` 1), or a guest by identity and,
-- when the instance that had them connected knew it, the address they came from. The name is the
-- one they had, for the unban and the log.
CREATE TABLE room_bans (
    room TEXT NOT NULL,
    user_id TEXT NOT NULL,
    user_name TEXT NOT NULL,
    account BIGINT NOT NULL,
    address TEXT,
    PRIMARY KEY (room, user_id)
);

-- Room owners and the rules moderators set. The owner token is kept as its SHA-256, never itself;
-- `owner_account` is the account that owns the room (its signed-in creator, or one that bound the
-- token). `locked` and `accounts_only` are 0 or 1. The moderation log records who did what to whom, and when.
ALTER TABLE rooms ADD COLUMN owner_token_digest TEXT;
ALTER TABLE rooms ADD COLUMN owner_account TEXT;
ALTER TABLE rooms ADD COLUMN locked BIGINT NOT NULL DEFAULT 0;
ALTER TABLE rooms ADD COLUMN accounts_only BIGINT NOT NULL DEFAULT 0;

-- People who proved ownership with the owner token (a guest owner's identity), so every instance
-- that loads the room knows them.
CREATE TABLE room_owner_claims (
    room TEXT NOT NULL,
    user_id TEXT NOT NULL,
    PRIMARY KEY (room, user_id)
);

-- People a moderator muted: their messages are refused on every instance, across restarts.
CREATE TABLE room_mutes (
    room TEXT NOT NULL,
    user_id TEXT NOT NULL,
    PRIMARY KEY (room, user_id)
);

-- Accounts the owner made moderators.
CREATE TABLE room_moderators (
    room TEXT NOT NULL,
    user_id TEXT NOT NULL,
    PRIMARY KEY (room, user_id)
);

CREATE TABLE moderation_log (
    room TEXT NOT NULL,
    at BIGINT NOT NULL,
    actor_id TEXT NOT NULL,
    actor_name TEXT NOT NULL,
    action TEXT NOT NULL,
    target_id TEXT,
    target_name TEXT,
    reason TEXT
);

CREATE INDEX moderation_log_by_room ON moderation_log (room, at);

-- When a message's author last changed its text (Unix milliseconds); NULL if never.
ALTER TABLE messages ADD COLUMN edited_at BIGINT;

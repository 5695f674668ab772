-- Rooms and their messages. Times are Unix milliseconds and ids UUID text: types that sqlx's Any
-- driver carries the same way on SQLite and PostgreSQL, so one migration serves both.
CREATE TABLE rooms (
    code TEXT PRIMARY KEY,
    created_at BIGINT NOT NULL,
    last_activity BIGINT NOT NULL
);

CREATE TABLE messages (
    room TEXT NOT NULL,
    seq BIGINT NOT NULL,
    id TEXT NOT NULL,
    sender_id TEXT NOT NULL,
    sender_name TEXT NOT NULL,
    text TEXT NOT NULL,
    ts BIGINT NOT NULL,
    ref TEXT,
    PRIMARY KEY (room, seq)
);

CREATE INDEX rooms_by_last_activity ON rooms (last_activity);

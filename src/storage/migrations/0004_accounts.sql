-- Accounts, and the sessions they are signed in with. `username_key` is the name folded for
-- comparison (case and look-alike letters), so the unique index decides who gets a name, on every
-- instance at once. A session is kept as the SHA-256 of its token, never the token itself.
CREATE TABLE accounts (
    id TEXT PRIMARY KEY,
    username TEXT NOT NULL,
    username_key TEXT NOT NULL UNIQUE,
    password_hash TEXT NOT NULL,
    created_at BIGINT NOT NULL
);

CREATE TABLE account_sessions (
    token_digest TEXT PRIMARY KEY,
    account_id TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    expires_at BIGINT NOT NULL
);

CREATE INDEX account_sessions_by_account ON account_sessions (account_id);

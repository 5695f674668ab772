//! A room's presence in Redis, under the room's hash tag: who is in it on which instance
//! (`members`), which name each holds (`names`), how many instances each account is on
//! (`devices`), and the identities people may resume anywhere (`identities`, keyed by a one-way
//! digest of the resume secret, never the secret).
//!
//! A guest has one entry, under their id: resuming on another instance moves it there. An account
//! has one per instance it is connected to, under `id@instance`, so that one person on two
//! devices served by two instances stays in the room until the last of them leaves.
//!
//! Claims are Lua scripts, so two instances admitting the same name at the same moment cannot both
//! win: Redis runs one script at a time.

use std::collections::HashSet;
use std::sync::{Arc, LazyLock};

use redis::{AsyncCommands, Script};
use serde::{Deserialize, Serialize};

use super::{Liveness, RedisBroker};
use crate::domain::{InstanceId, RoomCode, Timestamp, User, UserId};

/// A room's presence keys go after a day without a claim; a lobby re-registers its members if so.
const KEY_LIFETIME_SECONDS: i64 = 86_400;

/// Claims `name key` for a user and records their member entry, unless another member holds it
/// (then answers the holder's id). A guest holder on an instance known dead (listed after the
/// fixed arguments) loses the name and their entry, and a live one loses the name to an account,
/// whose username it is (their entry stays: their instance renames them). An account keeps its
/// name while on any instance. With an old key, releases it: a rename. Seizing takes the name
/// whoever holds it.
///
/// KEYS: members, names, devices. ARGV: id, name key, entry, old key, lifetime, the entry's field,
/// '1' for an account, '1' to seize, then the dead instances.
const CLAIM: &str = r"
local holder = redis.call('HGET', KEYS[2], ARGV[2])
if holder and holder ~= ARGV[1] and ARGV[8] ~= '1' then
  local entry = redis.call('HGET', KEYS[1], holder)
  if entry then
    local held = cjson.decode(entry)
    local dead = false
    for i = 9, #ARGV do
      if ARGV[i] == held.instance then dead = true end
    end
    if dead then
      redis.call('HDEL', KEYS[1], holder)
    elseif ARGV[7] ~= '1' or held.user.account then
      return holder
    end
  elseif redis.call('HEXISTS', KEYS[3], holder) == 1 then
    return holder
  end
end
redis.call('HSET', KEYS[2], ARGV[2], ARGV[1])
if redis.call('HSET', KEYS[1], ARGV[6], ARGV[3]) == 1 and ARGV[7] == '1' then
  redis.call('HINCRBY', KEYS[3], ARGV[1], 1)
end
if ARGV[4] ~= '' and ARGV[4] ~= ARGV[2] and redis.call('HGET', KEYS[2], ARGV[4]) == ARGV[1] then
  redis.call('HDEL', KEYS[2], ARGV[4])
end
for i = 1, 3 do
  redis.call('EXPIRE', KEYS[i], ARGV[5])
end
return false
";

/// Removes a user's member entry if it is the given instance's, and their name once they are
/// nowhere in the room.
///
/// KEYS: members, names, devices. ARGV: id, name key, instance, the entry's field, '1' for an account.
const LEAVE: &str = r"
local entry = redis.call('HGET', KEYS[1], ARGV[4])
local removed = entry and cjson.decode(entry).instance == ARGV[3]
if removed then
  redis.call('HDEL', KEYS[1], ARGV[4])
end
local elsewhere
if ARGV[5] == '1' then
  if removed and redis.call('HINCRBY', KEYS[3], ARGV[1], -1) <= 0 then
    redis.call('HDEL', KEYS[3], ARGV[1])
  end
  elsewhere = redis.call('HEXISTS', KEYS[3], ARGV[1]) == 1
else
  elsewhere = entry and not removed
end
if not elsewhere and redis.call('HGET', KEYS[2], ARGV[2]) == ARGV[1] then
  redis.call('HDEL', KEYS[2], ARGV[2])
end
return 0
";

// Loaded once: redis-rs sends each by its SHA-1 (EVALSHA), loading it again only if Redis lost it.
static CLAIM_SCRIPT: LazyLock<Script> = LazyLock::new(|| Script::new(CLAIM));
static LEAVE_SCRIPT: LazyLock<Script> = LazyLock::new(|| Script::new(LEAVE));

/// One member as presence records them.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Entry {
    pub user: User,
    pub instance: InstanceId,
    /// When they joined, in Unix milliseconds: of two people given one name while the instances
    /// could not reach Redis, the earlier keeps it.
    pub since: i64,
}

impl Entry {
    /// Of two entries with one name, whether this one keeps it: an account (the name is its
    /// username) over a guest, else the earlier, else the lower id.
    pub fn outranks(&self, other: &Entry) -> bool {
        let rank = |e: &Entry| (!e.user.account, e.since, e.user.id.to_string());
        rank(self) < rank(other)
    }

    /// The entry's field in the room's `members`: a guest's id, or an account's id and instance.
    fn field(&self) -> String {
        field(&self.user, &self.instance)
    }
}

fn field(user: &User, instance: &InstanceId) -> String {
    if user.account {
        format!("{}@{instance}", user.id)
    } else {
        user.id.to_string()
    }
}

/// A script's yes or no.
fn flag(yes: bool) -> &'static str {
    if yes {
        "1"
    } else {
        "0"
    }
}

/// A handle on one room's presence; cheap to clone into a lobby's futures.
#[derive(Clone)]
pub struct Presence {
    broker: RedisBroker,
    room: RoomCode,
}

impl Presence {
    pub(super) fn new(broker: RedisBroker, room: RoomCode) -> Self {
        Self { broker, room }
    }

    pub fn instance(&self) -> &InstanceId {
        self.broker.instance()
    }

    /// Whether Redis answered the last command: when not, joins skip presence and settle later.
    pub fn is_up(&self) -> bool {
        self.broker.is_up()
    }

    /// Which instances were last found dead.
    pub fn live(&self) -> Arc<Liveness> {
        self.broker.live()
    }

    /// An entry for `user` on this instance, joining now.
    pub fn entry(&self, user: User, now: Timestamp) -> Entry {
        Entry {
            user,
            instance: self.instance().clone(),
            since: now.as_millis(),
        }
    }

    /// Claims the entry's name in the room (releasing `old_key`, for a rename) and records the
    /// entry. `Ok(Some(holder))` when someone on an instance not known dead has the name.
    pub async fn claim(
        &self,
        entry: &Entry,
        old_key: Option<&str>,
    ) -> redis::RedisResult<Option<UserId>> {
        self.run_claim(entry, old_key, false).await
    }

    /// Takes the entry's name whoever holds it: for a member who outranks the holder, after
    /// the two were given one name while the instances could not reach Redis.
    pub async fn seize(&self, entry: &Entry) -> redis::RedisResult<()> {
        self.run_claim(entry, None, true).await.map(drop)
    }

    async fn run_claim(
        &self,
        entry: &Entry,
        old_key: Option<&str>,
        seize: bool,
    ) -> redis::RedisResult<Option<UserId>> {
        let json = serde_json::to_string(entry).map_err(json_error)?;
        let live = self.live();
        let mut invocation = CLAIM_SCRIPT.prepare_invoke();
        invocation
            .key(self.key("members"))
            .key(self.key("names"))
            .key(self.key("devices"))
            .arg(entry.user.id.to_string())
            .arg(entry.user.name.key().as_str())
            .arg(json)
            .arg(old_key.unwrap_or(""))
            .arg(KEY_LIFETIME_SECONDS)
            .arg(entry.field())
            .arg(flag(entry.user.account))
            .arg(flag(seize));
        for instance in live.dead() {
            invocation.arg(instance.as_str());
        }
        let mut connection = self.broker.shared.commands.clone();
        let holder: redis::RedisResult<Option<String>> =
            invocation.invoke_async(&mut connection).await;
        self.broker.saw(&holder);
        Ok(holder?.map(|holder| {
            uuid::Uuid::parse_str(&holder).map_or_else(|_| UserId::random(), UserId::from_uuid)
        }))
    }

    /// Takes `user` out of the room's presence if `instance` holds their entry, and frees their name.
    pub async fn leave(&self, user: &User, instance: &InstanceId) -> redis::RedisResult<()> {
        let mut connection = self.broker.shared.commands.clone();
        let left: redis::RedisResult<()> = LEAVE_SCRIPT
            .key(self.key("members"))
            .key(self.key("names"))
            .key(self.key("devices"))
            .arg(user.id.to_string())
            .arg(user.name.key().as_str())
            .arg(instance.as_str())
            .arg(field(user, instance))
            .arg(flag(user.account))
            .invoke_async(&mut connection)
            .await;
        self.broker.saw(&left);
        left
    }

    /// The people in the room on live instances, in the order they joined, each once (an account
    /// may be on several): what a room not in memory here has to show of its members.
    pub async fn people(&self) -> redis::RedisResult<Vec<User>> {
        let live = self.live();
        let mut entries: Vec<Entry> = self
            .members()
            .await?
            .into_iter()
            .filter(|e| live.is_alive(&e.instance))
            .collect();
        entries.sort_by_key(|e| e.since);
        let mut listed = HashSet::new();
        Ok(entries
            .into_iter()
            .filter(|e| listed.insert(e.user.id))
            .map(|e| e.user)
            .collect())
    }

    /// Every member entry of the room; entries that do not read are skipped.
    pub async fn members(&self) -> redis::RedisResult<Vec<Entry>> {
        let mut connection = self.broker.shared.commands.clone();
        let all: redis::RedisResult<Vec<(String, String)>> =
            connection.hgetall(self.key("members")).await;
        self.broker.saw(&all);
        Ok(all?
            .into_iter()
            .filter_map(|(_, json)| serde_json::from_str(&json).ok())
            .collect())
    }

    /// The identity a resume secret stands for, if any instance recorded one.
    pub async fn identity(&self, fingerprint: &str) -> redis::RedisResult<Option<User>> {
        let mut connection = self.broker.shared.commands.clone();
        let found: redis::RedisResult<Option<String>> =
            connection.hget(self.key("identities"), fingerprint).await;
        self.broker.saw(&found);
        Ok(found?.and_then(|json| serde_json::from_str(&json).ok()))
    }

    /// Records who a resume secret stands for, so the holder may resume on any instance.
    pub async fn remember(&self, fingerprint: &str, user: &User) -> redis::RedisResult<()> {
        let json = serde_json::to_string(user).map_err(json_error)?;
        let mut connection = self.broker.shared.commands.clone();
        let key = self.key("identities");
        let stored: redis::RedisResult<()> = redis::pipe()
            .hset(&key, fingerprint, json)
            .ignore()
            .expire(&key, KEY_LIFETIME_SECONDS)
            .ignore()
            .query_async(&mut connection)
            .await;
        self.broker.saw(&stored);
        stored
    }

    fn key(&self, what: &str) -> String {
        format!("hubbub:{{{}}}:{what}", self.room)
    }
}

fn json_error(err: serde_json::Error) -> redis::RedisError {
    redis::RedisError::from((redis::ErrorKind::Client, "cannot encode", err.to_string()))
}

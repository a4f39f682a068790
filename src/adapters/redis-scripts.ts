/**
 * The Lua scripts of the Redis engine's cluster-wide membership. Each runs atomically on the one slot of a channel
 * (keys in redis-keys.ts) and publishes the events of the change it made from inside the script, so the events of one
 * channel reach every node in the order of the changes, and a change is never recorded without its event.
 *
 * Presence changes and published counts get a `seq`: microseconds of the Redis clock, forced above the last one of the
 * channel, so it grows even across a channel emptied and re-occupied (its state is deleted when empty). A joiner's answer
 * carries the channel's `seq` after its change, and the events at or below it are not sent to it again: the member events
 * its list already has, and the counts published before its own (still in flight through Redis when it got its own count
 * with its answer, they would leave it on an older count).
 *
 * Every event a script publishes is also stamped as a node stamps its own publishes (envelope-gaps.ts), under the one
 * publisher name SCRIPT_PUBLISHER: numbered per channel in the channel's state (`published`), in a run named when the
 * state is created (`run`: it is deleted with the channel's last subscriber). A node that missed some (its subscriber
 * connection to the shard was reconnecting when they went out, a master failing over) counts them as gaps; before, a
 * lost `member_removed` left its clients with a member nobody counted.
 */
import { createHash } from 'node:crypto';
import type { Cluster, Redis } from 'ioredis';

/** The publisher name of the events the scripts publish, in their stamps: no node id can be it (ids end in a suffix). */
export const SCRIPT_PUBLISHER = '#script';

const NEXT_SEQ = `
local function next_seq(state)
  local t = redis.call('TIME')
  local s = tonumber(t[1]) * 1000000 + tonumber(t[2])
  local last = tonumber(redis.call('HGET', state, 'seq') or '0')
  if s <= last then s = last + 1 end
  local str = string.format('%.0f', s)
  redis.call('HSET', state, 'seq', str)
  return str
end
local function stamped(state, seq)
  local run = redis.call('HGET', state, 'run')
  if not run then
    local t = redis.call('TIME')
    run = string.format('%.0f', tonumber(t[1]) * 1000000 + tonumber(t[2]))
    redis.call('HSET', state, 'run', run)
  end
  local n = redis.call('HINCRBY', state, 'published', 1)
  return ',"seq":' .. seq .. ',"stamp":{"node":"${SCRIPT_PUBLISHER}","run":' .. run .. ',"n":' .. n .. '}}'
end
local function publish_count(state, total, head, cmd, ch)
  if head == '' then return 0, 0 end
  local t = redis.call('TIME')
  local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
  local last = tonumber(redis.call('HGET', state, 'countAt') or '0')
  if total <= 100 or now - last >= 5000 then
    redis.call('HSET', state, 'countAt', string.format('%.0f', now), 'countSent', total)
    redis.call(cmd, ch, head .. cjson.encode('{"subscription_count":' .. total .. '}') .. stamped(state, next_seq(state)))
    return 1, 0
  end
  return 0, 5000 - (now - last)
end
`;

/**
 * The counts of big channels go out at most every 5 s (membership-events.ts): `publish_count` returns 1 when it
 * published, and otherwise how long the change waits (ms; 0: nothing to publish). The node whose change was held back
 * runs COUNT_LUA once that time has passed, so the count as it is then goes out (the trailing count). Every script that
 * may publish a count returns the count it published (-1: none), so the node that ran it emits its webhook.
 *
 * KEYS: state. ARGV: count head, events channel, publish command, '1' to publish now whatever the interval (a node
 * closing: no one would publish its held-back count after it). Returns {count published (-1: none), ms still to wait}:
 * the wait is 0 when the count was published or nothing needed publishing (the channel is empty, or its count is the one
 * last published), else another node's change published a count meanwhile and opened a new interval.
 */
export const COUNT_LUA = `${NEXT_SEQ}
local total = tonumber(redis.call('HGET', KEYS[1], 'total') or '0')
if total <= 0 or total == tonumber(redis.call('HGET', KEYS[1], 'countSent') or '-1') then return {-1, 0} end
if ARGV[4] == '1' then
  redis.call('HSET', KEYS[1], 'countSent', total)
  redis.call(ARGV[3], ARGV[2], ARGV[1] .. cjson.encode('{"subscription_count":' .. total .. '}') .. stamped(KEYS[1], next_seq(KEYS[1])))
  return {total, 0}
end
local published, wait = publish_count(KEYS[1], total, ARGV[1], ARGV[3], ARGV[2])
if published == 1 then return {total, 0} end
return {-1, wait}`;

/**
 * KEYS: state, users, info, share, the node's subscriptions. ARGV: node field, user id ('' for non-presence), user info
 * JSON ('#' before it when the id was signed as a number, so a reaper can echo it as signed), max members,
 * member_added head, its data as a JSON string literal, count head ('' when the app does not count subscriptions: no
 * subscription_count), events channel, publish command, socket id, '1' to restore a member after Redis lost its data
 * ('' for a join), '1' when an earlier attempt of this join got no answer (it may have run).
 * Returns {admitted, occupied, memberAdded, seq, members (flat user/info list), count published (-1: none), ms the
 * count held back waits (0: none), the count held back (non-presence: the channel's total when none was published)}.
 * A socket already recorded on the channel is admitted without counting it again. The join that recorded it keeps what
 * it changed in the socket's field (`o` occupied, `a` member added, `c` count published; written only when it changed
 * one), and a later attempt of the same join (ARGV[12]) answers that: the earlier attempt's answer was lost (it timed out
 * but ran), and its caller emits the webhooks of what it changed from the answer it gets — once. Of a count the late
 * attempt published it answers the channel's count now, not published again (a receiver of the webhooks keeps the last
 * one: the count as it was then could come after a newer one); a count the late attempt held back (a big channel's,
 * whose wait was lost with its answer) is published now or held back again, as for a join.
 *
 * A restore records a member whose removal nobody announced (Redis lost it, the clients still hold it): it publishes no
 * member_added, unless a subscriber was answered with a member list since the channel's state was lost (the state's
 * `listed` field, set by every presence join: that list may lack the member). Then member_added goes out as for a join:
 * the subscribers that hold the member already get it twice rather than the new one never.
 */
export const JOIN_LUA = `${NEXT_SEQ}
local state, users, info, share, subs = KEYS[1], KEYS[2], KEYS[3], KEYS[4], KEYS[5]
local node, user, max = ARGV[1], ARGV[2], tonumber(ARGV[4])
local restore = ARGV[11] == '1'
local added = 0
if user ~= '' and redis.call('HEXISTS', users, user) == 0 then
  if max > 0 and redis.call('HLEN', users) >= max then return {0, 0, 0, '0', {}} end
  added = 1
end
if restore then
  if redis.call('HEXISTS', state, 'listed') == 1 then restore = false end
elseif user ~= '' then
  redis.call('HSET', state, 'listed', 1)
end
if redis.call('HSETNX', subs, ARGV[10], 1) == 0 then
  local members = user == '' and {} or redis.call('HGETALL', info)
  local seq = redis.call('HGET', state, 'seq') or '0'
  if ARGV[12] ~= '1' then return {1, 0, 0, seq, members, -1} end
  local earlier = redis.call('HGET', subs, ARGV[10])
  local occupied = string.find(earlier, 'o', 1, true) and 1 or 0
  if user ~= '' then return {1, occupied, string.find(earlier, 'a', 1, true) and 1 or 0, seq, members, -1} end
  local total = tonumber(redis.call('HGET', state, 'total'))
  if string.find(earlier, 'c', 1, true) then return {1, occupied, 0, seq, members, total} end
  if total == tonumber(redis.call('HGET', state, 'countSent') or '-1') then return {1, occupied, 0, seq, members, -1, 0, total} end
  local published, wait = publish_count(state, total, ARGV[7], ARGV[9], ARGV[8])
  if published == 1 then return {1, occupied, 0, redis.call('HGET', state, 'seq'), members, total} end
  if ARGV[7] ~= '' then redis.call('HSET', state, 'countSent', -1) end
  return {1, occupied, 0, seq, members, -1, wait, total}
end
local total = redis.call('HINCRBY', state, 'total', 1)
redis.call('HINCRBY', state, node, 1)
local occupied = 0
if total == 1 then occupied = 1 end
local seq = redis.call('HGET', state, 'seq') or '0'
if user == '' then
  local count = -1
  local published, wait = publish_count(state, total, ARGV[7], ARGV[9], ARGV[8])
  if published == 1 then
    count = total
    seq = redis.call('HGET', state, 'seq')
  end
  if occupied == 1 or count ~= -1 then
    redis.call('HSET', subs, ARGV[10], (occupied == 1 and 'o' or '') .. (count ~= -1 and 'c' or ''))
  end
  -- Held back, the joiner is told this total alone: the trailing count must go out even if the channel is back at the
  -- count published last, or the joiner would keep one the channel has left.
  if count == -1 and ARGV[7] ~= '' then redis.call('HSET', state, 'countSent', -1) end
  return {1, occupied, 0, seq, {}, count, wait, total}
end
redis.call('HINCRBY', users, user, 1)
redis.call('HINCRBY', share, user, 1)
if added == 1 then
  redis.call('HSET', info, user, ARGV[3])
  if restore then
    added = 0
  else
    seq = next_seq(state)
    redis.call(ARGV[9], ARGV[8], ARGV[5] .. ARGV[6] .. stamped(state, seq))
  end
end
if occupied == 1 or added == 1 then
  redis.call('HSET', subs, ARGV[10], (occupied == 1 and 'o' or '') .. (added == 1 and 'a' or ''))
end
return {1, occupied, added, seq, redis.call('HGETALL', info), -1}`;

/**
 * KEYS: state, users, info, share, the node's subscriptions, this leave's receipt. ARGV: node field, user id ('' for
 * non-presence), member_removed head, its data as a JSON string literal with the user id as a string, count head ('' :
 * none published), events channel, publish command, socket id, the receipt's time to live (ms), the time (Unix ms) after
 * which the attempt may be late, '1' for the take-back of a join given up (its answer also says what that join changed:
 * JOIN_LUA's flags), member_removed's data with the user id as a number ('' when it is not one's).
 * Returns {memberRemoved, vacated, ms the count held back waits (0: none), count published (-1: none), the join's flags
 * ('' unless a take-back), 1 when member_removed echoed the id as a number (the member's info marked '#', as member_added
 * did), 0 as a string, -1 no member removed here}; memberRemoved / vacated are 2 when answered from a receipt and changed
 * back since.
 * A take-back also keeps a receipt when it left a change of the late join standing (its flags), and its receipt answers
 * a change it left standing only if it still stands: a retry whose first attempt ran late tells what that attempt would
 * have, and nothing that changed back since (another connection's join or leave, which told its own) — unless it came
 * back again meanwhile, which a receipt cannot tell from never having gone.
 * A leave of a socket not recorded on the channel changes nothing: already left (a retry after a timeout), never joined
 * (taking back a join that failed), or reaped while the node was cut off. A leave that removed the member or vacated the
 * channel and runs after the given time (by Redis' clock: its caller may have given up on it) keeps that in its receipt
 * for the receipt's time to live: the same leave tried again finds the socket already left and answers the receipt
 * instead, so the caller still sends the webhooks of what the late attempt changed. Every attempt that finds it answers
 * it (one whose own answer was lost too leaves it for the next), less what changed back since: a user who is a member
 * again is not said removed, a channel occupied again not vacated (2). No count: a later one may have been published. An
 * attempt on time writes none (a key with an expiry cost a vacating leave ~40 % more Redis time).
 */
export const LEAVE_LUA = `${NEXT_SEQ}
local state, users, info, share, subs = KEYS[1], KEYS[2], KEYS[3], KEYS[4], KEYS[5]
local node, user = ARGV[1], ARGV[2]
local joined = ''
local numeric = -1
if ARGV[11] == '1' then joined = redis.call('HGET', subs, ARGV[8]) or '' end
local function answer(removed, vacated, wait, count)
  if removed == 1 or vacated == 1 or string.find(joined, '[oa]') then
    local now = redis.call('TIME')
    if tonumber(now[1]) * 1000 + math.floor(tonumber(now[2]) / 1000) >= tonumber(ARGV[10]) then
      redis.call('SET', KEYS[6], removed .. ',' .. vacated .. ',' .. joined, 'PX', ARGV[9])
    end
  end
  return {removed, vacated, wait, count, joined, numeric}
end
if redis.call('HDEL', subs, ARGV[8]) == 0 then
  local receipt = redis.call('GET', KEYS[6])
  if not receipt then return {0, 0} end
  local removed, vacated, flags = string.match(receipt, '^(%d),(%d),?(%w*)$')
  removed, vacated = tonumber(removed), tonumber(vacated)
  local present = user ~= '' and redis.call('HEXISTS', users, user) == 1
  local occupied = redis.call('EXISTS', state) == 1
  if removed == 1 and present then removed = 2 end
  if vacated == 1 and occupied then vacated = 2 end
  if removed == 0 and not present then flags = (string.gsub(flags, 'a', '')) end
  if vacated == 0 and not occupied then flags = (string.gsub(flags, 'o', '')) end
  return {removed, vacated, 0, -1, flags}
end
local n = redis.call('HINCRBY', state, node, -1)
if n <= 0 then redis.call('HDEL', state, node) end
if n < 0 then return {0, 0} end
local total = redis.call('HINCRBY', state, 'total', -1)
local removed = 0
if user ~= '' then
  local s = redis.call('HINCRBY', share, user, -1)
  if s <= 0 then redis.call('HDEL', share, user) end
  if s >= 0 then
    local c = redis.call('HINCRBY', users, user, -1)
    if c <= 0 then
      -- Echoed as member_added did: a number when the member's first connection signed one (its info marked '#').
      local stored = redis.call('HGET', info, user)
      local data = ARGV[4]
      numeric = 0
      if stored and string.sub(stored, 1, 1) == '#' and ARGV[12] ~= '' then
        data = ARGV[12]
        numeric = 1
      end
      redis.call('HDEL', users, user)
      redis.call('HDEL', info, user)
      local seq = next_seq(state)
      redis.call(ARGV[7], ARGV[6], ARGV[3] .. data .. stamped(state, seq))
      removed = 1
    end
  end
end
if total <= 0 then
  redis.call('DEL', state, users, info)
  return answer(removed, 1, 0, -1)
end
if user == '' then
  local published, wait = publish_count(state, total, ARGV[5], ARGV[7], ARGV[6])
  local count = -1
  if published == 1 then count = total end
  return answer(removed, 0, wait, count)
end
return answer(removed, 0, 0, -1)`;

/**
 * `remove_member`: a user no subscription of the channel holds any more leaves its members (users, info) and
 * `member_removed` is published (head, publish command, events channel), with its id appended to `removed` — '#' before
 * an id signed as a number, which was stored with its info marked '#' and is echoed as that number, as member_added did.
 */
const REMOVE_MEMBER = `
local function remove_member(state, users, info, user, removed, head, cmd, ch)
  redis.call('HDEL', users, user)
  local id = cjson.encode(user)
  local stored = redis.call('HGET', info, user)
  if stored and string.sub(stored, 1, 1) == '#' then
    id = user
    table.insert(removed, '#' .. user)
  else
    table.insert(removed, user)
  end
  redis.call('HDEL', info, user)
  redis.call(cmd, ch, head .. cjson.encode('{"user_id":' .. id .. '}') .. stamped(state, next_seq(state)))
end
`;

/**
 * KEYS: state, users, info, the dead node's share, its subscriptions, the reap's receipt. ARGV: dead node field,
 * member_removed head, count head ('': none), events channel, publish command, '1' for a presence channel, the receipt's
 * time to live (ms). Returns {vacated, removed user ids ('#' before an id signed as a number), ms the count held back
 * waits (0: none), count published (-1: none)}.
 * A reap that removed members or vacated the channel keeps that in its receipt, which the reaper deletes once it has an
 * answer. A reap that finds nothing of the node's left answers the receipt if there is one: an earlier attempt ran but
 * its answer never came (it timed out on a stalled master), and what it changed still needs its webhooks. Less what
 * changed back since (a user who is a member again, a channel occupied again), and no count (a later one may have been
 * published).
 */
export const REAP_LUA = `${NEXT_SEQ}${REMOVE_MEMBER}
local state, users, info, share = KEYS[1], KEYS[2], KEYS[3], KEYS[4]
local subs = tonumber(redis.call('HGET', state, ARGV[1]) or '0')
local shared = redis.call('HGETALL', share)
if subs <= 0 and #shared == 0 then
  local receipt = redis.call('GET', KEYS[6])
  if receipt then
    local r = cjson.decode(receipt)
    local vacated, still = r[1], {}
    if vacated == 1 and redis.call('EXISTS', state) == 1 then vacated = 0 end
    for i, user in ipairs(r[3]) do
      if redis.call('HEXISTS', users, user) == 0 then table.insert(still, r[2][i]) end
    end
    return {vacated, still, 0, -1}
  end
end
local raw = {}
local function answer(vacated, removed, wait, count)
  if vacated == 1 or #removed > 0 then
    redis.call('SET', KEYS[6], cjson.encode({vacated, removed, raw}), 'PX', ARGV[7])
  end
  return {vacated, removed, wait, count}
end
redis.call('DEL', share, KEYS[5])
redis.call('HDEL', state, ARGV[1])
local removed = {}
for i = 1, #shared, 2 do
  local user, n = shared[i], tonumber(shared[i + 1])
  if redis.call('HINCRBY', users, user, -n) <= 0 then
    remove_member(state, users, info, user, removed, ARGV[2], ARGV[5], ARGV[4])
    table.insert(raw, user)
  end
end
if subs <= 0 then return answer(0, removed, 0, -1) end
local total = redis.call('HINCRBY', state, 'total', -subs)
if total <= 0 then
  redis.call('DEL', state, users, info)
  return answer(1, removed, 0, -1)
end
if ARGV[6] ~= '1' then
  local published, wait = publish_count(state, total, ARGV[3], ARGV[5], ARGV[4])
  local count = -1
  if published == 1 then count = total end
  return answer(0, removed, wait, count)
end
return answer(0, removed, 0, -1)`;

/**
 * KEYS: state, users, info, this node's share, its subscriptions. ARGV: node field, member_removed head, count head
 * ('': none), events channel, publish command, '1' for a presence channel, then each subscription of the channel this
 * node holds or is recording, as its socket id and user id ('' on other channels). Removes the node's other
 * subscriptions of the channel — recorded before Redis went back to an older state (a snapshot, a replica behind) and
 * left since — and brings the node's share of each user to its kept subscriptions that are recorded (one being recorded
 * after this script counts itself when it runs). A user no subscription holds any more is removed and
 * `member_removed` published, as a reap does. Returns {vacated, removed user ids ('#' before an id signed as a number),
 * ms the count held back waits (0: none), count published (-1: none), subscriptions removed}.
 */
export const PRUNE_LUA = `${NEXT_SEQ}${REMOVE_MEMBER}
local state, users, info, share, subs = KEYS[1], KEYS[2], KEYS[3], KEYS[4], KEYS[5]
local kept = {}
for i = 7, #ARGV, 2 do kept[ARGV[i]] = ARGV[i + 1] end
local gone = 0
local held = {}
for _, id in ipairs(redis.call('HKEYS', subs)) do
  local user = kept[id]
  if user == nil then
    redis.call('HDEL', subs, id)
    gone = gone + 1
  elseif user ~= '' then
    held[user] = (held[user] or 0) + 1
  end
end
local removed = {}
if ARGV[6] == '1' then
  local shared = redis.call('HGETALL', share)
  for i = 1, #shared, 2 do
    local user, n = shared[i], tonumber(shared[i + 1])
    local now = held[user] or 0
    if now < n then
      if now > 0 then redis.call('HSET', share, user, now) else redis.call('HDEL', share, user) end
      if redis.call('HINCRBY', users, user, now - n) <= 0 then
        remove_member(state, users, info, user, removed, ARGV[2], ARGV[5], ARGV[4])
      end
    end
  end
end
if gone == 0 then return {0, removed, 0, -1, 0} end
local n = redis.call('HINCRBY', state, ARGV[1], -gone)
if n <= 0 then redis.call('HDEL', state, ARGV[1]) end
local total = redis.call('HINCRBY', state, 'total', -gone)
if total <= 0 then
  redis.call('DEL', state, users, info)
  return {1, removed, 0, -1, gone}
end
if ARGV[6] ~= '1' then
  local published, wait = publish_count(state, total, ARGV[3], ARGV[5], ARGV[4])
  local count = -1
  if published == 1 then count = total end
  return {0, removed, wait, count, gone}
end
return {0, removed, 0, -1, gone}`;

/**
 * KEYS: the channel's cached event. ARGV: its stored value, its TTL in ms, PUBLISH or SPUBLISH, the event channel, the
 * envelope. Stores the cached event and publishes its envelope in one step, so a subscriber's read of the cache
 * (CACHE_READ_LUA) comes before both or after both. A value Redis refuses to store (out of memory) deletes the one before,
 * which must not be replayed in its place, and answers 1 (counted as evicted); the envelope goes out either way.
 */
export const PUBLISH_CACHED_LUA = `
local stored = redis.pcall('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
local refused = 0
if type(stored) == 'table' and stored.err then
  redis.call('DEL', KEYS[1])
  refused = 1
end
redis.call(ARGV[3], ARGV[4], ARGV[5])
return refused`;

/**
 * KEYS: the channel's cached event. ARGV: PUBLISH or SPUBLISH, the event channel, a flush marker (redis-flush.ts). Reads
 * the cached event and publishes the marker after it in one step: once the marker is back, every event stored before the
 * read has reached the reader, and every event after it comes after the marker.
 */
export const CACHE_READ_LUA = `
local value = redis.call('GET', KEYS[1])
redis.call(ARGV[1], ARGV[2], ARGV[3])
return value`;

/**
 * The members of a presence channel for a node that may have missed some of its member events, read only if the channel
 * changed past the last change that node had seen when it may have begun to miss them (realtime/member-resync.ts).
 * KEYS: the channel's state and info. ARGV: that `seq`, the node's field in the state. Returns {seq, members (flat
 * user/info list)}; {'0', {}} when nothing changed past it; {'-1', {}} when the node's own subscriptions are not recorded
 * (Redis lost them, or reaped the node: being recorded again, they would be missing from the list). A `seq` of -1 reads
 * the list whatever changed (after Redis lost its data the channel's `seq` is gone, and a member restored silently makes
 * no change), answered with the channel's `seq`, 0 when none is recorded yet.
 * A list read so is given to subscribers, as a join's is: it sets `listed` as a join does, so a member restored after
 * Redis lost the channel's state (JOIN_LUA) is announced rather than missing from that list for good.
 */
export const MEMBERS_SINCE_LUA = `
if tonumber(redis.call('HGET', KEYS[1], ARGV[2]) or '0') <= 0 then return {'-1', {}} end
local seq = redis.call('HGET', KEYS[1], 'seq') or '0'
if tonumber(seq) <= tonumber(ARGV[1]) then return {'0', {}} end
redis.call('HSET', KEYS[1], 'listed', 1)
return {seq, redis.call('HGETALL', KEYS[2])}`;

/** A script run by its SHA1, loaded on the first NOSCRIPT (per Redis node: each cluster shard loads it on first use). */
export class Script {
  private readonly sha: string;

  constructor(private readonly lua: string) {
    this.sha = createHash('sha1').update(lua).digest('hex');
  }

  /**
   * Sends the script's text every time (EVAL): for a script whose order with the commands around it matters. Run by its
   * SHA1, a script Redis does not have yet (a new or restarted server, a replica promoted) is answered NOSCRIPT and sent
   * again behind whatever was sent meanwhile. Redis still compiles it once and looks it up by its SHA1.
   */
  inOrder(client: Redis | Cluster, keys: readonly string[], args: readonly (string | number)[]): Promise<unknown> {
    return client.eval(this.lua, keys.length, ...keys, ...args);
  }

  async run(client: Redis | Cluster, keys: readonly string[], args: readonly (string | number)[]): Promise<unknown> {
    try {
      return await client.evalsha(this.sha, keys.length, ...keys, ...args);
    } catch (err) {
      if (!(err instanceof Error) || !err.message.startsWith('NOSCRIPT')) throw err;
      return client.eval(this.lua, keys.length, ...keys, ...args);
    }
  }
}

/**
 * KEYS: the app's connection counts, the node's reservations. ARGV: node field, quota, reservation id. Returns 1 when the
 * connection is counted (now, or already: a retry), 0 over quota.
 */
export const RESERVE_LUA = `
if redis.call('HEXISTS', KEYS[2], ARGV[3]) == 1 then return 1 end
local total = tonumber(redis.call('HGET', KEYS[1], 'total') or '0')
if tonumber(ARGV[2]) > 0 and total >= tonumber(ARGV[2]) then return 0 end
redis.call('HSET', KEYS[2], ARGV[3], 1)
redis.call('HINCRBY', KEYS[1], 'total', 1)
redis.call('HINCRBY', KEYS[1], ARGV[1], 1)
return 1`;

/**
 * KEYS: the app's connection counts, the node's reservations. ARGV: node field, reservation id. Uncounts the connection
 * (not counted — already released, never reserved, or reaped: nothing).
 */
export const RELEASE_LUA = `
if redis.call('HDEL', KEYS[2], ARGV[2]) == 0 then return 0 end
local n = redis.call('HINCRBY', KEYS[1], ARGV[1], -1)
if n <= 0 then redis.call('HDEL', KEYS[1], ARGV[1]) end
if n < 0 then return 0 end
redis.call('HINCRBY', KEYS[1], 'total', -1)
return 1`;

/** KEYS: a reap lock. ARGV: the node id it must hold, its new time to live (ms). Shortens it only if that node holds it. */
export const SHORTEN_LOCK_LUA = `
if redis.call('GET', KEYS[1]) ~= ARGV[1] then return 0 end
return redis.call('PEXPIRE', KEYS[1], ARGV[2])`;

/** KEYS: the app's connection counts, the dead node's reservations. ARGV: its field. Removes its connections from the total. */
export const REAP_CONNECTIONS_LUA = `
local n = tonumber(redis.call('HGET', KEYS[1], ARGV[1]) or '0')
redis.call('HDEL', KEYS[1], ARGV[1])
redis.call('DEL', KEYS[2])
if n > 0 then redis.call('HINCRBY', KEYS[1], 'total', -n) end
return n`;

/**
 * KEYS: the app's signed-in user counts, this node's set of them, the app's `listed` key. ARGV: user id, '1' online / '0'
 * offline, the message of that transition, the watch channel, publish command, '1' to restore a user after Redis lost its
 * data ('' otherwise). A user's first node in the cluster publishes `online`, its last `offline`. Returns 1 when it
 * published.
 * A restore publishes no `online` (the watchers still have the user online), unless a watchlist was answered since the
 * app's state was lost (the `listed` key, set by each answer: it may have said the user offline).
 */
export const USER_PRESENCE_LUA = `
local user = ARGV[1]
if ARGV[2] == '1' then
  if redis.call('SADD', KEYS[2], user) == 0 then return 0 end
  if redis.call('HINCRBY', KEYS[1], user, 1) ~= 1 then return 0 end
  if ARGV[6] == '1' and redis.call('EXISTS', KEYS[3]) == 0 then return 0 end
else
  if redis.call('SREM', KEYS[2], user) == 0 then return 0 end
  if redis.call('HINCRBY', KEYS[1], user, -1) > 0 then return 0 end
  redis.call('HDEL', KEYS[1], user)
end
redis.call(ARGV[5], ARGV[4], ARGV[3])
return 1`;

/**
 * KEYS: the app's signed-in user counts, the dead node's set. ARGV: message head (up to the user id), watch channel,
 * publish command, how many users at most. Takes that many users out of the dead node's set and publishes `offline` for
 * those signed in nowhere else; returns how many, and how many users the set still holds. A step at a time, so Redis
 * answers everyone else between two steps: 150 000 users in one script held it 1.2 s, past every node's command timeout.
 */
export const REAP_USERS_LUA = `
local n = 0
for _, user in ipairs(redis.call('SPOP', KEYS[2], ARGV[4])) do
  if redis.call('HINCRBY', KEYS[1], user, -1) <= 0 then
    redis.call('HDEL', KEYS[1], user)
    redis.call(ARGV[3], ARGV[2], ARGV[1] .. cjson.encode(user) .. ',"online":false}')
    n = n + 1
  end
end
return {n, redis.call('SCARD', KEYS[2])}`;

/**
 * KEYS: the channel's state, its users, the mark of a vacate sent (RedisKeys.goneSent). ARGV: user id ('': the channel's
 * vacate), the mark's time to live (ms). Whether the channel is still empty (no subscription) or the user still no member,
 * and if so the mark, in one step: a node that reads the channel occupied after this ran finds the mark, and one whose
 * join ran before makes this answer 0.
 */
export const STILL_GONE_LUA = `
if ARGV[1] == '' then
  if tonumber(redis.call('HGET', KEYS[1], 'total') or '0') > 0 then return 0 end
elseif redis.call('HEXISTS', KEYS[2], ARGV[1]) == 1 then
  return 0
end
redis.call('SET', KEYS[3], '1', 'PX', ARGV[2])
return 1`;

/**
 * KEYS: the epoch key. ARGV: a new random id. Returns the id the key holds, setting it to the new one first if it is
 * missing: an id that changed between two reads means Redis lost its data in between (restarted empty, flushed).
 */
export const EPOCH_LUA = `
local epoch = redis.call('GET', KEYS[1])
if epoch then return epoch end
redis.call('SET', KEYS[1], ARGV[1])
return ARGV[1]`;

/**
 * KEYS: a node's liveness key. ARGV: its TTL in ms. The node's heartbeat: sets the key to '1' for the TTL and returns
 * what it held before — nil when it had expired (or was never set), '1' after the node's own last beat, a reaper's node
 * id when a reap that found this node back stopped half-way (redis-reaper.ts). Atomic, so nothing another client does
 * to the key (a reaper writing its id, an expiry) can fall between the read and the write unseen; `SET … GET` does the
 * same in one command from Redis 6.2 on.
 */
export const HEARTBEAT_LUA = `
local before = redis.call('GET', KEYS[1])
redis.call('SET', KEYS[1], '1', 'PX', ARGV[1])
return before`;

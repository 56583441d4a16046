//! Client-side caching: CLIENT TRACKING and the invalidation messages it asks for.
//!
//! As Redis 7.0 (`tracking.c`), with the table split by shard:
//! - **Default mode.** After a read-only command of a tracking client, the shard that ran it
//!   remembers the command's keys with the client's id, in the same run as the read (so no
//!   write can slip between the read and the remembering). When one of those keys changes on
//!   that shard (any write through the shard's mutation path, DEL, lazy or active expiry) the
//!   shard forgets the key and sends every remembered client one `invalidate` message for it.
//!   As in Redis the table ignores the database number, keeps ids of clients that went away
//!   until their keys change, and holds at most `tracking-table-max-keys` keys (each shard an
//!   equal share): past it, a key is dropped with an invalidation.
//! - **BCAST mode.** Clients register key prefixes (global, `Trackers::prefixes`); a shard
//!   collects the keys that changed under any prefix and, at the end of each run of work (a
//!   connection's pipeline batch, another thread's batch, an expiry tick), sends each
//!   subscriber one message with the changed keys of each of its prefixes, sorted as Redis's
//!   radix tree sorts them. Redis sends them once per event-loop iteration.
//! - **Delivery.** A message for the client whose command is running goes right after that
//!   command's reply, in its reply buffer (Redis 7.0.15 holds it in `tracking_pending_keys`
//!   until the command is done); any other goes to the target's push sink, which its
//!   connection writes out. RESP3 clients get a push; RESP2 clients only through REDIRECT to a
//!   client in Pub/Sub mode, as a message on `__redis__:invalidate` (a RESP2 target that is
//!   not subscribed gets nothing, as in Redis).
//!   FLUSHDB and FLUSHALL send every tracking client a null invalidation and clear the tables.
//!
//! Invariant: keys are remembered only inside the shard run that read them, and every change
//! of a key goes through `Shard`'s mutation path, which calls [`ShardTracking::key_changed`].
//! Locks nest only as registry prefixes → client registry → a client's tracking state → a
//! sink, and none is held across an `.await`.

use crate::globals::{ClientShared, Globals};
use std::collections::{BTreeMap, BTreeSet};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

type HashMap<K, V> = std::collections::HashMap<K, V, foldhash::fast::RandomState>;

/// One client's CLIENT TRACKING settings (in its `ClientShared`).
#[derive(Default, Clone, Debug)]
pub struct TrackState {
    pub on: bool,
    pub bcast: bool,
    pub optin: bool,
    pub optout: bool,
    pub noloop: bool,
    /// The redirect target was gone when a message was due (CLIENT LIST flag `R`).
    pub broken_redir: bool,
    /// The client id messages go to (0: this client).
    pub redirect: u64,
    /// BCAST prefixes.
    pub prefixes: BTreeSet<Vec<u8>>,
}

/// Server-wide tracking state.
#[derive(Default)]
pub struct Trackers {
    /// Clients with tracking on (INFO `tracking_clients`).
    clients: AtomicUsize,
    /// BCAST prefixes registered (the shards' fast check, INFO `tracking_total_prefixes`).
    nprefixes: AtomicUsize,
    /// BCAST prefix → the clients subscribed to it (Redis's `PrefixTable`).
    prefixes: Mutex<BTreeMap<Vec<u8>, BTreeSet<u64>>>,
    /// `tracking-table-max-keys` (0: no limit).
    max_keys: AtomicUsize,
    /// Keys and (key, client) items remembered, over all shards (INFO).
    pub total_keys: AtomicUsize,
    pub total_items: AtomicUsize,
}

impl Trackers {
    pub fn new(max_keys: usize) -> Trackers {
        let t = Trackers::default();
        t.max_keys.store(max_keys, Ordering::Relaxed);
        t
    }

    pub fn set_max_keys(&self, n: usize) {
        self.max_keys.store(n, Ordering::Relaxed);
    }

    pub fn tracking_clients(&self) -> usize {
        self.clients.load(Ordering::Relaxed)
    }

    pub fn total_prefixes(&self) -> usize {
        self.nprefixes.load(Ordering::Relaxed)
    }

    #[inline]
    fn bcast_active(&self) -> bool {
        self.nprefixes.load(Ordering::Relaxed) != 0
    }

    fn prefixes(&self) -> MutexGuard<'_, BTreeMap<Vec<u8>, BTreeSet<u64>>> {
        self.prefixes.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// CLIENT TRACKING ON for `c` with options already checked (Redis's `enableTracking`):
    /// prefixes add to those the client has.
    pub fn enable(&self, c: &ClientShared, opts: &TrackOptions) {
        let mut st = c.tracking();
        if !st.on {
            self.clients.fetch_add(1, Ordering::Relaxed);
        }
        st.on = true;
        st.broken_redir = false;
        st.bcast = opts.bcast;
        st.optin = opts.optin;
        st.optout = opts.optout;
        st.noloop = opts.noloop;
        st.redirect = opts.redirect;
        let mut added = Vec::new();
        if opts.bcast {
            let wanted: Vec<&[u8]> = if opts.prefixes.is_empty() {
                vec![b""]
            } else {
                opts.prefixes.iter().map(|p| p.as_slice()).collect()
            };
            for p in wanted {
                if st.prefixes.insert(p.to_vec()) {
                    added.push(p.to_vec());
                }
            }
        }
        drop(st);
        if !added.is_empty() {
            let mut reg = self.prefixes();
            for p in added {
                reg.entry(p).or_default().insert(c.id);
            }
            self.nprefixes.store(reg.len(), Ordering::Relaxed);
        }
    }

    /// CLIENT TRACKING OFF, RESET, or the client going away (Redis's `disableTracking`).
    pub fn disable(&self, c: &ClientShared) {
        let mut st = c.tracking();
        if !st.on {
            return;
        }
        let prefixes = std::mem::take(&mut st.prefixes);
        *st = TrackState::default();
        drop(st);
        self.clients.fetch_sub(1, Ordering::Relaxed);
        if !prefixes.is_empty() {
            let mut reg = self.prefixes();
            for p in prefixes {
                if let Some(ids) = reg.get_mut(&p) {
                    ids.remove(&c.id);
                    if ids.is_empty() {
                        reg.remove(&p);
                    }
                }
            }
            self.nprefixes.store(reg.len(), Ordering::Relaxed);
        }
    }

    /// After FLUSHDB/FLUSHALL (whose shard runs cleared their tables): a null invalidation to
    /// every tracking client, `executing`'s own after its reply (through its sink, which its
    /// connection drains after the command).
    pub fn flushed(&self, globals: &Globals) {
        if self.tracking_clients() == 0 {
            return;
        }
        let clients = globals.clients();
        for c in clients.values() {
            let mut st = c.tracking();
            if !st.on {
                continue;
            }
            let null: &[u8] = if c.resp3() { b"_\r\n" } else { b"$-1\r\n" };
            deliver(&clients, c, &mut st, null, &mut |t, m| t.pushes.push(m));
        }
    }
}

/// Parsed CLIENT TRACKING options.
#[derive(Default, Debug)]
pub struct TrackOptions {
    pub redirect: u64,
    pub bcast: bool,
    pub optin: bool,
    pub optout: bool,
    pub noloop: bool,
    pub prefixes: Vec<Vec<u8>>,
}

/// Sends `payload` (the message's value: an array of keys, or a null) as an `invalidate`
/// message for tracking client `c`: to it, or to its redirect target. `send` delivers the
/// bytes to a client.
fn deliver(
    clients: &BTreeMap<u64, Arc<ClientShared>>,
    c: &Arc<ClientShared>,
    st: &mut TrackState,
    payload: &[u8],
    send: &mut dyn FnMut(&Arc<ClientShared>, &[u8]),
) {
    let mut target = c;
    if st.redirect != 0 {
        match clients.get(&st.redirect) {
            Some(t) => target = t,
            None => {
                st.broken_redir = true;
                if c.resp3() {
                    let m = format!(">2\r\n$21\r\ntracking-redir-broken\r\n:{}\r\n", st.redirect);
                    send(c, m.as_bytes());
                }
                return;
            }
        }
    }
    let mut m = Vec::with_capacity(48 + payload.len());
    if target.resp3() {
        m.extend_from_slice(b">2\r\n$10\r\ninvalidate\r\n");
    } else if !std::ptr::eq(target, c) && target.in_pubsub() {
        // A RESP2 redirect target in Pub/Sub mode gets it as a message on the tracking
        // channel (whichever channels it subscribed to, as in Redis).
        m.extend_from_slice(b"*3\r\n$7\r\nmessage\r\n$20\r\n__redis__:invalidate\r\n");
    } else {
        return;
    }
    m.extend_from_slice(payload);
    send(target, &m);
}

fn push_bulk(out: &mut Vec<u8>, b: &[u8]) {
    out.push(b'$');
    out.extend_from_slice(b.len().to_string().as_bytes());
    out.extend_from_slice(b"\r\n");
    out.extend_from_slice(b);
    out.extend_from_slice(b"\r\n");
}

/// One shard's part of tracking: the keys its tracking clients read, and the changes it owes
/// BCAST subscribers.
pub struct ShardTracking {
    globals: Arc<Globals>,
    nshards: usize,
    /// Key → ids of the clients that read it since it last changed.
    table: HashMap<Box<[u8]>, Vec<u64>>,
    /// Keys in the order they were first remembered: which to drop at the table's limit
    /// (entries of keys since dropped are skipped, and compacted away when they pile up).
    order: std::collections::VecDeque<Box<[u8]>>,
    /// Changed keys under some BCAST prefix since the last flush → the client that changed
    /// it last (for NOLOOP).
    bcast: BTreeMap<Vec<u8>, u64>,
    /// The client whose command runs now (0: none, as in active expiry).
    exec_client: u64,
    /// Messages for `exec_client` are collected in `own` (for its reply buffer) rather than
    /// sent to its sink.
    collect_own: bool,
    own: Vec<u8>,
}

impl ShardTracking {
    pub fn new(globals: Arc<Globals>) -> ShardTracking {
        let nshards = globals.nshards().max(1);
        ShardTracking {
            globals,
            nshards,
            table: HashMap::default(),
            order: std::collections::VecDeque::new(),
            bcast: BTreeMap::new(),
            exec_client: 0,
            collect_own: false,
            own: Vec::new(),
        }
    }

    /// A command of `client` starts running here; with `inline`, its own messages are kept
    /// for its reply buffer (`end`).
    #[inline]
    pub fn begin(&mut self, client: u64, inline: bool) {
        self.exec_client = client;
        self.collect_own = inline;
    }

    /// The client whose own messages are collected for its reply buffer now (0: none).
    #[inline]
    pub fn inline_client(&self) -> u64 {
        if self.collect_own {
            self.exec_client
        } else {
            0
        }
    }

    /// The command ended: its own messages go after its reply in `out`.
    #[inline]
    pub fn end(&mut self, out: &mut Vec<u8>) {
        self.exec_client = 0;
        self.collect_own = false;
        if !self.own.is_empty() {
            out.append(&mut self.own);
        }
    }

    /// Remembers that `client` read `key`.
    pub fn remember(&mut self, key: &[u8], client: u64) {
        let new_key = match self.table.get_mut(key) {
            Some(ids) => {
                if !ids.contains(&client) {
                    ids.push(client);
                    self.globals
                        .tracking
                        .total_items
                        .fetch_add(1, Ordering::Relaxed);
                }
                false
            }
            None => {
                self.table.insert(key.into(), vec![client]);
                self.order.push_back(key.into());
                self.globals
                    .tracking
                    .total_items
                    .fetch_add(1, Ordering::Relaxed);
                self.globals
                    .tracking
                    .total_keys
                    .fetch_add(1, Ordering::Relaxed);
                true
            }
        };
        if new_key {
            let max = self.globals.tracking.max_keys.load(Ordering::Relaxed);
            if max > 0 {
                let share = max.div_ceil(self.nshards);
                // The oldest keys go first, invalidated for their readers (never this one:
                // it is the newest).
                while self.table.len() > share {
                    let Some(victim) = self.order.pop_front() else {
                        break;
                    };
                    if self.table.contains_key(&victim) {
                        self.invalidate(&victim);
                    }
                }
            }
            if self.order.len() > 2 * self.table.len() + 1024 {
                // Keep one entry per remembered key, its latest (at most the table's size:
                // the next compaction is at least as many pushes away, so this is O(1) per
                // key remembered).
                let mut seen = std::collections::HashSet::with_capacity(self.table.len());
                let mut kept = std::collections::VecDeque::with_capacity(self.table.len());
                for k in std::mem::take(&mut self.order).into_iter().rev() {
                    if self.table.contains_key(&k) && seen.insert(k.clone()) {
                        kept.push_front(k);
                    }
                }
                self.order = kept;
            }
        }
    }

    /// Whether a change needs telling anyone (nothing remembered here, no BCAST prefix).
    #[inline]
    pub fn active(&self) -> bool {
        !self.table.is_empty() || self.globals.tracking.bcast_active()
    }

    /// `key` changed (the mutation path calls this for every write, deletion and expiry).
    #[inline]
    pub fn key_changed(&mut self, key: &[u8]) {
        if self.table.is_empty() && !self.globals.tracking.bcast_active() {
            return;
        }
        if self.globals.tracking.bcast_active() {
            self.bcast.insert(key.to_vec(), self.exec_client);
        }
        if !self.table.is_empty() {
            self.invalidate(key);
        }
    }

    /// Forgets `key` and sends its readers an invalidation.
    fn invalidate(&mut self, key: &[u8]) {
        let Some(ids) = self.table.remove(key) else {
            return;
        };
        let t = &self.globals.tracking;
        t.total_keys.fetch_sub(1, Ordering::Relaxed);
        t.total_items.fetch_sub(ids.len(), Ordering::Relaxed);
        let mut payload = b"*1\r\n".to_vec();
        push_bulk(&mut payload, key);
        let globals = self.globals.clone();
        let clients = globals.clients();
        for id in ids {
            let Some(c) = clients.get(&id) else {
                continue;
            };
            let mut st = c.tracking();
            // A client that switched to BCAST since it read the key gets no message for it.
            if !st.on || st.bcast || (st.noloop && id == self.exec_client) {
                continue;
            }
            deliver(&clients, c, &mut st, &payload, &mut |t, m| self.send(t, m));
        }
    }

    fn send(&mut self, target: &ClientShared, m: &[u8]) {
        if self.collect_own && target.id == self.exec_client {
            self.own.extend_from_slice(m);
        } else {
            target.pushes.push(m);
        }
    }

    /// FLUSHDB/FLUSHALL: every remembered key is dropped (the flush's null message says so).
    pub fn clear(&mut self) {
        let t = &self.globals.tracking;
        let items: usize = self.table.values().map(|v| v.len()).sum();
        t.total_keys.fetch_sub(self.table.len(), Ordering::Relaxed);
        t.total_items.fetch_sub(items, Ordering::Relaxed);
        self.table = HashMap::default();
        self.order = std::collections::VecDeque::new();
    }

    /// Sends BCAST subscribers the keys changed since the last flush (the end of a run of
    /// work on this shard).
    #[inline]
    pub fn flush_bcast(&mut self) {
        if !self.bcast.is_empty() {
            self.flush_bcast_slow();
        }
    }

    fn flush_bcast_slow(&mut self) {
        let changed = std::mem::take(&mut self.bcast);
        let globals = self.globals.clone();
        let prefixes = globals.tracking.prefixes();
        let clients = globals.clients();
        for (prefix, ids) in prefixes.iter() {
            let keys: Vec<(&Vec<u8>, u64)> = changed
                .range(prefix.clone()..)
                .take_while(|(k, _)| k.starts_with(prefix))
                .map(|(k, who)| (k, *who))
                .collect();
            if keys.is_empty() {
                continue;
            }
            for id in ids {
                let Some(c) = clients.get(id) else {
                    continue;
                };
                let mut st = c.tracking();
                if !st.on || !st.bcast {
                    continue;
                }
                let mine: Vec<&Vec<u8>> = keys
                    .iter()
                    .filter(|(_, who)| !(st.noloop && who == id))
                    .map(|(k, _)| *k)
                    .collect();
                if mine.is_empty() {
                    continue;
                }
                let mut payload = format!("*{}\r\n", mine.len()).into_bytes();
                for k in mine {
                    push_bulk(&mut payload, k);
                }
                deliver(&clients, c, &mut st, &payload, &mut |t, m| t.pushes.push(m));
            }
        }
    }

    /// Keys remembered on this shard.
    pub fn len(&self) -> usize {
        self.table.len()
    }

    pub fn is_empty(&self) -> bool {
        self.table.is_empty()
    }
}

/// CLIENT TRACKING's options after ON/OFF (Redis's parsing, errors in its order). `exists`:
/// whether a client id is connected (REDIRECT must name one).
pub fn parse_options(
    args: &[bytes::Bytes],
    exists: impl Fn(u64) -> bool,
) -> Result<TrackOptions, String> {
    use crate::commands::{c_str, parse_i64};
    let mut o = TrackOptions::default();
    let mut j = 3;
    while j < args.len() {
        let more = args.len() - 1 - j;
        let opt = c_str(&args[j]);
        if opt.eq_ignore_ascii_case(b"redirect") && more > 0 {
            j += 1;
            if o.redirect != 0 {
                return Err("ERR A client can only redirect to a single other client".into());
            }
            let Some(id) = parse_i64(&args[j]) else {
                return Err("ERR value is not an integer or out of range".into());
            };
            if id <= 0 || !exists(id as u64) {
                return Err("ERR The client ID you want redirect to does not exist".into());
            }
            o.redirect = id as u64;
        } else if opt.eq_ignore_ascii_case(b"bcast") {
            o.bcast = true;
        } else if opt.eq_ignore_ascii_case(b"optin") {
            o.optin = true;
        } else if opt.eq_ignore_ascii_case(b"optout") {
            o.optout = true;
        } else if opt.eq_ignore_ascii_case(b"noloop") {
            o.noloop = true;
        } else if opt.eq_ignore_ascii_case(b"prefix") && more > 0 {
            j += 1;
            o.prefixes.push(args[j].to_vec());
        } else {
            return Err("ERR syntax error".into());
        }
        j += 1;
    }
    Ok(o)
}

/// CLIENT TRACKING ON's checks against the client's current state (Redis's order).
pub fn check_enable(st: &TrackState, o: &TrackOptions) -> Result<(), Vec<u8>> {
    if !o.bcast && !o.prefixes.is_empty() {
        return Err(b"ERR PREFIX option requires BCAST mode to be enabled".to_vec());
    }
    if st.on && st.bcast != o.bcast {
        return Err(b"ERR You can't switch BCAST mode on/off before disabling tracking for this client, and then re-enabling it with a different mode.".to_vec());
    }
    if o.bcast && (o.optin || o.optout) {
        return Err(b"ERR OPTIN and OPTOUT are not compatible with BCAST".to_vec());
    }
    if o.optin && o.optout {
        return Err(b"ERR You can't specify both OPTIN mode and OPTOUT mode".to_vec());
    }
    if (o.optin && st.optout) || (o.optout && st.optin) {
        return Err(b"ERR You can't switch OPTIN/OPTOUT mode before disabling tracking for this client, and then re-enabling it with a different mode.".to_vec());
    }
    if o.bcast {
        check_prefixes(st, &o.prefixes)?;
    }
    Ok(())
}

/// Whether one of `a`, `b` is a prefix of the other (Redis's `stringCheckPrefix`).
fn overlap(a: &[u8], b: &[u8]) -> bool {
    let n = a.len().min(b.len());
    a[..n] == b[..n]
}

/// Redis's `checkPrefixCollisionsOrReply` (names printed as C strings).
fn check_prefixes(st: &TrackState, new: &[Vec<u8>]) -> Result<(), Vec<u8>> {
    use crate::commands::c_str;
    for (i, p) in new.iter().enumerate() {
        if let Some(e) = st.prefixes.iter().find(|e| overlap(e, p)) {
            let mut m = b"ERR Prefix '".to_vec();
            m.extend_from_slice(c_str(p));
            m.extend_from_slice(b"' overlaps with an existing prefix '");
            m.extend_from_slice(c_str(e));
            m.extend_from_slice(b"'. Prefixes for a single client must not overlap.");
            return Err(m);
        }
        for q in &new[i + 1..] {
            if overlap(p, q) {
                let mut m = b"ERR Prefix '".to_vec();
                m.extend_from_slice(c_str(p));
                m.extend_from_slice(b"' overlaps with another provided prefix '");
                m.extend_from_slice(c_str(q));
                m.extend_from_slice(b"'. Prefixes for a single client must not overlap.");
                return Err(m);
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prefixes_overlap_when_one_starts_the_other() {
        assert!(overlap(b"a", b"ab"));
        assert!(overlap(b"ab", b"a"));
        assert!(overlap(b"", b"x"));
        assert!(!overlap(b"ab", b"ac"));
        let st = TrackState {
            prefixes: [b"foo".to_vec()].into_iter().collect(),
            ..Default::default()
        };
        let e = check_prefixes(&st, &[b"foobar".to_vec()]).unwrap_err();
        assert_eq!(
            e,
            b"ERR Prefix 'foobar' overlaps with an existing prefix 'foo'. Prefixes for a single client must not overlap."
        );
        let e =
            check_prefixes(&TrackState::default(), &[b"x".to_vec(), b"xy".to_vec()]).unwrap_err();
        assert!(e.starts_with(b"ERR Prefix 'x' overlaps with another provided prefix 'xy'"));
    }

    #[test]
    fn enable_checks_follow_redis_order() {
        let off = TrackState::default();
        let o = TrackOptions {
            prefixes: vec![b"a".to_vec()],
            optin: true,
            ..Default::default()
        };
        assert_eq!(
            check_enable(&off, &o).unwrap_err(),
            b"ERR PREFIX option requires BCAST mode to be enabled"
        );
        let on_optin = TrackState {
            on: true,
            optin: true,
            ..Default::default()
        };
        let o = TrackOptions {
            optout: true,
            ..Default::default()
        };
        assert!(check_enable(&on_optin, &o)
            .unwrap_err()
            .starts_with(b"ERR You can't switch OPTIN/OPTOUT"));
    }
}

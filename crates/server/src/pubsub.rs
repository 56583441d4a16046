//! Pub/Sub: who is subscribed to what, and delivering a published message.
//!
//! One registry for the whole server (channels, patterns, shard channels → the subscribed
//! clients' shared state). PUBLISH runs on the publisher's thread: it encodes the message for
//! each receiver's protocol (RESP2 array, RESP3 push) and appends it to the receiver's push
//! sink (`push.rs`), which the receiver's connection writes out; a message for the publisher
//! itself (a RESP3 client may publish to a channel it listens to) goes into its own output
//! before PUBLISH's reply, where Redis puts it. Channel subscribers get the message before
//! pattern subscribers, as in Redis. A connection's own subscriptions (what UNSUBSCRIBE with no
//! argument leaves, the counts in the confirmations) live in `Conn::subs`; the counts are
//! mirrored in `ClientShared` for CLIENT LIST and for tracking's RESP2 redirect.
//!
//! Invariant: the registry holds a client exactly while its connection lists the
//! subscription; its lock is taken after no other lock except the client registry's, and
//! never across an `.await`.

use crate::globals::ClientShared;
use bytes::Bytes;
use std::collections::BTreeMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

type HashMap<K, V> = std::collections::HashMap<K, V, foldhash::fast::RandomState>;

/// The kinds of subscription.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Kind {
    Channel,
    Pattern,
    Shard,
}

#[derive(Default)]
struct Inner {
    channels: HashMap<Bytes, Vec<Arc<ClientShared>>>,
    /// Pattern → subscribers (sorted; Redis keeps a dict, so its order is its hash order).
    patterns: BTreeMap<Bytes, Vec<Arc<ClientShared>>>,
    shard: HashMap<Bytes, Vec<Arc<ClientShared>>>,
}

impl Inner {
    fn map(&mut self, kind: Kind) -> &mut dyn SubMap {
        match kind {
            Kind::Channel => &mut self.channels,
            Kind::Pattern => &mut self.patterns,
            Kind::Shard => &mut self.shard,
        }
    }
}

/// The three maps, behind one interface.
trait SubMap {
    fn add(&mut self, name: &Bytes, c: &Arc<ClientShared>);
    fn remove(&mut self, name: &[u8], id: u64);
}

macro_rules! impl_submap {
    ($t:ty) => {
        impl SubMap for $t {
            fn add(&mut self, name: &Bytes, c: &Arc<ClientShared>) {
                self.entry(name.clone()).or_default().push(c.clone());
            }
            fn remove(&mut self, name: &[u8], id: u64) {
                if let Some(v) = self.get_mut(name) {
                    v.retain(|c| c.id != id);
                    if v.is_empty() {
                        self.remove(name);
                    }
                }
            }
        }
    };
}
impl_submap!(HashMap<Bytes, Vec<Arc<ClientShared>>>);
impl_submap!(BTreeMap<Bytes, Vec<Arc<ClientShared>>>);

/// The server's subscriptions.
#[derive(Default)]
pub struct Registry {
    inner: Mutex<Inner>,
    /// Active channels, patterns and shard channels (INFO), kept beside the maps.
    counts: [AtomicUsize; 3],
}

/// Redis's encoding of a pub/sub message or confirmation: an array in RESP2, a push in RESP3.
pub fn encode(resp3: bool, parts: &[&[u8]]) -> Vec<u8> {
    let mut m = Vec::with_capacity(16 + parts.iter().map(|p| p.len() + 8).sum::<usize>());
    m.push(if resp3 { b'>' } else { b'*' });
    m.extend_from_slice(parts.len().to_string().as_bytes());
    m.extend_from_slice(b"\r\n");
    for p in parts {
        m.push(b'$');
        m.extend_from_slice(p.len().to_string().as_bytes());
        m.extend_from_slice(b"\r\n");
        m.extend_from_slice(p);
        m.extend_from_slice(b"\r\n");
    }
    m
}

/// One message in each protocol, encoded when first needed.
#[derive(Default)]
struct Encoded {
    resp2: Option<Vec<u8>>,
    resp3: Option<Vec<u8>>,
}

impl Encoded {
    fn get(&mut self, resp3: bool, parts: &[&[u8]]) -> &[u8] {
        let slot = if resp3 {
            &mut self.resp3
        } else {
            &mut self.resp2
        };
        slot.get_or_insert_with(|| encode(resp3, parts))
    }
}

fn idx(kind: Kind) -> usize {
    match kind {
        Kind::Channel => 0,
        Kind::Pattern => 1,
        Kind::Shard => 2,
    }
}

impl Registry {
    fn lock(&self) -> MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn recount(&self, inner: &Inner) {
        self.counts[0].store(inner.channels.len(), Ordering::Relaxed);
        self.counts[1].store(inner.patterns.len(), Ordering::Relaxed);
        self.counts[2].store(inner.shard.len(), Ordering::Relaxed);
    }

    /// Active channels, patterns or shard channels (INFO `pubsub_channels`...).
    pub fn count(&self, kind: Kind) -> usize {
        self.counts[idx(kind)].load(Ordering::Relaxed)
    }

    pub fn subscribe(&self, kind: Kind, name: &Bytes, c: &Arc<ClientShared>) {
        let mut g = self.lock();
        g.map(kind).add(name, c);
        self.recount(&g);
    }

    pub fn unsubscribe(&self, kind: Kind, name: &[u8], id: u64) {
        let mut g = self.lock();
        g.map(kind).remove(name, id);
        self.recount(&g);
    }

    /// Delivers `msg` on `channel` (a shard channel with `shard`); returns how many
    /// subscriptions received it. A message for `publisher` is appended to `own` instead of
    /// its sink.
    pub fn publish(
        &self,
        channel: &[u8],
        msg: &[u8],
        shard: bool,
        publisher: u64,
        own: &mut Vec<u8>,
    ) -> usize {
        let g = self.lock();
        let mut n = 0;
        let mut send = |c: &Arc<ClientShared>, m: &[u8]| {
            n += 1;
            if c.id == publisher {
                own.extend_from_slice(m);
            } else {
                c.pushes.push(m);
            }
        };
        let (map, kind): (&HashMap<_, _>, &[u8]) = if shard {
            (&g.shard, b"smessage")
        } else {
            (&g.channels, b"message")
        };
        // Each message is encoded once per protocol, however many receive it.
        if let Some(subs) = map.get(channel) {
            let mut enc = Encoded::default();
            for c in subs {
                send(c, enc.get(c.resp3(), &[kind, channel, msg]));
            }
        }
        if !shard {
            for (pat, subs) in &g.patterns {
                if damselfly_core::glob::glob_match(pat, channel, false) {
                    let mut enc = Encoded::default();
                    for c in subs {
                        send(c, enc.get(c.resp3(), &[b"pmessage", pat, channel, msg]));
                    }
                }
            }
        }
        n
    }

    /// Active channels (or shard channels) matching `pattern` (all with None).
    pub fn channels(&self, shard: bool, pattern: Option<&[u8]>) -> Vec<Bytes> {
        let g = self.lock();
        let map = if shard { &g.shard } else { &g.channels };
        map.keys()
            .filter(|k| pattern.is_none_or(|p| damselfly_core::glob::glob_match(p, k, false)))
            .cloned()
            .collect()
    }

    /// Subscribers of `channel` (patterns not counted).
    pub fn numsub(&self, shard: bool, channel: &[u8]) -> usize {
        let g = self.lock();
        let map = if shard { &g.shard } else { &g.channels };
        map.get(channel).map_or(0, |v| v.len())
    }
}

/// One connection's subscriptions.
#[derive(Default, Debug)]
pub struct Subs {
    pub channels: Vec<Bytes>,
    pub patterns: Vec<Bytes>,
    pub shard: Vec<Bytes>,
}

impl Subs {
    pub fn list(&mut self, kind: Kind) -> &mut Vec<Bytes> {
        match kind {
            Kind::Channel => &mut self.channels,
            Kind::Pattern => &mut self.patterns,
            Kind::Shard => &mut self.shard,
        }
    }

    /// Channels and patterns (what the (P)(UN)SUBSCRIBE confirmations count).
    pub fn count(&self) -> usize {
        self.channels.len() + self.patterns.len()
    }

    /// Everything: the connection is in Pub/Sub mode while this is not zero.
    pub fn total(&self) -> usize {
        self.count() + self.shard.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_are_arrays_in_resp2_and_pushes_in_resp3() {
        assert_eq!(
            encode(false, &[b"message", b"c", b"hi"]),
            b"*3\r\n$7\r\nmessage\r\n$1\r\nc\r\n$2\r\nhi\r\n"
        );
        assert_eq!(
            encode(true, &[b"pmessage", b"c*", b"c", b""]),
            b">4\r\n$8\r\npmessage\r\n$2\r\nc*\r\n$1\r\nc\r\n$0\r\n\r\n"
        );
    }
}

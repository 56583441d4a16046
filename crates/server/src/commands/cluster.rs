//! Cluster commands: READONLY, READWRITE and the CLUSTER family.
//!
//! With `--cluster_mode=emulated` the server presents itself as a one-node Redis Cluster that
//! owns all 16384 slots (as Dragonfly's emulated mode), so cluster clients can connect: CLUSTER
//! INFO / SLOTS / SHARDS / NODES / MYID describe that node in Redis's reply shapes. The node's
//! address is the local address of the asking connection (what the client reached), unless
//! `cluster-announce-ip` / `cluster-announce-port` say otherwise; its id is a stable 40-hex
//! id derived from the run id. Without emulation, CLUSTER subcommands other than KEYSLOT and
//! HELP answer Redis's "cluster support disabled" error; READONLY and READWRITE always answer
//! OK (Dragonfly's behaviour; Redis refuses them outside cluster mode).
//!
//! Invariant: the slot of a key is `damselfly_core::slot::key_slot`, the same function that
//! routes keys to shards, so CLUSTER KEYSLOT and COUNTKEYSINSLOT agree with where keys live.

use super::{parse_i64, NOT_INT};
use crate::command::{LocalFut, TableBuilder};
use crate::conn::Conn;
use crate::coord::run_on;
use bytes::Bytes;
use damselfly_core::slot::{key_slot, SLOTS};

const DISABLED: &str = "ERR This instance has cluster support disabled";

pub fn register(t: &mut TableBuilder) {
    t.conn("readonly", ok);
    t.conn("readwrite", ok);
    t.conn("cluster|info", cluster_info);
    t.conn("cluster|slots", cluster_slots);
    t.conn("cluster|shards", cluster_shards);
    t.conn("cluster|nodes", cluster_nodes);
    t.conn("cluster|myid", cluster_myid);
    t.conn("cluster|keyslot", cluster_keyslot);
    t.coord("cluster|countkeysinslot", cluster_countkeysinslot);
    t.coord("cluster|getkeysinslot", cluster_getkeysinslot);
    t.conn("cluster|help", cluster_help);
}

fn ok(c: &mut Conn, _args: &[Bytes]) {
    c.out.ok();
}

/// Replies the "disabled" error and returns false outside emulated cluster mode.
fn enabled(c: &mut Conn) -> bool {
    if !c.cluster_emulated {
        c.out.error(DISABLED);
    }
    c.cluster_emulated
}

/// This node as the cluster shows it.
struct Node {
    id: String,
    ip: String,
    port: u16,
    bus_port: u32,
}

fn node(c: &Conn) -> Node {
    let cfg = c.globals.config();
    let announce_ip = cfg.get_str("cluster_announce_ip");
    let ip = if announce_ip.is_empty() {
        c.shared
            .laddr
            .parse::<std::net::SocketAddr>()
            .map(|a| a.ip().to_string())
            .unwrap_or_default()
    } else {
        announce_ip
    };
    let announce_port = cfg.get_int("cluster_announce_port");
    let port = if announce_port > 0 {
        announce_port as u16
    } else {
        c.globals.port
    };
    let bus_port = match (
        cfg.get_int("cluster_announce_bus_port"),
        cfg.get_int("cluster_port"),
    ) {
        (b, _) if b > 0 => b as u32,
        (_, b) if b > 0 => b as u32,
        _ => port as u32 + 10000,
    };
    Node {
        id: node_id(&c.globals.run_id),
        ip,
        port,
        bus_port,
    }
}

/// The node id: 40 hex digits, stable for the life of the process.
pub fn node_id(run_id: &str) -> String {
    crate::info::derived_id(run_id, 3)
}

/// CLUSTER INFO's text for the emulated one-node cluster.
pub fn info_text() -> String {
    let fields: [(&str, u32); 11] = [
        ("cluster_slots_assigned", SLOTS as u32),
        ("cluster_slots_ok", SLOTS as u32),
        ("cluster_slots_pfail", 0),
        ("cluster_slots_fail", 0),
        ("cluster_known_nodes", 1),
        ("cluster_size", 1),
        ("cluster_current_epoch", 0),
        ("cluster_my_epoch", 0),
        ("cluster_stats_messages_sent", 0),
        ("cluster_stats_messages_received", 0),
        ("total_cluster_links_buffer_limit_exceeded", 0),
    ];
    let mut s = String::from("cluster_state:ok\r\n");
    for (k, v) in fields {
        s.push_str(&format!("{k}:{v}\r\n"));
    }
    s
}

fn cluster_info(c: &mut Conn, _args: &[Bytes]) {
    if enabled(c) {
        c.out.verbatim(info_text().as_bytes());
    }
}

fn cluster_slots(c: &mut Conn, _args: &[Bytes]) {
    if !enabled(c) {
        return;
    }
    let n = node(c);
    let r = &mut c.out;
    r.array(1);
    r.array(3);
    r.int(0);
    r.int(SLOTS as i64 - 1);
    r.array(4);
    r.bulk(n.ip.as_bytes());
    r.int(n.port as i64);
    r.bulk(n.id.as_bytes());
    r.map(0);
}

fn cluster_shards(c: &mut Conn, _args: &[Bytes]) {
    if !enabled(c) {
        return;
    }
    let n = node(c);
    let r = &mut c.out;
    r.array(1);
    r.map(2);
    r.bulk(b"slots");
    r.array(2);
    r.int(0);
    r.int(SLOTS as i64 - 1);
    r.bulk(b"nodes");
    r.array(1);
    r.map(7);
    r.bulk(b"id");
    r.bulk(n.id.as_bytes());
    r.bulk(b"port");
    r.int(n.port as i64);
    r.bulk(b"ip");
    r.bulk(n.ip.as_bytes());
    r.bulk(b"endpoint");
    r.bulk(n.ip.as_bytes());
    r.bulk(b"role");
    r.bulk(b"master");
    r.bulk(b"replication-offset");
    r.int(0);
    r.bulk(b"health");
    r.bulk(b"online");
}

/// The CLUSTER NODES line of this node.
fn nodes_line(n: &Node) -> String {
    format!(
        "{} {}:{}@{} myself,master - 0 0 0 connected 0-{}\n",
        n.id,
        n.ip,
        n.port,
        n.bus_port,
        SLOTS - 1
    )
}

fn cluster_nodes(c: &mut Conn, _args: &[Bytes]) {
    if enabled(c) {
        let line = nodes_line(&node(c));
        c.out.verbatim(line.as_bytes());
    }
}

fn cluster_myid(c: &mut Conn, _args: &[Bytes]) {
    if enabled(c) {
        let id = node_id(&c.globals.run_id);
        c.out.bulk(id.as_bytes());
    }
}

fn cluster_keyslot(c: &mut Conn, args: &[Bytes]) {
    c.out.int(key_slot(&args[2]) as i64);
}

/// Parses a slot argument with Redis's errors.
fn parse_slot(c: &mut Conn, arg: &[u8]) -> Option<u16> {
    match parse_i64(arg) {
        None => {
            c.out.error(NOT_INT);
            None
        }
        Some(s) if !(0..SLOTS as i64).contains(&s) => {
            c.out.error("ERR Invalid slot");
            None
        }
        Some(s) => Some(s as u16),
    }
}

fn cluster_countkeysinslot(c: &mut Conn, args: Vec<Bytes>) -> LocalFut<'_> {
    Box::pin(async move {
        if !enabled(c) {
            return;
        }
        let Some(slot) = parse_slot(c, &args[2]) else {
            return;
        };
        let sid = slot as usize % c.globals.nshards();
        let db = c.db;
        let n = run_on(c, sid, move |sh| {
            sh.dbs[db]
                .iter()
                .filter(|e| key_slot(e.key()) == slot)
                .count()
        })
        .await
        .unwrap_or(0);
        c.out.int(n as i64);
    })
}

fn cluster_getkeysinslot(c: &mut Conn, args: Vec<Bytes>) -> LocalFut<'_> {
    Box::pin(async move {
        if !enabled(c) {
            return;
        }
        let (Some(slot), Some(max)) = (parse_i64(&args[2]), parse_i64(&args[3])) else {
            c.out.error(NOT_INT);
            return;
        };
        if max < 0 || !(0..SLOTS as i64).contains(&slot) {
            c.out.error("ERR Invalid slot or number of keys");
            return;
        }
        let slot = slot as u16;
        let sid = slot as usize % c.globals.nshards();
        let db = c.db;
        let keys: Vec<Vec<u8>> = run_on(c, sid, move |sh| {
            sh.dbs[db]
                .iter()
                .filter(|e| key_slot(e.key()) == slot)
                .take(max as usize)
                .map(|e| e.key().to_vec())
                .collect()
        })
        .await
        .unwrap_or_default();
        c.out.array(keys.len());
        for k in keys {
            c.out.bulk(&k);
        }
    })
}

fn cluster_help(c: &mut Conn, _args: &[Bytes]) {
    const LINES: &[&str] = &[
        "CLUSTER <subcommand> [<arg> [value] [opt] ...]. Subcommands are:",
        "COUNTKEYSINSLOT <slot>",
        "    Return the number of keys in <slot>.",
        "GETKEYSINSLOT <slot> <count>",
        "    Return key names stored by current node in a slot.",
        "INFO",
        "    Return information about the cluster.",
        "KEYSLOT <key>",
        "    Return the hash slot for <key>.",
        "MYID",
        "    Return the node id.",
        "NODES",
        "    Return cluster configuration seen by node. Output format:",
        "    <id> <ip:port> <flags> <master> <pings> <pongs> <epoch> <link> <slot> ...",
        "SLOTS",
        "    Return information about slots range mappings. Each range is made of:",
        "    start, end, master and replicas IP addresses, ports and ids",
        "SHARDS",
        "    Return information about slot range mappings and the nodes associated with them.",
        "HELP",
        "    Prints this help.",
    ];
    super::reply_help(c, LINES);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn info_text_has_redis_fields() {
        let t = info_text();
        assert!(t.starts_with("cluster_state:ok\r\ncluster_slots_assigned:16384\r\n"));
        assert!(t.ends_with("total_cluster_links_buffer_limit_exceeded:0\r\n"));
        assert_eq!(t.lines().count(), 12);
    }

    #[test]
    fn nodes_line_shape() {
        let n = Node {
            id: node_id("x"),
            ip: "127.0.0.1".into(),
            port: 6379,
            bus_port: 16379,
        };
        let l = nodes_line(&n);
        assert_eq!(
            l,
            format!(
                "{} 127.0.0.1:6379@16379 myself,master - 0 0 0 connected 0-16383\n",
                node_id("x")
            )
        );
        assert_eq!(node_id("x").len(), 40);
    }
}

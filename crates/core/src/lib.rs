//! Data structures of the keyspace, with no knowledge of commands, the network or async:
//! the segmented table, compact entries and values, glob matching, cluster hash slots.

pub mod glob;

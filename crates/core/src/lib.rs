//! Data structures of the keyspace, with no knowledge of commands, the network or async:
//! the segmented table, compact entries and values, glob matching, cluster hash slots.

pub mod entry;
pub mod glob;
pub mod index;
pub mod slot;
pub mod table;
pub mod value;

pub use entry::{Entry, NewValue};
pub use table::Table;
pub use value::{Object, ValueRef};

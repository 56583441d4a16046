//! (family placeholder)

use crate::command::TableBuilder;

pub fn register(_t: &mut TableBuilder) {}

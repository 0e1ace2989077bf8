//! TODO
use crate::{Opts, Row};
/// Fills the libcoap column.
pub fn run(_o: &Opts, _rows: &mut [Row]) {}

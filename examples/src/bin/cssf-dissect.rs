//! Placeholder until the CoAP codec lands.
fn main() {}

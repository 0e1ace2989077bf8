//! The encrypted store on a file: values set by one run are read by the
//! next, and a copy of an older file is refused (rollback counter).
//!
//! `cargo run -p cssf-store --features std --example file_store -- FILE set NAME VALUE`,
//! then `... FILE get NAME`, `... FILE remove NAME`, `... FILE list`.
//! The flash image is FILE (64 KiB, 4 KiB sectors), its rollback counter
//! `FILE.counter`. The root key is a demo constant: a device keeps it in a
//! key slot or derives it from a hardware-unique key.
// The workspace's lints are for library code; an example may index and use std.
#![allow(clippy::indexing_slicing, clippy::std_instead_of_core)]

use std::path::PathBuf;

use cssf_store::flash::FileFlash;
use cssf_store::{Config, FileCounter, RootKey, Store};
use rand_core::OsRng;

const ROOT_KEY: RootKey = RootKey(*b"file_store example root key 32B!");

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let usage = "usage: file_store FILE (set NAME VALUE | get NAME | remove NAME | list)";
    let (Some(file), Some(cmd)) = (args.first(), args.get(1)) else {
        return Err(usage.into());
    };
    let path = PathBuf::from(file);
    let flash = FileFlash::<4096>::open(&path, 16 * 4096)
        .map_err(|e| format!("{}: {e:?}", path.display()))?;
    let counter = FileCounter::open(&PathBuf::from(format!("{file}.counter")))?;
    // Mounting checks the image against the counter and draws a fresh
    // nonce salt from the OS.
    let mut store: Store<_, _, 32, 16> =
        Store::mount(flash, &ROOT_KEY, counter, Config::new(), &mut OsRng)?;
    match (cmd.as_str(), args.get(2), args.get(3)) {
        ("set", Some(name), Some(value)) => {
            store.set(name.as_bytes(), value.as_bytes())?;
            println!("set {name}");
        }
        ("get", Some(name), None) => {
            let mut buf = [0u8; 1024];
            let n = store.get(name.as_bytes(), &mut buf)?;
            println!("{name} = {}", String::from_utf8_lossy(&buf[..n]));
        }
        ("remove", Some(name), None) => {
            store.remove(name.as_bytes())?;
            println!("removed {name}");
        }
        ("list", None, None) => store.for_each_key(|name| match name {
            Ok(n) => println!("{}", String::from_utf8_lossy(n)),
            Err(e) => println!("(unreadable record: {e})"),
        })?,
        _ => return Err(usage.into()),
    }
    Ok(())
}

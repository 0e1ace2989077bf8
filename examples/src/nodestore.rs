//! The device's persistent state in a file-backed cssf-store: provisioned
//! PSKs (`psk/<identity>`), accepted tokens (`tok/<kid>`), the `cti`s the
//! replay cache remembers (`rpl/<n>`), `exi` watermarks (`exi/<issuer>`)
//! and counters (`ctr/<name>`, 8 bytes big-endian).
//!
//! The store is sealed under a 32-byte root key kept beside it in
//! `<FILE>.rootkey` (hex, owner-only), created with the store. A device would
//! keep that key in a secure element or derive it from a hardware unique
//! key. Rollback is checked against a counter kept outside the image, in
//! `<FILE>.counter` ([`FileCounter`]): replacing the store file with an older
//! copy is refused at open. That counter is only as trusted as the file
//! system: whoever can rewrite both files can roll both back, and a missing
//! counter file reads as 0. Record nonces never repeat either way (each open
//! draws a fresh salt from the OS).

use std::path::{Path, PathBuf};

use cssf_auth::authz_info::ReplayEntry;
use cssf_store::flash::FileFlash;
use cssf_store::typed::{PSK_PREFIX, TOKEN_PREFIX};
use cssf_store::{Config, Error as StoreError, FileCounter, RootKey, Store};
use zeroize::Zeroizing;

use crate::fail;
use crate::keys::{write_private, Psk};
use crate::util::{hex, unhex, Result};

/// Sector (erase block) size of the emulated flash.
pub const SECTOR: usize = 4096;
/// Sectors the store uses (64 KiB).
pub const SECTORS: usize = 16;
/// Keys the store indexes.
pub const KEYS: usize = 64;

type Inner = Store<FileFlash<SECTOR>, FileCounter, KEYS, SECTORS>;

/// Key-name prefix of counters.
pub const COUNTER_PREFIX: &[u8] = b"ctr/";
/// Key-name prefix of the `exi` watermarks (RFC 9200 §5.10.3), per issuer.
pub const EXI_PREFIX: &[u8] = b"exi/";

/// Key-name prefix of the replay cache's `cti`s, in chunks.
pub const REPLAY_PREFIX: &[u8] = b"rpl/";
/// Bytes of one saved `cti`: its 16-byte digest and its token's `exp`
/// (8 bytes big-endian, `i64::MIN`: none).
const REPLAY_ENTRY: usize = 24;
/// Saved `cti`s per store value.
const REPLAY_CHUNK: usize = cssf_store::MAX_VALUE_LEN / REPLAY_ENTRY;

/// The device's store.
pub struct NodeStore {
    store: Box<Inner>,
    path: PathBuf,
}

impl std::fmt::Debug for NodeStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "NodeStore({})", self.path.display())
    }
}

fn root_key_path(path: &Path) -> PathBuf {
    let mut p = path.as_os_str().to_owned();
    p.push(".rootkey");
    PathBuf::from(p)
}

fn counter_path(path: &Path) -> PathBuf {
    let mut p = path.as_os_str().to_owned();
    p.push(".counter");
    PathBuf::from(p)
}

impl NodeStore {
    /// Opens the store in `path`, creating it (and its root key) when missing.
    pub fn open(path: &Path) -> Result<Self> {
        let key_path = root_key_path(path);
        let existed = path.exists();
        let root = match std::fs::read_to_string(&key_path) {
            Ok(text) => {
                let k = Zeroizing::new(
                    unhex(text.trim())
                        .map_err(|_| fail!("root key file {} is not hex", key_path.display()))?,
                );
                let arr: [u8; 32] = k.as_slice().try_into().map_err(|_| {
                    fail!(
                        "root key file {} does not hold 32 bytes",
                        key_path.display()
                    )
                })?;
                RootKey(arr)
            }
            Err(_) if !existed => {
                let mut k = [0u8; 32];
                rand_core::RngCore::fill_bytes(&mut rand_core::OsRng, &mut k);
                write_private(&key_path, format!("{}\n", hex(&k)).as_bytes())?;
                RootKey(k)
            }
            Err(e) => {
                return Err(fail!(
                    "store {} exists but its root key {} cannot be read: {e}",
                    path.display(),
                    key_path.display()
                ))
            }
        };
        let flash = FileFlash::<SECTOR>::open(path, SECTOR * SECTORS)
            .map_err(|e| fail!("cannot open store file {}: {e:?}", path.display()))?;
        let ctr_path = counter_path(path);
        let counter = FileCounter::open(&ctr_path)
            .map_err(|e| fail!("cannot read {}: {e}", ctr_path.display()))?;
        let store = Store::mount(flash, &root, counter, Config::new(), &mut rand_core::OsRng)
            .map_err(|e| match e {
                StoreError::Rollback => fail!(
                    "store {} is older than its counter {}: the file was replaced by an \
                     older copy (or emptied); refusing it",
                    path.display(),
                    ctr_path.display()
                ),
                e => fail!("cannot mount store {}: {e}", path.display()),
            })?;
        Ok(NodeStore {
            store: Box::new(store),
            path: path.to_owned(),
        })
    }

    /// The store file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Number of keys stored.
    pub fn len(&self) -> usize {
        self.store.len()
    }

    /// Whether the store is empty.
    pub fn is_empty(&self) -> bool {
        self.store.is_empty()
    }

    fn names_with(&mut self, prefix: &[u8]) -> Result<Vec<Vec<u8>>> {
        let mut names = Vec::new();
        self.store
            .for_each_key(|k| {
                if let Ok(name) = k {
                    if let Some(rest) = name.strip_prefix(prefix) {
                        names.push(rest.to_vec());
                    }
                }
            })
            .map_err(|e| fail!("store {}: {e}", self.path.display()))?;
        Ok(names)
    }

    /// Every provisioned PSK.
    pub fn psks(&mut self) -> Result<Vec<Psk>> {
        let mut out = Vec::new();
        for id in self.names_with(PSK_PREFIX)? {
            let mut k = Zeroizing::new([0u8; 64]);
            let n = self
                .store
                .get_psk(&id, &mut k[..])
                .map_err(|e| fail!("store: PSK {}: {e}", String::from_utf8_lossy(&id)))?;
            out.push(Psk {
                identity: id,
                key: Zeroizing::new(k.get(..n).unwrap_or(&[]).to_vec()),
            });
        }
        Ok(out)
    }

    /// Saves a PSK.
    pub fn set_psk(&mut self, psk: &Psk) -> Result<()> {
        self.store
            .set_psk(&psk.identity, &psk.key)
            .map_err(|e| fail!("store: cannot save PSK: {e}"))
    }

    /// Every stored token, with the kid it is stored under.
    pub fn tokens(&mut self) -> Result<Vec<(Vec<u8>, Vec<u8>)>> {
        let mut out = Vec::new();
        for kid in self.names_with(TOKEN_PREFIX)? {
            let mut buf = vec![0u8; cssf_store::typed::MAX_TOKEN_LEN];
            if let Ok(n) = self.store.get_token(&kid, &mut buf) {
                buf.truncate(n);
                out.push((kid, buf));
            }
        }
        Ok(out)
    }

    /// Saves a token under its kid.
    pub fn set_token(&mut self, kid: &[u8], token: &[u8]) -> Result<()> {
        self.store
            .set_token(kid, token)
            .map_err(|e| fail!("store: cannot save token: {e}"))
    }

    /// Forgets a token.
    pub fn remove_token(&mut self, kid: &[u8]) -> Result<()> {
        match self.store.remove_token(kid) {
            Ok(()) | Err(cssf_store::Error::NotFound) => Ok(()),
            Err(e) => Err(fail!("store: cannot remove token: {e}")),
        }
    }

    /// The saved `exi` watermarks: (issuer id, highest expired Sequence
    /// Number).
    pub fn exi_watermarks(&mut self) -> Result<Vec<([u8; 16], u64)>> {
        let mut out = Vec::new();
        for issuer in self.names_with(EXI_PREFIX)? {
            let key = [EXI_PREFIX, &issuer].concat();
            let mut b = [0u8; 8];
            if let (Ok(8), Ok(id)) = (
                self.store.get(&key, &mut b),
                <[u8; 16]>::try_from(issuer.as_slice()),
            ) {
                out.push((id, u64::from_be_bytes(b)));
            }
        }
        Ok(out)
    }

    /// Saves one issuer's `exi` watermark.
    pub fn set_exi_watermark(&mut self, issuer: &[u8; 16], expired_up_to: u64) -> Result<()> {
        let key = [EXI_PREFIX, issuer].concat();
        self.store
            .set(&key, &expired_up_to.to_be_bytes())
            .map_err(|e| fail!("store: cannot save an exi watermark: {e}"))
    }

    /// The saved `cti`s of the replay cache.
    pub fn replay_entries(&mut self) -> Result<Vec<ReplayEntry>> {
        let mut out = Vec::new();
        for n in self.names_with(REPLAY_PREFIX)? {
            let key = [REPLAY_PREFIX, &n].concat();
            let mut b = vec![0u8; cssf_store::MAX_VALUE_LEN];
            let len = self
                .store
                .get(&key, &mut b)
                .map_err(|e| fail!("store: replay cache: {e}"))?;
            for e in b.get(..len).unwrap_or(&[]).chunks_exact(REPLAY_ENTRY) {
                let (d, exp) = e.split_at(16);
                let (Ok(digest), Ok(exp)) = (<[u8; 16]>::try_from(d), <[u8; 8]>::try_from(exp))
                else {
                    continue;
                };
                let exp = i64::from_be_bytes(exp);
                out.push(ReplayEntry {
                    digest,
                    exp: (exp != i64::MIN).then_some(exp),
                });
            }
        }
        Ok(out)
    }

    /// Saves the `cti`s of the replay cache (replacing those saved before).
    pub fn set_replay_entries(&mut self, entries: &[ReplayEntry]) -> Result<()> {
        let old = self.names_with(REPLAY_PREFIX)?;
        let mut written = Vec::new();
        for (i, chunk) in entries.chunks(REPLAY_CHUNK).enumerate() {
            let name = i.to_string().into_bytes();
            let mut v = Vec::with_capacity(chunk.len() * REPLAY_ENTRY);
            for e in chunk {
                v.extend_from_slice(&e.digest);
                v.extend_from_slice(&e.exp.unwrap_or(i64::MIN).to_be_bytes());
            }
            self.store
                .set(&[REPLAY_PREFIX, &name].concat(), &v)
                .map_err(|e| fail!("store: cannot save the replay cache: {e}"))?;
            written.push(name);
        }
        for n in old.iter().filter(|n| !written.contains(n)) {
            match self.store.remove(&[REPLAY_PREFIX, n].concat()) {
                Ok(()) | Err(StoreError::NotFound) => {}
                Err(e) => return Err(fail!("store: cannot save the replay cache: {e}")),
            }
        }
        Ok(())
    }

    /// A counter (0 when never set).
    pub fn counter(&mut self, name: &str) -> Result<u64> {
        let key = [COUNTER_PREFIX, name.as_bytes()].concat();
        let mut b = [0u8; 8];
        match self.store.get(&key, &mut b) {
            Ok(8) => Ok(u64::from_be_bytes(b)),
            Ok(_) => Err(fail!("store: counter {name} is not 8 bytes")),
            Err(cssf_store::Error::NotFound) => Ok(0),
            Err(e) => Err(fail!("store: counter {name}: {e}")),
        }
    }

    /// Sets a counter.
    pub fn set_counter(&mut self, name: &str, v: u64) -> Result<()> {
        let key = [COUNTER_PREFIX, name.as_bytes()].concat();
        self.store
            .set(&key, &v.to_be_bytes())
            .map_err(|e| fail!("store: cannot save counter {name}: {e}"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn survives_reopen() {
        let path = std::env::temp_dir().join(format!("cssf-nodestore-{}", std::process::id()));
        let _ = std::fs::remove_file(&path);
        let _ = std::fs::remove_file(root_key_path(&path));
        let _ = std::fs::remove_file(counter_path(&path));
        {
            let mut s = NodeStore::open(&path).unwrap();
            s.set_psk(&Psk::parse("dev1:00112233").unwrap()).unwrap();
            s.set_token(b"kid1", b"token bytes").unwrap();
            s.set_counter("boots", 7).unwrap();
        }
        let mut s = NodeStore::open(&path).unwrap();
        let psks = s.psks().unwrap();
        assert_eq!(psks.len(), 1);
        assert_eq!(psks[0].identity, b"dev1");
        assert_eq!(&psks[0].key[..], &[0, 0x11, 0x22, 0x33]);
        assert_eq!(
            s.tokens().unwrap(),
            vec![(b"kid1".to_vec(), b"token bytes".to_vec())]
        );
        assert_eq!(s.counter("boots").unwrap(), 7);
        assert_eq!(s.counter("never").unwrap(), 0);
        s.set_exi_watermark(&[7; 16], 42).unwrap();
        assert_eq!(s.exi_watermarks().unwrap(), vec![([7; 16], 42)]);
        s.remove_token(b"kid1").unwrap();
        assert!(s.tokens().unwrap().is_empty());
        // The replay cache's ctis, over more than one value and back to
        // fewer.
        let e = |i: u8| ReplayEntry {
            digest: [i; 16],
            exp: (i % 2 == 0).then_some(1000 + i64::from(i)),
        };
        let many: Vec<_> = (0..64).map(e).collect();
        s.set_replay_entries(&many).unwrap();
        let mut back = s.replay_entries().unwrap();
        back.sort_by_key(|e| e.digest);
        assert_eq!(back, many);
        s.set_replay_entries(&many[..3]).unwrap();
        let mut back = s.replay_entries().unwrap();
        back.sort_by_key(|e| e.digest);
        assert_eq!(back, &many[..3]);
        // The store without its root key is refused, not silently recreated.
        std::fs::remove_file(root_key_path(&path)).unwrap();
        assert!(NodeStore::open(&path).unwrap_err().0.contains("root key"));
        let _ = std::fs::remove_file(&path);
        let _ = std::fs::remove_file(counter_path(&path));
    }

    #[test]
    fn older_copy_of_the_file_is_refused() {
        let path = std::env::temp_dir().join(format!("cssf-nodestore-rb-{}", std::process::id()));
        for p in [path.clone(), root_key_path(&path), counter_path(&path)] {
            let _ = std::fs::remove_file(p);
        }
        {
            let mut s = NodeStore::open(&path).unwrap();
            s.set_token(b"kid1", b"revoked later").unwrap();
        }
        let old = std::fs::read(&path).unwrap();
        {
            let mut s = NodeStore::open(&path).unwrap();
            s.remove_token(b"kid1").unwrap();
        }
        std::fs::write(&path, &old).unwrap();
        let err = NodeStore::open(&path).unwrap_err().0;
        assert!(err.contains("older copy"), "{err}");
        for p in [path.clone(), root_key_path(&path), counter_path(&path)] {
            let _ = std::fs::remove_file(p);
        }
    }
}

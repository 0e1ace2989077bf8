//! Bounded byte queues shared by all sessions of an endpoint (or a
//! client): sealed records waiting for `poll_transmit`, and received
//! application records waiting for `recv`, each tagged with its session.

/// Capacity in bytes of the endpoint's (or client's) queue of sealed
/// application records and of its queue of received ones, each; shared
/// by all sessions.
pub const APP_QUEUE_CAPACITY: usize = 2048;

/// Records a queue holds at most.
pub(crate) const QUEUE_ENTRIES: usize = 16;

/// Moves `buf[from..end]` down to start at `to` (`to <= from`), one byte
/// at a time front to back. The byte loop (and the element loops in
/// [`TaggedQueue::remove`] and `Ahead::remove`) keep the only callers of
/// `memmove` out of small images, where its word-wise implementation
/// costs about 1.6 KiB of flash; the queues are short.
pub(crate) fn shift_down(buf: &mut [u8], to: usize, from: usize, end: usize) {
    for (d, s) in (to..).zip(from..end) {
        let Some(&b) = buf.get(s) else { return };
        if let Some(x) = buf.get_mut(d) {
            *x = b;
        }
    }
}

/// `Vec::remove` by an element loop (see [`shift_down`]).
pub(crate) fn remove_at<T: Copy, const N: usize>(v: &mut heapless::Vec<T, N>, i: usize) {
    for k in i + 1..v.len() {
        if let Some(&e) = v.get(k) {
            if let Some(p) = v.get_mut(k - 1) {
                *p = e;
            }
        }
    }
    if i < v.len() {
        v.pop();
    }
}

/// A FIFO of byte strings tagged with a session number (`G`: `u64` in an
/// endpoint; `()` in a client, whose one session needs no tag, so an
/// entry takes 2 bytes instead of 16).
pub(crate) struct TaggedQueue<const CAP: usize, const E: usize, G = u64> {
    buf: [u8; CAP],
    used: usize,
    entries: heapless::Vec<(G, u16), E>,
}

impl<const CAP: usize, const E: usize, G: Copy + PartialEq> TaggedQueue<CAP, E, G> {
    pub(crate) const fn new() -> Self {
        TaggedQueue {
            buf: [0; CAP],
            used: 0,
            entries: heapless::Vec::new(),
        }
    }

    /// Room for an entry of up to `max` bytes, to fill and then
    /// [`commit`](Self::commit); `None` when full.
    pub(crate) fn reserve(&mut self, max: usize) -> Option<&mut [u8]> {
        if self.entries.is_full() {
            return None;
        }
        self.buf.get_mut(self.used..self.used.checked_add(max)?)
    }

    /// Adds the first `len` bytes of the last reservation as an entry.
    pub(crate) fn commit(&mut self, tag: G, len: usize) -> bool {
        let (Ok(n), true) = (u16::try_from(len), self.used + len <= CAP) else {
            return false;
        };
        if self.entries.push((tag, n)).is_err() {
            return false;
        }
        self.used += len;
        true
    }

    /// Appends `data` tagged `tag`; false when it does not fit.
    pub(crate) fn push(&mut self, tag: G, data: &[u8]) -> bool {
        match self.reserve(data.len()) {
            Some(dst) => {
                dst.copy_from_slice(data);
                self.commit(tag, data.len())
            }
            None => false,
        }
    }

    /// True when `tag` may add an entry of `len` bytes under a fair
    /// share: its first entry always (if it fits at all), beyond that at
    /// most half of the entries and half of the bytes.
    #[cfg_attr(not(feature = "server"), allow(dead_code))]
    pub(crate) fn fair(&self, tag: G, len: usize) -> bool {
        let (n, bytes) = self
            .entries
            .iter()
            .filter(|(t, _)| *t == tag)
            .fold((0, len), |(n, b), (_, l)| (n + 1, b + usize::from(*l)));
        n == 0 || (2 * (n + 1) <= E && 2 * bytes <= CAP)
    }

    fn range(&self, i: usize) -> Option<core::ops::Range<usize>> {
        let start = self
            .entries
            .iter()
            .take(i)
            .map(|(_, n)| usize::from(*n))
            .sum::<usize>();
        let (_, n) = self.entries.get(i)?;
        Some(start..start + usize::from(*n))
    }

    /// The oldest entry and its tag.
    pub(crate) fn front(&self) -> Option<(G, &[u8])> {
        let (tag, _) = self.entries.first()?;
        Some((*tag, self.buf.get(self.range(0)?)?))
    }

    /// Index of the oldest entry tagged `tag`.
    pub(crate) fn find(&self, tag: G) -> Option<usize> {
        self.entries.iter().position(|(t, _)| *t == tag)
    }

    /// Entry `i`.
    pub(crate) fn get(&self, i: usize) -> Option<&[u8]> {
        self.buf.get(self.range(i)?)
    }

    /// Drops entry `i`.
    pub(crate) fn remove(&mut self, i: usize) {
        let Some(r) = self.range(i) else { return };
        shift_down(&mut self.buf, r.start, r.end, self.used);
        self.used -= r.len();
        remove_at(&mut self.entries, i);
    }

    /// Drops every entry tagged `tag`.
    pub(crate) fn purge(&mut self, tag: G) {
        while let Some(i) = self.find(tag) {
            self.remove(i);
        }
    }

    /// Moves entry `i` (tagged `tag`) into `buf`.
    pub(crate) fn take(&mut self, tag: G, buf: &mut [u8]) -> Result<Option<usize>, crate::Error> {
        let Some(i) = self.find(tag) else {
            return Ok(None);
        };
        let src = self.get(i).unwrap_or_default();
        let n = src.len();
        buf.get_mut(..n)
            .ok_or(crate::Error::BufferTooSmall { needed: n })?
            .copy_from_slice(src);
        self.remove(i);
        Ok(Some(n))
    }
}

/// The application queues of an endpoint or client.
pub(crate) type AppQueue = TaggedQueue<APP_QUEUE_CAPACITY, QUEUE_ENTRIES>;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tagged_fifo() {
        let mut q: TaggedQueue<16, 4> = TaggedQueue::new();
        assert!(q.push(1, b"aaa"));
        assert!(q.push(2, b"bb"));
        assert!(q.push(1, b"c"));
        assert!(!q.push(3, &[0; 11]), "only 10 bytes left");
        assert_eq!(q.front(), Some((1, &b"aaa"[..])));
        let mut out = [0u8; 4];
        assert_eq!(q.take(2, &mut out), Ok(Some(2)));
        assert_eq!(&out[..2], b"bb");
        // The later entry moved down over the removed one.
        assert_eq!(q.get(1), Some(&b"c"[..]));
        assert_eq!((q.used, q.entries.len()), (4, 2));
        assert_eq!(q.take(2, &mut out), Ok(None));
        assert_eq!(
            q.take(1, &mut out[..2]),
            Err(crate::Error::BufferTooSmall { needed: 3 })
        );
        q.purge(1);
        assert_eq!(q.front(), None);
        assert!(q.push(3, &[7; 16]));
        assert_eq!(q.front(), Some((3, &[7u8; 16][..])));
        assert!(q.reserve(1).is_none());
    }

    #[test]
    fn fair_share_is_half_the_entries_and_bytes() {
        let mut q: TaggedQueue<16, 4> = TaggedQueue::new();
        assert!(q.fair(1, 16), "a first entry always");
        assert!(q.push(1, b"aa"));
        assert!(q.fair(1, 6) && !q.fair(1, 7), "8 of 16 bytes");
        assert!(q.push(1, b"b"));
        assert!(!q.fair(1, 1), "2 of 4 entries");
        assert!(q.fair(2, 1) && q.push(2, b"c") && q.fair(2, 1));
        q.take(1, &mut [0; 2]).unwrap();
        assert!(q.fair(1, 1));
    }
}

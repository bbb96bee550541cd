/*!
`Text`: a string of the message model, borrowed from the parsed input or
owned when built.

It does what `Cow<str>` did, in two words instead of three, and dropping
a borrowed one is a test of one bit: a parsed message is made of borrowed
texts only, and a header holds up to a dozen of them, so both its size and
the cost of dropping it follow from this type. The top bit of the length
(never set in a real length: no allocation exceeds `isize::MAX` bytes)
says whether the bytes are an owned `Box<str>`.

Written here rather than taken from `beef` (whose `lean::Cow` has the same
two-word layout) because the model needs a borrowed text in a constant
(`Text::EMPTY`, `Text::borrowed` is a `const fn`), and `beef` builds one in
a `const` only on nightly Rust. The unsafe code is the pointer/length pair
of a `&str` or `Box<str>` and nothing else; the tests below pin it.
*/

use std::borrow::Borrow;
use std::fmt;
use std::hash::{Hash, Hasher};
use std::marker::PhantomData;
use std::ops::Deref;
use std::ptr::NonNull;

/// The bit of `len` that marks owned bytes.
const OWNED: usize = 1 << (usize::BITS - 1);

/// Text borrowed from the input (`'a`), or owned when built.
pub struct Text<'a> {
    ptr: NonNull<u8>,
    /// The length in bytes, with [`OWNED`] set when `ptr` came from a
    /// `Box<str>` this value owns.
    len: usize,
    _borrows: PhantomData<&'a str>,
}

// SAFETY: a Text is either a `&str` or a `Box<str>`, both Send and Sync.
unsafe impl Send for Text<'_> {}
// SAFETY: as above; shared access only ever reads the bytes.
unsafe impl Sync for Text<'_> {}

impl<'a> Text<'a> {
    /// The empty text.
    pub const EMPTY: Text<'static> = Text::borrowed("");

    /// Text that borrows `s`.
    #[inline(always)]
    pub const fn borrowed(s: &'a str) -> Text<'a> {
        Text {
            // SAFETY: a reference is never null.
            ptr: unsafe { NonNull::new_unchecked(s.as_ptr().cast_mut()) },
            len: s.len(),
            _borrows: PhantomData,
        }
    }

    /// Text that owns `s` (the empty string borrows: there is nothing to
    /// free).
    pub fn owned(s: impl Into<Box<str>>) -> Text<'static> {
        let b: Box<str> = s.into();
        if b.is_empty() {
            return Text::EMPTY;
        }
        let len = b.len();
        let ptr = Box::into_raw(b).cast::<u8>();
        Text {
            // SAFETY: `Box::into_raw` never returns null.
            ptr: unsafe { NonNull::new_unchecked(ptr) },
            len: len | OWNED,
            _borrows: PhantomData,
        }
    }

    /// Whether the bytes are owned (built, or detached from the input).
    #[inline(always)]
    pub fn is_owned(&self) -> bool {
        self.len & OWNED != 0
    }

    #[inline(always)]
    pub fn as_str(&self) -> &str {
        // SAFETY: `ptr` and the length came from a `&str` or a `Box<str>`
        // that lives at least as long as `self` (borrowed for 'a, or owned
        // by `self`).
        unsafe {
            std::str::from_utf8_unchecked(std::slice::from_raw_parts(
                self.ptr.as_ptr(),
                self.len & !OWNED,
            ))
        }
    }

    /// The same text, owned (a copy when borrowed; no copy when owned).
    pub fn into_owned(self) -> Text<'static> {
        if self.is_owned() {
            let this = std::mem::ManuallyDrop::new(self);
            Text {
                ptr: this.ptr,
                len: this.len,
                _borrows: PhantomData,
            }
        } else {
            Text::owned(self.as_str())
        }
    }

    pub fn into_string(self) -> String {
        self.as_str().to_owned()
    }
}

impl Drop for Text<'_> {
    #[inline(always)]
    fn drop(&mut self) {
        if self.is_owned() {
            let len = self.len & !OWNED;
            let raw = std::ptr::slice_from_raw_parts_mut(self.ptr.as_ptr(), len) as *mut str;
            // SAFETY: an owned Text's pointer and length are those of the
            // `Box<str>` it was made from (`Text::owned`), freed only here.
            drop(unsafe { Box::from_raw(raw) });
        }
    }
}

impl Clone for Text<'_> {
    #[inline]
    fn clone(&self) -> Self {
        if self.is_owned() {
            Text::owned(self.as_str())
        } else {
            Text {
                ptr: self.ptr,
                len: self.len,
                _borrows: PhantomData,
            }
        }
    }
}

impl Deref for Text<'_> {
    type Target = str;
    #[inline(always)]
    fn deref(&self) -> &str {
        self.as_str()
    }
}

impl AsRef<str> for Text<'_> {
    fn as_ref(&self) -> &str {
        self.as_str()
    }
}

impl Borrow<str> for Text<'_> {
    fn borrow(&self) -> &str {
        self.as_str()
    }
}

impl Default for Text<'_> {
    fn default() -> Self {
        Text::borrowed("")
    }
}

impl<'a> From<&'a str> for Text<'a> {
    fn from(s: &'a str) -> Self {
        Text::borrowed(s)
    }
}

impl From<String> for Text<'_> {
    fn from(s: String) -> Self {
        Text::owned(s)
    }
}

impl From<Box<str>> for Text<'_> {
    fn from(s: Box<str>) -> Self {
        Text::owned(s)
    }
}

impl<'a> From<std::borrow::Cow<'a, str>> for Text<'a> {
    fn from(s: std::borrow::Cow<'a, str>) -> Self {
        match s {
            std::borrow::Cow::Borrowed(b) => Text::borrowed(b),
            std::borrow::Cow::Owned(o) => Text::owned(o),
        }
    }
}

impl From<Text<'_>> for String {
    fn from(t: Text<'_>) -> String {
        t.into_string()
    }
}

impl PartialEq for Text<'_> {
    fn eq(&self, other: &Self) -> bool {
        self.as_str() == other.as_str()
    }
}

impl Eq for Text<'_> {}

impl PartialEq<str> for Text<'_> {
    fn eq(&self, other: &str) -> bool {
        self.as_str() == other
    }
}

impl PartialEq<&str> for Text<'_> {
    fn eq(&self, other: &&str) -> bool {
        self.as_str() == *other
    }
}

impl PartialEq<String> for Text<'_> {
    fn eq(&self, other: &String) -> bool {
        self.as_str() == other
    }
}

impl PartialEq<Text<'_>> for str {
    fn eq(&self, other: &Text<'_>) -> bool {
        self == other.as_str()
    }
}

impl PartialEq<Text<'_>> for &str {
    fn eq(&self, other: &Text<'_>) -> bool {
        *self == other.as_str()
    }
}

impl PartialOrd for Text<'_> {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for Text<'_> {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        self.as_str().cmp(other.as_str())
    }
}

impl Hash for Text<'_> {
    fn hash<H: Hasher>(&self, state: &mut H) {
        self.as_str().hash(state)
    }
}

impl fmt::Debug for Text<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(self.as_str(), f)
    }
}

impl fmt::Display for Text<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn two_words_and_a_niche() {
        assert_eq!(size_of::<Text<'_>>(), 2 * size_of::<usize>());
        assert_eq!(size_of::<Option<Text<'_>>>(), 2 * size_of::<usize>());
    }

    #[test]
    fn borrowed_and_owned_read_alike() {
        let input = String::from("z9hG4bK-1");
        let b = Text::borrowed(&input);
        let o = Text::owned(input.clone());
        assert!(!b.is_owned());
        assert!(o.is_owned());
        assert_eq!(b, o);
        assert_eq!(&*b, "z9hG4bK-1");
        assert_eq!(o.len(), 9);
        assert_eq!(b.as_ptr(), input.as_ptr());
        assert_ne!(o.as_ptr(), input.as_ptr());
        assert_eq!(format!("{o}/{b:?}"), "z9hG4bK-1/\"z9hG4bK-1\"");
    }

    #[test]
    fn clones_and_detaches() {
        let input = String::from("tag-7");
        let b = Text::borrowed(&input);
        let c = b.clone();
        assert_eq!(c.as_ptr(), input.as_ptr());
        drop(c);
        let o = b.into_owned();
        drop(input);
        assert!(o.is_owned());
        let p = o.as_ptr();
        let o2 = o.clone();
        assert_ne!(o2.as_ptr(), p);
        let moved = o.into_owned();
        assert_eq!(moved.as_ptr(), p);
        assert_eq!(moved, o2);
        assert_eq!(moved.into_string(), "tag-7");
    }

    #[test]
    fn empty_owned_text_borrows() {
        let e = Text::owned(String::new());
        assert!(!e.is_owned());
        assert_eq!(e, "");
        assert_eq!(Text::default(), Text::EMPTY);
    }

    #[test]
    fn compares_and_hashes_as_str() {
        use std::collections::HashSet;
        let set: HashSet<Text<'_>> = [Text::from("a"), Text::owned("a"), Text::from("b")]
            .into_iter()
            .collect();
        assert_eq!(set.len(), 2);
        assert!(set.contains("a"));
        let (a, b, x) = (Text::from("a"), Text::owned("b"), Text::from("x"));
        assert!(a < b);
        assert!("x" == x);
    }
}

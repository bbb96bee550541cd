/*!
Resource-IDs (ID-4) and replica IDs (ID-5).

The canonical resource URI is `scheme ":" user "@" host [":" port]`:
scheme and host lower-cased (an IPv6 host in RFC 5952 form, in brackets),
the port only when the URI has one, the user part %-unescaped to its bytes,
and every parameter and header removed. A replica appends
`;replica=N` to that text before hashing.
*/

use std::borrow::Cow;

use crate::id::{Id, ResourceId};
use crate::message::{Host, Scheme, Uri};

/// The canonical bytes of a resource URI (ID-4). Bytes, not text: an
/// unescaped user part may be any octets.
pub fn canonical(uri: &Uri<'_>) -> Vec<u8> {
    let mut out = Vec::with_capacity(64);
    match &uri.scheme {
        Scheme::Sip => out.extend_from_slice(b"sip:"),
        Scheme::Sips => out.extend_from_slice(b"sips:"),
        Scheme::Other(s) => {
            out.extend_from_slice(s.to_ascii_lowercase().as_bytes());
            out.push(b':');
            // An opaque URI has no host to lower-case; drop its parameters.
            let opaque = uri.opaque.as_deref().unwrap_or("");
            let body = opaque.split([';', '?']).next().unwrap_or("");
            out.extend_from_slice(&unescape(body));
            return out;
        }
    }
    if let Some(user) = &uri.user {
        out.extend_from_slice(&unescape(user));
        out.push(b'@');
    }
    match &uri.host {
        Host::Domain(d) => out.extend_from_slice(d.to_ascii_lowercase().as_bytes()),
        h => out.extend_from_slice(h.to_string().as_bytes()),
    }
    if let Some(p) = uri.port {
        out.extend_from_slice(format!(":{p}").as_bytes());
    }
    out
}

/// The canonical form as text (lossy only for user parts that unescape to
/// invalid UTF-8), for display and vectors.
pub fn canonical_text(uri: &Uri<'_>) -> String {
    String::from_utf8_lossy(&canonical(uri)).into_owned()
}

/// `%HH` to the byte it stands for; a `%` not followed by two hex digits
/// stays as it is.
pub fn unescape(s: &str) -> Cow<'_, [u8]> {
    let b = s.as_bytes();
    if !b.contains(&b'%') {
        return Cow::Borrowed(b);
    }
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%' {
            let hex = |c: u8| (c as char).to_digit(16);
            if let (Some(h), Some(l)) = (
                b.get(i + 1).and_then(|c| hex(*c)),
                b.get(i + 2).and_then(|c| hex(*c)),
            ) {
                out.push((h * 16 + l) as u8);
                i += 3;
                continue;
            }
        }
        out.push(b[i]);
        i += 1;
    }
    Cow::Owned(out)
}

/// ID-4: the primary Resource-ID of a resource URI.
pub fn resource_id(uri: &Uri<'_>) -> ResourceId {
    Id::hash(&canonical(uri))
}

/// ID-5: the Resource-ID of replica `n` (1..R).
pub fn replica_id(uri: &Uri<'_>, n: u32) -> ResourceId {
    let mut c = canonical(uri);
    c.extend_from_slice(format!(";replica={n}").as_bytes());
    Id::hash(&c)
}

/// The Resource-ID a receiver computes for a registration's To (RES-3):
/// the replica's when To carries `replica=N`, the primary's otherwise.
pub fn key_of(uri: &Uri<'_>) -> ResourceId {
    match uri.params.replica {
        Some(n) => replica_id(uri, n),
        None => resource_id(uri),
    }
}

/// The primary and the `replicas` replica IDs of a resource, in order.
pub fn all_ids(uri: &Uri<'_>, replicas: u32) -> Vec<ResourceId> {
    std::iter::once(resource_id(uri))
        .chain((1..=replicas).map(|n| replica_id(uri, n)))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::grammar::Cx;
    use crate::grammar::uri::{Place, uri};
    use crate::profile::Profile;

    fn u(s: &str) -> Uri<'_> {
        let mut cx = Cx::new(s.as_bytes(), Profile::DsipChord);
        uri(&mut cx, s.as_bytes(), Place::Angle).unwrap().1
    }

    #[test]
    fn id_4_profile_example() {
        let x = u("SIP:al%69ce@EXAMPLE.org:5070;transport=tcp");
        assert_eq!(canonical_text(&x), "sip:alice@example.org:5070");
        assert_eq!(resource_id(&x), Id::hash(b"sip:alice@example.org:5070"));
    }

    #[test]
    fn id_4_user_case_is_kept_and_params_dropped() {
        let x = u("sip:Alice@Example.ORG;user=phone?subject=hi");
        assert_eq!(canonical_text(&x), "sip:Alice@example.org");
    }

    #[test]
    fn id_4_ipv6_keeps_brackets() {
        let x = u("sip:bob@[2001:DB8::1]:5060");
        assert_eq!(canonical_text(&x), "sip:bob@[2001:db8::1]:5060");
    }

    #[test]
    fn id_5_replicas() {
        let x = u("sip:alice@example.org;replica=2");
        assert_eq!(
            replica_id(&x, 1),
            Id::hash(b"sip:alice@example.org;replica=1")
        );
        assert_eq!(key_of(&x), Id::hash(b"sip:alice@example.org;replica=2"));
        assert_eq!(all_ids(&x, 2).len(), 3);
    }

    #[test]
    fn unescape_keeps_broken_escapes() {
        assert_eq!(&*unescape("a%41%4"), b"aA%4");
        assert_eq!(&*unescape("%zz%"), b"%zz%");
        assert_eq!(&*unescape("%e2%82%ac"), "€".as_bytes());
    }
}

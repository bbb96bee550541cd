//! Small text helpers shared by the renderers.

use std::cmp::Ordering;

/// The first line of a text (all of it when it has no newline).
pub fn first_line(s: &str) -> &str {
    s.lines().next().unwrap_or("")
}

/// At most `max_lines` lines and `max_chars` characters of `s`; the flag
/// says whether anything was cut.
pub fn truncate(s: &str, max_lines: usize, max_chars: usize) -> (String, bool) {
    let mut out = String::new();
    let mut cut = false;
    for (i, line) in s.lines().enumerate() {
        if i >= max_lines {
            cut = true;
            break;
        }
        if i > 0 {
            out.push('\n');
        }
        out.push_str(line);
    }
    if out.chars().count() > max_chars {
        out = out.chars().take(max_chars).collect();
        cut = true;
    }
    (out, cut)
}

/// Milliseconds as a short human duration: `850 ms`, `12.3 s`, `3 min 04 s`.
pub fn duration(ms: u64) -> String {
    if ms < 1000 {
        format!("{ms} ms")
    } else if ms < 60_000 {
        format!("{}.{} s", ms / 1000, (ms % 1000) / 100)
    } else {
        let s = ms / 1000;
        format!("{} min {:02} s", s / 60, s % 60)
    }
}

/// A ladder time: `12.345`, or `?` when the clock reading was not finite.
pub fn time_ms(t: f64) -> String {
    if t.is_finite() {
        format!("{t:.3}")
    } else {
        "?".into()
    }
}

/// Compares ids so that `JOIN-9` sorts before `JOIN-10`.
pub fn natural_cmp(a: &str, b: &str) -> Ordering {
    let (mut a, mut b) = (a, b);
    loop {
        match (a.is_empty(), b.is_empty()) {
            (true, true) => return Ordering::Equal,
            (true, false) => return Ordering::Less,
            (false, true) => return Ordering::Greater,
            _ => {}
        }
        let da = a.len() - a.trim_start_matches(|c: char| c.is_ascii_digit()).len();
        let db = b.len() - b.trim_start_matches(|c: char| c.is_ascii_digit()).len();
        let ord = if da > 0 && db > 0 {
            let (na, nb) = (
                a[..da].trim_start_matches('0'),
                b[..db].trim_start_matches('0'),
            );
            na.len().cmp(&nb.len()).then_with(|| na.cmp(nb))
        } else {
            let ca = a.chars().next();
            let cb = b.chars().next();
            ca.cmp(&cb)
        };
        if ord != Ordering::Equal {
            return ord;
        }
        let step = |s: &str, digits: usize| -> usize {
            if digits > 0 {
                digits
            } else {
                s.chars().next().map_or(0, char::len_utf8)
            }
        };
        a = &a[step(a, da)..];
        b = &b[step(b, db)..];
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn natural_order() {
        let mut v = vec!["JOIN-10", "JOIN-9", "FING-1", "JOIN-09x", "JOIN-1"];
        v.sort_by(|a, b| natural_cmp(a, b));
        assert_eq!(v, ["FING-1", "JOIN-1", "JOIN-9", "JOIN-09x", "JOIN-10"]);
        assert_eq!(natural_cmp("é1", "é01"), Ordering::Equal);
    }

    #[test]
    fn truncation_and_durations() {
        assert_eq!(truncate("a\nb\nc", 2, 100), ("a\nb".into(), true));
        assert_eq!(truncate("abc", 5, 2), ("ab".into(), true));
        assert_eq!(truncate("abc", 5, 5), ("abc".into(), false));
        assert_eq!(duration(850), "850 ms");
        assert_eq!(duration(12_345), "12.3 s");
        assert_eq!(duration(184_000), "3 min 04 s");
        assert_eq!(time_ms(f64::INFINITY), "?");
        assert_eq!(first_line("x\ny"), "x");
        assert_eq!(first_line(""), "");
    }
}

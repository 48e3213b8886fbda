//! Shortening outside text before it is echoed back (in an error message, a
//! dead letter): one rule everywhere, counted in characters so a cut never
//! splits one, and marked so a reader sees that something was cut.

use std::borrow::Cow;

/// The first `max_chars` characters of `s`, followed by `…` if anything was
/// cut; `s` itself (not copied) when it is short enough.
pub fn clip(s: &str, max_chars: usize) -> Cow<'_, str> {
    match s.char_indices().nth(max_chars) {
        None => Cow::Borrowed(s),
        Some((end, _)) => {
            let mut out = String::with_capacity(end + '…'.len_utf8());
            out.push_str(&s[..end]);
            out.push('…');
            Cow::Owned(out)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn short_text_is_borrowed_unchanged() {
        assert!(matches!(clip("", 0), Cow::Borrowed("")));
        assert!(matches!(clip("abc", 3), Cow::Borrowed("abc")));
        assert!(matches!(clip("电表", 2), Cow::Borrowed("电表")));
    }

    #[test]
    fn long_text_is_cut_at_a_character_and_marked() {
        assert_eq!(clip("abcdef", 3), "abc…");
        assert_eq!(clip("abcdef", 0), "…");
        // Three bytes per character: the cut falls between characters, not
        // inside one, and counts characters, not bytes.
        assert_eq!(clip("稽查监控系统", 2), "稽查…");
        assert_eq!(clip("a稽\u{1F600}b", 3), "a稽\u{1F600}…");
        // A combining mark is a character of its own.
        assert_eq!(clip("e\u{301}x", 1), "e…");
    }

    #[test]
    fn every_cut_of_mixed_text_is_a_prefix_with_a_mark() {
        let s = "M1 稽查 \u{1F600} ascii é";
        let n = s.chars().count();
        for max in 0..=n + 1 {
            let c = clip(s, max);
            if max >= n {
                assert_eq!(c, s);
            } else {
                let kept = c.strip_suffix('…').expect("marked");
                assert!(s.starts_with(kept));
                assert_eq!(kept.chars().count(), max);
            }
        }
    }
}

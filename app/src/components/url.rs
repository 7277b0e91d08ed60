//! Links that carry a page's filter: the filter lives in the URL, so it works without
//! JavaScript and can be bookmarked.

use leptos::prelude::*;
use leptos_router::params::ParamsMap;

use crate::i18n::{t, use_lang};

/// Percent-encodes a query value.
pub fn encode(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// `path` with the non-empty `keys` of `q` and another page number.
pub fn page_href(path: &str, q: &ParamsMap, keys: &[&str], page: u32) -> String {
    let mut pairs: Vec<String> = keys
        .iter()
        .filter_map(|k| {
            q.get(k)
                .filter(|v| !v.is_empty())
                .map(|v| format!("{k}={}", encode(&v)))
        })
        .collect();
    pairs.push(format!("page={page}"));
    format!("{path}?{}", pairs.join("&"))
}

/// Previous and next links of a paged list; the other query values are kept.
#[component]
pub fn Pager(
    /// The page's path.
    path: String,
    /// The current query.
    query: ParamsMap,
    /// The query keys that make up the filter.
    keys: &'static [&'static str],
    /// The current page, from 1.
    page: u32,
    /// Rows in all.
    total: u64,
    /// Rows per page.
    per_page: u32,
) -> impl IntoView {
    let lang = use_lang();
    let pages = (total.div_ceil(u64::from(per_page.max(1))) as u32).max(1);
    let prev = (page > 1).then(|| page_href(&path, &query, keys, page - 1));
    let next = (page < pages).then(|| page_href(&path, &query, keys, page + 1));
    view! {
        <nav class="pager">
            {prev.map(|h| view! { <a href=h rel="prev">{t(lang, "pager.prev")}</a> })}
            <span>{format!("{page} / {pages}")}</span>
            {next.map(|h| view! { <a href=h rel="next">{t(lang, "pager.next")}</a> })}
        </nav>
    }
}

/// A query value, trimmed, if not empty.
pub fn param(q: &ParamsMap, key: &str) -> Option<String> {
    q.get(key)
        .map(|v| v.trim().to_owned())
        .filter(|v| !v.is_empty())
}

#[cfg(test)]
mod tests {
    use super::encode;

    #[test]
    fn encodes_reserved_bytes() {
        assert_eq!(encode("a b&c=d/é"), "a%20b%26c%3Dd%2F%C3%A9");
        assert_eq!(encode("job-1_x.y~"), "job-1_x.y~");
    }
}

//! The checks before any training, as stages with TOML configs like the
//! other experiments (`experiments/checks/*.toml`): the gradient check
//! ([`gradcheck`]) and the sanity check ([`sanity`]).

pub mod gradcheck;
pub mod sanity;

/// Test helper for the checks' configs: each `(from, to, key)` edit of the
/// shipped `text` (`from` must be in it) and an unknown key appended are
/// refused by [`crate::config::parse`] with a message naming the key.
#[cfg(test)]
fn assert_refused_naming_the_key<T>(
    text: &str,
    path: &std::path::Path,
    edits: &[(&str, &str, &str)],
    unknown: &str,
) where
    T: serde::de::DeserializeOwned + crate::config::Validate + std::fmt::Debug,
{
    for &(from, to, key) in edits {
        assert!(text.contains(from), "{from}");
        let err = crate::config::parse::<T>(&text.replace(from, to), path)
            .unwrap_err()
            .to_string();
        assert!(err.contains(key), "{err}");
    }
    let err = crate::config::parse::<T>(&format!("{text}\n{unknown} = 3\n"), path)
        .unwrap_err()
        .to_string();
    assert!(err.contains(unknown), "{err}");
}

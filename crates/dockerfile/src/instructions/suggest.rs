//! "did you mean" suggestions by edit distance below 3, as BuildKit's `util/suggest`.

/// The closest option to `value` with a Levenshtein distance below 3, cased like `value`
/// when the search is case-insensitive; `None` on an exact match or nothing close.
pub(crate) fn search(value: &str, options: &[&str], case_sensitive: bool) -> Option<String> {
    let val = if case_sensitive {
        value.to_string()
    } else {
        value.to_lowercase()
    };
    let mut best: Option<String> = None;
    let mut min = 3;
    for option in options {
        let opt = if case_sensitive {
            option.to_string()
        } else {
            option.to_lowercase()
        };
        if val == opt {
            return None;
        }
        let dist = levenshtein(&val, &opt);
        if dist < min {
            min = dist;
            best = Some(if case_sensitive {
                opt
            } else {
                match_case(&opt, value)
            });
        }
    }
    best
}

fn match_case(option: &str, original: &str) -> String {
    if original == original.to_lowercase() {
        option.to_lowercase()
    } else if original == original.to_uppercase() {
        option.to_uppercase()
    } else {
        option.to_string()
    }
}

/// ` (did you mean x?)` or nothing.
pub(crate) fn did_you_mean(suggestion: &Option<String>) -> String {
    suggestion
        .as_ref()
        .map(|s| format!(" (did you mean {s}?)"))
        .unwrap_or_default()
}

fn levenshtein(a: &str, b: &str) -> usize {
    let a: Vec<char> = a.chars().collect();
    let b: Vec<char> = b.chars().collect();
    let mut prev: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.iter().enumerate() {
        let mut cur = vec![i + 1; b.len() + 1];
        for (j, cb) in b.iter().enumerate() {
            let cost = usize::from(ca != cb);
            cur[j + 1] = (prev[j] + cost).min(prev[j + 1] + 1).min(cur[j] + 1);
        }
        prev = cur;
    }
    prev[b.len()]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn suggestions_follow_case_of_the_input() {
        assert_eq!(
            search("RUNN", &["run", "from"], false).as_deref(),
            Some("RUN")
        );
        assert_eq!(
            search("fron", &["run", "from"], false).as_deref(),
            Some("from")
        );
        assert_eq!(search("xyzzy", &["run", "from"], false), None);
        assert_eq!(search("run", &["run"], false), None);
    }
}

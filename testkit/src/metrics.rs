//! Prometheus text format, read the way the tests and the benchmark need it.

use std::collections::BTreeMap;

/// One sample line: metric name, labels, value (comments and junk: None).
fn sample(line: &str) -> Option<(&str, BTreeMap<String, String>, f64)> {
    if line.starts_with('#') || line.trim().is_empty() {
        return None;
    }
    let (series, value) = line.rsplit_once(' ')?;
    let (name, labels) = match series.split_once('{') {
        Some((n, rest)) => (n, rest.trim_end_matches('}')),
        None => (series, ""),
    };
    let mut map = BTreeMap::new();
    for kv in labels.split(',').filter(|s| !s.is_empty()) {
        if let Some((k, v)) = kv.split_once('=') {
            map.insert(k.trim().to_string(), v.trim().trim_matches('"').to_string());
        }
    }
    Some((name.trim(), map, value.trim().parse::<f64>().unwrap_or(0.0)))
}

/// Sum of the samples of `name` whose labels include all of `want`.
pub fn metric_sum(text: &str, name: &str, want: &[(&str, &str)]) -> f64 {
    text.lines()
        .filter_map(sample)
        .filter(|(n, labels, _)| {
            *n == name
                && want
                    .iter()
                    .all(|(k, v)| labels.get(*k).map(String::as_str) == Some(*v))
        })
        .map(|(_, _, v)| v)
        .sum()
}

/// The samples of `name` by the value of their `label`, in text order
/// (e.g. `jicha_state_bytes` by `stream`).
pub fn metric_by_label(text: &str, name: &str, label: &str) -> Vec<(String, f64)> {
    text.lines()
        .filter_map(sample)
        .filter(|(n, _, _)| *n == name)
        .filter_map(|(_, mut labels, v)| Some((labels.remove(label)?, v)))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    const TEXT: &str = "# HELP x\n\
        jicha_records_ingested_total{stream=\"load\"} 5\n\
        jicha_records_ingested_total{stream=\"event\"} 2\n\
        jicha_records_ingested_total_other 100\n\
        jicha_theme_eval_seconds_sum{theme=\"a\"} 0.5\n";

    #[test]
    fn sums_by_labels_and_splits_by_label() {
        assert_eq!(metric_sum(TEXT, "jicha_records_ingested_total", &[]), 7.0);
        assert_eq!(
            metric_sum(TEXT, "jicha_records_ingested_total", &[("stream", "load")]),
            5.0
        );
        assert_eq!(
            metric_by_label(TEXT, "jicha_records_ingested_total", "stream"),
            vec![("load".to_string(), 5.0), ("event".to_string(), 2.0)]
        );
        assert_eq!(
            metric_by_label(TEXT, "jicha_theme_eval_seconds_sum", "theme"),
            vec![("a".to_string(), 0.5)]
        );
    }
}

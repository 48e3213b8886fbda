//! Topic → stream: the configuration of a topic-based source (MQTT, and the
//! replay of recorded MQTT traffic). The runner never looks at topics; a
//! source hands it each message's stream.

use crate::records::Stream;

/// MQTT topic filters and the stream each one feeds, first match wins.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TopicRoutes {
    routes: Vec<(String, Stream)>,
}

impl Default for TopicRoutes {
    /// The topics fixed by the interface: `meter/load/#`, `meter/freeze/#`,
    /// `meter/event/#`.
    fn default() -> Self {
        TopicRoutes {
            routes: Stream::ALL
                .into_iter()
                .map(|s| (s.topic_filter().to_string(), s))
                .collect(),
        }
    }
}

impl TopicRoutes {
    /// Routes from (filter, stream) pairs; a filter uses MQTT wildcards
    /// (`+` one level, `#` the rest, last level only).
    pub fn new(routes: impl IntoIterator<Item = (String, Stream)>) -> Result<TopicRoutes, String> {
        let routes: Vec<_> = routes.into_iter().collect();
        for (f, _) in &routes {
            let levels: Vec<&str> = f.split('/').collect();
            let bad_hash = levels
                .iter()
                .enumerate()
                .any(|(i, l)| l.contains('#') && (*l != "#" || i + 1 != levels.len()));
            let bad_plus = levels.iter().any(|l| l.contains('+') && *l != "+");
            if f.is_empty() || bad_hash || bad_plus {
                return Err(format!(
                    "topic filter {f:?} is not a valid MQTT filter; use levels separated by '/', '+' for one level and '#' last"
                ));
            }
        }
        Ok(TopicRoutes { routes })
    }

    /// The filters to subscribe to.
    pub fn filters(&self) -> impl Iterator<Item = &str> {
        self.routes.iter().map(|(f, _)| f.as_str())
    }

    /// The stream `topic` feeds; None when no filter matches it.
    pub fn stream_of(&self, topic: &str) -> Option<Stream> {
        self.routes
            .iter()
            .find(|(f, _)| matches(f, topic))
            .map(|(_, s)| *s)
    }
}

/// MQTT filter matching. `a/#` also matches `a` itself, as the broker does.
fn matches(filter: &str, topic: &str) -> bool {
    let mut t = topic.split('/');
    for f in filter.split('/') {
        match (f, t.next()) {
            ("#", _) => return true,
            ("+", Some(_)) => {}
            (f, Some(l)) if f == l => {}
            _ => return false,
        }
    }
    t.next().is_none()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_routes_agree_with_the_topics_of_the_interface() {
        let r = TopicRoutes::default();
        for (topic, want) in [
            ("meter/load/T0001", Some(Stream::Load)),
            ("meter/freeze/T0001", Some(Stream::Freeze)),
            ("meter/event/a/b", Some(Stream::Event)),
            ("meter/load", Some(Stream::Load)),
            ("meter/loads/T1", None),
            ("meter", None),
            ("other/load/T1", None),
            ("", None),
        ] {
            assert_eq!(r.stream_of(topic), want, "{topic}");
        }
        assert_eq!(
            r.filters().collect::<Vec<_>>(),
            ["meter/load/#", "meter/freeze/#", "meter/event/#"]
        );
    }

    #[test]
    fn custom_routes_with_wildcards() {
        let r = TopicRoutes::new([
            ("site/+/load".to_string(), Stream::Load),
            ("site/+/freeze/#".to_string(), Stream::Freeze),
        ])
        .unwrap();
        assert_eq!(r.stream_of("site/A/load"), Some(Stream::Load));
        assert_eq!(r.stream_of("site/A/load/x"), None);
        assert_eq!(r.stream_of("site/A/freeze/d/1"), Some(Stream::Freeze));
        assert_eq!(r.stream_of("meter/load/T1"), None);
        assert!(TopicRoutes::new([("a/#/b".to_string(), Stream::Load)]).is_err());
        assert!(TopicRoutes::new([("a/x+".to_string(), Stream::Load)]).is_err());
    }
}

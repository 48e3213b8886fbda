//! Event-time windows as themes write them (`tumble`, `hop`, `cumulate`),
//! reckoned on the business wall clock so days and months start at local
//! midnight. All times here are [`LocalMs`].

use crate::time::{date_to_local_ms, local_ms_to_date, LocalMs, DAY_MS, HOUR_MS, MINUTE_MS};
use chrono::Datelike;

/// A length of time as SQL writes it: fixed milliseconds or calendar months.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Span {
    Fixed(i64),
    Months(u32),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WindowSpec {
    /// `tumble(size)`: back-to-back windows.
    Tumble(Span),
    /// `hop(slide, size)`: windows of `size` starting every `slide`.
    Hop { slide: i64, size: i64 },
    /// `cumulate(step, max)`: windows growing by `step` from the start of
    /// each `max` period (month-to-date when `max` is one month).
    Cumulate { step: i64, max: Span },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Window {
    pub start: LocalMs,
    pub end: LocalMs,
}

/// Parses `'15 minutes'`, `'1 day'`, `'1 month'`, `'30 min'`.
pub fn parse_span(text: &str) -> Result<Span, String> {
    let t = text.trim().to_ascii_lowercase();
    let (num, unit) = t
        .split_once(char::is_whitespace)
        .map(|(a, b)| (a.trim().to_string(), b.trim().to_string()))
        .unwrap_or_else(|| {
            let i = t.find(|c: char| !c.is_ascii_digit()).unwrap_or(t.len());
            (t[..i].to_string(), t[i..].trim().to_string())
        });
    let n: i64 = num
        .parse()
        .map_err(|_| format!("interval '{text}': expected '<number> <unit>', e.g. '15 minutes'"))?;
    if n <= 0 {
        return Err(format!("interval '{text}' must be positive"));
    }
    let unit = unit.trim_end_matches('s');
    let ms = match unit {
        "second" | "sec" => 1000,
        "minute" | "min" => MINUTE_MS,
        "hour" => HOUR_MS,
        "day" => DAY_MS,
        "week" => 7 * DAY_MS,
        "month" => {
            return u32::try_from(n)
                .map(Span::Months)
                .map_err(|_| format!("interval '{text}' is too large"))
        }
        _ => {
            return Err(format!(
            "interval '{text}': unknown unit; use seconds, minutes, hours, days, weeks or months"
        ))
        }
    };
    Ok(Span::Fixed(n * ms))
}

fn add_months(l: LocalMs, months: u32) -> LocalMs {
    let d = local_ms_to_date(l);
    let total = d.year() * 12 + d.month0() as i32 + months as i32;
    chrono::NaiveDate::from_ymd_opt(total.div_euclid(12), total.rem_euclid(12) as u32 + 1, 1)
        .map(date_to_local_ms)
        .unwrap_or(l)
}

fn month_floor(l: LocalMs, months: u32) -> LocalMs {
    let d = local_ms_to_date(l);
    let idx = d.year() * 12 + d.month0() as i32;
    let idx = idx - idx.rem_euclid(months.max(1) as i32);
    chrono::NaiveDate::from_ymd_opt(idx.div_euclid(12), idx.rem_euclid(12) as u32 + 1, 1)
        .map(date_to_local_ms)
        .unwrap_or(l)
}

fn period_of(l: LocalMs, span: Span) -> Window {
    match span {
        Span::Fixed(size) => {
            let start = l.div_euclid(size) * size;
            Window {
                start,
                end: start + size,
            }
        }
        Span::Months(m) => {
            let start = month_floor(l, m);
            Window {
                start,
                end: add_months(start, m),
            }
        }
    }
}

impl WindowSpec {
    pub fn validate(&self) -> Result<(), String> {
        match *self {
            WindowSpec::Hop { slide, size } if size % slide != 0 => {
                Err("hop(slide, size): size must be a multiple of slide".into())
            }
            WindowSpec::Cumulate {
                step,
                max: Span::Fixed(max),
            } if max % step != 0 => {
                Err("cumulate(step, max): max must be a multiple of step".into())
            }
            WindowSpec::Cumulate {
                step,
                max: Span::Months(_),
            } if DAY_MS % step != 0 => {
                Err("cumulate(step, interval '1 month'): step must divide a day".into())
            }
            _ => Ok(()),
        }
    }

    /// How often a window of this spec closes, at the shortest (a month
    /// counts 28 days): an evaluation slower than this falls behind.
    pub fn slide_ms(&self) -> i64 {
        match *self {
            WindowSpec::Tumble(Span::Fixed(s)) => s,
            WindowSpec::Tumble(Span::Months(m)) => i64::from(m) * 28 * DAY_MS,
            WindowSpec::Hop { slide, .. } => slide,
            WindowSpec::Cumulate { step, .. } => step,
        }
    }

    /// The longest a window can be: how much history a theme needs kept.
    pub fn max_len(&self) -> i64 {
        match *self {
            WindowSpec::Tumble(Span::Fixed(s)) => s,
            WindowSpec::Tumble(Span::Months(m))
            | WindowSpec::Cumulate {
                max: Span::Months(m),
                ..
            } => i64::from(m) * 31 * DAY_MS,
            WindowSpec::Hop { size, .. } => size,
            WindowSpec::Cumulate {
                max: Span::Fixed(m),
                ..
            } => m,
        }
    }

    /// Every window that contains local time `t`, in order of end.
    pub fn windows_of(&self, t: LocalMs) -> Vec<Window> {
        match *self {
            WindowSpec::Tumble(span) => vec![period_of(t, span)],
            WindowSpec::Hop { slide, size } => {
                let last_start = t.div_euclid(slide) * slide;
                let mut out = Vec::with_capacity((size / slide) as usize);
                let mut start = last_start - size + slide;
                while start <= last_start {
                    out.push(Window {
                        start,
                        end: start + size,
                    });
                    start += slide;
                }
                out
            }
            WindowSpec::Cumulate { step, max } => {
                let period = period_of(t, max);
                let mut out = Vec::new();
                let mut end = period.start + (t - period.start).div_euclid(step) * step + step;
                while end <= period.end {
                    out.push(Window {
                        start: period.start,
                        end,
                    });
                    end += step;
                }
                out
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::time::parse_timestamp;

    fn local(s: &str) -> LocalMs {
        // +08:00 wall clock as naive ms
        parse_timestamp(s).unwrap() + 8 * HOUR_MS
    }

    #[test]
    fn hop_30_by_15() {
        let w = WindowSpec::Hop {
            slide: 15 * MINUTE_MS,
            size: 30 * MINUTE_MS,
        };
        let t = local("2026-11-03T14:15:00+08:00");
        let ws = w.windows_of(t);
        assert_eq!(ws.len(), 2);
        assert_eq!(ws[0].start, local("2026-11-03T14:00:00+08:00"));
        assert_eq!(ws[1].start, t);
        assert_eq!(ws[1].end, local("2026-11-03T14:45:00+08:00"));
    }

    #[test]
    fn day_windows_start_at_local_midnight() {
        let w = WindowSpec::Tumble(parse_span("1 day").unwrap());
        let ws = w.windows_of(local("2026-11-03T07:30:00+08:00"));
        assert_eq!(
            ws,
            vec![Window {
                start: local("2026-11-03T00:00:00+08:00"),
                end: local("2026-11-04T00:00:00+08:00")
            }]
        );
    }

    #[test]
    fn month_to_date() {
        let w = WindowSpec::Cumulate {
            step: DAY_MS,
            max: Span::Months(1),
        };
        let ws = w.windows_of(local("2026-10-30T00:00:00+08:00"));
        assert_eq!(ws.len(), 2);
        assert!(ws
            .iter()
            .all(|x| x.start == local("2026-10-01T00:00:00+08:00")));
        assert_eq!(ws[0].end, local("2026-10-31T00:00:00+08:00"));
        assert_eq!(ws[1].end, local("2026-11-01T00:00:00+08:00"));
        let m = WindowSpec::Tumble(Span::Months(1)).windows_of(local("2026-12-31T23:00:00+08:00"));
        assert_eq!(m[0].end, local("2027-01-01T00:00:00+08:00"));
    }

    #[test]
    fn spans() {
        assert_eq!(
            parse_span("15 minutes").unwrap(),
            Span::Fixed(15 * MINUTE_MS)
        );
        assert_eq!(parse_span("1 MONTH").unwrap(), Span::Months(1));
        assert!(parse_span("soon").is_err());
        assert!(WindowSpec::Hop { slide: 7, size: 10 }.validate().is_err());
    }
}

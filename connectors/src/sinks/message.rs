//! The text people read in a chat group or an alert: one event in Chinese,
//! with the theme, severity, customer, unit, window and work order, in the
//! business time zone.

use chrono::TimeZone;
use chrono_tz::Tz;
use jicha_pipeline::outbox::{EventKind, OutboxEvent};
use jicha_pipeline::time::EpochMs;
use jicha_pipeline::workorder::Escalation;

pub fn kind_zh(k: EventKind) -> &'static str {
    match k {
        EventKind::WorkorderOpened => "新增稽查工单",
        EventKind::HitAdded => "工单新增命中",
        EventKind::Escalated => "工单督办",
        EventKind::StateChanged => "工单状态变更",
    }
}

/// `2026-11-03 10:00` in `tz`.
pub fn local_time(tz: Tz, ms: EpochMs) -> String {
    match tz.timestamp_millis_opt(ms).single() {
        Some(t) => t.format("%Y-%m-%d %H:%M").to_string(),
        None => ms.to_string(),
    }
}

/// The window of a hit, if the event has one.
pub fn window_zh(tz: Tz, e: &OutboxEvent) -> Option<String> {
    match (e.window_start, e.window_end) {
        (Some(s), Some(end)) => Some(format!("{} 至 {}", local_time(tz, s), local_time(tz, end))),
        _ => None,
    }
}

/// The link to the work order, when Jicha's public address is known.
pub fn workorder_link(public_url: Option<&str>, e: &OutboxEvent) -> Option<String> {
    public_url.map(|u| {
        format!(
            "{}/api/v1/workorders/{}",
            u.trim_end_matches('/'),
            e.workorder_id
        )
    })
}

/// One line summary: `【高】over_capacity 新增稽查工单：客户 C1（41/4107/410727）`.
pub fn summary(e: &OutboxEvent) -> String {
    format!(
        "【{}】{} {}：客户 {}（{}）",
        e.severity.label_zh(),
        e.theme,
        kind_zh(e.kind),
        e.customer_id.as_str(),
        e.org_code
    )
}

/// The robots' Markdown: a title and the body lines.
pub fn markdown(tz: Tz, public_url: Option<&str>, e: &OutboxEvent) -> (String, String) {
    let title = format!("稽查告警：{}", kind_zh(e.kind));
    let mut lines = vec![
        format!("### {title}"),
        format!("> 主题：**{}**", e.theme),
        format!(
            "> 级别：**{}**（{}）",
            e.severity.label_zh(),
            e.severity.as_str()
        ),
        format!("> 客户：{}", e.customer_id.as_str()),
        format!("> 单位：{}", e.org_code),
    ];
    if let Some(w) = window_zh(tz, e) {
        lines.push(format!("> 窗口：{w}"));
    }
    let state = if e.kind == EventKind::StateChanged {
        format!("{} → {}", e.from.label_zh(), e.to.label_zh())
    } else {
        e.to.label_zh().to_string()
    };
    lines.push(format!("> 工单：{}（{state}）", e.workorder_id));
    lines.push(format!("> 命中窗口数：{}", e.hits));
    if let Some(loss) = e.estimated_loss_yuan {
        lines.push(format!("> 估算损失：{loss} 元"));
    }
    match e.escalation {
        Escalation::None => {}
        Escalation::Warned => lines.push("> 督办：临近时限".into()),
        Escalation::Escalated => lines.push("> 督办：已超时，升级至上级单位".into()),
    }
    if let Some(a) = &e.assigned_org {
        lines.push(format!("> 处理单位：{a}"));
    }
    lines.push(format!("> 时间：{}", local_time(tz, e.at)));
    if let Some(link) = workorder_link(public_url, e) {
        lines.push(format!("\n[查看工单]({link})"));
    }
    (title, lines.join("\n"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sinks::testing::event;
    use jicha_pipeline::workorder::Status;

    #[test]
    fn the_markdown_names_theme_severity_customer_unit_window_and_order() {
        let mut e = event(7, EventKind::WorkorderOpened);
        e.estimated_loss_yuan = Some(rust_decimal::Decimal::new(12345, 2));
        let (title, text) = markdown(
            chrono_tz::Asia::Shanghai,
            Some("https://jicha.example/"),
            &e,
        );
        assert_eq!(title, "稽查告警：新增稽查工单");
        for want in [
            "### 稽查告警：新增稽查工单",
            "> 主题：**over_capacity**",
            "> 级别：**高**（high）",
            "> 客户：C1",
            "> 单位：41/4107/410727",
            // 1_793_671_200_000 is 2026-11-03 10:00 in Beijing.
            "> 窗口：2026-11-03 10:00 至 2026-11-03 11:00",
            "> 工单：WO0000000007（待派发）",
            "> 估算损失：123.45 元",
            "[查看工单](https://jicha.example/api/v1/workorders/WO0000000007)",
        ] {
            assert!(text.contains(want), "{want:?} missing in\n{text}");
        }
        let mut s = event(8, EventKind::StateChanged);
        s.from = Status::UnderReview;
        s.to = Status::Archived;
        let (_, text) = markdown(chrono_tz::Asia::Shanghai, None, &s);
        assert!(text.contains("（待审核 → 已归档）"), "{text}");
        assert!(!text.contains("查看工单"));
        assert_eq!(
            summary(&e),
            "【高】over_capacity 新增稽查工单：客户 C1（41/4107/410727）"
        );
    }
}

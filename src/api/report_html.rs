//! The printable evaluation report (月度稽查评价报告 for a month), in
//! Chinese: one table of every unit, the total, a short ranking of the
//! units one level down, and what each column means. Every text from
//! outside (org codes) is escaped.

use jicha_pipeline::report::evaluation::StageFigures;
use jicha_pipeline::report::{Evaluation, UnitFigures};
use jicha_pipeline::time::{BusinessClock, EpochMs};
use rust_decimal::Decimal;
use std::fmt::Write;

/// `&`, `<`, `>`, `"` and `'` as entities: safe in text and in quoted attributes.
fn esc(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// A rate as a percentage to two places; `—` with nothing to divide by.
fn pct(r: Option<Decimal>) -> String {
    r.map_or_else(
        || "—".into(),
        |r| format!("{}%", (r * Decimal::ONE_HUNDRED).round_dp(2)),
    )
}

fn stage(s: &StageFigures) -> String {
    format!(
        "{} <small>({}/{})</small>",
        pct(s.rate),
        s.on_time,
        s.finished
    )
}

fn row(out: &mut String, name: &str, u: &UnitFigures, class: &str) {
    let o = &u.on_time;
    let _ = write!(
        out,
        "<tr class=\"{class}\"><th scope=\"row\">{}</th><td>{}</td><td>{}</td><td>{}</td><td>{}</td>\
         <td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td>\
         <td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
        esc(name),
        u.findings,
        u.dispatched,
        u.dismissed,
        u.voided,
        u.archived,
        u.confirmed,
        pct(u.confirmed_rate),
        stage(&o.dispatch),
        stage(&o.accept),
        stage(&o.feedback),
        stage(&o.review),
        u.overdue,
        u.sampled,
        u.sample_failed,
        u.recovered_kwh,
        u.recovered_yuan,
    );
}

const STYLE: &str = "body{font-family:'Noto Sans CJK SC','Microsoft YaHei',sans-serif;margin:2em;color:#111}\
h1{font-size:1.6em;text-align:center;margin-bottom:.2em}.meta{text-align:center;color:#444}\
table{border-collapse:collapse;width:100%;margin:1em 0;font-size:.85em}\
th,td{border:1px solid #888;padding:.3em .5em;text-align:right}th[scope=row]{text-align:left}\
thead th{background:#eef;text-align:center}tr.total{font-weight:bold;background:#f6f6f6}\
small{color:#666}dl{font-size:.85em}dt{font-weight:bold;float:left;clear:left;width:8em}dd{margin-left:9em}\
@media print{body{margin:0}a{color:inherit}}";

const HEAD: &str = "<thead><tr><th>单位<br><small>Unit</small></th><th>发现<br><small>Findings</small></th>\
<th>派发<br><small>Dispatched</small></th><th>不处理<br><small>Dismissed</small></th>\
<th>作废<br><small>Voided</small></th><th>归档<br><small>Archived</small></th>\
<th>属实<br><small>Confirmed</small></th><th>查实率<br><small>Confirmed rate</small></th>\
<th>派发及时率<br><small>Dispatch on time</small></th><th>签收及时率<br><small>Accept on time</small></th>\
<th>反馈及时率<br><small>Feedback on time</small></th><th>审核及时率<br><small>Review on time</small></th>\
<th>超期<br><small>Overdue</small></th><th>抽检<br><small>Sampled</small></th>\
<th>抽检不合格<br><small>Sample failed</small></th><th>挽回电量 kWh<br><small>Recovered kWh</small></th>\
<th>挽回电费 元<br><small>Recovered yuan</small></th></tr></thead>";

pub fn render(e: &Evaluation, clock: &BusinessClock, now: EpochMs) -> String {
    let title = if e.period.len() == 7 {
        "月度稽查评价报告"
    } else {
        "稽查评价报告"
    };
    let unit = e.org.as_deref().unwrap_or("全部单位");
    let last_day = clock.local_date(e.until - 1);
    let mut out = String::with_capacity(8192);
    let _ = write!(
        out,
        "<!doctype html><html lang=\"zh-CN\"><head><meta charset=\"utf-8\">\
         <title>{title} {period} {unit}</title><style>{STYLE}</style></head><body>\
         <h1>{title}</h1><p class=\"meta\">单位 {unit} · 统计期 {period}（{from} 至 {to}）· 生成于 {now}</p>\
         <h2>一、各单位评价 <small>Evaluation by unit</small></h2><table>{HEAD}<tbody>",
        period = esc(&e.period),
        unit = esc(unit),
        from = clock.local_date(e.from).format("%Y-%m-%d"),
        to = last_day.format("%Y-%m-%d"),
        now = esc(&clock.format(now)),
    );
    if e.units.is_empty() {
        out.push_str(
            "<tr><td colspan=\"17\" style=\"text-align:center\">本期无稽查工作单</td></tr>",
        );
    }
    for u in &e.units {
        row(&mut out, &u.org, u, "unit");
    }
    row(&mut out, "合计 Total", &e.total, "total");
    out.push_str("</tbody></table><h2>二、排名 <small>Ranking</small></h2>");
    if e.ranking.is_empty() {
        out.push_str("<p>无下级单位可排名。</p>");
    } else {
        out.push_str(
            "<table class=\"ranking\"><thead><tr><th>名次<br><small>Rank</small></th>\
             <th>单位<br><small>Unit</small></th><th>综合及时率<br><small>On time</small></th>\
             <th>查实率<br><small>Confirmed rate</small></th><th>挽回电费 元<br><small>Recovered yuan</small></th>\
             </tr></thead><tbody>",
        );
        for r in &e.ranking {
            let _ = write!(
                out,
                "<tr><td>{}</td><th scope=\"row\">{}</th><td>{}</td><td>{}</td><td>{}</td></tr>",
                r.rank,
                esc(&r.org),
                pct(r.on_time_rate),
                pct(r.confirmed_rate),
                r.recovered_yuan
            );
        }
        out.push_str("</tbody></table>");
    }
    out.push_str(
        "<h2>三、口径说明 <small>Definitions</small></h2><dl>\
         <dt>归属单位</dt><dd>工单最后派发的单位；未派发的为客户所在县公司。督办上移不改变归属。每个单位的数字含其下级单位。</dd>\
         <dt>发现</dt><dd>本期生成的工单（含待研判）。</dd>\
         <dt>查实率</dt><dd>本期归档工单中反馈属实的比例。</dd>\
         <dt>及时率</dt><dd>本期完成的环节（派发、签收、反馈、审核）中在时限内完成的比例；括号内为及时数/完成数。</dd>\
         <dt>超期</dt><dd>本期超过环节时限被督办的次数。</dd>\
         <dt>抽检</dt><dd>本期抽中的工单数，及本期判定不合格的抽检数。</dd>\
         <dt>挽回电量/电费</dt><dd>属实工单的反馈（本期归档时）和整改成效补录（本期录入时）金额之和，逐单按分取整后相加。</dd>\
         <dt>排名</dt><dd>下一级单位按综合及时率、查实率、挽回电费依次排序。</dd></dl></body></html>",
    );
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn outside_text_is_escaped() {
        assert_eq!(
            esc("41/<script>\"x\"&'y'"),
            "41/&lt;script&gt;&quot;x&quot;&amp;&#39;y&#39;"
        );
        assert_eq!(pct(Some(Decimal::new(6667, 4))), "66.67%");
        assert_eq!(pct(None), "—");
    }
}

//! Views: shared subqueries every theme can read by name. Each is planned
//! in the theme's session and inlined into its plan, so a view over
//! `meter_day` is read, windowed and projected exactly as `meter_day` is.
//! A view keeps the hidden window columns of its event table, so
//! `hop(…)`/`tumble(…)` work on it as on the table.

/// `(name, SQL)` of every view, in the order they are registered (a view
/// may read the ones before it).
pub const VIEWS: &[(&str, &str)] = &[("customer_day", CUSTOMER_DAY)];

/// A customer's day: per window, customer and day, each energy column
/// summed over the customer's meters, and NULL unless every meter of the
/// customer (per the archive's `meter_count`) has it that day: a day with a
/// missing meter is not defined, never a smaller number.
const CUSTOMER_DAY: &str = "
SELECT d.__window_start, d.__window_end, d.ts, d.day, d.customer_id,
       CASE WHEN count(d.kwh) = c.meter_count THEN sum(d.kwh) END               AS kwh,
       CASE WHEN count(d.kwh_sharp) = c.meter_count THEN sum(d.kwh_sharp) END   AS kwh_sharp,
       CASE WHEN count(d.kwh_peak) = c.meter_count THEN sum(d.kwh_peak) END     AS kwh_peak,
       CASE WHEN count(d.kwh_flat) = c.meter_count THEN sum(d.kwh_flat) END     AS kwh_flat,
       CASE WHEN count(d.kwh_valley) = c.meter_count THEN sum(d.kwh_valley) END AS kwh_valley,
       CASE WHEN count(d.kvarh) = c.meter_count THEN sum(d.kvarh) END           AS kvarh
FROM meter_day d
JOIN customers c ON c.customer_id = d.customer_id
GROUP BY d.__window_start, d.__window_end, d.ts, d.day, d.customer_id, c.meter_count";

-- theme: energy_drop
-- title: 电量突降 (窃电嫌疑)
-- severity: medium
-- param: drop_ratio = 0.3 -- day D is a drop when below ratio × the mean of the 7 days before
-- param: drop_min_mean_kwh = 100 -- ignore customers whose 7-day mean is below this
-- A customer in status normal whose energy of D and of each of D-7…D-1
-- is defined, the mean of D-7…D-1 is at least drop_min_mean_kwh, and the
-- energy of D is below drop_ratio × that mean. Compared as
-- 7 × E(D) < ratio × Σ, so no division rounds. Hit window: [D, D+1).
SELECT x.window.end - interval '1 day' AS window_start,
       x.window.end AS window_end,
       x.customer_id,
       x.kwh,
       x.prev_kwh_sum / 7 AS mean_kwh
FROM (
    SELECT d.window,
           d.customer_id,
           count(*) AS days,
           last_value(d.kwh ORDER BY d.day) AS kwh,
           sum(d.kwh) - last_value(d.kwh ORDER BY d.day) AS prev_kwh_sum
    FROM (
        SELECT hop(interval '1 day', interval '8 days') AS window,
               customer_id,
               day,
               kwh
        FROM customer_day
    ) d
    JOIN customers c ON c.customer_id = d.customer_id
    WHERE c.status = 'normal'
      AND d.kwh IS NOT NULL
    GROUP BY d.window, d.customer_id
) x
WHERE x.days = 8
  AND x.prev_kwh_sum >= $drop_min_mean_kwh * 7
  AND x.kwh * 7 < $drop_ratio * x.prev_kwh_sum

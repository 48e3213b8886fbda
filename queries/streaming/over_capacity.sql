-- theme: over_capacity
-- title: 超容量用电
-- severity: high
-- param: over_capacity_ratio = 1.2 -- a point exceeds when the customer's total p_kw > ratio × contract_kva
-- The customer's total load (sum of its meters that reported at that
-- timestamp) exceeds ratio × contract capacity at two consecutive
-- 15-minute points t and t+15m. Hit window: [t, t+30m).
SELECT w.window.start AS window_start,
       w.window.end   AS window_end,
       w.customer_id,
       w.first_kw,
       w.second_kw,
       c.contract_kva * $over_capacity_ratio AS threshold_kw
FROM (
    SELECT window,
           customer_id,
           count(*)                     AS points,
           min(kw)                      AS min_kw,
           first_value(kw ORDER BY ts) AS first_kw,
           last_value(kw ORDER BY ts)  AS second_kw
    FROM (
        SELECT hop(interval '15 minutes', interval '30 minutes') AS window,
               customer_id,
               ts,
               sum(p_kw) AS kw
        FROM load_point
        GROUP BY window, customer_id, ts
    ) per_point
    GROUP BY window, customer_id
) w
JOIN customers c ON c.customer_id = w.customer_id
WHERE w.points = 2
  AND w.min_kw > c.contract_kva * $over_capacity_ratio

-- theme: over_capacity
-- title: 超容量用电
-- severity: high
-- param: over_capacity_ratio = 1.2 -- a point exceeds when the customer's total p_kw > ratio × contract_kva
-- The customer's total load (sum of its meters that reported at that
-- timestamp) exceeds ratio × contract capacity at two consecutive
-- 15-minute points t and t+15m. Hit window: [t, t+30m).
-- Load points lie on the 15-minute grid (decoding refuses others), so a
-- 30-minute window holds at most two points: keeping only the points above
-- the threshold before the second aggregation and asking for two of them is
-- the same rule, and that aggregation then sees the few exceeding points
-- instead of every customer's.
SELECT w.window.start AS window_start,
       w.window.end   AS window_end,
       w.customer_id,
       w.first_kw,
       w.second_kw,
       w.threshold_kw
FROM (
    SELECT p.window,
           p.customer_id,
           c.contract_kva * $over_capacity_ratio AS threshold_kw,
           count(*)                        AS points,
           first_value(p.kw ORDER BY p.ts) AS first_kw,
           last_value(p.kw ORDER BY p.ts)  AS second_kw
    FROM (
        SELECT hop(interval '15 minutes', interval '30 minutes') AS window,
               customer_id,
               ts,
               sum(p_kw) AS kw
        FROM load_point
        GROUP BY window, customer_id, ts
    ) p
    JOIN customers c ON c.customer_id = p.customer_id
    WHERE p.kw > c.contract_kva * $over_capacity_ratio
    GROUP BY p.window, p.customer_id, c.contract_kva
) w
WHERE w.points = 2

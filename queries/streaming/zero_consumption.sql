-- theme: zero_consumption
-- title: 零度户
-- severity: medium
-- param: zero_days = 7 -- consecutive days of exactly zero energy
-- A customer in status normal whose total energy is exactly 0 on each of
-- zero_days consecutive days D-6…D, every one of them defined (all meters
-- have both freezes). Hit window: [D-6, D+1).
SELECT z.window.start AS window_start,
       z.window.end   AS window_end,
       z.customer_id,
       z.days
FROM (
    SELECT d.window,
           d.customer_id,
           count(*)                          AS zero_days,
           array_agg(d.day ORDER BY d.day)   AS days
    FROM (
        SELECT hop(interval '1 day', interval '$zero_days days') AS window,
               customer_id,
               day,
               kwh
        FROM customer_day
    ) d
    JOIN customers c ON c.customer_id = d.customer_id
    WHERE c.status = 'normal'
      AND d.kwh = 0
    GROUP BY d.window, d.customer_id
) z
WHERE z.zero_days = $zero_days

-- theme: register_reversal
-- title: 表码倒走
-- severity: high
-- A meter's total register at the end of day D is below its value at the
-- end of D-1. Hit window: [D, D+1).
SELECT r.window.start AS window_start,
       r.window.end   AS window_end,
       r.customer_id,
       r.meter_id,
       r.prev_reg_total,
       r.reg_total
FROM (
    SELECT tumble(interval '1 day') AS window, customer_id, meter_id, prev_reg_total, reg_total
    FROM meter_day
    WHERE reg_total < prev_reg_total
) r

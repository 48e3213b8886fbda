-- theme: valley_excess
-- title: 超低谷用电 (私增变压器嫌疑)
-- severity: high
-- param: valley_overload = 1.2 -- allowed overload of the contract capacity at night
-- param: valley_hours = 8 -- valley hours per day (23:00–07:00)
-- Month-to-date valley energy through day D exceeds
-- overload × contract_kva × valley_hours × day_of_month(D). A customer's
-- valley energy of a day counts only when every one of its meters has it.
-- Hit window: [D, D+1).
WITH daily AS (
    SELECT cumulate(interval '1 day', interval '1 month') AS window,
           customer_id,
           day,
           kwh_valley AS valley_kwh
    FROM customer_day
),
month_to_date AS (
    SELECT d.window, d.customer_id, sum(d.valley_kwh) AS valley_kwh_mtd
    FROM daily d
    WHERE d.valley_kwh IS NOT NULL
    GROUP BY d.window, d.customer_id
),
judged AS (
    SELECT m.window.end - interval '1 day' AS window_start,
           m.window.end AS window_end,
           m.customer_id,
           m.valley_kwh_mtd,
           c.contract_kva,
           CAST(date_part('day', m.window.end - interval '1 day') AS BIGINT) AS day_of_month
    FROM month_to_date m
    JOIN customers c ON c.customer_id = m.customer_id
)
SELECT window_start, window_end, customer_id, valley_kwh_mtd,
       valley_limit_kwh(contract_kva, $valley_overload, $valley_hours, day_of_month) AS limit_kwh,
       day_of_month
FROM judged
WHERE valley_kwh_mtd > valley_limit_kwh(contract_kva, $valley_overload, $valley_hours, day_of_month)

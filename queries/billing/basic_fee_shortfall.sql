-- theme: basic_fee_shortfall
-- title: 基本电费少计 (暂停/减容规则)
-- severity: high
-- param: suspend_max_days = 183 -- over this many suspended days in a calendar year, suspensions stop reducing the basic fee
-- param: basic_price_yuan_per_kva_month = 25.00 -- basic fee price, 元 per kVA and month
-- Two-part, capacity-billed customers in status normal whose billed
-- basic-fee capacity is below the expected capacity: contract_kva minus
-- the capacity changes active for the whole period (start ≤ first day,
-- end open or ≥ last day). A suspension stops counting once the customer's
-- suspended days in the calendar year, up to the period's last day, exceed
-- suspend_max_days (《供电营业规则》). Loss = (expected − billed) kVA ×
-- price, half-up to 0.01 元.
WITH suspended AS (
    SELECT b.customer_id,
           sum(suspended_days_in_year(ch.start_date, ch.end_date, b.period_end)) AS days
    FROM bill b
    JOIN capacity_changes ch ON ch.customer_id = b.customer_id
    WHERE ch.kind = 'suspend'
    GROUP BY b.customer_id
),
exempt AS (
    SELECT b.customer_id, sum(ch.kva) AS kva
    FROM bill b
    JOIN capacity_changes ch ON ch.customer_id = b.customer_id
    LEFT JOIN suspended s ON s.customer_id = b.customer_id
    WHERE ch.start_date <= b.period_start
      AND (ch.end_date IS NULL OR ch.end_date >= b.period_end)
      AND (ch.kind = 'reduce' OR coalesce(s.days, 0) <= $suspend_max_days)
    GROUP BY b.customer_id
),
expected AS (
    SELECT b.ts,
           b.customer_id,
           b.period,
           c.contract_kva,
           c.contract_kva - coalesce(e.kva, 0) AS expected_kva,
           b.basic_fee_kva AS billed_kva,
           coalesce(s.days, 0) AS suspended_days_in_year
    FROM bill b
    JOIN customers c ON c.customer_id = b.customer_id
    LEFT JOIN exempt e ON e.customer_id = b.customer_id
    LEFT JOIN suspended s ON s.customer_id = b.customer_id
    WHERE c.tariff_kind = 'two_part'
      AND c.basic_fee_mode = 'capacity'
      AND c.status = 'normal'
)
SELECT ts AS window_start,
       ts + interval '1 month' AS window_end,
       customer_id,
       period,
       contract_kva,
       expected_kva,
       billed_kva,
       suspended_days_in_year,
       round_yuan((expected_kva - billed_kva) * $basic_price_yuan_per_kva_month) AS estimated_loss_yuan
FROM expected
WHERE billed_kva < expected_kva

-- theme: basic_fee_undue
-- title: 不应收取而收取基本电费
-- severity: medium
-- Archive tariff_kind single, yet the bill charges a basic fee.
SELECT b.ts AS window_start,
       b.ts + interval '1 month' AS window_end,
       b.customer_id,
       b.period,
       b.basic_fee_yuan
FROM bill b
JOIN customers c ON c.customer_id = b.customer_id
WHERE c.tariff_kind = 'single'
  AND b.basic_fee_yuan > 0

-- theme: large_industry_tariff_misuse
-- title: 非大工业执行大工业电价且未计基本费
-- severity: high
-- The bill uses the large_industry tariff table for a customer whose
-- archive usage category is not large_industry, and charges no basic fee.
SELECT b.ts AS window_start,
       b.ts + interval '1 month' AS window_end,
       b.customer_id,
       b.period,
       c.usage_category,
       b.tariff_category AS billed_tariff_category,
       b.basic_fee_yuan
FROM bill b
JOIN customers c ON c.customer_id = b.customer_id
WHERE b.tariff_category = 'large_industry'
  AND c.usage_category <> 'large_industry'
  AND b.basic_fee_yuan = 0

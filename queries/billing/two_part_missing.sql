-- theme: two_part_missing
-- title: 应执行两部制而未执行
-- severity: high
-- param: two_part_min_kva = 315 -- large industry at or above this capacity must be on a two-part tariff
-- Archive usage_category large_industry, contract_kva ≥ two_part_min_kva,
-- status normal, and the bill is not two-part or carries no basic fee.
-- Hit window: the billing period.
SELECT b.ts AS window_start,
       b.ts + interval '1 month' AS window_end,
       b.customer_id,
       b.period,
       c.contract_kva,
       b.tariff_kind AS billed_tariff_kind,
       b.basic_fee_yuan
FROM bill b
JOIN customers c ON c.customer_id = b.customer_id
WHERE c.usage_category = 'large_industry'
  AND c.contract_kva >= $two_part_min_kva
  AND c.status = 'normal'
  AND (b.tariff_kind <> 'two_part' OR b.basic_fee_yuan = 0)

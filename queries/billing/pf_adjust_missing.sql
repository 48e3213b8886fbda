-- theme: pf_adjust_missing
-- title: 力率调整电费未执行
-- severity: medium
-- param: pf_min_kva = 100 -- customers at or above this capacity are assessed for power factor
-- Non-residential customers in status normal with contract_kva ≥
-- pf_min_kva whose bill did not apply the power-factor adjustment.
SELECT b.ts AS window_start,
       b.ts + interval '1 month' AS window_end,
       b.customer_id,
       b.period,
       c.contract_kva,
       c.pf_standard
FROM bill b
JOIN customers c ON c.customer_id = b.customer_id
WHERE c.usage_category <> 'residential'
  AND c.contract_kva >= $pf_min_kva
  AND c.status = 'normal'
  AND NOT b.pf_adjust_applied

-- theme: meter_cover_open
-- title: 电能表开盖
-- severity: critical
-- A cover_open event (state start, or no state). Row-wise: each event is
-- judged once the event stream's watermark passes it. Hit window: [ts, ts].
SELECT ts AS window_start,
       ts AS window_end,
       customer_id,
       meter_id,
       ts AS event_ts
FROM meter_event
WHERE code = 'cover_open'
  AND (state IS NULL OR state = 'start')

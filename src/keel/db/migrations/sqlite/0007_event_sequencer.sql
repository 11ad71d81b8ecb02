-- events: PostgreSQL numbers events after commit (its 0007); SQLite's one writer numbers them as it inserts
-- them, so nothing changes here. The file keeps both backends' versions in step.
SELECT 1;

-- The item's own sequence of status changes (ItemStatusChanged.payload.sequence): a status
-- replaces the stored one only if its sequence is higher. NULL for status changes written
-- before the field existed; they come before every one that has it.
ALTER TABLE items ADD COLUMN sequence integer;
ALTER TABLE item_history ADD COLUMN sequence integer;

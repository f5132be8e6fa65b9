-- A batch whose unit amounts have more than 2 decimal places is read right by Xero only when the request
-- says unitdp=4: the batch records it, so whoever sends a file cannot miss it. Batch files of a practice
-- whose id cannot name a folder as it is live under an encoded folder (contract section 4): path says where.
alter table xero_batches add column unit_dp smallint;
comment on column xero_batches.unit_dp is 'Decimal places of the unit amounts in the body: 4 means send it with ?unitdp=4 (Xero rounds unit amounts to 2 places otherwise); 2 means none has more than 2. Null for batches written before this was recorded: send those with unitdp=4 too.';
comment on column xero_batches.batch_id is 'Batch identifier: <folder>-<sequence>, the folder being the practice''s folder under xero/ (its practice_id, or an encoding of it when the id cannot name a folder) and the sequence counting that practice''s batches.';
comment on column xero_batches.path is 'The JSON file, relative to the output folder: xero/<folder>/<batch_id>.json.';
comment on column xero_batches.csv_path is 'The CSV file, relative to the output folder: xero/<folder>/<batch_id>.csv.';

-- Xero's CSV importer takes a practice's dates in its regional format and tax types by their display
-- names (flows/xero/import_template.py): a practice with a tax type that has no known name gets no CSV
-- file, only its JSON body, so csv_path may be null.
alter table xero_batches alter column csv_path drop not null;
comment on column xero_batches.csv_path is 'The CSV file for Xero''s sales-invoice importer, relative to the output folder: xero/<folder>/<batch_id>.csv; dates in the practice''s format, tax types by their display names. Null when no CSV was written: one of the practice''s tax type codes had no display name (the run warned, naming it).';

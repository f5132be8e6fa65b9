-- The source's invoices and lines are no longer copied into the warehouse on every run (at ten million
-- lines the copy cost more than resolving them): a run reads them from the source files, and what
-- analysts read from them is kept with the invoice instead. The reference tables stay as raw_<table>.
drop table if exists raw_invoices;
drop table if exists raw_invoice_lines;

alter table invoice_tracking add column source_currency varchar;
comment on column invoice_tracking.source_currency is 'Invoice currency from the source (ISO 4217; null when it did not parse), held invoices included; xero_invoices.currency is the one sent.';

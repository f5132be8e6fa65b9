-- The warehouse's tables. Every table and column carries a COMMENT for analysts.

create table runs (
    run_id varchar primary key,
    flow varchar not null,
    started_at timestamptz not null,
    finished_at timestamptz,
    status varchar not null,
    source varchar,
    scope varchar,
    invoices_considered integer,
    invoices_ready integer,
    invoices_held integer,
    invoices_not_xero integer,
    lines_resolved integer,
    exceptions_open integer,
    batches_written integer,
    invoices_batched integer,
    watermark timestamptz
);
comment on table runs is 'One row per successful run of a flow (nightly or backfill). A failed run leaves no trace here: it changes nothing.';
comment on column runs.run_id is 'Identifier of the run (UTC start time and a random suffix).';
comment on column runs.flow is 'nightly or backfill.';
comment on column runs.started_at is 'When the run started (UTC).';
comment on column runs.finished_at is 'When the run committed its results (UTC).';
comment on column runs.status is 'success: the run committed. Failed runs are not recorded because they change nothing.';
comment on column runs.source is 'The source folder the run read.';
comment on column runs.scope is 'What the run recomputed: "changed since <watermark> + held" for nightly, the date range and practices for backfill.';
comment on column runs.invoices_considered is 'Approved invoices (and invoices whose status did not parse) the run resolved.';
comment on column runs.invoices_ready is 'Of those, invoices that passed every check and can go to Xero.';
comment on column runs.invoices_held is 'Of those, invoices held back with at least one error in exceptions.';
comment on column runs.invoices_not_xero is 'Of those, invoices of practices whose ledger is not Xero (no tracking, no output, not an error).';
comment on column runs.lines_resolved is 'Source lines of the considered invoices, one line_tracking row each.';
comment on column runs.exceptions_open is 'Open exceptions in the warehouse after the run.';
comment on column runs.batches_written is 'Xero batch files (JSON + CSV pairs) the run wrote.';
comment on column runs.invoices_batched is 'Invoices in those batches.';
comment on column runs.watermark is 'Latest invoices.updated_at seen by a run that covered every invoice; the next nightly takes invoices changed after it.';

create table invoice_tracking (
    practice_id varchar not null,
    invoice_id varchar not null,
    invoice_number varchar,
    client_id varchar,
    issue_date date,
    updated_at timestamptz,
    invoice_state varchar not null,
    hold_codes varchar[],
    line_count integer,
    consolidated boolean,
    net_amount decimal(18, 2),
    digest varchar,
    run_id varchar,
    primary key (practice_id, invoice_id)
);
comment on table invoice_tracking is 'One row per approved invoice: where it stands (ready, held, not_xero) and why.';
comment on column invoice_tracking.practice_id is 'The practice (tenant) that owns the invoice.';
comment on column invoice_tracking.invoice_id is 'The invoice, unique within its practice.';
comment on column invoice_tracking.invoice_number is 'Invoice number as sent to Xero.';
comment on column invoice_tracking.client_id is 'The client invoiced.';
comment on column invoice_tracking.issue_date is 'Issue date of the invoice (null when it did not parse).';
comment on column invoice_tracking.updated_at is 'When the source last changed the invoice (UTC).';
comment on column invoice_tracking.invoice_state is 'ready: can go to Xero; held: an error in exceptions holds it; not_xero: practice not on Xero.';
comment on column invoice_tracking.hold_codes is 'Error codes holding the invoice (empty when ready).';
comment on column invoice_tracking.line_count is 'Source lines on the invoice.';
comment on column invoice_tracking.consolidated is 'True when the client has consolidate_lines, so Xero gets one line (R6).';
comment on column invoice_tracking.net_amount is 'Sum of the line amounts sent to Xero (ready invoices only), exact to the cent.';
comment on column invoice_tracking.digest is 'MD5 of exactly what would be sent to Xero (ready invoices only); a changed digest means re-batch.';
comment on column invoice_tracking.run_id is 'The run that last resolved the invoice.';

create table line_tracking (
    practice_id varchar not null,
    invoice_id varchar not null,
    line_id varchar not null,
    position integer,
    line_type varchar,
    issue_date date,
    line_amount decimal(18, 2),
    tracking1_category varchar,
    tracking1_option varchar,
    tracking1_source varchar,
    tracking2_category varchar,
    tracking2_option varchar,
    tracking2_source varchar,
    invoice_state varchar not null,
    client_id varchar,
    service_template_id varchar,
    tracking1_option_id varchar,
    tracking2_option_id varchar,
    account_code varchar,
    tax_type varchar,
    run_id varchar,
    primary key (practice_id, invoice_id, line_id)
);
comment on table line_tracking is 'One row per source line of an approved invoice: both tracking slots as resolved by rules R1-R4, before consolidation, whether or not the invoice is held.';
comment on column line_tracking.practice_id is 'The practice (tenant) that owns the line.';
comment on column line_tracking.invoice_id is 'The invoice the line is on.';
comment on column line_tracking.line_id is 'The line, unique within its invoice.';
comment on column line_tracking.position is 'Order of the line on the invoice.';
comment on column line_tracking.line_type is 'service, alignment_fee or adhoc (null when the source value did not parse).';
comment on column line_tracking.issue_date is 'Issue date of the invoice.';
comment on column line_tracking.line_amount is 'quantity x unit_amount rounded half away from zero to 2 places.';
comment on column line_tracking.tracking1_category is 'Slot 1 category name (the client''s option''s category); null when there is none or the option is unknown.';
comment on column line_tracking.tracking1_option is 'Slot 1 option name: the client''s invoicing-settings tracking option (R1).';
comment on column line_tracking.tracking1_source is 'client when the client has an option, else null.';
comment on column line_tracking.tracking2_category is 'Slot 2 category name.';
comment on column line_tracking.tracking2_option is 'Slot 2 option name: the service template''s, else the client owner''s (R2-R4).';
comment on column line_tracking.tracking2_source is 'service or owner: where slot 2 came from, even when that option is unknown; null when there is none.';
comment on column line_tracking.invoice_state is 'State of the line''s invoice: ready, held or not_xero.';
comment on column line_tracking.client_id is 'The invoice''s client.';
comment on column line_tracking.service_template_id is 'The service template the line names, if any.';
comment on column line_tracking.tracking1_option_id is 'Slot 1 option id as referenced (kept even when unknown).';
comment on column line_tracking.tracking2_option_id is 'Slot 2 option id as referenced (kept even when unknown).';
comment on column line_tracking.account_code is 'Effective account code: the line''s own, else its service template''s.';
comment on column line_tracking.tax_type is 'Effective tax type: the line''s own, else its service template''s.';
comment on column line_tracking.run_id is 'The run that resolved the line.';

create table exceptions (
    practice_id varchar,
    invoice_id varchar,
    line_id varchar,
    code varchar not null,
    severity varchar not null,
    detail varchar not null,
    first_seen_at timestamptz not null,
    last_seen_at timestamptz not null
);
comment on table exceptions is 'Open problems. An error holds its invoice until a later run finds it fixed; a warning holds nothing. Closed problems move to exception_history.';
comment on column exceptions.practice_id is 'The practice the problem belongs to (null when the source row has no practice_id).';
comment on column exceptions.invoice_id is 'The invoice held or warned about; null for problems no invoice can be traced to (orphan lines, unused reference rows).';
comment on column exceptions.line_id is 'The line at fault, when the problem is on a line.';
comment on column exceptions.code is 'What is wrong: SAME_CATEGORY, UNKNOWN_OPTION, ARCHIVED_OPTION, INVALID_VALUE, ... (contract section 3).';
comment on column exceptions.severity is 'error (holds the invoice) or warning (recorded, holds nothing).';
comment on column exceptions.detail is 'The offending file, row, column and value, in words.';
comment on column exceptions.first_seen_at is 'First run that saw this problem (kept while it stays open).';
comment on column exceptions.last_seen_at is 'Latest run that saw it.';

create table exception_history (
    practice_id varchar,
    invoice_id varchar,
    line_id varchar,
    code varchar not null,
    severity varchar not null,
    detail varchar not null,
    first_seen_at timestamptz not null,
    last_seen_at timestamptz not null,
    closed_at timestamptz not null
);
comment on table exception_history is 'Problems that were open and are no longer found: fixed in the source, or the invoice left scope.';
comment on column exception_history.practice_id is 'The practice the problem belonged to.';
comment on column exception_history.invoice_id is 'The invoice it held or warned about.';
comment on column exception_history.line_id is 'The line at fault, if any.';
comment on column exception_history.code is 'What was wrong.';
comment on column exception_history.severity is 'error or warning.';
comment on column exception_history.detail is 'The offending file, row, column and value.';
comment on column exception_history.first_seen_at is 'First run that saw it.';
comment on column exception_history.last_seen_at is 'Last run that saw it.';
comment on column exception_history.closed_at is 'The run that no longer found it.';

create table xero_line_items (
    practice_id varchar not null,
    invoice_id varchar not null,
    invoice_number varchar not null,
    line_no integer not null,
    line_id varchar,
    description varchar not null,
    quantity decimal(18, 4) not null,
    unit_amount decimal(18, 4) not null,
    line_amount decimal(18, 2) not null,
    account_code varchar not null,
    tax_type varchar not null,
    tracking1_name varchar,
    tracking1_option varchar,
    tracking2_name varchar,
    tracking2_option varchar,
    batch_id varchar,
    primary key (practice_id, invoice_id, line_no)
);
comment on table xero_line_items is 'What Xero receives for each ready invoice, line by line, after consolidation. batch_id is the batch that carried exactly this content; null when it is not batched yet (a backfill without --emit-batches, or a change since).';
comment on column xero_line_items.practice_id is 'The practice whose Xero organisation receives the line.';
comment on column xero_line_items.invoice_id is 'The invoice.';
comment on column xero_line_items.invoice_number is 'InvoiceNumber sent to Xero.';
comment on column xero_line_items.line_no is '1-based order of the line item in the Xero invoice.';
comment on column xero_line_items.line_id is 'The source line (the first line of a consolidated invoice).';
comment on column xero_line_items.description is 'Description sent.';
comment on column xero_line_items.quantity is 'Quantity sent (1 for a consolidated line).';
comment on column xero_line_items.unit_amount is 'UnitAmount sent (the invoice total for a consolidated line).';
comment on column xero_line_items.line_amount is 'LineAmount sent, exact to the cent.';
comment on column xero_line_items.account_code is 'AccountCode sent.';
comment on column xero_line_items.tax_type is 'TaxType sent.';
comment on column xero_line_items.tracking1_name is 'Tracking slot 1 category name sent (null when empty).';
comment on column xero_line_items.tracking1_option is 'Tracking slot 1 option sent.';
comment on column xero_line_items.tracking2_name is 'Tracking slot 2 category name sent (null when empty).';
comment on column xero_line_items.tracking2_option is 'Tracking slot 2 option sent.';
comment on column xero_line_items.batch_id is 'Batch file that carried this content (null: not batched yet).';

create table xero_batches (
    batch_id varchar primary key,
    practice_id varchar not null,
    run_id varchar not null,
    path varchar not null,
    csv_path varchar not null,
    invoice_count integer not null,
    line_count integer not null,
    bytes bigint not null,
    created_at timestamptz not null
);
comment on table xero_batches is 'One row per Xero batch: a JSON body for POST /Invoices and the same invoices as a CSV import file.';
comment on column xero_batches.batch_id is 'Batch identifier: <practice_id>-<sequence>, the sequence counting that practice''s batches.';
comment on column xero_batches.practice_id is 'The practice whose Xero organisation the batch is for.';
comment on column xero_batches.run_id is 'The run that wrote it.';
comment on column xero_batches.path is 'The JSON file, relative to the output folder.';
comment on column xero_batches.csv_path is 'The CSV file, relative to the output folder.';
comment on column xero_batches.invoice_count is 'Invoices in the batch (at most 50).';
comment on column xero_batches.line_count is 'Line items in the batch.';
comment on column xero_batches.bytes is 'Size of the JSON body (at most 3.5 MB).';
comment on column xero_batches.created_at is 'When the batch was written (UTC).';

create table export_ledger (
    practice_id varchar not null,
    invoice_id varchar not null,
    digest varchar not null,
    batch_id varchar not null,
    run_id varchar not null,
    batched_at timestamptz not null,
    primary key (practice_id, invoice_id, batch_id)
);
comment on table export_ledger is 'Every time an invoice was put in a batch, with the digest of what was sent. An invoice is batched again only when its digest changes.';
comment on column export_ledger.practice_id is 'The practice.';
comment on column export_ledger.invoice_id is 'The invoice batched.';
comment on column export_ledger.digest is 'MD5 of exactly what was sent (invoice_tracking.digest at the time).';
comment on column export_ledger.batch_id is 'The batch that carried it.';
comment on column export_ledger.run_id is 'The run that wrote the batch.';
comment on column export_ledger.batched_at is 'When (UTC).';

create table xero_invoices (
    practice_id varchar not null,
    invoice_id varchar not null,
    invoice_number varchar not null,
    client_id varchar,
    contact_id varchar,
    contact_name varchar,
    reference varchar,
    issue_date date not null,
    due_date date not null,
    currency varchar not null,
    xero_status varchar not null,
    line_amount_types varchar not null,
    line_count integer not null,
    total decimal(18, 2) not null,
    updated_at timestamptz,
    batch_id varchar,
    primary key (practice_id, invoice_id)
);
comment on table xero_invoices is 'The header Xero receives for each ready invoice; its lines are in xero_line_items.';
comment on column xero_invoices.practice_id is 'The practice whose Xero organisation receives the invoice.';
comment on column xero_invoices.invoice_id is 'The invoice.';
comment on column xero_invoices.invoice_number is 'InvoiceNumber sent.';
comment on column xero_invoices.client_id is 'The client invoiced.';
comment on column xero_invoices.contact_id is 'Contact.ContactID sent (the client''s xero_contact_id), when it has one.';
comment on column xero_invoices.contact_name is 'The client''s name: sent as Contact.Name when there is no ContactID, and as *ContactName in the CSV.';
comment on column xero_invoices.reference is 'Reference sent.';
comment on column xero_invoices.issue_date is 'Date sent.';
comment on column xero_invoices.due_date is 'DueDate sent.';
comment on column xero_invoices.currency is 'CurrencyCode sent.';
comment on column xero_invoices.xero_status is 'Status sent: AUTHORISED (the invoice was approved in the practice app).';
comment on column xero_invoices.line_amount_types is 'LineAmountTypes sent: Exclusive (amounts are net of tax).';
comment on column xero_invoices.line_count is 'Line items sent (1 for a consolidated invoice).';
comment on column xero_invoices.total is 'Sum of the line amounts sent, exact to the cent.';
comment on column xero_invoices.updated_at is 'When the source last changed the invoice.';
comment on column xero_invoices.batch_id is 'Batch that carried exactly this content; null when not batched yet.';

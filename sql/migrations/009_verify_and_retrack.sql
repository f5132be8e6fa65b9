-- Verify and Retrack (contract section 6): what each invoice in Xero should hold line by line, what Xero was
-- read back to hold, the tracking updates made, and the ones Xero refused.

create table xero_sent_lines (
    practice_id varchar not null,
    invoice_id varchar not null,
    xero_invoice_id varchar not null,
    line_no integer not null,
    line_item_id varchar not null,
    line_id varchar,
    description varchar,
    quantity decimal(18, 4),
    unit_amount decimal(18, 4),
    line_amount decimal(18, 2),
    account_code varchar,
    tax_type varchar,
    tracking1_name varchar,
    tracking1_option varchar,
    tracking2_name varchar,
    tracking2_option varchar,
    tracked_at timestamptz not null,
    tracked_by varchar not null
);
comment on table xero_sent_lines is 'One row per line of an invoice in Xero: what was sent, with its tracking as trackline last set it (by the push that created it, or by `trackline retrack --apply`). verify compares Xero with it; retrack_plan compares it with the tracking resolved now.';
comment on column xero_sent_lines.practice_id is 'The practice, whose Xero organisation holds the invoice.';
comment on column xero_sent_lines.invoice_id is 'The invoice in the practice app.';
comment on column xero_sent_lines.xero_invoice_id is 'Xero''s InvoiceID.';
comment on column xero_sent_lines.line_no is 'Position of the line in the invoice as sent (1 = first).';
comment on column xero_sent_lines.line_item_id is 'Xero''s LineItemID of the line.';
comment on column xero_sent_lines.line_id is 'The source line it was made from (the first line of a consolidated invoice).';
comment on column xero_sent_lines.description is 'Description sent.';
comment on column xero_sent_lines.quantity is 'Quantity sent.';
comment on column xero_sent_lines.unit_amount is 'UnitAmount sent (up to 4 places).';
comment on column xero_sent_lines.line_amount is 'LineAmount sent, exact to the cent.';
comment on column xero_sent_lines.account_code is 'AccountCode sent.';
comment on column xero_sent_lines.tax_type is 'TaxType sent.';
comment on column xero_sent_lines.tracking1_name is 'Slot 1 category as trackline last set it in Xero (null when empty).';
comment on column xero_sent_lines.tracking1_option is 'Slot 1 option as trackline last set it in Xero.';
comment on column xero_sent_lines.tracking2_name is 'Slot 2 category as trackline last set it in Xero.';
comment on column xero_sent_lines.tracking2_option is 'Slot 2 option as trackline last set it in Xero.';
comment on column xero_sent_lines.tracked_at is 'When that tracking was set (UTC): Xero''s answer to the push or to the update.';
comment on column xero_sent_lines.tracked_by is 'The push or retrack that set it.';

create table xero_readback (
    practice_id varchar not null,
    invoice_id varchar not null,
    xero_invoice_id varchar not null,
    line_item_id varchar,
    xero_status varchar not null,
    tracking1_name varchar,
    tracking1_option varchar,
    tracking2_name varchar,
    tracking2_option varchar,
    read_at timestamptz not null,
    verify_id varchar not null
);
comment on table xero_readback is 'What `trackline verify` last read of each invoice in Xero (`GET /Invoices?IDs=...`), one row per line (Tracking as Xero holds it, in Xero''s order), or one row with a null line_item_id for an invoice Xero did not return. A later read of the invoice replaces its rows.';
comment on column xero_readback.practice_id is 'The practice.';
comment on column xero_readback.invoice_id is 'The invoice in the practice app.';
comment on column xero_readback.xero_invoice_id is 'Xero''s InvoiceID.';
comment on column xero_readback.line_item_id is 'Xero''s LineItemID (null: Xero did not return the invoice).';
comment on column xero_readback.xero_status is 'The invoice''s Status in Xero (AUTHORISED, PAID, VOIDED, ...; NOT_FOUND when Xero did not return it).';
comment on column xero_readback.tracking1_name is 'First tracking category Xero holds on the line.';
comment on column xero_readback.tracking1_option is 'Its option.';
comment on column xero_readback.tracking2_name is 'Second tracking category Xero holds on the line.';
comment on column xero_readback.tracking2_option is 'Its option.';
comment on column xero_readback.read_at is 'When it was read (UTC): the invoice''s last check.';
comment on column xero_readback.verify_id is 'The verify that read it.';

create table xero_retracks (
    practice_id varchar not null,
    invoice_id varchar not null,
    xero_invoice_id varchar not null,
    line_no integer not null,
    line_item_id varchar not null,
    line_amount decimal(18, 2),
    from_tracking1_option varchar,
    from_tracking2_option varchar,
    to_tracking1_name varchar,
    to_tracking1_option varchar,
    to_tracking2_name varchar,
    to_tracking2_option varchar,
    reason varchar not null,
    retracked_at timestamptz not null,
    retrack_id varchar not null
);
comment on table xero_retracks is 'One row per line whose tracking `trackline retrack --apply` changed in Xero (POST /Invoices/{InvoiceID}, only Tracking changed): from what to what, and why.';
comment on column xero_retracks.practice_id is 'The practice.';
comment on column xero_retracks.invoice_id is 'The invoice in the practice app.';
comment on column xero_retracks.xero_invoice_id is 'Xero''s InvoiceID.';
comment on column xero_retracks.line_no is 'The line, as sent.';
comment on column xero_retracks.line_item_id is 'Xero''s LineItemID (unchanged by the update).';
comment on column xero_retracks.line_amount is 'The line''s amount (unchanged by the update).';
comment on column xero_retracks.from_tracking1_option is 'Slot 1 option before.';
comment on column xero_retracks.from_tracking2_option is 'Slot 2 option before.';
comment on column xero_retracks.to_tracking1_name is 'Slot 1 category after.';
comment on column xero_retracks.to_tracking1_option is 'Slot 1 option after.';
comment on column xero_retracks.to_tracking2_name is 'Slot 2 category after.';
comment on column xero_retracks.to_tracking2_option is 'Slot 2 option after.';
comment on column xero_retracks.reason is 'What changed in the source: client (slot 1), template or owner (slot 2), comma-separated.';
comment on column xero_retracks.retracked_at is 'When Xero answered the update (UTC).';
comment on column xero_retracks.retrack_id is 'The retrack that made it.';

create table xero_retrack_blocks (
    practice_id varchar not null,
    invoice_id varchar not null,
    digest varchar not null,
    messages varchar[] not null,
    blocked_at timestamptz not null,
    retrack_id varchar not null
);
comment on table xero_retrack_blocks is 'Every time Xero refused to update an invoice''s tracking (paid, part-paid, credited, voided, locked period), with Xero''s messages (RETRACK_BLOCKED). The same update is not asked again; a different one (the tracking resolved changes again) is.';
comment on column xero_retrack_blocks.practice_id is 'The practice.';
comment on column xero_retrack_blocks.invoice_id is 'The invoice.';
comment on column xero_retrack_blocks.digest is 'MD5 of the tracking asked for (the plan''s target for the invoice).';
comment on column xero_retrack_blocks.messages is 'Xero''s ValidationErrors messages, as Xero wrote them.';
comment on column xero_retrack_blocks.blocked_at is 'When (UTC).';
comment on column xero_retrack_blocks.retrack_id is 'The retrack.';

create table xero_checks (
    check_id varchar primary key,
    command varchar not null,
    started_at timestamptz not null,
    finished_at timestamptz not null,
    practices varchar[] not null,
    invoices_read integer not null,
    invoices_waiting integer not null,
    lines_dropped integer not null,
    invoices_updated integer not null,
    invoices_blocked integer not null,
    requests integer not null,
    practices_skipped varchar[] not null
);
comment on table xero_checks is 'One row per `trackline verify` or `trackline retrack --apply` that committed. One that failed or was killed leaves no row (a retrack''s journal is finished by the next one).';
comment on column xero_checks.check_id is 'Identifier (UTC start time and a random suffix); xero_requests.push_id names it for its requests.';
comment on column xero_checks.command is 'verify or retrack.';
comment on column xero_checks.started_at is 'When it started (UTC).';
comment on column xero_checks.finished_at is 'When it committed (UTC).';
comment on column xero_checks.practices is 'The practices it read or updated.';
comment on column xero_checks.invoices_read is 'verify: invoices read back from Xero.';
comment on column xero_checks.invoices_waiting is 'verify: sent invoices left for a later verify (over the run''s cap, or the daily limit).';
comment on column xero_checks.lines_dropped is 'verify: lines whose tracking Xero does not hold as sent (XERO_TRACKING_DROPPED).';
comment on column xero_checks.invoices_updated is 'retrack: invoices whose tracking Xero updated.';
comment on column xero_checks.invoices_blocked is 'retrack: invoices Xero refused to update (RETRACK_BLOCKED).';
comment on column xero_checks.requests is 'HTTP requests made to Xero (xero_requests).';
comment on column xero_checks.practices_skipped is 'Practices with work and no connection, or stopped by Xero''s daily limit.';

comment on column xero_requests.push_id is 'The push, verify or retrack (xero_pushes.push_id or xero_checks.check_id).';
comment on column xero_requests.purpose is 'send (PUT /Invoices), categories (GET /TrackingCategories), lookup (GET /Invoices before resending content whose outcome was lost), readback (verify''s GET /Invoices?IDs=...), retrack (POST /Invoices/{InvoiceID}), token.';

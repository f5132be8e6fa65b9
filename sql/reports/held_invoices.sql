-- held_invoices: the work list: every invoice held back from Xero, by trackline's checks or by Xero itself
-- (refused when pushed, or naming tracking Xero does not have active), or in Xero already with amounts or lines
-- changed in the source since (SENT_INVOICE_CHANGED), with why, how much and since when. What verify and retrack
-- find (XERO_TRACKING_DROPPED, RETRACK_BLOCKED) is in Xero, not held back: exception_summary shows it.
create or replace view held_invoices as
with refused_by_xero as (
    select practice_id, invoice_id, list_sort(list_distinct(list(code))) as codes
    from exceptions
    where severity = 'error' and invoice_id is not null
      and (code in ('XERO_REJECTED', 'XERO_OPTION_NOT_ACTIVE') or code = 'SENT_INVOICE_CHANGED')
    group by all
),

held as (
    select practice_id, invoice_id, invoice_number, client_id, issue_date, hold_codes, line_count
    from invoice_tracking
    where invoice_state = 'held'
    union all
    select t.practice_id, t.invoice_id, t.invoice_number, t.client_id, t.issue_date, x.codes, t.line_count
    from invoice_tracking t join refused_by_xero x using (practice_id, invoice_id)
    where t.invoice_state = 'ready'
),

held_amounts as (
    select lines.practice_id, lines.invoice_id, coalesce(sum(lines.line_amount), 0) as amount
    from line_tracking as lines
    join held using (practice_id, invoice_id)
    group by all
),

source_currencies as (
    select practice_id, invoice_id, source_currency as currency
    from invoice_tracking
),

invoice_errors as (
    select
        practice_id,
        invoice_id,
        count(*) as errors,
        min(first_seen_at) as first_seen_at,
        first(code || ': ' || detail order by first_seen_at, line_id nulls first, code, detail) as first_error,
        first(fix order by first_seen_at, line_id nulls first, code, detail) as fix
    from exceptions
    where severity = 'error' and invoice_id is not null
    group by all
),

final as (
    select
        held.practice_id,
        held.invoice_id,
        held.invoice_number,
        held.client_id,
        held.issue_date,
        source_currencies.currency,
        coalesce(held_amounts.amount, 0)::decimal(38, 2) as amount,
        held.line_count as lines,
        array_to_string(list_sort(held.hold_codes), ', ') as hold_codes,
        coalesce(invoice_errors.errors, 0) as errors,
        invoice_errors.first_seen_at,
        floor((epoch(now()) - epoch(invoice_errors.first_seen_at)) / 86400)::integer as age_days,
        invoice_errors.first_error,
        invoice_errors.fix
    from held
    left join held_amounts using (practice_id, invoice_id)
    left join source_currencies using (practice_id, invoice_id)
    left join invoice_errors using (practice_id, invoice_id)
)

select * from final;

comment on view held_invoices is 'One row per invoice held back from Xero, by trackline''s checks (held) or by Xero itself (XERO_REJECTED, XERO_OPTION_NOT_ACTIVE when pushed), or changed in the source after Xero accepted it (SENT_INVOICE_CHANGED: credit it or edit it in Xero): its codes, its money, since when, and the first error to fix. Fix the source (or Xero), and the next run or push sends it.';
comment on column held_invoices.practice_id is 'The practice (tenant).';
comment on column held_invoices.invoice_id is 'The invoice held.';
comment on column held_invoices.invoice_number is 'Its invoice number in the practice app.';
comment on column held_invoices.client_id is 'The client invoiced.';
comment on column held_invoices.issue_date is 'Issue date (null when it did not parse).';
comment on column held_invoices.currency is 'Currency as given in the source.';
comment on column held_invoices.amount is 'Net amount of its source lines, exact to the cent (DECIMAL); lines whose amount did not parse count as zero.';
comment on column held_invoices.lines is 'Source lines on the invoice.';
comment on column held_invoices.hold_codes is 'Error codes holding it, comma-separated (XERO_ codes: what Xero did when it was pushed).';
comment on column held_invoices.errors is 'Open error rows in exceptions for it.';
comment on column held_invoices.first_seen_at is 'When the oldest of its errors was first seen (UTC): it has been held at least since then.';
comment on column held_invoices.age_days is 'Whole days from first_seen_at to now (the moment of the query).';
comment on column held_invoices.first_error is 'Code and detail of its oldest error: the file, row, column and value to fix.';
comment on column held_invoices.fix is 'What to do about that first error, in one sentence (exceptions.fix): the row and value to change in the practice app, or in Xero.';

-- exception_summary: what is open, by practice and code: how many invoices it holds, how much money,
-- and how long the oldest has waited.
create or replace view exception_summary as
with open_exceptions as (
    select practice_id, invoice_id, line_id, code, severity, detail, first_seen_at, last_seen_at
    from exceptions
),

held_invoices as (
    select practice_id, invoice_id
    from invoice_tracking
    where invoice_state = 'held'
),

-- Source lines are the only place a held invoice's money is (nothing of it reaches xero_line_items);
-- an invoice with no lines (EMPTY_INVOICE) is held with no money.
held_amounts as (
    select held.practice_id, held.invoice_id, coalesce(sum(lines.line_amount), 0) as amount
    from held_invoices as held
    left join line_tracking as lines
        on lines.practice_id = held.practice_id and lines.invoice_id = held.invoice_id
    group by all
),

-- Held invoices are not in xero_invoices, so their currency is the one invoice_tracking keeps from the source.
source_currencies as (
    select practice_id, invoice_id, source_currency as currency
    from invoice_tracking
),

exception_rows as (
    select
        open_exceptions.*,
        source_currencies.currency,
        open_exceptions.severity = 'error' and held_amounts.invoice_id is not null as holds_invoice,
        held_amounts.amount
    from open_exceptions
    left join source_currencies using (practice_id, invoice_id)
    left join held_amounts using (practice_id, invoice_id)
),

-- One row per (row of the summary, held invoice), so an invoice's money counts once per code.
held_per_code as (
    select distinct practice_id, code, severity, currency, invoice_id, amount
    from exception_rows
    where holds_invoice
),

money_held as (
    select practice_id, code, severity, currency, count(*) as invoices_held, sum(amount) as amount_held
    from held_per_code
    group by all
),

counted as (
    select
        practice_id,
        code,
        severity,
        currency,
        count(*) as exceptions,
        count(distinct invoice_id) as invoices,
        count(distinct (invoice_id, line_id)) filter (where line_id is not null) as lines,
        min(first_seen_at) as oldest_first_seen_at,
        max(last_seen_at) as last_seen_at,
        first(detail order by first_seen_at, invoice_id nulls first, line_id nulls first, detail) as oldest_detail
    from exception_rows
    group by all
),

final as (
    select
        counted.practice_id,
        counted.code,
        counted.severity,
        counted.currency,
        counted.exceptions,
        counted.invoices,
        counted.lines,
        coalesce(money_held.invoices_held, 0) as invoices_held,
        coalesce(money_held.amount_held, 0)::decimal(38, 2) as amount_held,
        counted.oldest_first_seen_at,
        floor((epoch(now()) - epoch(counted.oldest_first_seen_at)) / 86400)::integer as oldest_age_days,
        counted.last_seen_at,
        counted.oldest_detail
    from counted
    left join money_held
        on counted.practice_id is not distinct from money_held.practice_id
        and counted.code = money_held.code
        and counted.severity = money_held.severity
        and counted.currency is not distinct from money_held.currency
)

select * from final;

comment on view exception_summary is 'Open exceptions per practice x code x severity x currency: the invoices affected, the invoices held and the money they hold, and the age of the oldest. An invoice held for two codes counts under both, so amount_held adds up across codes only per code; held_invoices has each held invoice once.';
comment on column exception_summary.practice_id is 'The practice (null for a source row without one).';
comment on column exception_summary.code is 'What is wrong (contract section 3): SAME_CATEGORY, UNKNOWN_OPTION, ARCHIVED_OPTION, ...';
comment on column exception_summary.severity is 'error (holds its invoice) or warning (recorded, holds nothing).';
comment on column exception_summary.currency is 'Currency of the invoices concerned, as given in the source (null for exceptions with no invoice).';
comment on column exception_summary.exceptions is 'Open exception rows.';
comment on column exception_summary.invoices is 'Distinct invoices they name (exceptions with no invoice, such as orphan lines, count none).';
comment on column exception_summary.lines is 'Distinct lines they name.';
comment on column exception_summary.invoices_held is 'Of those invoices, the ones this code holds back from Xero (errors on held invoices; warnings hold nothing).';
comment on column exception_summary.amount_held is 'Net amount of the source lines of those held invoices, each invoice once, exact to the cent (DECIMAL). Lines whose amount did not parse count as zero.';
comment on column exception_summary.oldest_first_seen_at is 'When the oldest of these exceptions was first seen (UTC).';
comment on column exception_summary.oldest_age_days is 'Whole days from oldest_first_seen_at to now (the moment of the query).';
comment on column exception_summary.last_seen_at is 'The latest run that saw any of them.';
comment on column exception_summary.oldest_detail is 'The detail of the oldest exception: the offending file, row, column and value.';

-- tracking_summary: what Xero receives, by practice, month, currency and the two tracking slots.
-- Xero's own tracking reports show one category at a time; this is both slots at once.
create or replace view tracking_summary as
with ready_invoices as (
    select practice_id, invoice_id
    from invoice_tracking
    where invoice_state = 'ready'
),

invoice_headers as (
    select practice_id, invoice_id, issue_date, currency
    from xero_invoices
),

sent_lines as (
    select
        items.practice_id,
        items.invoice_id,
        headers.issue_date,
        headers.currency,
        items.tracking1_name,
        items.tracking1_option,
        items.tracking2_name,
        items.tracking2_option,
        items.line_amount
    from xero_line_items as items
    join ready_invoices using (practice_id, invoice_id)
    join invoice_headers as headers using (practice_id, invoice_id)
),

final as (
    select
        practice_id,
        date_trunc('month', issue_date)::date as month,
        currency,
        tracking1_name as tracking1_category,
        tracking1_option,
        tracking2_name as tracking2_category,
        tracking2_option,
        count(distinct invoice_id) as invoices,
        count(*) as lines,
        sum(line_amount) as net_amount
    from sent_lines
    group by all
)

select * from final;

comment on view tracking_summary is 'Ready invoices as sent to Xero, per practice x month x currency x slot-1 option x slot-2 option. Amounts are net of tax and never added across currencies. Sums of net_amount and lines over any set of rows are exact; invoices are not additive across rows (an invoice whose lines carry different options counts in each).';
comment on column tracking_summary.practice_id is 'The practice (tenant).';
comment on column tracking_summary.month is 'First day of the month of the invoice''s issue date.';
comment on column tracking_summary.currency is 'Invoice currency (ISO 4217). Money is summed within one currency only.';
comment on column tracking_summary.tracking1_category is 'Slot 1 category name as sent (null: slot 1 empty).';
comment on column tracking_summary.tracking1_option is 'Slot 1 option as sent: the client''s tracking option (R1); null when empty.';
comment on column tracking_summary.tracking2_category is 'Slot 2 category name as sent (null: slot 2 empty).';
comment on column tracking_summary.tracking2_option is 'Slot 2 option as sent: the service''s, else the owner''s (R2-R4); null when empty, always for consolidated invoices (R6).';
comment on column tracking_summary.invoices is 'Ready invoices with at least one Xero line item in this row.';
comment on column tracking_summary.lines is 'Xero line items in this row (a consolidated invoice is one line item).';
comment on column tracking_summary.net_amount is 'Sum of the LineAmount sent, exact to the cent (DECIMAL).';

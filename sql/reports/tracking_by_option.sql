-- tracking_by_option: revenue by one tracking option at a time (by partner, by department, ...), as Xero's
-- tracking report would show it, but for every category and both slots at once.
create or replace view tracking_by_option as
with ready_invoices as (
    select practice_id, invoice_id
    from invoice_tracking
    where invoice_state = 'ready'
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
    join xero_invoices as headers using (practice_id, invoice_id)
),

by_slot as (
    select practice_id, invoice_id, issue_date, currency, 1 as slot,
           tracking1_name as category, tracking1_option as option, line_amount
    from sent_lines
    union all
    select practice_id, invoice_id, issue_date, currency, 2 as slot,
           tracking2_name as category, tracking2_option as option, line_amount
    from sent_lines
),

final as (
    select
        practice_id,
        date_trunc('month', issue_date)::date as month,
        currency,
        slot,
        category,
        option,
        count(distinct invoice_id) as invoices,
        count(*) as lines,
        sum(line_amount) as net_amount
    from by_slot
    group by all
)

select * from final;

comment on view tracking_by_option is 'Ready invoices as sent to Xero per practice x month x currency x slot x option: revenue by partner, by department, and so on. Each Xero line item appears once per slot, so filter on one slot, or on one category (a line carries at most one option of a category): within a slot, net_amount adds up to the Xero total, the row with a null option holding the untagged lines.';
comment on column tracking_by_option.practice_id is 'The practice (tenant).';
comment on column tracking_by_option.month is 'First day of the month of the invoice''s issue date.';
comment on column tracking_by_option.currency is 'Invoice currency (ISO 4217).';
comment on column tracking_by_option.slot is 'Tracking slot: 1 (the client''s option) or 2 (the service''s or owner''s).';
comment on column tracking_by_option.category is 'Tracking category name sent in this slot (null: slot empty).';
comment on column tracking_by_option.option is 'Tracking option sent in this slot (null: slot empty).';
comment on column tracking_by_option.invoices is 'Ready invoices with at least one line item carrying this option in this slot.';
comment on column tracking_by_option.lines is 'Xero line items carrying it.';
comment on column tracking_by_option.net_amount is 'Sum of their LineAmount, exact to the cent (DECIMAL).';
